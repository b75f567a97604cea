"""A training run as `train.py` performs it: resolve the config, train with periodic evaluation, and leave
a run folder with the resolved config, metrics, TensorBoard events, checkpoint, exported policy and plot."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import yaml

from keras_sac import __version__
from keras_sac.agent import KerasSAC
from keras_sac.config import ResolvedConfig, RunConfig, to_dict
from keras_sac.envs import make_env
from keras_sac.evaluation import evaluate_policy
from keras_sac.logger import RunLogger, plot_learning_curve

# Files of a run folder.
CONFIG_FILE, RUN_FILE, SUMMARY_FILE = "config.yaml", "run.json", "summary.json"
CHECKPOINT_DIR, POLICY_DIR, PLOT_FILE = "checkpoint", "policy", "learning_curve.png"


class _Monitor:
    """The training callback: log every `log_interval` steps, evaluate every `eval_freq`, checkpoint."""

    def __init__(self, run: RunConfig, run_dir: Path, logger: RunLogger, eval_env, eval_seed: int, say):
        self.run, self.run_dir, self.logger = run, run_dir, logger
        self.eval_env, self.eval_seed, self.say = eval_env, eval_seed, say
        self.evaluations: list[tuple[int, float, float]] = []  # (step, mean, std)
        self._clock, self._clock_step = time.perf_counter(), None
        self._start = time.perf_counter()

    def evaluate(self, agent: KerasSAC) -> dict[str, float]:
        returns = evaluate_policy(lambda obs: agent.predict(obs, deterministic=True)[0], self.eval_env,
                                  self.run.n_eval_episodes, seed=self.eval_seed)
        self.evaluations.append((agent.num_timesteps, float(returns.mean()), float(returns.std())))
        self.say(f"eval @ {agent.num_timesteps} steps: return {returns.mean():.1f} +- {returns.std():.1f} "
                 f"over {len(returns)} episodes")
        return {"eval/mean_return": float(returns.mean()), "eval/std_return": float(returns.std())}

    def __call__(self, agent: KerasSAC) -> None:
        step, run = agent.num_timesteps, self.run
        if self._clock_step is None:
            self._clock_step = step - 1
        row = {}
        if step % run.log_interval == 0:
            now = time.perf_counter()
            row = {**agent.metrics(), "time/elapsed_s": now - self._start,
                   "time/steps_per_second": (step - self._clock_step) / (now - self._clock)}
        if run.eval_freq and step % run.eval_freq == 0:
            row.update(self.evaluate(agent))
        if row:
            self.logger.log(step, row)
            self._clock, self._clock_step = time.perf_counter(), step  # evaluation time is not training speed
        if run.checkpoint_freq and step % run.checkpoint_freq == 0:
            agent.save(self.run_dir / CHECKPOINT_DIR)


def train(config: ResolvedConfig, run_dir: Path, progress_bar: bool = True, say=print) -> dict:
    """Train per `config` into the prepared `run_dir`; returns the summary also written to summary.json.

    Ctrl-C stops training early but still writes the checkpoint, the policy and the summary.
    """
    run = config.run
    agent = KerasSAC(make_env(config.env_id), **config.sac)
    resolved = {**to_dict(agent.config), **to_dict(run)}  # with the seed actually used
    (run_dir / CONFIG_FILE).write_text(
        f"# Resolved config of this run ({config.env_id}); sources: {', '.join(config.sources)}\n"
        + yaml.safe_dump(resolved, sort_keys=False))
    (run_dir / RUN_FILE).write_text(json.dumps({
        "env_id": config.env_id, "keras_sac_version": __version__, "python": platform.python_version(),
        "command": sys.argv, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))
    logger = RunLogger(run_dir)
    monitor = _Monitor(run, run_dir, logger, make_env(config.env_id), eval_seed=agent.config.seed + 1, say=say)
    interrupted = False
    start = time.perf_counter()
    try:
        agent.learn(run.total_timesteps, callback=monitor, progress_bar=progress_bar)
    except KeyboardInterrupt:
        interrupted = True
        say(f"interrupted at step {agent.num_timesteps}: saving checkpoint and policy")
    train_seconds = time.perf_counter() - start
    # Progress is written first, so nothing below (evaluation, plot) can lose it.
    agent.save(run_dir / CHECKPOINT_DIR)
    agent.export(run_dir / POLICY_DIR)
    if not interrupted and (not monitor.evaluations or monitor.evaluations[-1][0] != agent.num_timesteps):
        logger.log(agent.num_timesteps, {**agent.metrics(), **monitor.evaluate(agent)})
    logger.close()
    plot_learning_curve(run_dir / "metrics.csv", run_dir / PLOT_FILE, f"SAC on {config.env_id}")
    evaluations = [{"step": s, "mean_return": m, "std_return": sd} for s, m, sd in monitor.evaluations]
    best = max(evaluations, key=lambda e: e["mean_return"], default=None)  # the first of equals
    summary = {
        "env_id": config.env_id, "num_timesteps": agent.num_timesteps, "interrupted": interrupted,
        "train_seconds": round(train_seconds, 1),
        "final_eval_mean_return": evaluations[-1]["mean_return"] if evaluations else None,
        "final_eval_step": evaluations[-1]["step"] if evaluations else None,
        "best_eval_mean_return": best["mean_return"] if best else None,
        "best_eval_step": best["step"] if best else None,
        "evaluations": evaluations,
    }
    (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
    return summary
