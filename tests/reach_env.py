"""ReachHold: a learning check with real dynamics, for the learning tests.

A point mass on a frictionless line must reach the target at x = 1 and stop there. The next state depends on
the action, the reward comes late, and a myopic policy fails: pushing towards the target at every step (what
maximises the next reward) swings the mass past it and off the end of the track, so the mass must brake long
before it arrives. Learnable in a few thousand steps at gamma 0.99 (tests/test_learning.py).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

TARGET, LOW, HIGH = 1.0, -0.5, 1.8  # the track: leaving [LOW, HIGH] ends the episode (terminated)
HORIZON = 60  # steps per episode (truncated)


class ReachHold(gym.Env):
    """obs (x - 1, v), float32; action: a force in [-1, 1]: v += 0.2 a, x += 0.1 v, starting at rest at
    x ~ U(-0.2, 0.2). Reward exp(-((x - 1) / 0.2)^2) per step on the track: about nothing until the mass is
    within ~0.4 of the target. Holding the target from ~15 steps on earns ~45 of at most 60."""

    observation_space = gym.spaces.Box(-5.0, 5.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.v = float(self.np_random.uniform(-0.2, 0.2)), 0.0
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        return np.array([self.x - TARGET, self.v], np.float32)

    def step(self, action):
        self.v += 0.2 * float(np.clip(action[0], -1.0, 1.0))
        self.x += 0.1 * self.v
        terminated = not LOW <= self.x <= HIGH
        reward = 0.0 if terminated else float(np.exp(-(((self.x - TARGET) / 0.2) ** 2)))
        return self._obs(), reward, terminated, False, {}


def make_reach_env() -> gym.Env:
    return gym.wrappers.TimeLimit(ReachHold(), max_episode_steps=HORIZON)


def greedy(obs: np.ndarray) -> np.ndarray:
    """The myopic policy: full force towards the target (it maximises the next step's reward)."""
    return np.array([1.0 if obs[0] < 0 else -1.0], np.float32)


def braking(obs: np.ndarray) -> np.ndarray:
    """A scripted controller that plans ahead (proportional-derivative): what a learned policy should match."""
    return np.clip(np.array([-3.0 * obs[0] - 2.5 * obs[1]], np.float32), -1.0, 1.0)
