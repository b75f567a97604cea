"""A training run as `train.py` performs it, from a fresh start or resumed from its newest checkpoint.

The run folder receives the resolved config, metrics (CSV and TensorBoard), rolling checkpoints, the
exported policy, a learning-curve plot and a summary. SIGINT and SIGTERM stop training at the next env
step with a checkpoint; a SIGKILL loses at most the steps since the last checkpoint (`checkpoint_freq`).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import tensorflow as tf

from keras_sac.agent import KerasSAC, TrainingDivergedError
from keras_sac.checkpoint import CheckpointError, RollingCheckpoints
from keras_sac.config import RunConfig
from keras_sac.config_sources import ResolvedConfig
from keras_sac.envs import EnvError, make_env
from keras_sac.evaluation import evaluate_policy
from keras_sac.files import write_atomic
from keras_sac.logger import RunLogger, plot_learning_curve
from keras_sac.run_files import CHECKPOINTS_DIR, METRICS_FILE, PLOT_FILE, POLICY_DIR, SUMMARY_FILE, record_resume

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


class _Monitor:
    """The training callback: log every `log_interval` steps, evaluate every `eval_freq`, checkpoint every
    `checkpoint_freq`, and stop (with a checkpoint) once a signal arrived."""

    def __init__(self, run: RunConfig, logger: RunLogger, checkpoints: RollingCheckpoints, eval_env,
                 eval_seed: int, stop: _StopOnSignals, say):
        self.run, self.logger, self.checkpoints = run, logger, checkpoints
        self.eval_env, self.eval_seed, self.stop, self.say = eval_env, eval_seed, stop, say
        self.evaluations = [(int(r["step"]), r["eval/mean_return"], r["eval/std_return"])  # (step, mean, std)
                            for r in logger.rows if "eval/mean_return" in r]
        earlier = logger.rows[-1].get("time/elapsed_s", 0.0) if logger.rows else 0.0
        self._start = time.perf_counter() - earlier
        self._clock, self._clock_step = time.perf_counter(), None
        self._last_step: int | None = None  # the step count at the previous call
        self.checkpointed_step: int | None = None

    def evaluate(self, agent: KerasSAC) -> dict[str, float]:
        returns, lengths, successes = evaluate_policy(lambda obs: agent.predict(obs, deterministic=True)[0],
                                                      self.eval_env, self.run.n_eval_episodes, seed=self.eval_seed)
        self.evaluations.append((agent.num_timesteps, float(returns.mean()), float(returns.std())))
        success = "" if successes is None else f", success rate {successes.mean():.2f}"
        self.say(f"eval @ {agent.num_timesteps} steps: return {returns.mean():.1f} +- {returns.std():.1f}{success} "
                 f"over {len(returns)} episodes")
        agent.progress_info["eval"] = f"{returns.mean():.1f} @ {agent.num_timesteps}"
        metrics = {"eval/mean_return": float(returns.mean()), "eval/std_return": float(returns.std()),
                   "eval/mean_ep_length": float(lengths.mean())}
        if successes is not None:
            metrics["eval/success_rate"] = float(successes.mean())
        return metrics

    def checkpoint(self, agent: KerasSAC) -> None:
        if self.checkpointed_step == agent.num_timesteps:
            return
        try:
            self.checkpoints.write(agent)
        except OSError as exc:  # full or read-only disk: stop while the previous checkpoint is still good
            raise RunFailed(f"could not write the checkpoint of step {agent.num_timesteps} ({exc}); "
                            f"{_last_good(self.checkpoints)}") from None
        self.checkpointed_step = agent.num_timesteps

    def __call__(self, agent: KerasSAC) -> bool:
        step, run = agent.num_timesteps, self.run
        if self._last_step is None:
            self._last_step = step - agent.config.n_envs
            self._clock_step = self._last_step

        def due(every: int) -> bool:  # a multiple of `every` reached since the last call (n_envs steps per call)
            return bool(every) and step // every > self._last_step // every

        row = {}
        if due(run.log_interval):
            now = time.perf_counter()
            row = {**agent.metrics(), "time/elapsed_s": now - self._start,
                   "time/steps_per_second": (step - self._clock_step) / (now - self._clock)}
        if due(run.eval_freq) or step >= run.total_timesteps:
            row.update(self.evaluate(agent))  # the last step always: its row holds the final evaluation
        if row:
            self.logger.log(step, row)
            self._clock, self._clock_step = time.perf_counter(), step  # evaluation time is not training speed
        if due(run.checkpoint_freq) or self.stop.received:
            self.checkpoint(agent)  # after this step's log row, so a resume never repeats or skips a row
        self._last_step = step
        return not self.stop.received


def _last_good(checkpoints: RollingCheckpoints) -> str:
    try:
        return f"the last good checkpoint is '{checkpoints.latest()}'"
    except CheckpointError:
        return "no checkpoint was written before"


def train(config: ResolvedConfig, run_dir: Path, resume: bool = False, progress_bar: bool = True,
          say=print, resume_command: str = "python train.py --resume") -> dict:
    """Train per `config` in `run_dir` (new, or `resume`d from its newest good checkpoint).

    `run_dir` must already hold config.yaml and run.json (`run_files.write_run_start`).

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
        record_resume(run_dir, agent.num_timesteps, run.total_timesteps)
    logger = RunLogger(run_dir, resume_at=agent.num_timesteps if resume else None)
    start = time.perf_counter()
    try:  # the metrics files are flushed and closed on every way out, failures included
        with _StopOnSignals() as stop:
            monitor = _Monitor(run, logger, checkpoints, new_env(), agent.config.seed + 1, stop, say)
            monitor.checkpointed_step = agent.num_timesteps if resume else None
            remaining = run.total_timesteps - agent.num_timesteps
            try:
                if remaining > 0:
                    agent.learn(remaining, callback=monitor, reset_num_timesteps=False, progress_bar=progress_bar)
            except (TrainingDivergedError, EnvError) as exc:
                raise RunFailed(f"{exc}; {_last_good(checkpoints)}") from None
            if stop.received:
                say(f"{stop.received} at step {agent.num_timesteps}: checkpoint written; continue with "
                    f"{resume_command} {run_dir}")
            monitor.checkpoint(agent)  # progress first: nothing below can lose it
        train_seconds = time.perf_counter() - start
        agent.close()
        agent.export(run_dir / POLICY_DIR)
    finally:
        logger.close()
    plot_learning_curve(run_dir / METRICS_FILE, run_dir / PLOT_FILE, f"SAC on {agent.spec.env_id or config.env_id}")
    evaluations = [{"step": s, "mean_return": m, "std_return": sd} for s, m, sd in monitor.evaluations]
    best = max(evaluations, key=lambda e: e["mean_return"], default=None)  # the first of equals
    summary = {
        "env_id": config.env_id, "num_timesteps": agent.num_timesteps, "total_timesteps": run.total_timesteps,
        "stopped_by": stop.received,
        "train_seconds_this_session": round(train_seconds, 1),
        "final_eval_mean_return": evaluations[-1]["mean_return"] if evaluations else None,
        "final_eval_step": evaluations[-1]["step"] if evaluations else None,
        "best_eval_mean_return": best["mean_return"] if best else None,
        "best_eval_step": best["step"] if best else None,
        "evaluations": evaluations,
    }
    write_atomic(run_dir / SUMMARY_FILE, json.dumps(summary, indent=2))
    return summary
