"""PointGoal: a small goal-conditioned env for hindsight experience replay, registered as keras_sac/PointGoal-v0.

A point in the square [-1, 1]^2 moves by 0.1 * action per step (actions in [-1, 1]^2) and must come within
`distance_threshold` (0.05) of a goal drawn uniformly in the square. Observations follow Gymnasium-Robotics'
GoalEnv convention, a Dict of
    observation     (2,) the point's position
    achieved_goal   (2,) the same position: the goal this step achieved
    desired_goal    (2,) the goal
The reward is sparse: 0 within the threshold, -1 elsewhere; `compute_reward(achieved_goal, desired_goal,
info)` takes batches, as HER's relabelling calls it. Episodes never terminate (reaching the goal gives 0 per
step while the point stays there); they are truncated after 50 steps, and info["is_success"] says whether
the point is at the goal.

Gymnasium-Robotics' Fetch tasks need mujoco < 4 and do not load here, hence this env for tests and the demo
(`python train.py --env keras_sac/PointGoal-v0 --config configs/presets/PointGoal-v0-her.yaml`).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

ENV_ID = "keras_sac/PointGoal-v0"


class PointGoalEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, distance_threshold: float = 0.05, step_size: float = 0.1):
        self.distance_threshold, self.step_size = float(distance_threshold), float(step_size)
        square = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = gym.spaces.Dict(
            {"observation": square, "achieved_goal": square, "desired_goal": square}
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        # position and goal, in one array: all of an episode's state, which checkpoints save and restore through
        # the episode-state protocol below (envs/state.py)
        self.state = np.zeros(4, np.float32)

    def get_episode_state(self) -> dict[str, np.ndarray]:
        return {"state": self.state}

    def set_episode_state(self, state: dict[str, np.ndarray]) -> None:
        self.state = np.asarray(state["state"], np.float32).copy()

    @property
    def position(self) -> np.ndarray:
        return self.state[:2]

    @property
    def goal(self) -> np.ndarray:
        return self.state[2:]

    def compute_reward(self, achieved_goal, desired_goal, info=None) -> np.ndarray:
        """0 where achieved_goal is within the threshold of desired_goal, -1 elsewhere; any leading batch axes."""
        distance = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return -(distance > self.distance_threshold).astype(np.float32)

    def _obs(self) -> dict:
        return {
            "observation": self.position.copy(),
            "achieved_goal": self.position.copy(),
            "desired_goal": self.goal.copy(),
        }

    def _info(self) -> dict:
        return {"is_success": bool(np.linalg.norm(self.position - self.goal) <= self.distance_threshold)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = self.np_random.uniform(-1.0, 1.0, 4).astype(np.float32)
        return self._obs(), self._info()

    def step(self, action):
        action = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
        self.state[:2] = np.clip(self.position + self.step_size * action, -1.0, 1.0)
        obs = self._obs()
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"]))
        return obs, reward, False, False, self._info()


def register() -> None:
    """Register `keras_sac/PointGoal-v0` with Gymnasium (once; `make_env` and `resolve_env_id` call it, so the
    id works wherever keras_sac makes envs; call it yourself before a plain `gym.make(ENV_ID)`)."""
    if ENV_ID not in gym.registry:
        # a class is an env creator at run time; Gymnasium's annotation names only its protocol
        gym.register(ENV_ID, entry_point=PointGoalEnv, max_episode_steps=50)  # type: ignore[arg-type]
