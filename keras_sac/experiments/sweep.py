"""Sweeps on Ray Tune: the trials of a checked Plan (sweep_plan.py) run as Tune trials, one train.py run each
(sweep_trial.py); the command line is cli/sweep.py (`python sweep.py`, `keras-sac-sweep`).

Without an address, an embedded Ray sized to this machine runs `cores / threads_per_trial` trials at once,
each a worker process with that many TensorFlow threads. Each trial is an ordinary run folder under the
sweep folder (loadable by KerasSAC.load and evaluate.py). A worker that dies is restarted by Tune and its
trial resumes from its own checkpoint; the same command run again skips finished trials and resumes the
others.

Why Ray Tune rather than Ray core tasks: the Optuna searcher, the ASHA scheduler and the retry of failed
trials are Tune's; a grid is then the same code path with no searcher. Ray is imported only once a sweep
runs (it takes seconds), so bad input is refused first.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from keras_sac.config.settings import ConfigError
from keras_sac.config.sources import CONFIGS_DIR
from keras_sac.experiments.sweep_plan import (
    MANIFEST_FILE,
    PRUNED_FILE,
    TRIAL_FILE,
    TUNE_DIR,
    field_type,
    sampled_trial_dir,
    trial_folders,
    trial_status,
    write_manifest,
)
from keras_sac.experiments.sweep_trial import run_trial
from keras_sac.io.files import write_atomic
from keras_sac.io.run_files import prepare_run_dir, write_run_start


def ray_environment(address: str | None) -> None:
    """Settings Ray reads when it is imported (so: before)."""
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0: no tables; our callback prints a line a trial
    if address is None:
        # Ray runs workers at niceness 15 by default; a trial is a training run like train.py's: same priority.
        os.environ.setdefault("RAY_worker_niceness", "0")
        return
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")  # no C++ warning every second while it connects
    if any(
        (
            os.environ.get("RAY_AUTH_TOKEN"),
            os.environ.get("RAY_AUTH_TOKEN_PATH"),
            (Path.home() / ".ray" / "auth_token").is_file(),
        )
    ):
        # `ray start` (2.60) turns token authentication on; a driver sends its token only in token mode.
        os.environ.setdefault("RAY_AUTH_MODE", "token")


def start_ray(address: str | None, threads: int):
    """Join the cluster at `address`, or start an embedded one with this machine's cores; returns the
    number of CPUs Ray schedules on and the seconds it took."""
    import ray

    start = time.perf_counter()
    quiet: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    if address is None:
        # address="local": a new Ray of our own, even where `ray start` left a cluster Ray would join by default.
        # Workers import the keras_sac this driver runs (a checkout or an install), wherever Tune puts them.
        package_root = str(Path(__file__).resolve().parents[2])  # the folder holding keras_sac/
        path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        ray.init(address="local", num_cpus=os.cpu_count() or 1, runtime_env={"env_vars": {"PYTHONPATH": path}}, **quiet)
    else:
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError) as exc:
            raise ConfigError(
                f"cannot join the Ray cluster at {address} ({str(exc).splitlines()[0]}): check it "
                f"runs (`ray status --address {address}`) and that its token is here (the head's "
                f"~/.ray/auth_token, or RAY_AUTH_TOKEN), or drop --address to run on this "
                f"machine"
            ) from None
    return int(ray.cluster_resources().get("CPU", 0)), time.perf_counter() - start


def search_space(plan) -> dict:
    """Tune distributions for --search optuna: two numbers are a range (log-uniform for learning rates,
    integers for integer settings, log-scaled when they span 4x or more); other lists are a choice."""
    from ray import tune

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


def _progress(say, total: int, sweep_dir: Path, plan):
    """A Tune callback printing one line per trial start, end, failure and restart. It marks a trial that Tune
    completed before its run did (its scheduler pruned it) with pruned.json, which a re-run skips; a trial cut
    short by a stopped sweep (Ctrl-C: Tune stops every trial without completing it) stays resumable."""
    from ray import tune

    def name(trial) -> str:
        info = trial.config.get("trial")
        if info:
            return info["run_dir"]
        return f"trial-{trial.trial_id} " + " ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.config.items()
        )

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
            info = trial.config.get("trial")
            run_dir = sweep_dir / (info["run_dir"] if info else sampled_trial_dir(plan, trial.trial_id))
            if trial_status(run_dir) == "started":  # its run did not reach its total: pruned
                write_atomic(
                    run_dir / PRUNED_FILE, json.dumps({"step": steps, "at": time.strftime("%Y-%m-%dT%H:%M:%S")})
                )
            result = (
                f"final {r['final']:.1f}, best {r['best']:.1f}, auc {r['auc']:.1f} at {steps} steps"
                if "final" in r
                else "no evaluation"
            )
            say(f"end      {name(trial)}: {result}  [{self.done}/{total}]")

        def on_trial_error(self, iteration, trials, trial, **info):
            self.freed.append(time.time())
            self.done += 1
            say(
                f"FAILED   {name(trial)} after its restarts; its folder keeps the last checkpoint  "
                f"[{self.done}/{total}]"
            )

        def on_trial_recover(self, iteration, trials, trial, **info):
            self.freed.append(time.time())
            say(f"restart  {name(trial)}: its worker failed; it resumes from its checkpoint")

    return Progress()


def run(plan, args, sweep_dir: Path, command: list[str], say=print) -> int | None:
    """Start Ray and Tune on the sweep's unfinished trials; returns the exit code (None: nothing to run)."""
    pending, trials = [], plan.trials() if plan.search == "grid" else []
    if plan.search == "grid":
        pending = [t for t in trials if trial_status(sweep_dir / t.run_dir) not in ("finished", "pruned")]
        if not pending:
            say(f"{sweep_dir}: all {len(trials)} trials are finished; nothing to run")
            return None
    else:
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
            write_run_start(run_dir, plan.resolve(trial.env_id, dict(trial.values), trial.seed, CONFIGS_DIR), command)
    if plan.search == "grid":
        say(f"{sweep_dir}: {len(trials)} trials, {len(trials) - len(pending)} finished before, {len(pending)} to run")
    concurrent = args.max_concurrent or (max(1, cpus // args.threads_per_trial) if args.address is None else None)
    say(
        f"Ray: {cpus} CPUs ({'this machine' if args.address is None else args.address}), started in "
        f"{ray_seconds:.1f} s; trials at once: {concurrent or 'as many as its CPUs fit'}, "
        f"{args.threads_per_trial} TensorFlow thread(s) each"
    )
    definition = plan.definition()
    if plan.config_file:  # workers run elsewhere (Tune's trial folders, other nodes): give them an absolute path
        definition["config_file"] = str(Path(plan.config_file).resolve())
    settings = {
        "sweep_dir": str(sweep_dir.resolve()),
        "plan": definition,
        "command": command,
        "configs_dir": str(CONFIGS_DIR),
        "threads_per_trial": args.threads_per_trial,
    }
    trainable = tune.with_resources(tune.with_parameters(run_trial, sweep=settings), {"cpu": args.threads_per_trial})
    total = len(pending) if plan.search == "grid" else plan.n_trials
    progress = _progress(say, total, sweep_dir, plan)
    run_config = tune.RunConfig(
        name=f"{plan.search}-{time.strftime('%Y%m%d-%H%M%S')}" if plan.search == "grid" else "optuna",
        storage_path=str((sweep_dir / TUNE_DIR).resolve()),
        verbose=0,
        callbacks=[progress],
        failure_config=tune.FailureConfig(max_failures=args.max_failures),
    )
    started = time.perf_counter()
    if plan.search == "grid":
        tuner = tune.Tuner(
            trainable,
            param_space={"trial": tune.grid_search([t.as_dict() for t in pending])},
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrent),
            run_config=run_config,
        )
    else:
        tuner = _optuna_tuner(plan, trainable, sweep_dir, run_config, concurrent, say)
    progress.fit_started = time.time()
    try:
        results = tuner.fit()
    finally:
        ray.shutdown()
    wall = time.perf_counter() - started
    failed = sum(results[i].error is not None for i in range(len(results)))
    manifest = json.loads((sweep_dir / MANIFEST_FILE).read_text())
    sessions = manifest.get("sessions", []) + [
        {
            "ended": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "trials_run": total,
            "failed": failed,
            "cpus": cpus,
            "concurrent": concurrent,
            "threads_per_trial": args.threads_per_trial,
            "ray_start_s": round(ray_seconds, 2),
            "tune_wall_s": round(wall, 1),
            **_trial_overhead(sweep_dir, pending, progress),
        }
    ]
    write_manifest(sweep_dir, plan, manifest.get("command", command), {"sessions": sessions})
    if plan.search == "grid":
        n_ended = sum(trial_status(sweep_dir / t.run_dir) in ("finished", "pruned") for t in pending)
    else:
        n_ended = min(total, sum(trial_status(f) in ("finished", "pruned") for f in trial_folders(sweep_dir)))
    line, code = ended_line(total, n_ended, failed, wall)
    say(line)
    return code


def ended_line(total: int, ended: int, failed: int, wall_s: float) -> tuple[str, int]:
    """What a sweep's session says at its end, and its exit code: 0 all trials ended, 1 some failed, 130 some
    were stopped unfinished (Ctrl-C or SIGTERM: Tune stops the trials and returns) -- they resume."""
    left = total - ended - failed
    if left <= 0:
        return f"{total} trials ran in {wall_s / 60:.1f} min ({failed} failed)", 1 if failed else 0
    return (
        f"stopped after {wall_s / 60:.1f} min: {left} of {total} trials unfinished ({ended} ended, {failed} "
        f"failed); the same command resumes them from their last checkpoints",
        1 if failed else 130,
    )


def _trial_overhead(sweep_dir: Path, trials: list, progress) -> dict:
    """Ray's own time per trial, medians in seconds: `trial_launch_s`, from a trial slot coming free (or
    Tune starting) to the next trial's function running in its new worker process (scheduling, the actor's
    process start, its imports; TensorFlow's import comes after, as in train.py), and `trial_finish_s`, from
    the function's end to Tune seeing the trial end."""
    launch, finish = [], []
    for trial in trials:
        try:
            attempts = json.loads((sweep_dir / trial.run_dir / TRIAL_FILE).read_text())["attempts"]
        except (OSError, ValueError, KeyError):
            continue
        for attempt in attempts:
            if attempt["started_unix"] >= progress.fit_started:  # this session's attempts
                launch.append(
                    attempt["started_unix"]
                    - max([progress.fit_started] + [t for t in progress.freed if t <= attempt["started_unix"]])
                )
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
    asha = ASHAScheduler(
        time_attr="env_steps", max_t=total + 1, grace_period=max(every, total // 9), reduction_factor=3
    )
    searcher = OptunaSearch(seed=plan.seeds[0])
    return tune.Tuner(
        trainable,
        param_space=search_space(plan),
        run_config=run_config,
        tune_config=tune.TuneConfig(
            metric=plan.metric,
            mode="max",
            search_alg=searcher,
            scheduler=asha,
            num_samples=plan.n_trials,
            max_concurrent_trials=concurrent,
        ),
    )
