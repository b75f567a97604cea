"""Preallocated ring buffer of transitions, float32 throughout."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Batch(NamedTuple):
    """A minibatch; every field float32 with leading dimension `batch`."""

    obs: np.ndarray  # (batch, obs_dim)
    actions: np.ndarray  # (batch, action_dim), in the agent's [-1, 1] units
    rewards: np.ndarray  # (batch,)
    next_obs: np.ndarray  # (batch, obs_dim)
    terminated: np.ndarray  # (batch,) 1.0 at a true terminal state only; truncation is 0.0


class ReplayBuffer:
    """Fixed-capacity FIFO of transitions; the oldest is overwritten once full.

    Stores `terminated`, not `done`: a Gymnasium time-limit truncation must still bootstrap from next_obs.
    Memory is allocated up front (np.zeros pages in lazily, so an unfilled buffer costs little RSS).
    """

    def __init__(self, capacity: int, obs_dim: int, action_dim: int):
        self.capacity = int(capacity)
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros((capacity, action_dim), np.float32)
        self.rewards = np.zeros((capacity,), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.terminated = np.zeros((capacity,), np.float32)
        self.pos = 0  # next slot to write
        self.size = 0  # filled slots

    def __len__(self) -> int:
        return self.size

    def add(self, obs, action, reward: float, next_obs, terminated: bool) -> None:
        """Store one transition (obs, next_obs: (obs_dim,); action: (action_dim,) in [-1, 1])."""
        i = self.pos
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.next_obs[i] = next_obs
        self.terminated[i] = terminated
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """Uniform sample with replacement of `batch_size` stored transitions."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        return Batch(self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx],
                     self.terminated[idx])

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The filled rows and the write position, for a checkpoint."""
        n = self.size
        return {"obs": self.obs[:n], "actions": self.actions[:n], "rewards": self.rewards[:n],
                "next_obs": self.next_obs[:n], "terminated": self.terminated[:n],
                "position": np.array([self.pos, self.size], np.int64)}

    def restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Inverse of `state_arrays` (into a buffer of at least the saved size)."""
        pos, size = (int(x) for x in arrays["position"])
        if size > self.capacity:
            raise ValueError(f"saved buffer holds {size} transitions; this buffer's capacity is {self.capacity}")
        for name in ("obs", "actions", "rewards", "next_obs", "terminated"):
            getattr(self, name)[:size] = arrays[name]
        self.pos, self.size = pos % self.capacity, size
