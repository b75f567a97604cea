import numpy as np
import pytest

from keras_sac.buffer import ReplayBuffer


def fill(buffer, start, n):
    for i in range(start, start + n):
        buffer.add(obs=[i, i], action=[i / 100], reward=i, next_obs=[i + 1, i + 1], terminated=i % 2 == 0)


def test_wraps_around_overwriting_the_oldest():
    buffer = ReplayBuffer(capacity=5, obs_dim=2, action_dim=1)
    fill(buffer, 0, 7)
    assert len(buffer) == 5 and buffer.pos == 2
    assert sorted(buffer.rewards.tolist()) == [2, 3, 4, 5, 6]  # 0 and 1 were overwritten
    np.testing.assert_array_equal(buffer.obs[:2, 0], [5, 6])


def test_sample_returns_consistent_rows_from_the_filled_part_only():
    buffer = ReplayBuffer(capacity=100, obs_dim=2, action_dim=1)
    fill(buffer, 0, 10)
    batch = buffer.sample(500, np.random.default_rng(0))
    assert batch.obs.shape == (500, 2) and batch.actions.shape == (500, 1) and batch.rewards.shape == (500,)
    assert all(a.dtype == np.float32 for a in batch)
    assert set(batch.rewards.tolist()) == set(range(10))  # never an unfilled (zero-padded) slot beyond 9
    np.testing.assert_array_equal(batch.next_obs[:, 0], batch.rewards + 1)
    np.testing.assert_array_equal(batch.terminated, (batch.rewards % 2 == 0).astype(np.float32))


def test_empty_buffer_refuses_to_sample():
    with pytest.raises(ValueError, match="empty replay buffer"):
        ReplayBuffer(4, 1, 1).sample(2, np.random.default_rng(0))
