"""A bookkeeping env for the vector-env tests (`counting_env:Counting-v0`): each observation names its
episode and step, so a stored transition shows whether it joins two episodes.

obs = [instance, episode, t]: instance is unique per env object (across processes too), episode counts its
resets and t the episode's steps. Even episodes terminate after `terminate_at` steps; odd ones run into the
time limit (6 steps).
The reward is t of the new observation, so returns are known: 1 + 2 + ... + length.
"""

import itertools
import os

import gymnasium as gym
import numpy as np

_instances = itertools.count()


class Counting(gym.Env):
    def __init__(self, terminate_at: int = 4):
        self.observation_space = gym.spaces.Box(0.0, np.inf, (3,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.terminate_at = terminate_at
        self.instance = (os.getpid() % 10_000) * 100 + next(_instances)  # exact in float32
        self.episodes, self.t = 0, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episodes, self.t = self.episodes + 1, 0
        return self._obs(), {}

    def _obs(self):
        return np.array([self.instance, self.episodes, self.t], np.float32)

    def step(self, action):
        self.t += 1
        terminated = self.episodes % 2 == 0 and self.t >= self.terminate_at
        return self._obs(), float(self.t), terminated, False, {}


gym.register("Counting-v0", entry_point=Counting, max_episode_steps=6)
