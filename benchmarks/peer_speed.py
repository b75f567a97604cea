"""Steady-state SAC training throughput of a peer library, for side-by-side comparison (a copy of the shared
driver, kept here so that benchmarks/throughput.py --peers runs from the repository alone).

Usage (in a virtualenv that has the peer installed, not the project's):
    python peer_speed.py sb3 HalfCheetah-v5 5000     # Stable-Baselines3 (PyTorch)
    python peer_speed.py sbx HalfCheetah-v5 5000     # SBX (JAX)

Setup for that virtualenv: `pip install torch==2.13.0` first (the local CPU build), then
`pip install stable-baselines3 sbx-rl "gymnasium[mujoco]"`.

Measures env steps per second between step 2000 and the last step, with SB3 defaults except
learning_starts=1000 and batch_size=256: 256x256 networks, one gradient step per env step.
Prints one JSON line. Run it alternately with your own benchmark and compare medians as a ratio.
"""

import json
import sys
import time

import gymnasium as gym

lib, env_id, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
if lib == "sb3":
    import torch

    torch.set_num_threads(2)
    from stable_baselines3 import SAC
elif lib == "sbx":
    from sbx import SAC
else:
    raise SystemExit(f"unknown peer {lib!r}: use sb3 or sbx")
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402 (after the chosen peer loads)


class Clock(BaseCallback):
    def __init__(self):
        super().__init__()
        self.t = {}

    def _on_step(self):
        if self.num_timesteps in (2000, steps):
            self.t[self.num_timesteps] = time.perf_counter()
        return True


model = SAC("MlpPolicy", gym.make(env_id), learning_starts=1000, batch_size=256, seed=0, verbose=0)
clock = Clock()
model.learn(steps, callback=clock)
sps = (steps - 2000) / (clock.t[steps] - clock.t[2000])
print(json.dumps({"lib": lib, "env": env_id, "steps": steps, "train_steps_per_s": round(sps, 1)}))
