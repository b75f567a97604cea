"""Evaluate an exported SAC policy (a SavedModel folder or a train.py run folder).

    python evaluate.py runs/InvertedPendulum-v5-20261121-093000
    python evaluate.py path/to/policy --episodes 20 --seed 3 --stochastic
    python evaluate.py path/to/policy --env my_envs:MyEnv-v0 --env-kwargs '{size: 5}'
    python evaluate.py runs/HalfCheetah-v5-20261123-120000 --video videos/ --episodes 3

The env id and its gym.make keyword arguments default to those recorded in the policy's metadata. Prints
each episode's return and length, then the mean and standard deviation. Exit codes: 0 done, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keras_sac.cli.common import note, setup_warnings
from keras_sac.config.settings import ConfigError
from keras_sac.config.sources import parse_env_kwargs
from keras_sac.extras import MissingExtra


def parse_args(argv=None, prog: str | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="Evaluate a keras_sac SavedModel policy.")
    p.add_argument("path", type=Path, help="SavedModel policy folder, or a run folder holding policy/")
    p.add_argument("--env", help="Gymnasium env id, or module:EnvId (default: the id in the policy's metadata)")
    p.add_argument(
        "--env-kwargs",
        metavar="MAPPING",
        help="gym.make keyword arguments as YAML/JSON (default: those in the policy's metadata)",
    )
    p.add_argument("--episodes", type=int, default=10, help="number of episodes (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the first episode's reset (default 0)")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of tanh(mean)")
    p.add_argument(
        "--video",
        type=Path,
        metavar="DIR",
        help="write each episode as DIR/episode-<i>.mp4 (rendered headless, in a TensorFlow-free process)",
    )
    args = p.parse_args(argv)
    if args.episodes < 1:
        p.error(f"--episodes must be >= 1, got {args.episodes}")
    return args


def main(argv=None, prog: str = "evaluate.py") -> int:
    args = parse_args(argv, prog)
    setup_warnings(prog)
    # The path, the metadata and the env are checked before TensorFlow starts (seconds); Gymnasium and MuJoCo
    # load here, after argparse.
    from keras_sac.envs.make import EnvError, check_same_spaces, env_spec, make_env, resolve_env_id
    from keras_sac.experiments.video import VideoError, check_renders, check_video_dir, record_episodes
    from keras_sac.io.policy_files import PolicyError, find_policy, read_metadata, spec_from_metadata

    try:
        path = find_policy(args.path)
        metadata = read_metadata(path)
        env_id = args.env or metadata.get("env_id")
        if not env_id:
            raise EnvError(
                "the policy's metadata names no env id (it was trained on an unregistered env): pass --env module:EnvId"
            )
        env_id, notes = resolve_env_id(env_id)
        for text in notes:
            note(prog, text)
        env_kwargs = parse_env_kwargs(args.env_kwargs) if args.env_kwargs else metadata.get("env_kwargs") or {}
        env = make_env(env_id, pixels=metadata.get("pixels"), **env_kwargs)
        check_same_spaces(spec_from_metadata(metadata), env_spec(env), f"the policy at '{path}'")
        if args.video is not None:
            check_renders(env_id)
            check_video_dir(args.video)
            env.close()  # the episodes run in the recording env instead
    except (PolicyError, EnvError, ConfigError, VideoError, MissingExtra) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2

    from keras_sac.io.startup import quiet_tensorflow_startup

    with quiet_tensorflow_startup():
        from keras_sac.evaluation import evaluate_policy
        from keras_sac.io.export import LoadedPolicy

    try:
        policy = LoadedPolicy(path)
    except PolicyError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    mode = "stochastic" if args.stochastic else "deterministic"
    print(f"evaluating {policy.path} on {env_id}: {args.episodes} episodes, {mode}, seed {args.seed}")
    act = lambda obs: policy(obs, deterministic=not args.stochastic)  # noqa: E731
    if args.video is None:
        returns, lengths, successes = evaluate_policy(act, env, args.episodes, seed=args.seed)
    else:
        try:
            (returns, lengths, successes), videos = record_episodes(
                act, env_id, env_kwargs, metadata.get("pixels"), args.video, args.episodes, seed=args.seed
            )
        except VideoError as exc:
            print(f"{prog}: error: {exc}", file=sys.stderr)
            return 2
    for i, (ret, length) in enumerate(zip(returns, lengths)):
        success = "" if successes is None else f", success {bool(successes[i])}"
        print(f"episode {i}: return {ret:.1f}, length {length}{success}")
    success = "" if successes is None else f", success rate {successes.mean():.2f}"
    print(
        f"mean return {returns.mean():.1f} +- {returns.std():.1f}, mean length {lengths.mean():.1f}{success} "
        f"over {len(returns)} episodes"
    )
    if args.video is not None:
        print(f"videos: {len(videos)} mp4 files in {args.video}")
    return 0


def console() -> None:
    """The `keras-sac-evaluate` command (pip install)."""
    sys.exit(main(prog="keras-sac-evaluate"))


if __name__ == "__main__":
    sys.exit(main())
