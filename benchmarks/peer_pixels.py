"""Stable-Baselines3's SAC `CnnPolicy` on pixel Pendulum, for benchmarks/pixels.py (run in the peers' virtualenv).

    python benchmarks/peer_pixels.py train 900        # env steps/s between step 400 and 900
    python benchmarks/peer_pixels.py bytes            # ReplayBuffer(optimize_memory_usage=True) bytes/transition

The env is built with Gymnasium's wrappers exactly as keras_sac's `pixels: {size: [64, 64], grayscale: true,
frame_stack: 3}` builds it (uint8 (3, 64, 64), channels first), without importing keras_sac. SB3's settings
match benchmarks/pixels.py's keras_sac side: NatureCNN (512 features, SB3's default extractor), 256x256 heads,
batch 64, learning_starts 200, one gradient step per env step, a 20k buffer. Prints one JSON line.
"""

import json
import os
import sys
import time

import gymnasium as gym
from gymnasium.wrappers import AddRenderObservation, FrameStackObservation, GrayscaleObservation, ResizeObservation

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def pixel_pendulum() -> gym.Env:
    env = AddRenderObservation(gym.make("Pendulum-v1", render_mode="rgb_array"), render_only=True)
    return FrameStackObservation(GrayscaleObservation(ResizeObservation(env, (64, 64))), 3)


def main() -> None:
    import torch

    torch.set_num_threads(2)
    from stable_baselines3 import SAC
    from stable_baselines3.common.buffers import ReplayBuffer
    from stable_baselines3.common.callbacks import BaseCallback

    env = pixel_pendulum()
    if sys.argv[1] == "bytes":
        buffer = ReplayBuffer(
            1000, env.observation_space, env.action_space, optimize_memory_usage=True, handle_timeout_termination=False
        )
        arrays = [buffer.observations, buffer.actions, buffer.rewards, buffer.dones, buffer.timeouts]
        print(json.dumps({"lib": "sb3", "bytes_per_transition": sum(a.nbytes for a in arrays) / 1000}))
        return
    steps = int(sys.argv[2])

    class Clock(BaseCallback):
        def __init__(self):
            super().__init__()
            self.t = {}

        def _on_step(self):
            if self.num_timesteps in (400, steps):
                self.t[self.num_timesteps] = time.perf_counter()
            return True

    model = SAC("CnnPolicy", env, batch_size=64, learning_starts=200, buffer_size=20_000, seed=0, verbose=0)
    clock = Clock()
    model.learn(steps, callback=clock)
    print(json.dumps({"lib": "sb3", "train_steps_per_s": round((steps - 400) / (clock.t[steps] - clock.t[400]), 2)}))


if __name__ == "__main__":
    main()
