"""Callbacks for `KerasSAC.learn`, with Stable-Baselines3's protocol and built-ins.

    from keras_sac.callbacks import EvalCallback, CheckpointCallback, StopTrainingOnRewardThreshold
    stop = StopTrainingOnRewardThreshold(reward_threshold=-200)
    agent.learn(50_000, callback=[EvalCallback(gym.make("Pendulum-v1"), eval_freq=5_000, best_model_save_path="best",
                                               callback_on_new_best=stop),
                                  CheckpointCallback(save_freq=10_000, save_path="checkpoints")])

`learn` calls `on_training_start` once, `on_step` after every (vector) env step and its training (return
False to stop), `on_rollout_end` after each collection phase (every `train_freq` vector steps, before the
gradient steps), `on_training_end` once, also when stopped early or by an error. A list of callbacks is one
`CallbackList`; a plain function `f(agent) -> bool | None` is an `on_step`. train.py's run monitor is built
from these (training.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from keras_sac.envs.make import make_env
from keras_sac.evaluation import Episodes, evaluate_policy
from keras_sac.extras import installed
from keras_sac.io.checkpoint import RollingCheckpoints

__all__ = [
    "Callback",
    "CallbackList",
    "FunctionCallback",
    "EvalCallback",
    "CheckpointCallback",
    "StopTrainingOnRewardThreshold",
    "as_callback",
]


class Callback:
    """Base class: override the hooks you need. Each receives the agent (`agent.num_timesteps`, `metrics()`).

    In `on_step`, `self.locals` is the step just taken, as Stable-Baselines3's callbacks see it: "actions"
    (n_envs, action_dim) in the env's bounds, "rewards", "terminated", "truncated", "dones" (either) (n_envs,),
    "infos" (a list of n_envs info dicts) and "new_obs" (what the envs observe now: after an episode's end,
    the next episode's first observation).
    """

    locals: dict = {}

    def update_locals(self, locals_: dict) -> None:
        """Called by `learn` before each on_step."""
        self.locals = locals_

    def on_training_start(self, agent) -> None:
        pass

    def on_step(self, agent) -> bool | None:
        """After every env step (n_envs steps with a vector env) and its training; False stops training."""
        return True

    def on_rollout_end(self, agent) -> None:
        pass

    def on_training_end(self, agent) -> None:
        pass

    @staticmethod
    def due(agent, every: int) -> bool:
        """Whether a multiple of `every` env steps was reached by this step (n_envs steps per call)."""
        step = agent.num_timesteps
        return every > 0 and step // every > (step - agent.config.n_envs) // every


class CallbackList(Callback):
    """Callbacks called in order; on_step stops training if any returns False (all still run that step)."""

    def __init__(self, callbacks: Sequence[Callback]):
        self.callbacks = list(callbacks)

    def on_training_start(self, agent) -> None:
        for c in self.callbacks:
            c.on_training_start(agent)

    def update_locals(self, locals_: dict) -> None:
        self.locals = locals_
        for c in self.callbacks:
            c.update_locals(locals_)

    def on_step(self, agent) -> bool:
        results = [c.on_step(agent) for c in self.callbacks]
        return all(r is not False for r in results)

    def on_rollout_end(self, agent) -> None:
        for c in self.callbacks:
            c.on_rollout_end(agent)

    def on_training_end(self, agent) -> None:
        for c in self.callbacks:
            c.on_training_end(agent)


class FunctionCallback(Callback):
    """A plain function `f(agent) -> bool | None` called as on_step."""

    def __init__(self, function: Callable):
        self.function = function

    def on_step(self, agent) -> bool | None:
        return self.function(agent)


def as_callback(callback) -> Callback:
    """None, a Callback, a function, or a list of these -> one Callback."""
    if callback is None:
        return CallbackList([])
    if isinstance(callback, Callback):
        return callback
    if isinstance(callback, (list, tuple)):
        return CallbackList([as_callback(c) for c in callback])
    if callable(callback):
        return FunctionCallback(callback)
    raise TypeError(
        f"callback must be a keras_sac.callbacks.Callback, a function of the agent or a list of "
        f"these, got {type(callback).__name__}"
    )


def _tqdm():
    """tqdm's widget bar in Jupyter where ipywidgets is installed, else its text bar (tqdm.auto would warn
    'IProgress not found' in a notebook without ipywidgets, at every import)."""
    if installed("ipywidgets"):
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm


def progress_bar_for(start: int, end: int):
    """`learn`'s tqdm bar over env steps (its lines and `echo`'s share the screen)."""
    return _tqdm()(total=end, initial=start, unit="step", dynamic_ncols=True, smoothing=0.05)


def echo(line: str) -> None:
    """Print a line above any tqdm progress bar on screen (and plainly where there is none)."""
    _tqdm().write(line)


class EvalCallback(Callback):
    """Evaluate the deterministic policy every `eval_freq` env steps on its own env, as SB3's EvalCallback.

    Args:
        eval_env: a Gymnasium env (not the training env) or an env id.
        eval_freq: env steps between evaluations.
        n_eval_episodes: episodes per evaluation.
        seed: the eval env is reset with it before each evaluation, so every evaluation starts from the
            same states.
        best_model_save_path: if given, each new best mean return exports the policy (SavedModel) there.
        callback_on_new_best: called (on_step) after each new best; its False stops training.
        final_step: also evaluate once the run reaches this many env steps (train.py's last row).
        say: prints a line per evaluation (None: silent); the default writes through `learn`'s progress bar
            when one is shown (tqdm's write, which keeps the bar below the line), else prints plainly.
    After each evaluation: `evaluations` [(step, mean, std)], `best_mean_reward`, `last_episodes`,
    `last_metrics` (eval/... keys) and `evaluated_at` (the step).
    """

    def __init__(
        self,
        eval_env,
        eval_freq: int = 10_000,
        n_eval_episodes: int = 5,
        seed: int | None = None,
        best_model_save_path: str | Path | None = None,
        callback_on_new_best: Callback | None = None,
        final_step: int | None = None,
        say: Callable[[str], None] | None = echo,
    ):
        if isinstance(eval_env, str):
            eval_env = make_env(eval_env)
        self.eval_env, self.eval_freq, self.n_eval_episodes, self.seed = eval_env, eval_freq, n_eval_episodes, seed
        self.best_model_save_path = None if best_model_save_path is None else Path(best_model_save_path)
        self.callback_on_new_best, self.final_step, self.say = callback_on_new_best, final_step, say
        self.evaluations: list[tuple[int, float, float]] = []
        self.best_mean_reward = -np.inf
        self.last_episodes: Episodes | None = None
        self.last_metrics: dict[str, float] = {}
        self.evaluated_at: int | None = None

    def on_step(self, agent) -> bool:
        step = agent.num_timesteps
        final = self.final_step is not None and step >= self.final_step and self.evaluated_at != step
        if not (self.due(agent, self.eval_freq) or final):
            return True
        return self.evaluate(agent)

    def evaluate(self, agent) -> bool:
        episodes = evaluate_policy(
            lambda obs: agent.predict(obs, deterministic=True)[0], self.eval_env, self.n_eval_episodes, seed=self.seed
        )
        returns, step = episodes.returns, agent.num_timesteps
        mean, std = float(returns.mean()), float(returns.std())
        self.last_episodes, self.evaluated_at = episodes, step
        self.evaluations.append((step, mean, std))
        self.last_metrics = {
            "eval/mean_return": mean,
            "eval/std_return": std,
            "eval/mean_ep_length": float(episodes.lengths.mean()),
        }
        success = ""
        if episodes.successes is not None:
            self.last_metrics["eval/success_rate"] = float(episodes.successes.mean())
            success = f", success rate {episodes.successes.mean():.2f}"
        if self.say is not None:
            self.say(f"eval @ {step} steps: return {mean:.1f} +- {std:.1f}{success} over {len(returns)} episodes")
        agent.progress_info["eval"] = f"{mean:.1f} @ {step}"
        if mean > self.best_mean_reward:
            self.best_mean_reward = mean
            if self.best_model_save_path is not None:
                agent.export(self.best_model_save_path)
            if self.callback_on_new_best is not None:
                self.callback_on_new_best.parent = self  # type: ignore[attr-defined]  # SB3's attribute, set as SB3 does
                return self.callback_on_new_best.on_step(agent) is not False
        return True


class CheckpointCallback(Callback):
    """Save the whole agent (replay buffer included unless `save_replay_buffer=False`) every `save_freq` env
    steps into `save_path/step_<n>`, keeping the newest `keep` (None: all). `KerasSAC.load(save_path)`
    picks the newest good one."""

    def __init__(self, save_freq: int, save_path: str | Path, keep: int | None = 2, save_replay_buffer: bool = True):
        self.save_freq, self.save_replay_buffer = save_freq, save_replay_buffer
        self.checkpoints = RollingCheckpoints(save_path, keep=keep if keep is not None else 1 << 62)
        self.saved_at: int | None = None

    def on_step(self, agent) -> bool:
        if self.due(agent, self.save_freq):
            self.save(agent)
        return True

    def save(self, agent) -> Path | None:
        """Write a checkpoint of this step unless one was written at it already."""
        if self.saved_at == agent.num_timesteps:
            return None
        path = self.checkpoints.write(agent, include_buffer=self.save_replay_buffer)
        self.saved_at = agent.num_timesteps
        return path


class StopTrainingOnRewardThreshold(Callback):
    """Stop once an evaluation's mean return reaches `reward_threshold`: give it to an EvalCallback as
    `callback_on_new_best` (as in SB3), or list it after one as `StopTrainingOnRewardThreshold(t, eval_callback)`."""

    def __init__(self, reward_threshold: float, parent: EvalCallback | None = None, say=echo):
        self.reward_threshold, self.parent, self.say = float(reward_threshold), parent, say

    def on_step(self, agent) -> bool:
        if self.parent is None:
            raise ValueError(
                "StopTrainingOnRewardThreshold reads an EvalCallback's results: pass it as that "
                "EvalCallback's callback_on_new_best, or give it parent=the EvalCallback"
            )
        if self.parent.best_mean_reward >= self.reward_threshold:
            if self.say is not None:
                self.say(
                    f"stopping: mean evaluation return {self.parent.best_mean_reward:.1f} reached the "
                    f"threshold {self.reward_threshold:g} at step {agent.num_timesteps}"
                )
            return False
        return True


def with_metrics_log(callback, tensorboard_log: str | Path | None, tb_log_name: str, new_run: bool) -> Callback:
    """`callback` as one Callback, with a MetricsLogger appended when `tensorboard_log` is set, writing to
    `<tensorboard_log>/<tb_log_name>_<n>` as SB3 names its runs: the next n for a new run, the latest n (or 1)
    when `learn(..., reset_num_timesteps=False)` continues one."""
    if tensorboard_log is None:
        return as_callback(callback)
    root = Path(tensorboard_log)
    taken = [
        int(p.name.rpartition("_")[2]) for p in root.glob(f"{tb_log_name}_*") if p.name.rpartition("_")[2].isdigit()
    ]
    n = max(taken, default=0) + (1 if new_run or not taken else 0)
    logger = MetricsLogger(root / f"{tb_log_name}_{n}")
    listed = [] if callback is None else list(callback) if isinstance(callback, (list, tuple)) else [callback]
    return as_callback([*listed, logger])


class MetricsLogger(Callback):
    """The agent's metrics as train.py writes them: every `log_interval` env steps a row of `metrics.csv` and the
    same scalars in TensorBoard (`tb/`), names as in train.py (`train/critic_loss`, `rollout/episode_return`,
    `eval/mean_return`, ...); the train/ values are each the mean over the updates since the row before, as
    SB3 averages over gradient steps. Every training episode's end step, return and length go to `episodes.csv`.
    `KerasSAC(env, tensorboard_log=DIR)` adds one to every `learn`, in `DIR/<tb_log_name>_<n>` as SB3 names its
    runs.

    Args:
        folder: where metrics.csv and tb/ go (made if missing; a folder with a metrics.csv is continued).
        log_interval: env steps between rows.
        evaluation: an EvalCallback listed before this one: each evaluation's `eval/...` values join the row
            of its step.
        logger: an open `io.logger.RunLogger` to write to instead of `folder` (train.py's, which trims a
            resumed run's rows).
    """

    def __init__(self, folder: str | Path | None = None, log_interval: int = 1000, evaluation=None, logger=None):
        if (folder is None) == (logger is None):
            raise ValueError("MetricsLogger writes to a folder or to a given logger: pass one of them")
        if int(log_interval) < 1:
            raise ValueError(f"log_interval must be an integer >= 1, got {log_interval!r}")
        self.folder, self.log_interval, self.evaluation = folder, int(log_interval), evaluation
        self.logger, self._owned = logger, logger is None
        self._start = self._clock = time.perf_counter()
        self._clock_step = 0
        if logger is not None:  # a resumed run's clock goes on from its last row
            earlier = logger.rows[-1].get("time/elapsed_s", 0.0) if logger.rows else 0.0
            self._start -= earlier

    def on_training_start(self, agent) -> None:
        if self.logger is None:  # here, not at import: RunLogger writes TensorBoard files (TensorFlow)
            from keras_sac.io.logger import RunLogger, columns

            assert self.folder is not None  # __init__: a folder or a logger
            folder = Path(self.folder)
            folder.mkdir(parents=True, exist_ok=True)
            self.logger = RunLogger(folder, columns=columns(agent.config))
        self._clock, self._clock_step = time.perf_counter(), agent.num_timesteps
        agent.update_metrics.active = True  # each row's train/ values: the mean over its updates

    def on_step(self, agent) -> bool:
        step, row = agent.num_timesteps, {}
        for episode_return, length in agent.collector.just_ended:
            self.logger.log_episode(step, episode_return, length)
        if self.due(agent, self.log_interval):
            now = time.perf_counter()
            row = {
                **agent.metrics(),
                "time/elapsed_s": now - self._start,
                "time/steps_per_second": (step - self._clock_step) / max(now - self._clock, 1e-9),
            }
            agent.update_metrics.clear()  # the next row's train/ values: the mean over the updates until then
        if self.evaluation is not None and self.evaluation.evaluated_at == step:
            row.update(self.evaluation.last_metrics)
        if row:
            self.logger.log(step, row)
            self._clock, self._clock_step = time.perf_counter(), step  # evaluation time is not training speed
        return True

    def on_training_end(self, agent) -> None:
        if self._owned and self.logger is not None:
            self.logger.close()
            self.logger = None
