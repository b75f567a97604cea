"""Saving and restoring an env in the middle of an episode, as plain arrays and JSON (no pickle).

Exact resume needs the env exactly where it was: its physics, its random generator and the time-limit
counter. Restored exactly, and only these: MuJoCo envs (their `MjData`), Gymnasium's classic-control envs
(their ndarray `state`, which is all their dynamic state), and any env whose unwrapped object implements the
protocol below. For any other env `capture` returns None and a resumed run starts a new episode (the loader
says so in one warning): an env with hidden state beyond what keras_sac can see would otherwise be restored
only in part, and silently diverge.

The protocol, for your own env (its random generator and time limit are saved by keras_sac):

    def get_episode_state(self) -> dict[str, np.ndarray]: ...   # everything the next step depends on
    def set_episode_state(self, state: dict[str, np.ndarray]) -> None: ...

For MuJoCo the integration state (`mjSTATE_INTEGRATION`: time, qpos, qvel, act, warm-start...) is not
enough: after `mj_step` the derived quantities (body positions, contact forces) are one substep stale, and
Ant-v5 and Humanoid-v5 read them for their rewards. Measured on 30 steps after a restore: integration
state alone was bit-identical for InvertedPendulum, HalfCheetah and Hopper but not for Ant and Humanoid;
adding every fixed-size `MjData` array (at most ~46 KB, Humanoid) made all five bit-identical.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

CLASSIC_CONTROL = "gymnasium.envs.classic_control"  # their `state` ndarray is all of their dynamic state


def _mujoco():
    try:
        import mujoco
    except ImportError:  # MuJoCo is optional for non-MuJoCo envs
        return None
    return mujoco


def _time_limit(env: gym.Env) -> gym.wrappers.TimeLimit | None:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return env
        env = env.env
    return None


def _observes_frames(env: gym.Env) -> bool:
    from gymnasium.wrappers import AddRenderObservation, FrameStackObservation

    while isinstance(env, gym.Wrapper):
        if isinstance(env, (AddRenderObservation, FrameStackObservation)):
            return True
        env = env.env
    return False


def _mjdata_arrays(data):
    """(name, writable ndarray view) for every non-empty array field of an MjData."""
    for name in dir(data):
        if name.startswith("_"):
            continue
        value = getattr(data, name, None)
        if isinstance(value, np.ndarray) and value.flags.writeable and value.size:
            yield name, value


def capture(env: gym.Env) -> tuple[dict, dict[str, np.ndarray]] | None:
    """`(json_part, arrays)` describing the env's current mid-episode state, or None if unsupported."""
    if _observes_frames(env):
        return None  # a frame stack's past frames (and a rendered arrow's last action) are not in the state
    inner: Any = env.unwrapped  # duck-typed: MuJoCo's model/data or classic control's state
    mujoco = _mujoco()
    arrays: dict[str, np.ndarray] = {}
    if mujoco is not None and hasattr(inner, "model") and isinstance(getattr(inner, "data", None), mujoco.MjData):
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        physics = np.empty(mujoco.mj_stateSize(inner.model, spec))
        mujoco.mj_getState(inner.model, inner.data, physics, spec)
        arrays["env_mujoco_state"] = physics
        arrays.update({f"env_mjdata.{name}": value.copy() for name, value in _mjdata_arrays(inner.data)})
        kind = "mujoco"
    elif callable(getattr(inner, "get_episode_state", None)) and callable(getattr(inner, "set_episode_state", None)):
        arrays.update({f"env_episode.{k}": np.array(v, copy=True) for k, v in inner.get_episode_state().items()})
        kind = "protocol"
    elif type(inner).__module__.startswith(CLASSIC_CONTROL) and isinstance(getattr(inner, "state", None), np.ndarray):
        arrays["env_state"] = inner.state.copy()
        kind = "state_attribute"
    else:
        return None
    limit = _time_limit(env)
    return {
        "kind": kind,
        "np_random": inner.np_random.bit_generator.state,
        "elapsed_steps": None if limit is None else limit._elapsed_steps,
    }, arrays


def restore(env: gym.Env, state: dict, arrays: dict[str, np.ndarray]) -> None:
    """Put `env` back into a state from `capture` (same env id required)."""
    env.reset()  # wrappers such as OrderEnforcing refuse a step before the first reset
    inner: Any = env.unwrapped  # duck-typed: MuJoCo's model/data or classic control's state
    inner.np_random.bit_generator.state = state["np_random"]
    if state["kind"] == "mujoco":
        mujoco = _mujoco()
        mujoco.mj_setState(inner.model, inner.data, arrays["env_mujoco_state"], mujoco.mjtState.mjSTATE_INTEGRATION)
        for name, target in _mjdata_arrays(inner.data):
            saved = arrays.get(f"env_mjdata.{name}")
            if saved is not None and saved.shape == target.shape:  # contact-sized arrays vary; mj_step remakes them
                target[...] = saved
    elif state["kind"] == "protocol":
        prefix = "env_episode."
        inner.set_episode_state({k[len(prefix) :]: v.copy() for k, v in arrays.items() if k.startswith(prefix)})
    else:  # "state_attribute" (checkpoints of keras_sac before the protocol also wrote it for other envs)
        inner.state = arrays["env_state"].copy()
    limit = _time_limit(env)
    if limit is not None and state["elapsed_steps"] is not None:
        limit._elapsed_steps = state["elapsed_steps"]
