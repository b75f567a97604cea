"""Sweeps: envs x seeds x settings (a grid) or an Optuna search, run as Ray Tune trials, one train.py run each.

    python sweep.py --env HalfCheetah-v5 --env Hopper-v5 --seeds 0-4 \\
        --grid learning_rate=3e-4,1e-3 --grid batch_size=256,512 --total-timesteps 300000
    python sweep.py --env Hopper-v5 --search optuna --trials 40 --metric auc \\
        --grid learning_rate=1e-4,3e-3 --grid tau=0.005,0.01,0.02 --total-timesteps 100000
    python sweep.py ... --address 10.0.0.5:6379        # the same sweep on a Ray cluster (ray start --head)

Without --address, an embedded Ray sized to this machine runs `cores / --threads-per-trial` trials at once,
each a worker process with that many TensorFlow threads. Each trial is an ordinary run folder under the
sweep folder (loadable by KerasSAC.load and evaluate.py). A worker that dies is restarted by Tune and its
trial resumes from its own checkpoint; the same command run again skips finished trials and resumes the
others. At the end, `python -m keras_sac.report SWEEP_DIR` is written (report.md and PNGs).

Why Ray Tune rather than Ray core tasks: the Optuna searcher, the ASHA scheduler and the retry of failed
trials are Tune's; a grid is then the same code path with no searcher.

Exit codes: 0 every trial finished (or was pruned by the search), 1 a trial failed after its retries, 2 bad
input (nothing started).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path

from keras_sac.config import ConfigError

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"


def parse_args(argv=None, prog: str | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description="Run keras_sac trials over envs x seeds x settings on Ray.")
    p.add_argument("--env", action="append", required=True, help="Gymnasium env id; repeat for several envs")
    p.add_argument("--seeds", default="0", help="seeds of every config: a range 0-4 or a list 0,3,7 (default 0)")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a setting's values, e.g. learning_rate=3e-4,1e-3 or net_arch=[64,64],[256,256]; repeat "
                        "for more keys (a grid takes every combination; --search optuna samples between them)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting every trial shares, as train.py's --set")
    p.add_argument("--config", help="YAML file of settings applied over configs/<env>.yaml for every trial")
    p.add_argument("--total-timesteps", type=int, help="env steps per trial (default: each env's config)")
    p.add_argument("--sweep-dir", type=Path, help="the sweep folder (default sweeps/<YYYYmmdd-HHMMSS>); "
                                                  "give an existing one to resume it")
    p.add_argument("--address", help="join this Ray cluster (host:port of `ray start --head`, 'auto', or "
                                     "ray://host:10001) instead of starting one on this machine")
    p.add_argument("--max-concurrent", type=int, help="trials at once (default: cores / --threads-per-trial here;"
                                                      " as the cluster's CPUs allow with --address)")
    p.add_argument("--threads-per-trial", type=int, default=1,
                   help="CPU cores (Ray) and TensorFlow threads of each trial (default 1)")
    p.add_argument("--max-failures", type=int, default=3, help="restarts of a trial whose worker failed (default 3)")
    p.add_argument("--search", choices=("grid", "optuna"), default="grid",
                   help="grid: every combination (default); optuna: sample --trials configs from the --grid "
                        "ranges with Optuna, stopping hopeless ones early (ASHA)")
    p.add_argument("--trials", type=int, help="configs to sample with --search optuna")
    p.add_argument("--metric", choices=("final", "best", "auc"), default="final",
                   help="what --search optuna maximises: the last evaluation return, the best, or their mean "
                        "(area under the curve; default final)")
    return p.parse_args(argv)


def make_plan(args, prog: str):
    """The sweep's Plan from the command line, with every trial's config checked (ConfigError, EnvError)."""
    from keras_sac.cli import note
    from keras_sac.config_sources import parse_overrides
    from keras_sac.envs import env_spec, make_env, resolve_env_id
    from keras_sac.sweep_plan import Plan, parse_grid, parse_seeds, validate

    envs = []
    for name in args.env:
        env_id, notes = resolve_env_id(name)
        for text in notes:
            note(prog, text)
        envs.append(env_id)
    if len(set(envs)) != len(envs):
        raise ConfigError("an --env is given twice")
    if args.total_timesteps is not None and args.total_timesteps < 1:
        raise ConfigError(f"--total-timesteps {args.total_timesteps}: expected an integer >= 1")
    for flag, value in (("--threads-per-trial", args.threads_per_trial), ("--max-concurrent", args.max_concurrent),
                        ("--trials", args.trials)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {value}: expected an integer >= 1")
    if args.max_failures < 0:
        raise ConfigError(f"--max-failures {args.max_failures}: expected an integer >= 0")
    plan = Plan(tuple(envs), parse_seeds(args.seeds), parse_grid(args.grid),
                tuple(parse_overrides(args.overrides).items()), args.config, args.total_timesteps, args.search,
                args.trials, args.metric)
    if plan.search == "optuna":
        if args.trials is None:
            raise ConfigError("--search optuna needs --trials N (how many configs to sample)")
        if len(plan.envs) != 1 or len(plan.seeds) != 1:
            raise ConfigError("--search optuna tunes one --env with one seed; then run the best config over "
                              "seeds and envs as a grid sweep")
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
        raise ConfigError(f"--address {address!r}: expected host:port, e.g. 10.0.0.5:6379 (what `ray start "
                          f"--head` prints), 'auto' or ray://host:10001") from None
    except OSError as exc:
        raise ConfigError(f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}): start one with "
                          f"`ray start --head` and pass the address it prints, or drop --address to run on this "
                          f"machine") from None


def ray_environment(address: str | None) -> None:
    """Settings Ray reads when it is imported (so: before)."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no tables; our callback prints a line a trial
    if address is None:
        # Ray runs workers at niceness 15 by default; a trial is a training run like train.py's: same priority.
        os.environ.setdefault("RAY_worker_niceness", "0")
        return
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # no C++ warning every second while it connects
    if any((os.environ.get("RAY_AUTH_TOKEN"), os.environ.get("RAY_AUTH_TOKEN_PATH"),
            (Path.home() / ".ray" / "auth_token").is_file())):
        # `ray start` (2.60) turns token authentication on; a driver sends its token only in token mode.
        os.environ.setdefault("RAY_AUTH_MODE", "token")


def start_ray(address: str | None, threads: int):
    """Join the cluster at `address`, or start an embedded one with this machine's cores; returns the
    number of CPUs Ray schedules on and the seconds it took."""
    import keras_sac
    import ray

    start = time.perf_counter()
    quiet = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    if address is None:
        # address="local": a new Ray of our own, even where `ray start` left a cluster Ray would join by default.
        # Workers import the keras_sac this driver runs (a checkout or an install), wherever Tune puts them.
        package_root = str(Path(keras_sac.__file__).resolve().parents[1])
        path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        ray.init(address="local", num_cpus=os.cpu_count() or 1, runtime_env={"env_vars": {"PYTHONPATH": path}}, **quiet)
    else:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError) as exc:
            raise ConfigError(f"cannot join the Ray cluster at {address} ({str(exc).splitlines()[0]}): check it "
                              f"runs (`ray status --address {address}`) and that its token is here (the head's "
                              f"~/.ray/auth_token, or RAY_AUTH_TOKEN), or drop --address to run on this "
                              f"machine") from None
    return int(ray.cluster_resources().get("CPU", 0)), time.perf_counter() - start


def search_space(plan) -> dict:
    """Tune distributions for --search optuna: two numbers are a range (log-uniform for learning rates,
    integers for integer settings, log-scaled when they span 4x or more); other lists are a choice."""
    from ray import tune

    from keras_sac.sweep_plan import field_type

    space = {}
    for key, values in plan.grid:
        try:
            numbers = sorted(float(v) for v in values)
        except ValueError:
            numbers = None
        if numbers is None or len(values) != 2:
            space[key] = tune.choice(list(values))
        elif field_type(key) is int:
            low, high = int(numbers[0]), int(numbers[1])
            space[key] = (tune.lograndint if low > 0 and high >= 4 * low else tune.randint)(low, high + 1)
        elif key.endswith("learning_rate") and numbers[0] > 0:
            space[key] = tune.loguniform(*numbers)
        else:
            space[key] = tune.uniform(*numbers)
    return space


def _progress(say, total: int):
    """A Tune callback printing one line per trial start, end, failure and restart."""
    from ray import tune

    def name(trial) -> str:
        info = trial.config.get("trial")
        if info:
            return info["run_dir"]
        return f"trial-{trial.trial_id} " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                   for k, v in trial.config.items())

    class Progress(tune.Callback):
        done = 0
        fit_started = time.time()
        freed = []  # when a trial slot came free (a trial ended, failed or lost its worker): time.time()
        completed = {}  # run folder -> when Tune saw the trial end

        def on_trial_start(self, iteration, trials, trial, **info):
            say(f"start    {name(trial)}")

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.freed.append(time.time())
            self.completed[trial.config.get("trial", {}).get("run_dir")] = time.time()
            self.done += 1
            r = trial.last_result or {}
            steps = r.get("env_steps")
            result = (f"final {r['final']:.1f}, best {r['best']:.1f}, auc {r['auc']:.1f} at {steps} steps"
                      if "final" in r else "no evaluation")
            say(f"end      {name(trial)}: {result}  [{self.done}/{total}]")

        def on_trial_error(self, iteration, trials, trial, **info):
            self.freed.append(time.time())
            self.done += 1
            say(f"FAILED   {name(trial)} after its restarts; its folder keeps the last checkpoint  "
                f"[{self.done}/{total}]")

        def on_trial_recover(self, iteration, trials, trial, **info):
            self.freed.append(time.time())
            say(f"restart  {name(trial)}: its worker failed; it resumes from its checkpoint")

    return Progress()


def run(plan, args, sweep_dir: Path, command: list[str], say=print) -> int | None:
    """Start Ray and Tune on the sweep's unfinished trials; returns the exit code (None: nothing to run)."""
    from keras_sac.run_files import prepare_run_dir, write_run_start
    from keras_sac.sweep_plan import MANIFEST_FILE, TUNE_DIR, trial_status, write_manifest
    from keras_sac.sweep_trial import run_trial

    pending, trials = [], plan.trials() if plan.search == "grid" else []
    if plan.search == "grid":
        pending = [t for t in trials if trial_status(sweep_dir / t.run_dir) not in ("finished", "pruned")]
        if not pending:
            say(f"{sweep_dir}: all {len(trials)} trials are finished; nothing to run")
            return None
    else:
        from keras_sac.sweep_plan import trial_folders

        ended = [f for f in trial_folders(sweep_dir) if trial_status(f) in ("finished", "pruned")]
        if len(ended) >= plan.n_trials:
            say(f"{sweep_dir}: all {plan.n_trials} trials of the search are finished or pruned; nothing to run")
            return None

    ray_environment(args.address)
    import ray
    from ray import tune

    cpus, ray_seconds = start_ray(args.address, args.threads_per_trial)
    if not (sweep_dir / MANIFEST_FILE).is_file():
        write_manifest(sweep_dir, plan, command)
    for trial in pending:
        run_dir = sweep_dir / trial.run_dir
        if not (run_dir / "run.json").is_file():  # new: its resolved config is recorded before it runs
            prepare_run_dir(run_dir, force=True)
            write_run_start(run_dir, plan.resolve(trial.env_id, dict(trial.values), trial.seed, CONFIGS_DIR),
                            command)
    if plan.search == "grid":
        say(f"{sweep_dir}: {len(trials)} trials, {len(trials) - len(pending)} finished before, "
            f"{len(pending)} to run")
    concurrent = args.max_concurrent or (max(1, cpus // args.threads_per_trial) if args.address is None else None)
    say(f"Ray: {cpus} CPUs ({'this machine' if args.address is None else args.address}), started in "
        f"{ray_seconds:.1f} s; trials at once: {concurrent or 'as many as its CPUs fit'}, "
        f"{args.threads_per_trial} TensorFlow thread(s) each")
    definition = plan.definition()
    if plan.config_file:  # workers run elsewhere (Tune's trial folders, other nodes): give them an absolute path
        definition["config_file"] = str(Path(plan.config_file).resolve())
    settings = {"sweep_dir": str(sweep_dir.resolve()), "plan": definition, "command": command,
                "configs_dir": str(CONFIGS_DIR), "threads_per_trial": args.threads_per_trial}
    trainable = tune.with_resources(tune.with_parameters(run_trial, sweep=settings), {"cpu": args.threads_per_trial})
    total = len(pending) if plan.search == "grid" else plan.n_trials
    progress = _progress(say, total)
    run_config = tune.RunConfig(
        name=f"{plan.search}-{time.strftime('%Y%m%d-%H%M%S')}" if plan.search == "grid" else "optuna",
        storage_path=str((sweep_dir / TUNE_DIR).resolve()), verbose=0, callbacks=[progress],
        failure_config=tune.FailureConfig(max_failures=args.max_failures))
    started = time.perf_counter()
    if plan.search == "grid":
        tuner = tune.Tuner(trainable, param_space={"trial": tune.grid_search([t.as_dict() for t in pending])},
                           tune_config=tune.TuneConfig(max_concurrent_trials=concurrent), run_config=run_config)
    else:
        tuner = _optuna_tuner(plan, trainable, sweep_dir, run_config, concurrent, say)
    progress.fit_started = time.time()
    try:
        results = tuner.fit()
    finally:
        ray.shutdown()
    wall = time.perf_counter() - started
    failed = sum(1 for r in results if r.error is not None)
    manifest = json.loads((sweep_dir / MANIFEST_FILE).read_text())
    sessions = manifest.get("sessions", []) + [{
        "ended": time.strftime("%Y-%m-%dT%H:%M:%S"), "trials_run": total, "failed": failed, "cpus": cpus,
        "concurrent": concurrent, "threads_per_trial": args.threads_per_trial, "ray_start_s": round(ray_seconds, 2),
        "tune_wall_s": round(wall, 1), **_trial_overhead(sweep_dir, pending, progress)}]
    write_manifest(sweep_dir, plan, manifest.get("command", command), {"sessions": sessions})
    say(f"{total} trials ran in {wall / 60:.1f} min ({failed} failed)")
    return 1 if failed else 0


def _trial_overhead(sweep_dir: Path, trials: list, progress) -> dict:
    """Ray's own time per trial, medians in seconds: `trial_launch_s`, from a trial slot coming free (or
    Tune starting) to the next trial's function running in its new worker process (scheduling, the actor's
    process start, its imports; TensorFlow's import comes after, as in train.py), and `trial_finish_s`, from
    the function's end to Tune seeing the trial end."""
    from keras_sac.sweep_plan import TRIAL_FILE

    launch, finish = [], []
    for trial in trials:
        try:
            attempts = json.loads((sweep_dir / trial.run_dir / TRIAL_FILE).read_text())["attempts"]
        except (OSError, ValueError, KeyError):
            continue
        for attempt in attempts:
            if attempt["started_unix"] >= progress.fit_started:  # this session's attempts
                launch.append(attempt["started_unix"] - max([progress.fit_started] + [
                    t for t in progress.freed if t <= attempt["started_unix"]]))
        if trial.run_dir in progress.completed and "ended_unix" in attempts[-1]:
            finish.append(progress.completed[trial.run_dir] - attempts[-1]["ended_unix"])
    median = lambda xs: round(float(sorted(xs)[len(xs) // 2]), 2) if xs else None  # noqa: E731
    return {"trial_launch_s": median(launch), "trial_finish_s": median(finish)}


def _optuna_tuner(plan, trainable, sweep_dir: Path, run_config, concurrent, say):
    """Optuna's sampler through Tune's OptunaSearch, ASHA stopping hopeless trials at rungs of env steps; a
    stopped search is restored (its searcher and trials) from sweep_dir/tune/optuna."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    path = sweep_dir.resolve() / "tune" / "optuna"
    if tune.Tuner.can_restore(str(path)):
        say(f"restoring the search in {path}")
        return tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=True)
    low = plan.resolve(plan.envs[0], {k: v[0] for k, v in plan.grid}, plan.seeds[0], CONFIGS_DIR).run
    total, every = low.total_timesteps, low.eval_freq or low.total_timesteps
    asha = ASHAScheduler(time_attr="env_steps", max_t=total + 1, grace_period=max(every, total // 9),
                         reduction_factor=3)
    searcher = OptunaSearch(seed=plan.seeds[0])
    return tune.Tuner(trainable, param_space=search_space(plan), run_config=run_config,
                      tune_config=tune.TuneConfig(metric=plan.metric, mode="max", search_alg=searcher,
                                                  scheduler=asha, num_samples=plan.n_trials,
                                                  max_concurrent_trials=concurrent))


def main(argv=None, prog: str = "sweep.py") -> int:
    args = parse_args(argv, prog)
    from keras_sac.cli import setup_warnings
    from keras_sac.envs import EnvError
    from keras_sac.sweep_plan import check_sweep_dir

    setup_warnings(prog)
    command = [prog, *(sys.argv[1:] if argv is None else argv)]
    try:
        plan = make_plan(args, prog)
        sweep_dir = args.sweep_dir or Path("sweeps") / time.strftime("%Y%m%d-%H%M%S")
        check_sweep_dir(sweep_dir, plan)
        check_address(args.address)
        if args.address is None and args.threads_per_trial > (os.cpu_count() or 1):
            raise ConfigError(f"--threads-per-trial {args.threads_per_trial} is more than this machine's "
                              f"{os.cpu_count()} cores")
        code = run(plan, args, sweep_dir, command)
    except (ConfigError, EnvError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    if code is None:  # a finished sweep: nothing runs, nothing is rewritten
        return 0
    from keras_sac.report import ReportError, write_report

    try:
        written = write_report(sweep_dir)
        print(f"report: {written[0]}")
    except ReportError as exc:
        print(f"{prog}: no report: {exc}", file=sys.stderr)
    return code


def console() -> None:
    """The `keras-sac-sweep` command (pip install)."""
    sys.exit(main(prog="keras-sac-sweep"))


if __name__ == "__main__":
    sys.exit(main())
