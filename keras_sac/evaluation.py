"""Episode returns of a policy, used by training (periodic evaluation) and by evaluate.py."""

from __future__ import annotations

from typing import Callable, NamedTuple

import gymnasium as gym
import numpy as np


class Episodes(NamedTuple):
    returns: np.ndarray  # (n_episodes,)
    lengths: np.ndarray  # (n_episodes,)
    successes: np.ndarray | None  # (n_episodes,) the last step's info["is_success"], if the env reports one


def evaluate_policy(
    act: Callable[[np.ndarray], np.ndarray], env: gym.Env, n_episodes: int, seed: int | None = None
) -> Episodes:
    """Run `n_episodes` full episodes; `act(obs) -> action in env bounds`.

    The env is reset with `seed` once, so the same seed gives the same episode starts. Goal envs (and any
    env whose final info has "is_success", as Gymnasium-Robotics' do) also get a success per episode, as
    Stable-Baselines3's evaluation reports.
    """
    returns, lengths = np.zeros(n_episodes), np.zeros(n_episodes, np.int64)
    successes = []
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=seed if episode == 0 else None)
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(act(obs))
            returns[episode] += float(reward)
            lengths[episode] += 1
            done = terminated or truncated
        successes.append(info.get("is_success"))
    reported = all(s is not None for s in successes)
    return Episodes(returns, lengths, np.array(successes, np.float64) if reported else None)
