"""Collection: the agent's env, or `n_envs` of them stepped together, turned into stored transitions.

One `Collector.step` is one step of every env: the transitions go to the replay buffer and finished
episodes to the statistics. With several envs (a Gymnasium `VectorEnv`), an env whose episode ended is
reset within the same step (`AutoresetMode.SAME_STEP`): the step returns the new episode's first
observation, and the finished episode's last one arrives in `info["final_obs"]`. That last observation is
the transition's next_obs, so a truncated episode still bootstraps from where it really stopped, and no
transition ever joins two episodes.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import warnings
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from keras_sac.core import spaces
from keras_sac.core.spaces import EnvSpec
from keras_sac.envs import state as env_state
from keras_sac.envs.make import EnvError, make_env, make_worker_env
from keras_sac.envs.remote import main_script_hidden


def make_vector_env(
    spec: EnvSpec, n_envs: int, vectorization: str, first: gym.Env | None = None
) -> gym.vector.VectorEnv:
    """`n_envs` copies of the env `spec` describes, stepped together with same-step autoreset.

    sync: all in this process, one after another (`first`, if given, becomes env 0). async: one subprocess
    each (`forkserver`, as SB3's SubprocVecEnv: a fork of a process running TensorFlow's threads can
    deadlock), stepped in parallel; worth it when an env step costs more than the ~0.1 ms of a pipe round
    trip (rendered pixels, slow simulators). The subprocesses import Gymnasium and the env's module only
    (not the main script, not TensorFlow), so the env id must be one they can make: registered by Gymnasium
    or a package, or given as "module:EnvId".
    """
    if spec.env_id is None:
        raise EnvError(
            "n_envs > 1 makes copies of the env from its registered id, and this env has none: register "
            "it (gymnasium.register) and pass its id, or pass a gymnasium VectorEnv built with "
            "autoreset_mode=AutoresetMode.SAME_STEP"
        )
    mode = gym.vector.AutoresetMode.SAME_STEP
    if vectorization == "sync":
        fns: list[Callable[[], gym.Env]] = [
            functools.partial(make_env, spec.env_id, pixels=spec.pixels, **spec.env_kwargs) for _ in range(n_envs)
        ]
        if first is not None:
            fns[0] = lambda: first
        return gym.vector.SyncVectorEnv(fns, autoreset_mode=mode)
    if first is not None:
        first.close()
    # make_env (keras_sac.envs.make imports no TensorFlow) imports the env's module ("module:EnvId") in the subprocess.
    fns = [_EnvFactory(_importable_id(spec.env_id), spec.pixels, spec.env_kwargs, os.getpid()) for _ in range(n_envs)]
    with main_script_hidden():
        return gym.vector.AsyncVectorEnv(fns, context="forkserver", autoreset_mode=mode)


@dataclasses.dataclass(frozen=True)
class _EnvFactory:
    """An AsyncVectorEnv env factory. Gymnasium also calls it once in this process, to read the spaces: here
    it is `make_env` (which keeps MuJoCo rendering out of this TensorFlow process); in the env subprocess
    it makes the env to be stepped there (`make_worker_env`)."""

    env_id: str
    pixels: dict | None
    kwargs: dict
    parent_pid: int

    def __call__(self) -> gym.Env:
        if os.getpid() == self.parent_pid:
            return make_env(self.env_id, pixels=self.pixels, **self.kwargs)
        return make_worker_env(self.env_id, self.pixels, self.kwargs)


def _importable_id(env_id: str) -> str:
    """The id as a fresh process can make it: "module:EnvId" when a module outside Gymnasium registered the env
    (the module of its entry point, whose import registers it), so the subprocess imports that module first."""
    if ":" in env_id or env_id not in gym.registry:
        return env_id
    entry = gym.registry[env_id].entry_point
    module = entry.split(":")[0] if isinstance(entry, str) else getattr(entry, "__module__", "")
    if not module or module.startswith("gymnasium") or module == "__main__":
        return env_id
    return f"{module}:{env_id}"


def check_vector_env(env: gym.vector.VectorEnv) -> None:
    mode = env.metadata.get("autoreset_mode")
    if mode != gym.vector.AutoresetMode.SAME_STEP:
        raise EnvError(
            f"the vector env resets with autoreset_mode {mode}; keras_sac needs same-step resets (the "
            f"finished episode's last observation in info['final_obs']): build it with "
            f"autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP"
        )


class Collector:
    """Steps `env` (one gym.Env, or a VectorEnv of n) and stores what it sees in `buffer`.

    obs: the observations the next step acts on, an internal batch of n_envs rows (spaces.py: (n_envs, obs_dim)
    float32, or {key: (n_envs, *shape)}); None until `reset`.
    Episode statistics: `num_episodes` over the agent's life, the last 100 returns and lengths, and the
    running return and length of each env's current episode, and `just_ended`: (return, length) of each
    episode the last step ended (empty after most steps; `callbacks.MetricsLogger` writes them).
    """

    def __init__(self, env, n_envs: int, buffer, obs_spec: spaces.ObsSpec):
        self.env, self.n_envs, self.buffer, self.obs_spec = env, n_envs, buffer, obs_spec
        self.vector = isinstance(env, gym.vector.VectorEnv)
        self.obs: Any = None  # (n_envs, obs_dim), or {key: (n_envs, ...)} for image and Dict observations
        self.next_action: np.ndarray | None = None  # actions for obs, drawn by the agent's last training phase
        self.seeded = False  # reset with the config's seed once; then each env's own stream continues
        self.num_episodes = 0
        self.episode_returns: collections.deque = collections.deque(maxlen=100)
        self.episode_lengths: collections.deque = collections.deque(maxlen=100)
        self.episode_return = np.zeros(n_envs)
        self.episode_length = np.zeros(n_envs, np.int64)
        self.just_ended: list[tuple[float, int]] = []  # (return, length) of the episodes the last step ended

    def reset(self, seed: int | None) -> None:
        """New episodes in every env (env i seeded seed + i when a seed is given, as Gymnasium does)."""
        obs, _ = self.env.reset(seed=seed)
        self.obs = spaces.env_batch(self.obs_spec, obs, self.n_envs)
        self.episode_return[:] = 0.0
        self.episode_length[:] = 0

    def step_locals(self) -> dict:
        """The last env step as callbacks see it (`Callback.locals`; its docstring lists the keys)."""
        actions, rewards, terminated, truncated, info, new_obs = self.last_step
        infos = [env_info(info, i) for i in range(self.n_envs)] if self.vector else [info]
        return {
            "actions": actions,
            "rewards": rewards,
            "terminated": terminated,
            "truncated": truncated,
            "dones": terminated | truncated,
            "infos": infos,
            "new_obs": new_obs,
        }

    def step(self, actions: np.ndarray, env_actions: np.ndarray, step: int) -> np.ndarray:
        """Step every env once; store each transition (actions: (n_envs, action_dim) in [-1, 1], env_actions
        the same in the env's bounds). `step` is the env step count before this one, for error messages.

        Returns `ended` (n_envs,) bool: the envs whose episode ended here (and that now start a new one).
        A non-finite reward or observation raises EnvError before anything is stored.
        """
        if self.vector:
            next_obs, rewards, terminated, truncated, info = self.env.step(env_actions)
            next_obs = spaces.env_batch(self.obs_spec, next_obs, self.n_envs)
            terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
            ended = terminated | truncated
            final_obs = spaces.copy(next_obs)  # each transition's true next_obs
            for i in np.flatnonzero(ended):
                spaces.set_row(final_obs, int(i), info["final_obs"][i])
        else:
            next_obs, reward, term, trunc, info = self.env.step(env_actions[0])
            final_obs = spaces.env_batch(self.obs_spec, next_obs, 1)
            rewards, terminated, truncated = np.array([reward]), np.array([term], bool), np.array([trunc], bool)
            ended = terminated | truncated
        rewards = np.asarray(rewards, np.float64)
        _check_finite(rewards, final_obs, step)
        # `terminated` ends the value; a time-limit truncation keeps bootstrapping from final_obs (it only
        # marks the episode end, where n-step sums stop).
        self.buffer.add_step(self.obs, actions, rewards, final_obs, terminated, truncated)
        self.last_step = (env_actions, rewards, terminated, truncated, info, next_obs)  # callbacks' locals
        self.episode_return += rewards
        self.episode_length += 1
        if self.just_ended:
            self.just_ended = []  # (a new list only after a step that ended episodes)
        for i in np.flatnonzero(ended):
            episode = (float(self.episode_return[i]), int(self.episode_length[i]))
            self.num_episodes += 1
            self.just_ended.append(episode)
            self.episode_returns.append(episode[0])
            self.episode_lengths.append(episode[1])
            self.episode_return[i], self.episode_length[i] = 0.0, 0
        if self.vector:
            self.obs = next_obs  # ended envs were reset by the vector env: their first observations
        elif ended[0]:
            self.reset(seed=None)  # final_obs was stored above; the next step acts on the reset obs
        else:
            self.obs = final_obs
        return ended

    def episode_metrics(self) -> dict[str, float]:
        """time/episodes, and the mean return and length of the last 100 training episodes (once there are any)."""
        out = {"time/episodes": float(self.num_episodes)}
        if self.episode_returns:
            out["rollout/episode_return"] = float(np.mean(self.episode_returns))
            out["rollout/episode_length"] = float(np.mean(self.episode_lengths))
        return out

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON, arrays) for a checkpoint: counters, recent episodes and, for a single MuJoCo or
        classic-control env, the episode in progress exactly (`envs/state.py`). A VectorEnv's episodes in
        progress are not saved: a resumed run starts new ones."""
        state = {
            "num_episodes": self.num_episodes,
            "env_seeded": self.seeded,
            "episode_return": float(self.episode_return[0]),
            "episode_length": int(self.episode_length[0]),
            "episode_returns": list(self.episode_returns),
            "episode_lengths": list(self.episode_lengths),
            "episode_in_progress": self.obs is not None,
            "env_state": None,
        }
        arrays: dict[str, np.ndarray] = {}
        if self.obs is not None and not self.vector:
            captured = env_state.capture(self.env)
            if captured is not None:  # else a resumed run starts a new episode
                state["env_state"], arrays = captured
                obs = spaces.take(self.obs, 0)
                arrays.update({f"obs.{k}": v for k, v in obs.items()} if isinstance(obs, dict) else {"obs": obs})
                if self.next_action is not None:  # already drawn: a redraw would move the RNG
                    arrays["next_action"] = self.next_action[0]
        return state, arrays

    def restore(self, state: dict, arrays: dict[str, np.ndarray], num_timesteps: int) -> bool:
        """Inverse of `state`; True if the episode in progress was restored, else warns that one starts."""
        # (.get: checkpoints from keras_sac before these were saved still load)
        self.num_episodes = int(state.get("num_episodes", len(state["episode_returns"])))
        self.seeded = bool(state.get("env_seeded", num_timesteps > 0))
        self.episode_returns.extend(state["episode_returns"])
        self.episode_lengths.extend(state["episode_lengths"])
        if state["env_state"] is not None:
            env_state.restore(self.env, state["env_state"], arrays)
            if self.obs_spec.flat:
                self.obs = np.asarray(arrays["obs"], np.float32)[None]
            else:
                self.obs = {e.key: arrays[f"obs.{e.key}"][None] for e in self.obs_spec.entries}
            self.episode_return[0], self.episode_length[0] = state["episode_return"], state["episode_length"]
            if "next_action" in arrays:
                self.next_action = arrays["next_action"][None]
            return True
        if state["episode_in_progress"]:
            if self.vector:
                why = f"with n_envs {self.n_envs} the envs' mid-episode states are not saved"
                what = f"new episodes in all {self.n_envs} envs"
            else:
                env = self.env.spec.id if self.env.spec is not None else type(self.env.unwrapped).__name__
                why = (
                    f"the mid-episode state of env {env} cannot be saved (MuJoCo and classic-control envs can, "
                    f"observed through their own observations, and envs with get_episode_state/set_episode_state: "
                    f"keras_sac/envs/state.py)"
                )
                what = "a new episode"
            warnings.warn(f"{why}: training continues with {what}", stacklevel=4)
        return False

    def close(self) -> None:
        self.env.close()


def _check_finite(rewards: np.ndarray, next_obs: np.ndarray, step: int) -> None:
    """Never let NaN/inf into the buffer: name the first bad value and what to do."""
    bad_reward = ~np.isfinite(rewards)
    bad_obs = spaces.nonfinite_rows(next_obs)
    if not (bad_reward.any() or bad_obs.any()):
        return
    i = int(np.flatnonzero(bad_reward | bad_obs)[0])
    if bad_reward[i]:
        what = f"reward ({rewards[i]})"
    elif isinstance(next_obs, dict):
        keys = [k for k, v in next_obs.items() if v.dtype.kind == "f" and not np.isfinite(v[i]).all()]
        what = f"observation (keys {keys})"
    else:
        what = f"observation (entries {np.flatnonzero(~np.isfinite(next_obs[i])).tolist()})"
    where = f" in env {i}" if len(rewards) > 1 else ""
    raise EnvError(
        f"env returned a non-finite {what}{where} at step {step + 1}; the transition was not stored. "
        f"Fix or wrap the env (e.g. clip the observation) and resume from the last checkpoint"
    )


def env_info(info: dict, i: int) -> dict:
    """Env i's own info dict out of a Gymnasium vector env's ({key: values per env, "_key": which envs set it},
    nested for dict values such as "final_info")."""
    out = {}
    for key, values in info.items():
        if key.startswith("_"):
            continue
        has = info.get(f"_{key}")
        if has is not None and not has[i]:
            continue
        out[key] = env_info(values, i) if isinstance(values, dict) else values[i]
    return out
