"""Envs that misbehave on purpose, registered for the bad-input tests (`--env bad_envs:NanReward-v0`)."""

import gymnasium as gym
import numpy as np


class Misbehaving(gym.Env):
    """A 2-D point env that, from step `bad_step` on, returns a NaN reward, a NaN observation or an
    absurd reward that overflows the critic loss."""

    def __init__(self, fault: str, bad_step: int = 150):
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.fault, self.bad_step, self.t = fault, bad_step, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.np_random.uniform(-1, 1, 2).astype(np.float32), {}

    def step(self, action):
        self.t += 1
        obs = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        reward = 0.0
        if self.t >= self.bad_step:
            if self.fault == "nan_reward":
                reward = float("nan")
            elif self.fault == "nan_obs":
                obs[0] = np.inf
            else:
                reward = 3e38  # finite, but its square overflows float32
        return obs, reward, False, False, {}


class MultiDiscreteActions(gym.Env):
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.MultiDiscrete([3, 3])


for name, fault in (("NanReward-v0", "nan_reward"), ("NanObs-v0", "nan_obs"), ("HugeReward-v0", "huge_reward")):
    gym.register(name, entry_point=Misbehaving, kwargs={"fault": fault}, max_episode_steps=50)
gym.register("MultiDiscreteActions-v0", entry_point=MultiDiscreteActions)


class NoRender(gym.Env):
    """A fine env that cannot render: videos of it are refused."""

    metadata = {"render_modes": []}
    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(2, np.float32), {}

    def step(self, action):
        return np.zeros(2, np.float32), 0.0, False, False, {}


gym.register("NoRender-v0", entry_point=NoRender, max_episode_steps=5)
