"""Hindsight experience replay (Andrychowicz et al. 2017) for goal-conditioned Dict observations.

The buffer stores transitions as they happened, with the goal the env asked for. At sampling time a share
n_sampled_goal / (n_sampled_goal + 1) of the minibatch gets another goal: the `achieved_goal` of a
transition of the same episode (strategy `future`: this one or a later one; `final`: the episode's last;
`episode`: any), written into obs and next_obs `desired_goal`, with the reward recomputed for it by the
env's `compute_reward` — once per minibatch, on (batch, goal_dim) arrays. So relabelling costs nothing at
storage time, and the goals drawn change with every sample, as in Stable-Baselines3's HerReplayBuffer.

Only finished episodes are sampled (the goals of `future` and `final` need the episode's end); an episode
ends at termination or truncation, so a time limit cuts it where it stopped. When the ring overwrites the
oldest episode's first row, the rest of that episode leaves the sample too (its `future` rows would point
at overwritten steps). `terminated` is kept as stored: goal envs such as Fetch and PointGoal never
terminate, so relabelling has no termination to change.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from keras_sac.core.spaces import Batch, ObsSpec
from keras_sac.data.buffer import ReplayBuffer, _same_obs

GOAL_STRATEGIES = ("future", "final", "episode")
GOAL_KEYS = ("observation", "achieved_goal", "desired_goal")


class HerError(ValueError):
    """An env or setting HER cannot work with; the message says why and what would work."""


def check_goal_env(obs: ObsSpec, compute_reward, name: str) -> None:
    """Refuse, in one line, an env HER cannot relabel."""
    if not obs.is_dict or not {"achieved_goal", "desired_goal"} <= set(obs.keys):
        raise HerError(
            f"replay_buffer: her needs a goal-conditioned env with Dict observations holding "
            f"'achieved_goal' and 'desired_goal' (env '{name}' observes {obs.describe()}): "
            f"use replay_buffer: uniform"
        )
    shapes = {e.key: e.shape for e in obs.entries}
    if shapes["achieved_goal"] != shapes["desired_goal"]:
        raise HerError(
            f"env '{name}': achieved_goal {shapes['achieved_goal']} and desired_goal "
            f"{shapes['desired_goal']} differ in shape, so one cannot stand for the other"
        )
    if not callable(compute_reward):
        raise HerError(
            f"env '{name}' has no compute_reward(achieved_goal, desired_goal, info) method, which "
            f"HER needs to reward the goals it substitutes"
        )


class HerReplayBuffer(ReplayBuffer):
    """A `ReplayBuffer` of Dict observations whose `sample` relabels goals.

    Args (beyond ReplayBuffer's): compute_reward: the env's compute_reward; n_sampled_goal: relabelled
    transitions per real one; goal_selection_strategy: future | final | episode.
    Per row it keeps `ep_start` (the row its episode began at) and `ep_length` (0 until the episode ends,
    and again once the ring starts to overwrite it).
    """

    def __init__(
        self,
        capacity: int,
        obs: ObsSpec,
        action_dim: int,
        compute_reward: Callable,
        n_sampled_goal: int = 4,
        goal_selection_strategy: str = "future",
        **options,
    ):
        if options.get("optimize_memory_usage") or options.get("n_steps", 1) > 1:
            raise HerError(
                "replay_buffer: her stores plain one-step transitions: set optimize_memory_usage: false and n_steps: 1"
            )
        super().__init__(capacity, obs, action_dim, **options)
        self.compute_reward = compute_reward
        self.her_ratio = 1.0 - 1.0 / (n_sampled_goal + 1)
        self.strategy = goal_selection_strategy
        self.ep_start = np.zeros(capacity, np.int64)
        self.ep_length = np.zeros(capacity, np.int64)
        self._episode_start = 0  # row of the episode being written
        self._episode_steps = 0  # its transitions so far
        self._finished = 0  # rows of finished, not overwritten episodes: the ones sample() draws from

    def _named_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._named_arrays(), "ep_start": self.ep_start, "ep_length": self.ep_length}

    def add(self, obs, action, reward: float, next_obs, terminated: bool, truncated: bool = False) -> None:
        i = self.pos
        if self.ep_length[i] > 0:  # overwriting the oldest episode: all of it leaves the sample
            self._forget_episode(int(self.ep_start[i]), int(self.ep_length[i]))
        last = (i - 1) % self.capacity
        # A new episode after an episode end, or where obs does not continue the last row (a reset that ended
        # no episode, e.g. a new learn(): the unfinished episode then stays out of the sample).
        if self.size == 0 or self.episode_ends[last] or not _same_obs(self.next_obs[last], obs):
            self._episode_start, self._episode_steps = i, 0
        super().add(obs, action, reward, next_obs, terminated, truncated)
        self.ep_start[i], self.ep_length[i] = self._episode_start, 0
        self._episode_steps += 1
        # An episode longer than the ring has overwritten its own beginning: like any episode the ring has
        # begun to overwrite, it stays out of the sample.
        if (terminated or truncated) and self._episode_steps <= self.capacity:
            length = self._episode_steps
            self.ep_length[self._rows(self._episode_start, length)] = length
            self._finished += length

    def sampleable(self) -> int:
        return self._finished

    def _rows(self, start: int, length: int) -> np.ndarray:
        return (start + np.arange(length)) % self.capacity

    def _forget_episode(self, start: int, length: int) -> None:
        rows = self._rows(start, length)
        self._finished -= int((self.ep_length[rows] > 0).sum())
        self.ep_length[rows] = 0

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """Uniform over the transitions of finished episodes; a her_ratio share of them gets a new goal."""
        if self._finished == 0:
            raise HerError(
                f"HER samples finished episodes only, and none has finished in the {len(self)} steps "
                f"stored: raise learning_starts above the env's episode length"
            )
        idx = rng.integers(0, self.size, size=batch_size)
        redraw = self.ep_length[idx] == 0
        while redraw.any():  # rejection: the episode in progress (and a half-overwritten one) are few rows
            idx[redraw] = rng.integers(0, self.size, size=int(redraw.sum()))
            redraw = self.ep_length[idx] == 0
        obs, next_obs = self.obs[idx], self.next_obs[idx]
        rewards = self.rewards[idx].copy()
        relabel = np.flatnonzero(rng.random(batch_size) < self.her_ratio)
        if len(relabel):
            rows = idx[relabel]
            start, length = self.ep_start[rows], self.ep_length[rows]
            position = (rows - start) % self.capacity  # this transition's step within its episode
            if self.strategy == "future":  # this step or a later one (SB3's rule)
                offset = position + (rng.random(len(rows)) * (length - position)).astype(np.int64)
            elif self.strategy == "final":
                offset = length - 1
            else:
                offset = (rng.random(len(rows)) * length).astype(np.int64)
            goals = self.next_obs.arrays["achieved_goal"][(start + offset) % self.capacity]
            obs["desired_goal"][relabel] = goals
            next_obs["desired_goal"][relabel] = goals
            infos = np.array([{} for _ in range(len(rows))])  # infos are not stored: Fetch-style rewards ignore them
            rewards[relabel] = self.compute_reward(next_obs["achieved_goal"][relabel], goals, infos)
        return Batch(
            obs, self.actions[idx], rewards, next_obs, self.terminated[idx], np.full(batch_size, self.gamma, np.float32)
        )

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {**super().state_arrays(), "episode_steps": np.array([self._episode_steps], np.int64)}

    def restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        same_capacity = int(arrays["position"][1]) == self.capacity
        arrays = dict(arrays)
        steps = arrays.pop("episode_steps", None)  # (checkpoints before it was saved: counted from the rows)
        super().restore_arrays(arrays)
        if not same_capacity:  # rows moved: work the episodes out again from the episode ends
            self._rebuild_episodes()
        self._finished = int((self.ep_length[: self.size] > 0).sum())
        last = (self.pos - 1) % self.capacity
        going = self.size and not self.episode_ends[last]  # an episode in progress
        self._episode_start = int(self.ep_start[last]) if going else self.pos
        counted = (last - self._episode_start) % self.capacity + 1 if going else 0
        self._episode_steps = int(steps[0]) if steps is not None and same_capacity else counted

    def _rebuild_episodes(self) -> None:
        """ep_start/ep_length from the rows as restore_arrays leaves them (oldest first, from row 0)."""
        self.ep_length[:] = 0
        start = 0
        for i in range(self.size):
            self.ep_start[i] = start
            if self.episode_ends[i]:
                self.ep_length[start : i + 1] = i + 1 - start
                start = i + 1
