import numpy as np
import pytest

from keras_sac.buffer import ReplayBuffer, pack, unpack


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


def episodes(rng, n_steps, obs_dim=3, action_dim=2):
    """Transitions of random-length episodes, some terminated, some truncated, some resetting onto the
    terminal observation itself (the case where the compact buffer may share the row)."""
    obs = rng.normal(size=obs_dim).astype(np.float32)
    for t in range(n_steps):
        next_obs = rng.normal(size=obs_dim).astype(np.float32)
        end = rng.random() < 0.25
        terminated = end and rng.random() < 0.5
        yield obs, rng.uniform(-1, 1, action_dim).astype(np.float32), float(t), next_obs, terminated
        if end:
            obs = next_obs.copy() if rng.random() < 0.2 else rng.normal(size=obs_dim).astype(np.float32)
        else:
            obs = next_obs


@pytest.mark.parametrize("capacity", [2, 7, 64])
def test_compact_buffer_returns_exactly_the_added_transitions(capacity):
    rng = np.random.default_rng(capacity)
    compact = ReplayBuffer(capacity, 3, 2, optimize_memory_usage=True)
    added = []
    for step, transition in enumerate(episodes(rng, 300)):
        compact.add(*transition)
        added.append(transition)
        recent = {t[2]: t for t in added[-capacity:]}  # reward = step index identifies a transition
        batch = compact.sample(4 * capacity, rng)
        for obs, action, reward, next_obs, terminated in zip(*batch):
            expected = recent[float(reward)]  # KeyError: a transition older than the capacity allows
            np.testing.assert_array_equal(obs, expected[0])
            np.testing.assert_array_equal(action, expected[1])
            np.testing.assert_array_equal(next_obs, expected[3])
            assert terminated == float(expected[4])
        stored = compact.rewards[:compact.size][compact.valid[:compact.size]]
        assert float(step) in stored and len(stored) == len(compact)  # the newest is always kept
        assert 1 <= len(compact) <= min(step + 1, capacity - 1)
    # A row per transition plus a row per episode end: fewer transitions than capacity, never less than half.
    assert len(compact) >= (capacity - 1) // 2


def test_compact_buffer_stores_40_percent_fewer_bytes_and_round_trips():
    rng = np.random.default_rng(0)
    compact, plain = (ReplayBuffer(50, 17, 6, optimize_memory_usage=m) for m in (True, False))
    assert (compact.bytes_per_transition(), plain.bytes_per_transition()) == (101, 168)
    for transition in episodes(rng, 80, obs_dim=17, action_dim=6):
        compact.add(*transition)
    restored = ReplayBuffer(50, 17, 6, optimize_memory_usage=True)
    restored.restore_arrays(compact.state_arrays())
    assert len(restored) == len(compact) and restored.pos == compact.pos
    for a, b in zip(restored.sample(100, np.random.default_rng(1)), compact.sample(100, np.random.default_rng(1))):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="optimize_memory_usage=True"):
        plain.restore_arrays(compact.state_arrays())


def test_pack_and_unpack_round_trip_in_numpy_and_tensorflow():
    import tensorflow as tf

    buffer = ReplayBuffer(capacity=100, obs_dim=3, action_dim=2)
    for transition in episodes(np.random.default_rng(0), 20):
        buffer.add(*transition)
    batch = buffer.sample(16, np.random.default_rng(1))
    packed = pack(batch)
    assert packed.shape == (16, 3 + 2 + 1 + 3 + 1) and packed.dtype == np.float32
    for unpacked in (unpack(packed, 3, 2), unpack(tf.constant(packed[None]), 3, 2)):
        for field, original in zip(unpacked, batch, strict=True):
            np.testing.assert_array_equal(np.asarray(field).reshape(original.shape), original)
    assert unpack(tf.constant(packed[None]), 3, 2).rewards.shape == (1, 16)


@pytest.mark.parametrize("compact", [False, True], ids=["plain", "compact"])
@pytest.mark.parametrize("new_capacity", [3, 5, 10])
def test_a_wrapped_buffer_restored_into_another_capacity_samples_only_real_transitions(compact, new_capacity):
    # Reproduces the audit's case: capacity 5, wrapped, restored into 10 paired the newest row with an
    # unwritten one (obs 4 -> next_obs 0); into 3 it must keep the newest transitions.
    rng = np.random.default_rng(new_capacity)
    saved = ReplayBuffer(5, 3, 2, optimize_memory_usage=compact)
    added = list(episodes(rng, 13))
    for transition in added:
        saved.add(*transition)
    restored = ReplayBuffer(new_capacity, 3, 2, optimize_memory_usage=compact)
    restored.restore_arrays(saved.state_arrays())
    by_reward = {t[2]: t for t in added}
    expected = sorted(float(r) for r in saved.rewards[:saved.size][saved.valid[:saved.size] if compact else
                                                                   slice(None)])
    if new_capacity < 5:  # the newest transitions that fit
        expected = expected[-len(restored):]
    batch = restored.sample(2000, rng)
    assert sorted(set(batch.rewards.tolist())) == expected
    for obs, action, reward, next_obs, terminated in zip(*batch):
        original = by_reward[float(reward)]
        np.testing.assert_array_equal(obs, original[0])
        np.testing.assert_array_equal(next_obs, original[3])
        assert terminated == float(original[4])
    # and it keeps working as a ring: new transitions go into free rows first, then replace the oldest
    more = list(episodes(np.random.default_rng(99), 4))
    more = [(o, a, 100.0 + i, n, t) for i, (o, a, _, n, t) in enumerate(more)]
    for transition in more:
        restored.add(*transition)
        by_reward[transition[2]] = transition
    for obs, action, reward, next_obs, terminated in zip(*restored.sample(2000, rng)):
        np.testing.assert_array_equal(next_obs, by_reward[float(reward)][3])
    if new_capacity == 10 and not compact:  # 5 restored + 4 new: nothing overwritten while rows were free
        assert set(restored.sample(4000, rng).rewards.tolist()) == set(expected) | {100.0, 101.0, 102.0, 103.0}
