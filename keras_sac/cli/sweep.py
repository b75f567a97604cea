"""`python sweep.py` / `keras-sac-sweep`: envs x seeds x settings (a grid) or an Optuna search, run as Ray Tune
trials, one train.py run each.

    python sweep.py --env HalfCheetah-v5 --env Hopper-v5 --seeds 0-4 \\
        --grid learning_rate=3e-4,1e-3 --grid batch_size=256,512 --total-timesteps 300000
    python sweep.py --env Hopper-v5 --search optuna --trials 40 --metric auc \\
        --grid learning_rate=1e-4,3e-3 --grid tau=0.005,0.01,0.02 --total-timesteps 100000
    python sweep.py ... --address 10.0.0.5:6379        # the same sweep on a Ray cluster (ray start --head)
    python sweep.py --suite mujoco --seeds 0-2 --total-timesteps 100000   # the results table, beside published

Without --address, an embedded Ray sized to this machine runs `cores / --threads-per-trial` trials at once,
each a worker process with that many TensorFlow threads. Each trial is an ordinary run folder under the
sweep folder (loadable by KerasSAC.load and evaluate.py). A worker that dies is restarted by Tune and its
trial resumes from its own checkpoint; the same command run again skips finished trials and resumes the
others. At the end, `python -m keras_sac.experiments.report SWEEP_DIR` is written (report.md and PNGs).

Why Ray Tune rather than Ray core tasks: the Optuna searcher, the ASHA scheduler and the retry of failed
trials are Tune's; a grid is then the same code path with no searcher.

Exit codes: 0 every trial finished (or was pruned by the search), 1 a trial failed after its retries, 2 bad
input (nothing started), 130 stopped (Ctrl-C) with trials unfinished: the same command resumes them.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

from keras_sac.cli.common import note, setup_warnings
from keras_sac.config.settings import ConfigError
from keras_sac.config.sources import CONFIGS_DIR, parse_overrides
from keras_sac.experiments.sweep_plan import Plan, check_sweep_dir, load_suite, parse_grid, parse_seeds, validate
from keras_sac.extras import MissingExtra, require


def parse_args(argv=None, prog: str | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="Run keras_sac trials over envs x seeds x settings on Ray.")
    p.add_argument("--env", action="append", default=[], help="Gymnasium env id; repeat for several envs")
    p.add_argument(
        "--suite",
        help="a suite: envs x their presets (configs/suites/<name>.yaml, e.g. mujoco, or a YAML file's path) in "
        "place of --env/--grid/--config; its report puts the results beside published figures",
    )
    p.add_argument("--seeds", default="0", help="seeds of every config: a range 0-4 or a list 0,3,7 (default 0)")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="a setting's values, e.g. learning_rate=3e-4,1e-3 or net_arch=[64,64],[256,256]; repeat "
        "for more keys (a grid takes every combination; --search optuna samples between them)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting every trial shares, as train.py's --set",
    )
    p.add_argument("--config", help="YAML file of settings applied over configs/<env>.yaml for every trial")
    p.add_argument("--total-timesteps", type=int, help="env steps per trial (default: each env's config)")
    p.add_argument(
        "--sweep-dir",
        type=Path,
        help="the sweep folder (default sweeps/<YYYYmmdd-HHMMSS>); give an existing one to resume it",
    )
    p.add_argument(
        "--address",
        help="join this Ray cluster (host:port of `ray start --head`, 'auto', or "
        "ray://host:10001) instead of starting one on this machine",
    )
    p.add_argument(
        "--max-concurrent",
        type=int,
        help="trials at once (default: cores / --threads-per-trial here; as the cluster's CPUs allow with --address)",
    )
    p.add_argument(
        "--threads-per-trial",
        type=int,
        default=1,
        help="CPU cores (Ray) and TensorFlow threads of each trial (default 1)",
    )
    p.add_argument("--max-failures", type=int, default=3, help="restarts of a trial whose worker failed (default 3)")
    p.add_argument(
        "--search",
        choices=("grid", "optuna"),
        default="grid",
        help="grid: every combination (default); optuna: sample --trials configs from the --grid "
        "ranges with Optuna, stopping hopeless ones early (ASHA)",
    )
    p.add_argument("--trials", type=int, help="configs to sample with --search optuna")
    p.add_argument(
        "--metric",
        choices=("final", "best", "auc"),
        default="final",
        help="what --search optuna maximises: the last evaluation return, the best, or their mean "
        "(area under the curve; default final)",
    )
    return p.parse_args(argv)


def make_plan(args, prog: str):
    """The sweep's Plan from the command line, with every trial's config checked (ConfigError, EnvError)."""
    from keras_sac.envs.make import env_spec, make_env, resolve_env_id  # Gymnasium and MuJoCo: after the flags' checks

    if bool(args.env) == bool(args.suite):
        raise ConfigError(
            "give the envs with --env (and settings with --grid) or a whole --suite, not both"
            if args.env
            else "name the envs: --env Hopper-v5 ..., or a suite: --suite mujoco"
        )
    suite_file: str | None = None
    suite: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if args.suite:
        for flag, given in (
            ("--grid", args.grid),
            ("--config", args.config),
            ("--search optuna", args.search != "grid"),
        ):
            if given:
                raise ConfigError(
                    f"{flag} does not go with --suite: a suite's trials run its presets as they are "
                    f"(--set still applies to every trial)"
                )
        suite_file, suite = load_suite(args.suite, CONFIGS_DIR)
    envs = []
    for name in args.env or [env for env, _ in suite]:
        env_id, notes = resolve_env_id(name)
        for text in notes:
            note(prog, text)
        envs.append(env_id)
    if len(set(envs)) != len(envs):
        raise ConfigError("an --env is given twice")
    if args.total_timesteps is not None and args.total_timesteps < 1:
        raise ConfigError(f"--total-timesteps {args.total_timesteps}: expected an integer >= 1")
    for flag, value in (
        ("--threads-per-trial", args.threads_per_trial),
        ("--max-concurrent", args.max_concurrent),
        ("--trials", args.trials),
    ):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {value}: expected an integer >= 1")
    if args.max_failures < 0:
        raise ConfigError(f"--max-failures {args.max_failures}: expected an integer >= 0")
    plan = Plan(
        tuple(envs),
        parse_seeds(args.seeds),
        parse_grid(args.grid),
        tuple(parse_overrides(args.overrides).items()),
        args.config,
        args.total_timesteps,
        args.search,
        args.trials,
        args.metric,
        tuple((env_id, presets) for env_id, (_, presets) in zip(envs, suite)),
        suite_file,
    )
    if plan.search == "optuna":
        if args.trials is None:
            raise ConfigError("--search optuna needs --trials N (how many configs to sample)")
        if len(plan.envs) != 1 or len(plan.seeds) != 1:
            raise ConfigError(
                "--search optuna tunes one --env with one seed; then run the best config over "
                "seeds and envs as a grid sweep"
            )
        if not plan.grid:
            raise ConfigError("--search optuna needs ranges to sample: --grid learning_rate=1e-4,3e-3 ...")
    elif args.trials is not None:
        raise ConfigError("--trials is for --search optuna; a grid runs every combination")
    validate(plan, CONFIGS_DIR)
    for env_id in plan.envs:  # the env is made once here, so a broken env fails before any trial
        env_spec(make_env(env_id))
    return plan


def check_address(address: str | None) -> None:
    """A host:port address must accept a connection within 5 s (Ray itself would wait for minutes)."""
    if address in (None, "auto") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except ValueError:
        raise ConfigError(
            f"--address {address!r}: expected host:port, e.g. 10.0.0.5:6379 (what `ray start "
            f"--head` prints), 'auto' or ray://host:10001"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}): start one with "
            f"`ray start --head` and pass the address it prints, or drop --address to run on this "
            f"machine"
        ) from None


def main(argv=None, prog: str = "sweep.py") -> int:
    args = parse_args(argv, prog)
    from keras_sac.envs.make import EnvError  # (as in make_plan)
    from keras_sac.experiments.sweep import run  # Ray and TensorFlow load only when a sweep runs

    setup_warnings(prog)
    command = [prog, *(sys.argv[1:] if argv is None else argv)]
    try:
        require("sweep", "sweeps (Ray Tune, Optuna)")
        plan = make_plan(args, prog)
        sweep_dir = args.sweep_dir or Path("sweeps") / time.strftime("%Y%m%d-%H%M%S")
        check_sweep_dir(sweep_dir, plan)
        check_address(args.address)
        if args.address is None and args.threads_per_trial > (os.cpu_count() or 1):
            raise ConfigError(
                f"--threads-per-trial {args.threads_per_trial} is more than this machine's {os.cpu_count()} cores"
            )
        code = run(plan, args, sweep_dir, command)
    except (ConfigError, EnvError, MissingExtra) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    if code is None:  # a finished sweep: nothing runs, nothing is rewritten
        return 0
    from keras_sac.experiments.report import ReportError, write_report  # matplotlib and rliable

    try:
        written = write_report(sweep_dir)
        print(f"report: {written[0]}")
    except (ReportError, MissingExtra) as exc:
        print(f"{prog}: no report: {exc}", file=sys.stderr)
    return code


def console() -> None:
    """The `keras-sac-sweep` command (pip install)."""
    sys.exit(main(prog="keras-sac-sweep"))


if __name__ == "__main__":
    sys.exit(main())
