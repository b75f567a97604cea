"""Gymnasium glue: making envs with clear errors, checking spaces, mapping actions to env bounds."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import gymnasium as gym
import numpy as np


class EnvError(ValueError):
    """An env id or space keras_sac cannot work with; the message says why and what would work."""


def make_env(env_id: str, **kwargs) -> gym.Env:
    """`gym.make(env_id)`, with an unknown id answered by the closest registered names."""
    if not isinstance(env_id, str) or not env_id:
        raise EnvError(f"env must be a Gymnasium env or a registered env id string, got {env_id!r}")
    try:
        return gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as exc:
        raise EnvError(f"env '{env_id}' needs a package that is not installed: {exc}") from None
    except gym.error.Error as exc:
        close = difflib.get_close_matches(env_id, list(gym.registry.keys()), n=3, cutoff=0.75)
        hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else \
            "see gymnasium.pprint_registry() for the registered ids"
        raise EnvError(f"unknown env id '{env_id}' ({type(exc).__name__}): {hint}") from None


@dataclass(frozen=True)
class EnvSpec:
    """What the agent needs to know of an env; saved with checkpoints and exported policies."""

    env_id: str | None
    obs_dim: int
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]

    @property
    def action_dim(self) -> int:
        return len(self.action_low)

    def to_dict(self) -> dict:
        return {"env_id": self.env_id, "obs_dim": self.obs_dim,
                "action_low": list(self.action_low), "action_high": list(self.action_high)}

    @classmethod
    def from_dict(cls, d: dict) -> "EnvSpec":
        return cls(d["env_id"], int(d["obs_dim"]), tuple(map(float, d["action_low"])),
                   tuple(map(float, d["action_high"])))


def env_spec(env: gym.Env) -> EnvSpec:
    """Check that `env` suits SAC (flat Box observations, bounded Box actions) and describe it."""
    name = env.spec.id if env.spec is not None else type(env.unwrapped).__name__
    act = env.action_space
    if not isinstance(act, gym.spaces.Box):
        raise EnvError(f"env '{name}' has a {type(act).__name__} action space; SAC needs continuous Box actions "
                       f"(for discrete actions use a discrete-action method such as DQN)")
    if not (np.all(np.isfinite(act.low)) and np.all(np.isfinite(act.high))):
        raise EnvError(f"env '{name}' has an unbounded Box action space (low={act.low}, high={act.high}); "
                       f"SAC squashes actions into bounds: wrap it with gymnasium.wrappers.ClipAction "
                       f"and finite bounds")
    if len(act.shape) != 1:
        raise EnvError(f"env '{name}' has actions of shape {act.shape}; keras_sac needs a flat (n,) Box")
    obs = env.observation_space
    if not isinstance(obs, gym.spaces.Box) or len(obs.shape) != 1:
        raise EnvError(f"env '{name}' has observation space {obs}; keras_sac supports flat (n,) Box "
                       f"observations: wrap it with gymnasium.wrappers.FlattenObservation")
    return EnvSpec(env.spec.id if env.spec is not None else None, int(obs.shape[0]),
                   tuple(float(x) for x in act.low), tuple(float(x) for x in act.high))


def resolve_env(env: gym.Env | str) -> gym.Env:
    """Accept an env object or an id string."""
    return make_env(env) if isinstance(env, str) else env


def as_obs_batch(observation, obs_dim: int, owner: str) -> tuple[np.ndarray, bool]:
    """float32 (batch, obs_dim) view of one observation (obs_dim,) or a batch; also says which it was.

    A wrong shape raises ValueError naming `owner` and the shapes it accepts.
    """
    try:
        obs = np.asarray(observation, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"observation must be numeric; {owner} got {type(observation).__name__} of dtype "
                         f"{np.asarray(observation).dtype}") from None
    if obs.shape == (obs_dim,):
        batch, single = obs[None], True
    elif obs.ndim == 2 and obs.shape[1] == obs_dim:
        batch, single = obs, False
    else:
        raise ValueError(f"observation has shape {obs.shape}; {owner} expects ({obs_dim},) for one observation "
                         f"or (batch, {obs_dim}) for a batch")
    if not np.isfinite(batch).all():
        raise ValueError(f"observation contains NaN or inf; {owner} needs finite values")
    return batch, single


def check_same_spaces(expected: EnvSpec, got: EnvSpec, what: str) -> None:
    """Refuse an env whose observation size or action bounds differ from those `what` was trained on."""
    if (expected.obs_dim, expected.action_low, expected.action_high) != \
            (got.obs_dim, got.action_low, got.action_high):
        raise EnvError(f"env {got.env_id or ''} does not match {what}: it was trained with obs_dim "
                       f"{expected.obs_dim}, action bounds {list(expected.action_low)}..{list(expected.action_high)}; "
                       f"this env has obs_dim {got.obs_dim}, bounds {list(got.action_low)}..{list(got.action_high)}")
