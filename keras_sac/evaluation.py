"""Episode returns of a policy, used by training (periodic evaluation) and by evaluate.py."""

from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np


def evaluate_policy(act: Callable[[np.ndarray], np.ndarray], env: gym.Env, n_episodes: int,
                    seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run `n_episodes` full episodes; `act(obs) -> action in env bounds`.

    The env is reset with `seed` once, so the same seed gives the same episode starts.
    Returns (returns, lengths), each (n_episodes,).
    """
    returns, lengths = np.zeros(n_episodes), np.zeros(n_episodes, np.int64)
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            returns[episode] += float(reward)
            lengths[episode] += 1
            done = terminated or truncated
    return returns, lengths
