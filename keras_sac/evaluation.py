"""Episode returns of a policy, used by training (periodic evaluation) and by evaluate.py."""

from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np


def evaluate_policy(act: Callable[[np.ndarray], np.ndarray], env: gym.Env, n_episodes: int,
                    seed: int | None = None) -> np.ndarray:
    """Run `n_episodes` full episodes; `act(obs) -> action in env bounds`. Returns (n_episodes,) returns.

    The env is reset with `seed` once, so the same seed gives the same episode starts.
    """
    returns = np.zeros(n_episodes)
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            returns[episode] += float(reward)
            done = terminated or truncated
    return returns
