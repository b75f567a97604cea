"""SAC must actually learn: a toy task in seconds (default suite) and InvertedPendulum-v5 (slow)."""

import pytest

from conftest import make_match_env
from keras_sac import KerasSAC
from keras_sac.evaluation import evaluate_policy


def test_learns_the_match_task_in_a_few_hundred_steps():
    # Best action a = x earns reward 1 per step; uniform random actions average 1 - 5/3 = -0.67.
    agent = KerasSAC(make_match_env(), seed=0, net_arch=(64, 64), batch_size=64, learning_starts=100,
                     learning_rate=1e-3, gamma=0.5)
    agent.learn(800)
    returns, _ = evaluate_policy(lambda obs: agent.predict(obs, deterministic=True)[0], make_match_env(), 10, seed=1)
    assert returns.mean() / 10 > 0.85, returns  # mean reward per step


@pytest.mark.slow
def test_inverted_pendulum_is_balanced_within_20k_steps():
    agent = KerasSAC("InvertedPendulum-v5", seed=0)
    agent.learn(20_000)
    import gymnasium as gym

    returns, _ = evaluate_policy(lambda obs: agent.predict(obs, deterministic=True)[0],
                              gym.make("InvertedPendulum-v5"), 10, seed=100)
    assert returns.mean() >= 950, returns
