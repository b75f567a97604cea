"""Train SAC on a Gymnasium env and leave a run folder.

    python train.py --env InvertedPendulum-v5
    python train.py --env HalfCheetah-v5 --total-timesteps 200000 --seed 1 --set batch_size=512

    python train.py --resume runs/HalfCheetah-v5-20261121-093000
    python train.py --env my_envs:MyEnv-v0 --env-kwargs '{size: 5}'

Config precedence, lowest first: SACConfig/RunConfig defaults, configs/<env>.yaml, --config FILE,
--set key=value, then --total-timesteps/--seed/--deterministic. The run folder (default
runs/<env>-<time>/) receives config.yaml (resolved), run.json, metrics.csv, tb/ (TensorBoard),
checkpoints/ (the newest two), policy/ (SavedModel; policy.tflite, policy.onnx with --export-tflite/-onnx),
learning_curve.png, diagnostics.png, videos/ (with --set video_freq=N) and summary.json.

Exit codes: 0 done, 1 training failed (divergence, non-finite env output, unwritable checkpoint),
2 bad input, 130/143 stopped by SIGINT/SIGTERM (a checkpoint was written; --resume continues).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keras_sac.cli.common import command, note, setup_warnings
from keras_sac.config.settings import ConfigError
from keras_sac.config.sources import CONFIGS_DIR, ResolvedConfig, parse_env_kwargs, parse_overrides, resolve_config
from keras_sac.extras import MissingExtra


def parse_args(argv=None, prog: str | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="Train Soft Actor-Critic (keras_sac) on a Gymnasium env.")
    p.add_argument(
        "--env",
        help="Gymnasium env id, e.g. InvertedPendulum-v5, or module:EnvId for an env that "
        "module registers (required unless --resume)",
    )
    p.add_argument(
        "--env-kwargs",
        metavar="MAPPING",
        help="keyword arguments for gym.make, as YAML/JSON, e.g. '{ctrl_cost_weight: 0.2}'",
    )
    p.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its newest good checkpoint to its total_timesteps",
    )
    p.add_argument("--config", help="YAML file of key: value hyperparameters, applied over configs/<env>.yaml")
    p.add_argument(
        "--total-timesteps",
        type=int,
        help="env steps to train for (overrides the config; with --resume, extends the run)",
    )
    p.add_argument("--seed", type=int, help="random seed (overrides the config; default: a fresh one, recorded)")
    p.add_argument("--run-dir", type=Path, help="output folder (default runs/<env>-<YYYYmmdd-HHMMSS>)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config value; repeatable, e.g. --set gamma=0.98 --set net_arch=[64,64]",
    )
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="TensorFlow op determinism: same seed -> same result, also across kill and resume",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (eval lines are still printed)")
    p.add_argument(
        "--export-tflite",
        action="store_true",
        help="also write the policy as policy.tflite (LiteRT, builtin ops; runs without TensorFlow)",
    )
    p.add_argument("--export-onnx", action="store_true", help="also write the policy as policy.onnx (onnxruntime)")
    p.add_argument("--force", action="store_true", help="write into a --run-dir that already holds files")
    args = p.parse_args(argv)
    if args.resume is not None:
        fixed = [
            flag
            for flag, given in (
                ("--env", args.env),
                ("--env-kwargs", args.env_kwargs),
                ("--config", args.config),
                ("--seed", args.seed),
                ("--run-dir", args.run_dir),
                ("--set", args.overrides),
                ("--deterministic", args.deterministic),
                ("--force", args.force),
            )
            if given
        ]
        if fixed:
            p.error(f"--resume continues a run with its own config; drop {', '.join(fixed)}")
    elif args.env is None:
        p.error("--env is required (or --resume RUN_DIR to continue a run)")
    return args


def prepare(args, prog: str) -> tuple[ResolvedConfig, Path] | None:
    """Every check a run makes before it trains, in order, each by the layer that owns the fact; then the run
    folder is written. Before TensorFlow starts (seconds), so bad input costs nothing; None: the run to
    resume is finished. Raises ConfigError, EnvError, FileExistsError or VideoError, one line each."""
    # Gymnasium and MuJoCo load here, after argparse (`--help` and flag errors stay instant).
    from keras_sac.envs.make import env_spec, make_env, resolve_env_id
    from keras_sac.experiments.video import check_renders, check_video_dir
    from keras_sac.io.run_files import default_run_dir, finished_run, prepare_run_dir, read_run_config, write_run_start

    # 1. the config: the run folder's own (--resume), or configs/<env>.yaml < --config < --set < flags
    if args.resume is not None:
        run_dir = args.resume
        config = read_run_config(run_dir, args.total_timesteps)
        done = finished_run(run_dir)
        if done is not None and config.run.total_timesteps <= done:
            print(
                f"{run_dir} is finished ({done} of {done} steps); to train it further give a larger total: "
                f"{command('train.py')} --resume {run_dir} --total-timesteps {2 * done}"
            )
            return None
    else:
        env_id, notes = resolve_env_id(args.env)
        for text in notes:
            note(prog, text)
        config = resolve_config(
            env_id,
            CONFIGS_DIR,
            args.config,
            parse_overrides(args.overrides),
            parse_env_kwargs(args.env_kwargs),
            total_timesteps=args.total_timesteps,
            seed=args.seed,
            deterministic=args.deterministic or None,
        )
        run_dir = args.run_dir or default_run_dir(env_id)
    # 2. the env, made once as the agent will make it (pixels included): its spaces suit SAC
    env_spec(
        make_env(config.env_id, pixels=config.sac.get("pixels"), **config.env_kwargs),
        config.sac.get("image_channels", "auto"),
    )
    # 3. videos: the env renders frames
    if config.run.video_freq:
        check_renders(config.env_id)
    # 4. the run folder: new (or --force), then config.yaml and run.json written into it
    if args.resume is None:
        prepare_run_dir(run_dir, args.force)
        write_run_start(run_dir, config)
    # 5. its videos/ folder is writable
    if config.run.video_freq:
        check_video_dir(run_dir / "videos")
    return config, run_dir


def main(argv=None, prog: str = "train.py") -> int:
    args = parse_args(argv, prog)
    setup_warnings(prog)
    from keras_sac.envs.make import EnvError  # (see prepare)
    from keras_sac.envs.recording import VideoError

    try:
        prepared = prepare(args, prog)
    except (ConfigError, EnvError, FileExistsError, VideoError, MissingExtra) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    if prepared is None:
        return 0
    config, run_dir = prepared

    from keras_sac.io.startup import quiet_tensorflow_startup

    with quiet_tensorflow_startup(first_op=False):  # the agent starts TensorFlow, its thread pools sized
        from keras_sac.experiments.training import RunFailed, train
        from keras_sac.io.checkpoint import CheckpointError
        from keras_sac.io.export_formats import ExportError
    verb = "resuming" if args.resume else "training"
    print(f"{verb} SAC on {config.env_id} to {config.run.total_timesteps} steps -> {run_dir}")
    say = print
    if not args.no_progress:
        from tqdm.auto import tqdm

        say = tqdm.write
    try:
        summary = train(
            config,
            run_dir,
            resume=args.resume is not None,
            progress_bar=not args.no_progress,
            say=say,
            resume_command=f"{command('train.py')} --resume",
            export_formats=tuple(
                f for f, asked in (("tflite", args.export_tflite), ("onnx", args.export_onnx)) if asked
            ),
        )
    except (CheckpointError, ExportError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    if summary["evaluations"]:
        print(
            f"last evaluation (step {summary['final_eval_step']}): return "
            f"{summary['final_eval_mean_return']:.1f}; best {summary['best_eval_mean_return']:.1f} "
            f"at step {summary['best_eval_step']}"
        )
    print(f"policy: {run_dir / 'policy'}   evaluate with: {command('evaluate.py')} {run_dir}")
    if summary.get("best_policy"):
        best = summary["best_policy"]
        print(
            f"best policy (return {best['mean_return']:.1f} at step {best['step']}): {run_dir / 'best_policy'}"
            f"   evaluate with: {command('evaluate.py')} {run_dir / 'best_policy'}"
        )
    plots = [run_dir / name for name in ("learning_curve.png", "diagnostics.png") if (run_dir / name).is_file()]
    if plots:
        print(f"plots: {'  '.join(str(p) for p in plots)}")
    print(f"TensorBoard: tensorboard --logdir {run_dir.parent}")
    return {None: 0, "SIGINT": 130, "SIGTERM": 143}[summary["stopped_by"]]


def console() -> None:
    """The `keras-sac-train` command (pip install)."""
    sys.exit(main(prog="keras-sac-train"))


if __name__ == "__main__":
    sys.exit(main())
