"""One sweep trial, as Ray Tune runs it in a worker process: an ordinary train.py run in its own run folder.

A fresh trial starts its run; a trial whose worker died (or whose sweep was stopped) resumes from its own
newest checkpoint; every evaluation is reported to Tune (`env_steps`, `eval_return` and the three sweep
metrics `final`, `best`, `auc`). TensorFlow is imported here, in the worker, after its thread counts are set.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import numpy as np

from keras_sac.experiments.sweep_plan import TRIAL_FILE, Plan, Trial, sampled_trial_dir, trial_status
from keras_sac.io.files import write_atomic
from keras_sac.io.run_files import prepare_run_dir, read_run_config, write_run_start
from keras_sac.io.startup import quiet_tensorflow_startup


def scores(means) -> dict[str, float]:
    """The sweep metrics of a run's evaluation mean returns, oldest first: `final` (the last), `best` (the
    highest) and `auc` (their mean: the area under the evaluation curve per evaluation, which rewards learning
    early)."""
    means = np.asarray(means, dtype=np.float64)
    return {"final": float(means[-1]), "best": float(means.max()), "auc": float(means.mean())}


def run_trial(params: dict, sweep: dict) -> None:
    """Ray Tune function trainable. `params`: {"trial": Trial.as_dict()} for a grid, or the values a searcher
    sampled. `sweep`: the sweep folder, its plan, the command, the configs folder and threads per trial."""
    threads = str(sweep["threads_per_trial"])
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ[name] = threads  # read when TensorFlow starts, below: one trial uses `threads` cores
    from ray import tune

    root, plan = Path(sweep["sweep_dir"]), Plan.from_definition(sweep["plan"])
    if "trial" in params:  # a grid trial: its folder was made by the driver
        info = params["trial"]
        run_dir = root / info["run_dir"]
    else:  # a sampled config: made here, named by Tune's trial id (the same after a restore)
        values = {k: f"{v:.4g}" if isinstance(v, float) else str(v) for k, v in params.items()}
        env_id, seed = plan.envs[0], plan.seeds[0]
        run_dir = root / sampled_trial_dir(plan, tune.get_context().get_trial_id())
        info = {**Trial(env_id, tuple(values.items()), seed).as_dict(), "run_dir": str(run_dir.relative_to(root))}
        if not (run_dir / TRIAL_FILE).is_file():
            config = plan.resolve(env_id, values, seed, Path(sweep["configs_dir"]))
            prepare_run_dir(run_dir, force=True)
            write_run_start(run_dir, config, command=sweep["command"])
    status = trial_status(run_dir)  # "new" or "started" (resumes from its checkpoint)
    record_attempt(run_dir, info, status)

    with quiet_tensorflow_startup():  # TensorFlow loads in the worker only (the driver imports this module too)
        from keras_sac.experiments.training import train

    config = read_run_config(run_dir)
    total = config.run.total_timesteps

    def send(step: int, evaluations: list) -> None:
        means = [m for _, m, _ in evaluations]
        tune.report({"env_steps": step, "eval_return": means[-1], **scores(means)})

    def report(step: int, evaluations: list) -> str | None:
        if step >= total:  # the last one is reported once the run folder is complete, below
            return None
        try:
            send(step, evaluations)
        except SystemExit:  # Tune stopped this trial: its scheduler pruned it (ASHA), or the sweep was stopped
            return "tune"  # (Ctrl-C); which of the two, only the driver knows: it marks the pruned (sweep.py)
        return None

    summary = train(
        config,
        run_dir,
        resume=status == "started",
        progress_bar=False,
        say=lambda *a: None,
        resume_command="python train.py --resume",
        on_evaluation=report,
        command=sweep["command"],
    )
    record_attempt(run_dir, info, ended=summary["stopped_by"] or "finished")
    if summary["stopped_by"] is None and summary["evaluations"]:
        try:
            send(
                summary["num_timesteps"],
                [(e["step"], e["mean_return"], e["std_return"]) for e in summary["evaluations"]],
            )
        except SystemExit:  # a scheduler's decision on a finished run changes nothing
            pass


def record_attempt(run_dir: Path, info: dict, status: str | None = None, ended: str | None = None) -> None:
    """sweep_trial.json: the trial's values and seed, and per attempt its worker (host, pid), times and the
    folder's status when it began (`status`; an attempt's end is recorded with `ended`)."""
    path = run_dir / TRIAL_FILE
    record = json.loads(path.read_text()) if path.is_file() else {**info, "attempts": []}
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    if ended is None:
        record["attempts"].append(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started": now,
                "started_unix": time.time(),
                "from": status,
            }
        )
    else:
        record["attempts"][-1].update(ended=ended, ended_at=now, ended_unix=time.time())
    write_atomic(path, json.dumps(record, indent=2))
