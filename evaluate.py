"""Evaluate an exported SAC policy (a SavedModel folder or a train.py run folder).

    python evaluate.py runs/InvertedPendulum-v5-20261121-093000
    python evaluate.py path/to/policy --episodes 20 --seed 3 --stochastic

The env id defaults to the one recorded in the policy's metadata. Prints each episode's return, then
the mean and standard deviation.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Evaluate a keras_sac SavedModel policy.")
    p.add_argument("path", type=Path, help="SavedModel policy folder, or a run folder holding policy/")
    p.add_argument("--env", help="Gymnasium env id (default: the id in the policy's metadata)")
    p.add_argument("--episodes", type=int, default=10, help="number of episodes (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode's reset (default 0)")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of tanh(mean)")
    args = p.parse_args(argv)
    if args.episodes < 1:
        p.error(f"--episodes must be >= 1, got {args.episodes}")
    return args


def policy_dir(path: Path) -> Path:
    """A SavedModel folder as given, or the `policy/` folder of a run folder."""
    return path / "policy" if (path / "policy" / "saved_model.pb").is_file() else path


def main(argv=None) -> int:
    args = parse_args(argv)
    warnings.formatwarning = lambda message, *_, **__: f"evaluate.py: warning: {message}\n"  # one line, no source
    if not args.path.exists():
        print(f"evaluate.py: error: '{args.path}' does not exist: pass a SavedModel policy folder or a run "
              f"folder", file=sys.stderr)
        return 2
    from keras_sac.startup import quiet_tensorflow_startup

    with quiet_tensorflow_startup():
        from keras_sac.envs import EnvError, check_same_spaces, env_spec, make_env
        from keras_sac.evaluation import evaluate_policy
        from keras_sac.export import LoadedPolicy, PolicyError

    try:
        policy = LoadedPolicy(policy_dir(args.path))
        env_id = args.env or policy.metadata.get("env_id")
        if not env_id:
            raise EnvError("the policy's metadata names no env id: pass --env")
        env = make_env(env_id)
        check_same_spaces(policy.spec, env_spec(env), f"the policy at '{policy.path}'")
    except (PolicyError, EnvError) as exc:
        print(f"evaluate.py: error: {exc}", file=sys.stderr)
        return 2
    mode = "stochastic" if args.stochastic else "deterministic"
    print(f"evaluating {policy.path} on {env_id}: {args.episodes} episodes, {mode}, seed {args.seed}")
    returns = evaluate_policy(lambda obs: policy(obs, deterministic=not args.stochastic), env,
                              args.episodes, seed=args.seed)
    for i, ret in enumerate(returns):
        print(f"episode {i}: return {ret:.1f}")
    print(f"mean return {returns.mean():.1f} +- {returns.std():.1f} over {len(returns)} episodes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
