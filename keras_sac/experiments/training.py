"""A training run as `train.py` performs it, from a fresh start or resumed from its newest checkpoint.

The run folder receives the resolved config, metrics (CSV and TensorBoard, with the HParams), rolling checkpoints,
the exported policy (SavedModel; TFLite/ONNX if asked) and the best evaluation's (best_policy/), plots
(plot.py), videos if asked, and a summary. The monitor is a list of callbacks (callbacks.py): evaluate, log,
checkpoint, video, stop on signals. SIGINT and SIGTERM stop training at the next env step with a checkpoint; a
SIGKILL loses at most the steps since the last checkpoint (`checkpoint_freq`)."""

from __future__ import annotations

import dataclasses
import json
import signal
import threading
import time
from pathlib import Path

import tensorflow as tf

from keras_sac.agent import KerasSAC, TrainingDivergedError
from keras_sac.callbacks import Callback, CheckpointCallback, EvalCallback, MetricsLogger
from keras_sac.config.settings import RunConfig, to_dict
from keras_sac.config.sources import ResolvedConfig
from keras_sac.envs.make import EnvError, make_env
from keras_sac.experiments.plot import PlotError, plot_runs
from keras_sac.experiments.video import VideoCallback
from keras_sac.io.checkpoint import CheckpointError, RollingCheckpoints
from keras_sac.io.export_formats import ExportError
from keras_sac.io.files import write_atomic
from keras_sac.io.logger import RunLogger, columns
from keras_sac.io.run_files import (
    BEST_POLICY_DIR,
    BEST_POLICY_FILE,
    CHECKPOINTS_DIR,
    POLICY_DIR,
    SUMMARY_FILE,
    VIDEOS_DIR,
    record_resume,
)


class RunFailed(RuntimeError):
    """Training stopped on an error; the message says what happened and which checkpoint is intact."""


class _StopOnSignals:
    """SIGINT/SIGTERM ask training to stop after the current step; a second one acts as usual (kills)."""

    def __init__(self):
        self.received: str | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name
        signal.signal(signum, self._previous[signum])

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class _SignalStop(Callback):
    """Stops training at the step after SIGINT/SIGTERM arrived (the checkpoint callback before it saves)."""

    def __init__(self, stop: _StopOnSignals):
        self.stop = stop

    def on_step(self, agent) -> bool:
        return not self.stop.received


class _ReportEvaluations(Callback):
    """Hands every evaluation (and those before it) to `report(step, evaluations)`; a string it returns is
    why training stops there (say, pruned by a sweep's scheduler)."""

    def __init__(self, evaluation: EvalCallback, report):
        self.evaluation, self.report, self.stopped_by = evaluation, report, None

    def on_step(self, agent) -> bool:
        if self.evaluation.evaluated_at == agent.num_timesteps:
            self.stopped_by = self.report(agent.num_timesteps, list(self.evaluation.evaluations))
        return self.stopped_by is None


class _RunCheckpoints(CheckpointCallback):
    """Every `checkpoint_freq` steps and once a signal arrived; a failed write stops the run (RunFailed)."""

    def __init__(self, checkpoint_freq: int, root: Path, stop: _StopOnSignals):
        super().__init__(checkpoint_freq, root, keep=2)
        self.stop = stop

    def on_step(self, agent) -> bool:
        if self.due(agent, self.save_freq) or self.stop.received:
            self.save(agent)  # after this step's log row, so a resume never repeats or skips a row
        return True

    def save(self, agent):
        try:
            return super().save(agent)
        except OSError as exc:  # full or read-only disk: stop while the previous checkpoint is still good
            raise RunFailed(
                f"could not write the checkpoint of step {agent.num_timesteps} ({exc}); {_last_good(self.checkpoints)}"
            ) from None


class _KeepBest(Callback):
    """EvalCallback's `callback_on_new_best`: export the policy to best_policy/, then record the evaluation behind
    it in best_policy.json (after the policy, so the record never names a policy that is not on disk). A failed
    export (a full disk) is one warning line and training goes on: the best policy is a copy, progress is not."""

    def __init__(self, run_dir: Path, say):
        self.run_dir, self.say = run_dir, say

    def on_step(self, agent) -> bool:
        step, mean, std = self.parent.evaluations[-1]  # type: ignore[attr-defined]  # the EvalCallback, set by it
        try:
            agent.export(self.run_dir / BEST_POLICY_DIR)
            record = {"step": step, "mean_return": mean, "std_return": std}
            write_atomic(self.run_dir / BEST_POLICY_FILE, json.dumps(record, indent=2))
        except OSError as exc:
            self.say(f"warning: the best policy so far (step {step}) was not kept: {exc}; training goes on")
        return True


def best_policy_record(run_dir: Path) -> dict | None:
    """best_policy.json's record (step, mean_return, std_return) if the run has kept a best policy."""
    try:
        record = json.loads((run_dir / BEST_POLICY_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if (run_dir / BEST_POLICY_DIR).is_dir() else None


def best_so_far(run_dir: Path, evaluations: list[tuple[int, float, float]]) -> float:
    """The return a resumed run's next best policy must beat: the kept best policy's (which may come from steps
    a resume has rewound: it is still the best policy the run made), else the best logged evaluation's (a run
    from before best policies were kept), else -inf."""
    kept = best_policy_record(run_dir)
    if kept is not None:
        return float(kept["mean_return"])
    return max((mean for _, mean, _ in evaluations), default=float("-inf"))


def extra_callbacks(run: RunConfig, run_dir: Path, config: ResolvedConfig, agent_seed: int, say) -> list[Callback]:
    """The optional parts of the run monitor: a video every `video_freq` steps."""
    if not run.video_freq:
        return []

    return [
        VideoCallback(
            run.video_freq,
            run_dir / VIDEOS_DIR,
            config.env_id,
            config.env_kwargs,
            config.sac.get("pixels"),
            seed=agent_seed + 1,
            say=say,
        )
    ]


def _last_good(checkpoints: RollingCheckpoints) -> str:
    try:
        return f"the last good checkpoint is '{checkpoints.latest()}'"
    except CheckpointError:
        return "no checkpoint was written before"


def train(
    config: ResolvedConfig,
    run_dir: Path,
    resume: bool = False,
    progress_bar: bool = True,
    say=print,
    resume_command: str = "python train.py --resume",
    export_formats: tuple[str, ...] = (),
    on_evaluation=None,
    command: list[str] | None = None,
) -> dict:
    """Train per `config` in `run_dir` (new, or `resume`d from its newest good checkpoint).

    `run_dir` must already hold config.yaml and run.json (`run_files.write_run_start`).

    `on_evaluation(step, [(step, mean, std), ...])` is called after each evaluation and its checkpoint (a
    sweep reports to Ray Tune with it); a string it returns stops the run there, recorded as `stopped_by`.
    `command`: what started or resumed it, for run.json (default: this process's command line).

    Returns the summary also written to summary.json. Raises RunFailed on divergence, a non-finite
    env output or an unwritable checkpoint, naming the checkpoint that is intact.
    """
    run = config.run
    if run.deterministic:
        tf.config.experimental.enable_op_determinism()
    checkpoints = RollingCheckpoints(run_dir / CHECKPOINTS_DIR)
    new_env = lambda: make_env(config.env_id, pixels=config.sac.get("pixels"), **config.env_kwargs)  # noqa: E731
    if resume and checkpoints.folders():
        agent = KerasSAC.load(checkpoints.latest(), env=new_env())
        say(f"resuming {run_dir} from step {agent.num_timesteps}")
    else:
        if resume:
            say(f"{run_dir} has no checkpoint yet: starting it from step 0 with its recorded config")
        agent = KerasSAC(new_env(), **config.sac)
    if resume:
        record_resume(run_dir, agent.num_timesteps, run.total_timesteps, command)
    logger = RunLogger(
        run_dir,
        resume_at=agent.num_timesteps if resume else None,
        columns=columns(agent.config),
        hparams={"env_id": config.env_id, **dataclasses.asdict(agent.config), **to_dict(run)},
    )
    start = time.perf_counter()
    try:  # the metrics files are flushed and closed on every way out, failures included
        with _StopOnSignals() as stop:
            # The run monitor: evaluate, log, checkpoint, record videos, stop on signals -- in this order.
            seed = agent.config.seed
            assert seed is not None  # KerasSAC draws and records one when none is given
            evaluation = EvalCallback(
                new_env(),
                run.eval_freq,
                run.n_eval_episodes,
                seed=seed + 1,
                callback_on_new_best=_KeepBest(run_dir, say) if run.keep_best_policy else None,
                final_step=run.total_timesteps,
                say=say,
            )
            evaluation.evaluations = [
                (int(r["step"]), r["eval/mean_return"], r["eval/std_return"])
                for r in logger.rows
                if "eval/mean_return" in r
            ]  # earlier sessions'
            evaluation.best_mean_reward = best_so_far(run_dir, evaluation.evaluations)
            saver = _RunCheckpoints(run.checkpoint_freq, checkpoints.root, stop)
            saver.saved_at = agent.num_timesteps if resume else None
            reporter = [_ReportEvaluations(evaluation, on_evaluation)] if on_evaluation else []  # a sweep's
            monitor = [
                evaluation,
                MetricsLogger(logger=logger, log_interval=run.log_interval, evaluation=evaluation),
                saver,
                *reporter,
                *extra_callbacks(run, run_dir, config, seed, say),
                _SignalStop(stop),
            ]
            remaining = run.total_timesteps - agent.num_timesteps
            try:
                if remaining > 0:
                    agent.learn(remaining, callback=monitor, reset_num_timesteps=False, progress_bar=progress_bar)
            except (TrainingDivergedError, EnvError) as exc:
                raise RunFailed(f"{exc}; {_last_good(checkpoints)}") from None
            stopped_by = stop.received or next((r.stopped_by for r in reporter), None)
            if stop.received:
                say(
                    f"{stop.received} at step {agent.num_timesteps}: checkpoint written; continue with "
                    f"{resume_command} {run_dir}"
                )
            saver.save(agent)  # progress first: nothing below can lose it
        train_seconds = time.perf_counter() - start
        agent.close()
        agent.export(run_dir / POLICY_DIR)
        export_error = None
        for fmt in export_formats:  # "tflite", "onnx": run_dir/policy.<fmt> (+ .json)
            try:
                agent.export(run_dir / f"{POLICY_DIR}.{fmt}", format=fmt)
            except ExportError as exc:  # reported once the run's summary and plots are written
                export_error = ExportError(
                    f"{exc}; the run is complete: its checkpoint, policy/ (SavedModel), "
                    f"plots and summary.json are written"
                )
    finally:
        logger.close()
    try:
        plot_runs([run_dir])  # learning_curve.png, diagnostics.png
    except PlotError as exc:  # a run stopped before its first metrics row
        say(f"no plots: {exc}")
    evaluations = [{"step": s, "mean_return": m, "std_return": sd} for s, m, sd in evaluation.evaluations]
    best = max(evaluations, key=lambda e: e["mean_return"], default=None)  # the first of equals
    summary = {
        "env_id": config.env_id,
        "num_timesteps": agent.num_timesteps,
        "total_timesteps": run.total_timesteps,
        "stopped_by": stopped_by,
        "train_seconds_this_session": round(train_seconds, 1),
        "final_eval_mean_return": evaluations[-1]["mean_return"] if evaluations else None,
        "final_eval_step": evaluations[-1]["step"] if evaluations else None,
        "best_eval_mean_return": best["mean_return"] if best else None,
        "best_eval_step": best["step"] if best else None,
        "best_policy": best_policy_record(run_dir),  # {step, mean_return, std_return} of best_policy/, if kept
        "evaluations": evaluations,
    }
    write_atomic(run_dir / SUMMARY_FILE, json.dumps(summary, indent=2))
    if export_error is not None:
        raise export_error
    return summary
