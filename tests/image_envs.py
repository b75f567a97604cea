"""Small envs with image and Dict observations for the observation tests (registered on import)."""

import gymnasium as gym
import numpy as np

SIZE = 24  # the smallest frames the tests' encoders read in a few milliseconds


class BrightSpot(gym.Env):
    """A uint8 image with one bright square at x in [-1, 1] along the width; the reward is -|a - x|.

    `layout` "hwc" (SIZE, SIZE, 3), "chw" (3, SIZE, SIZE) or "dict": {"image": (SIZE, SIZE, 1) uint8,
    "vector": (2,) float32 [x, step/10]}. Episodes are truncated after 10 steps by the TimeLimit."""

    def __init__(self, layout: str = "hwc"):
        self.layout = layout
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        if layout == "dict":
            self.observation_space = gym.spaces.Dict(
                {
                    "image": gym.spaces.Box(0, 255, (SIZE, SIZE, 1), np.uint8),
                    "vector": gym.spaces.Box(-10.0, 10.0, (2,), np.float32),
                }
            )
        else:
            shape = (SIZE, SIZE, 3) if layout == "hwc" else (3, SIZE, SIZE)
            self.observation_space = gym.spaces.Box(0, 255, shape, np.uint8)

    # x and the step count in one array, which is all the episode's state: keras_sac's checkpoints save and restore
    # an episode in progress through the two methods below (envs/state.py's protocol)
    def get_episode_state(self) -> dict:
        return {"state": self.state}

    def set_episode_state(self, state: dict) -> None:
        self.state = state["state"].copy()

    @property
    def x(self) -> float:
        return float(self.state[0])

    @property
    def t(self) -> int:
        return int(self.state[1])

    def _obs(self):
        image = np.zeros((SIZE, SIZE, 3), np.uint8)
        column = int(round((self.x + 1) / 2 * (SIZE - 4)))
        image[SIZE // 2 - 2 : SIZE // 2 + 2, column : column + 4] = 255
        if self.layout == "dict":
            return {"image": image[..., :1].copy(), "vector": np.array([self.x, self.t / 10], np.float32)}
        return image if self.layout == "hwc" else image.transpose(2, 0, 1).copy()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = np.array([self.np_random.uniform(-1, 1), 0.0])
        return self._obs(), {}

    def step(self, action):
        reward = -abs(float(np.asarray(action).reshape(-1)[0]) - self.x)
        self.state = np.array([self.np_random.uniform(-1, 1), self.t + 1.0])
        return self._obs(), reward, False, False, {}


for _layout in ("hwc", "chw", "dict"):
    _id = f"BrightSpot-{_layout}-v0"
    if _id not in gym.registry:
        gym.register(_id, entry_point="image_envs:BrightSpot", kwargs={"layout": _layout}, max_episode_steps=10)
