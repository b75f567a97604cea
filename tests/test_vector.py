"""Several envs at once (n_envs > 1): no stored transition joins two episodes, truncated episodes keep their true
last observation, training is counted in vector steps, checkpoints resume, bad settings are one-line errors."""

import counting_env
import gymnasium as gym
import numpy as np
import pytest

from keras_sac import KerasSAC
from keras_sac.config.settings import ConfigError, SACConfig
from keras_sac.data.buffer import MultiEnvReplayBuffer
from keras_sac.envs.make import EnvError

COUNTING = "counting_env:Counting-v0"  # obs [instance, episode, t]; even episodes end at t 4, odd ones truncate at 6
RANDOM_ONLY = dict(learning_starts=10**6, buffer_size=600, seed=0)  # collection only: no network calls


def check_transitions(agent, n_envs, steps_per_env):
    """Every stored transition within one episode of one env, one step long, with the true last observation."""
    parts = agent.buffer.parts
    assert len(parts) == n_envs and [len(p) for p in parts] == [steps_per_env] * n_envs
    instances = []
    for part in parts:
        rows = part.sample(3000, np.random.default_rng(1))
        obs, nxt = rows.obs, rows.next_obs
        np.testing.assert_array_equal(obs[:, :2], nxt[:, :2])  # same env instance, same episode
        np.testing.assert_array_equal(nxt[:, 2], obs[:, 2] + 1)  # one step on: never a reset observation
        ends = rows.terminated == 1
        assert set(nxt[ends, 2]) == {4.0} and set(nxt[ends, 1] % 2) == {0.0}  # even episodes terminate at 4
        assert 6.0 in nxt[:, 2] and (nxt[nxt[:, 2] == 6.0, 1] % 2 == 1).all()  # truncated: t 6 kept, not reset obs
        assert not rows.terminated[nxt[:, 2] == 6.0].any()  # a truncation bootstraps
        instances.append(set(obs[:, 0]))
    assert sum(map(len, instances)) == len(set().union(*instances))  # each part holds one env's rows only


@pytest.mark.parametrize("vectorization, compact", [("sync", False), ("sync", True), ("async", False)])
def test_vector_collection_never_joins_two_episodes(vectorization, compact):
    agent = KerasSAC(COUNTING, n_envs=3, vectorization=vectorization, optimize_memory_usage=compact, **RANDOM_ONLY)
    agent.learn(150)
    agent.close()
    assert agent.num_timesteps == 150
    check_transitions(agent, 3, 50)
    # 50 steps per env, episodes of 6 (odd) and 4 (even) steps: 5 pairs of 10 steps each -> 10 episodes per env
    assert agent.num_episodes == 30 and sorted(set(agent.episode_lengths)) == [4, 6]
    assert sorted(set(agent.episode_returns)) == [10.0, 21.0]  # 1+2+3+4 and 1+...+6


def test_training_phases_are_counted_in_vector_steps():
    agent = KerasSAC(
        "Pendulum-v1",
        n_envs=2,
        learning_starts=20,
        train_freq=2,
        gradient_steps=3,
        batch_size=8,
        net_arch=(8,),
        seed=0,
        compile_mode="graph",  # the counting is the subject; auto would compile the 3-step phase with XLA (~10 s)
    )
    calls = []
    agent.learn(40, callback=lambda a: calls.append(a.num_timesteps))
    assert calls == list(range(2, 41, 2))  # the callback runs once per vector step
    # training after vector steps 12, 14, ..., 20 (env steps 24..40 > learning_starts), 3 updates each
    assert int(agent.n_updates.numpy()) == 15


def test_a_vector_env_passed_in_is_used_and_checked():
    vec = gym.make_vec(
        "Pendulum-v1",
        num_envs=2,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
    )
    agent = KerasSAC(vec, learning_starts=10, batch_size=8, net_arch=(8,), seed=0)
    assert agent.config.n_envs == 2 and agent.env is vec
    agent.learn(30)
    assert len(agent.buffer) == 30 and int(agent.n_updates.numpy()) > 0
    next_step = gym.make_vec("Pendulum-v1", num_envs=2, vectorization_mode="sync")
    with pytest.raises(EnvError, match="autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP"):
        KerasSAC(next_step)
    with pytest.raises(ValueError, match=r"n_envs \(3\) differs from the vector env's num_envs \(2\)"):
        KerasSAC(vec, n_envs=3)


def test_an_unregistered_env_cannot_be_copied():
    env = counting_env.Counting()  # made directly: no id to make more from
    with pytest.raises(EnvError, match="register it"):
        KerasSAC(env, n_envs=2)


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(n_envs=0), "n_envs"),
        (dict(vectorization="threads"), "vectorization"),
        (dict(n_envs=4, buffer_size=3, batch_size=2), r"buffer_size \(3\) is split between the n_envs \(4\)"),
        (  # a stack of 4 frames stored once per row reads 3 rows back, and its next_obs is the row after
            dict(n_envs=2, buffer_size=9, batch_size=2, optimize_memory_usage=True, pixels={"frame_stack": 4}),
            r"each needs at least 5 row\(s\) to hold one transition",
        ),
    ],
)
def test_bad_vector_settings_are_one_line_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        SACConfig(**values)


def test_resume_restores_every_envs_rows_and_starts_new_episodes(tmp_path):
    agent = KerasSAC(COUNTING, n_envs=2, learning_starts=10, batch_size=8, net_arch=(8,), buffer_size=100, seed=0)
    agent.learn(41)  # 21 vector steps: 42 env steps, episodes in progress
    agent.save(tmp_path / "ckpt")
    with pytest.warns(UserWarning, match="new episodes in all 2 envs"):
        resumed = KerasSAC.load(tmp_path / "ckpt")
    assert resumed.num_timesteps == 42 and resumed.num_episodes == agent.num_episodes
    for part, saved in zip(resumed.buffer.parts, agent.buffer.parts):
        np.testing.assert_array_equal(part.obs[: part.size], saved.obs[: saved.size])
        assert (part.pos, part.size) == (saved.pos, saved.size)
    resumed.learn(20, reset_num_timesteps=False)
    assert resumed.num_timesteps == 62 and len(resumed.buffer) == 62
    check_transitions(resumed, 2, 31)  # the new episodes never join the saved ones


def test_multi_env_buffer_samples_uniformly_over_all_stored_transitions():
    buffer = MultiEnvReplayBuffer(100, obs_dim=1, action_dim=1, n_envs=2)
    for t in range(30):
        buffer.parts[0].add([0.0], [0.0], 0.0, [0.0], False)
    for t in range(10):
        buffer.parts[1].add([1.0], [0.0], 0.0, [1.0], False)
    rows = buffer.sample(40_000, np.random.default_rng(0))
    assert abs(rows.obs.mean() - 0.25) < 0.01  # env 1 holds a quarter of the transitions
    first_half = rows.obs[:20_000].mean()
    assert abs(first_half - 0.25) < 0.015  # shuffled: any slice (one minibatch) mixes the envs
