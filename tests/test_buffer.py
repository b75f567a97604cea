import re

import gymnasium as gym
import numpy as np
import pytest

from keras_sac.core.spaces import obs_spec
from keras_sac.data.buffer import MultiEnvReplayBuffer, ReplayBuffer, pack, packed_width, unpack


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


def test_settings_it_cannot_store_are_refused_naming_the_fix():
    spec = obs_spec(gym.spaces.Box(0, 255, (2, 8, 8), np.uint8), "frames")
    with pytest.raises(ValueError, match="^frame_stack storage needs optimize_memory_usage$"):
        ReplayBuffer(10, spec, 1, frame_stack=2)
    for k in (2, 3):
        with pytest.raises(ValueError, match=f"^{k}-frame stacks stored once per row need at least {k + 1} rows$"):
            ReplayBuffer(k, spec, 1, optimize_memory_usage=True, frame_stack=k)
        ReplayBuffer(k + 1, spec, 1, optimize_memory_usage=True, frame_stack=k)  # k + 1 rows are enough
    message = r"^optimize_memory_usage needs buffer_size >= 2 \(a transition takes two rows\)$"
    with pytest.raises(ValueError, match=message):
        ReplayBuffer(1, 3, 1, optimize_memory_usage=True)


def test_flat_observations_given_by_their_spec_are_one_float32_array_and_gamma_defaults_to_sb3s():
    buffer = ReplayBuffer(4, obs_spec(gym.spaces.Box(-1, 1, (3,), np.float64), "vector"), 2)
    assert buffer.obs.shape == buffer.next_obs.shape == (4, 3) and buffer.obs.dtype == np.float32
    buffer.add(np.ones(3), np.zeros(2), 1.0, np.ones(3), False)
    np.testing.assert_array_equal(buffer.sample(3, np.random.default_rng(0)).discounts, np.float32(0.99))


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
        yield obs, rng.uniform(-1, 1, action_dim).astype(np.float32), float(t), next_obs, terminated, end
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
        for obs, action, reward, next_obs, terminated, _ in zip(*batch):
            expected = recent[float(reward)]  # KeyError: a transition older than the capacity allows
            np.testing.assert_array_equal(obs, expected[0])
            np.testing.assert_array_equal(action, expected[1])
            np.testing.assert_array_equal(next_obs, expected[3])
            assert terminated == float(expected[4])
        stored = compact.rewards[: compact.size][compact.valid[: compact.size]]
        assert float(step) in stored and len(stored) == len(compact)  # the newest is always kept
        assert 1 <= len(compact) <= min(step + 1, capacity - 1)
    # A row per transition plus a row per episode end: fewer transitions than capacity, never less than half.
    assert len(compact) >= (capacity - 1) // 2


def test_compact_buffer_stores_40_percent_fewer_bytes_and_round_trips():
    rng = np.random.default_rng(0)
    compact, plain = (ReplayBuffer(50, 17, 6, optimize_memory_usage=m) for m in (True, False))
    assert (compact.bytes_per_transition(), plain.bytes_per_transition()) == (102, 169)
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
    assert packed.shape == (16, 3 + 2 + 1 + 3 + 1 + 1) and packed.dtype == np.float32
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
    expected = sorted(
        float(r) for r in saved.rewards[: saved.size][saved.valid[: saved.size] if compact else slice(None)]
    )
    if new_capacity < 5:  # the newest transitions that fit
        expected = expected[-len(restored) :]
    batch = restored.sample(2000, rng)
    assert sorted(set(batch.rewards.tolist())) == expected
    for obs, action, reward, next_obs, terminated, _ in zip(*batch):
        original = by_reward[float(reward)]
        np.testing.assert_array_equal(obs, original[0])
        np.testing.assert_array_equal(next_obs, original[3])
        assert terminated == float(original[4])
    # and it keeps working as a ring: new transitions go into free rows first, then replace the oldest
    more = list(episodes(np.random.default_rng(99), 4))
    more = [(o, a, 100.0 + i, n, t, e) for i, (o, a, _, n, t, e) in enumerate(more)]
    for transition in more:
        restored.add(*transition)
        by_reward[transition[2]] = transition
    for obs, action, reward, next_obs, terminated, _ in zip(*restored.sample(2000, rng)):
        np.testing.assert_array_equal(next_obs, by_reward[float(reward)][3])
    if new_capacity == 10 and not compact:  # 5 restored + 4 new: nothing overwritten while rows were free
        assert set(restored.sample(4000, rng).rewards.tolist()) == set(expected) | {100.0, 101.0, 102.0, 103.0}


def hand_worked_episodes():
    """Three episodes, rewards doubling each step (1, 2, 4, ...) so every sum below is exact in float32:
    A: 4 steps ending in a time-limit truncation; B: 2 steps ending in a termination; C: 1 step, still going."""
    o = lambda x: np.array([x, -x], np.float32)  # noqa: E731
    a = np.zeros(1, np.float32)
    return [
        (o(0), a, 1.0, o(1), False, False),
        (o(1), a, 2.0, o(2), False, False),
        (o(2), a, 4.0, o(3), False, False),
        (o(3), a, 8.0, o(4), False, True),
        (o(10), a, 16.0, o(11), False, False),
        (o(11), a, 32.0, o(12), True, True),
        (o(20), a, 64.0, o(21), False, False),
    ]


# With n = 3 and gamma = 0.5, from each first reward: (return, next_obs, discount gamma^k, terminated)
N_STEP_EXPECTED = {
    1.0: (1 + 0.5 * 2 + 0.25 * 4, 3, 0.125, 0.0),  # three full steps
    2.0: (2 + 0.5 * 4 + 0.25 * 8, 4, 0.125, 0.0),  # reaches the truncation on its third step: bootstraps from o(4)
    4.0: (4 + 0.5 * 8, 4, 0.25, 0.0),  # cut by the truncation after two steps, still bootstrapping
    8.0: (8, 4, 0.5, 0.0),
    16.0: (16 + 0.5 * 32, 12, 0.25, 1.0),  # cut by the termination: no bootstrap
    32.0: (32, 12, 0.5, 1.0),
    64.0: (64, 21, 0.5, 0.0),  # the newest transition: no later rows yet
}


@pytest.mark.parametrize(
    "compact, capacity",
    [(False, 7), (False, 5), (True, 12), (True, 7)],
    ids=["plain", "plain-wrapped", "compact", "compact-wrapped"],
)
def test_n_step_returns_match_the_hand_worked_episodes(compact, capacity):
    buffer = ReplayBuffer(capacity, 2, 1, optimize_memory_usage=compact, n_steps=3, gamma=0.5)
    for transition in hand_worked_episodes():
        buffer.add(*transition)
    batch = buffer.sample(500, np.random.default_rng(0))
    seen = set()
    for obs, reward, next_obs, discount, terminated in zip(
        batch.obs, batch.rewards, batch.next_obs, batch.discounts, batch.terminated
    ):
        first = {0: 1.0, 1: 2.0, 2: 4.0, 3: 8.0, 10: 16.0, 11: 32.0, 20: 64.0}[int(obs[0])]
        expected_return, expected_next, expected_discount, expected_terminated = N_STEP_EXPECTED[first]
        assert (reward, next_obs[0], discount, terminated) == (
            expected_return,
            expected_next,
            expected_discount,
            expected_terminated,
        ), f"from reward {first}"
        seen.add(first)
    assert batch.rewards.dtype == batch.discounts.dtype == np.float32  # what the compiled update takes
    assert len(seen) == len(buffer)  # every stored transition was drawn (and only those)
    assert (1.0 in seen) == (len(buffer) == 7)  # the wrapped buffers lost the oldest


def test_one_step_sampling_gives_gamma_as_the_discount():
    buffer = ReplayBuffer(10, 2, 1, gamma=0.9)
    for transition in hand_worked_episodes():
        buffer.add(*transition)
    batch = buffer.sample(50, np.random.default_rng(0))
    np.testing.assert_array_equal(batch.discounts, np.float32(0.9))
    next_of = {1: 1, 2: 2, 4: 3, 8: 4, 16: 11, 32: 12, 64: 21}  # reward -> next_obs, one step on
    np.testing.assert_array_equal(batch.next_obs[:, 0], [next_of[int(r)] for r in batch.rewards])


def test_a_buffer_saved_without_episode_ends_works_them_out():
    for compact in (False, True):
        buffer = ReplayBuffer(12, 2, 1, optimize_memory_usage=compact, n_steps=3, gamma=0.5)
        for transition in hand_worked_episodes():
            buffer.add(*transition)
        arrays = buffer.state_arrays()
        del arrays["episode_ends"]  # as keras_sac saved buffers before n-step returns
        restored = ReplayBuffer(12, 2, 1, optimize_memory_usage=compact, n_steps=3, gamma=0.5)
        restored.restore_arrays(arrays)
        # The newest transition's row is marked ended: whether a time limit cut it is not saved there, and
        # ending it only shortens the one n-step sum that starts on it.
        expected = buffer.episode_ends.copy()
        expected[buffer.pos - 1] = True
        np.testing.assert_array_equal(restored.episode_ends, expected)


@pytest.mark.parametrize("compact", [False, True], ids=["plain", "compact"])
@pytest.mark.parametrize("capacity", [9, 40])
def test_n_step_sampling_matches_a_brute_force_reference_on_random_episodes(compact, capacity):
    # Random episodes with terminations, truncations and resets onto the terminal observation (the compact
    # ring's shared row), wrapping the ring; every sampled row against the sum worked out from the list.
    gamma, n = 0.9, 4
    rng = np.random.default_rng(capacity)
    added = list(episodes(rng, 120))
    buffer = ReplayBuffer(capacity, 3, 2, optimize_memory_usage=compact, n_steps=n, gamma=gamma)
    for transition in added:
        buffer.add(*transition)
    index = {t[1].tobytes(): i for i, t in enumerate(added)}  # actions are unique random draws
    batch = buffer.sample(400, rng)
    for obs, action, reward, next_obs, terminated, discount in zip(*batch):
        t = index[action.tobytes()]
        expected_return, k = 0.0, 0
        while True:
            expected_return += gamma**k * added[t + k][2]
            k += 1
            if added[t + k - 1][5] or k == n or t + k == len(added):  # episode end, n steps, or the newest
                break
        last = added[t + k - 1]
        np.testing.assert_array_equal(obs, added[t][0])
        assert reward == pytest.approx(expected_return, rel=1e-5)
        assert discount == pytest.approx(gamma**k, rel=1e-6)
        np.testing.assert_array_equal(next_obs, last[3])
        assert terminated == float(last[4])


def stacked_episodes(rng, n_steps, k=3, frame=(8, 9)):
    """Transitions of FrameStackObservation-style stacks (k frames, an episode's first stacks padded with
    its reset frame), each frame filled with a unique id; episodes of random length."""
    spec = obs_spec(gym.spaces.Box(0, 255, (k, *frame), np.uint8), "frames", "first")
    ids = iter(range(1, 10**6))

    def new_frame():
        return np.full(frame, next(ids) % 251, np.uint8) + rng.integers(0, 4, frame, dtype=np.uint8)

    stack = np.stack([new_frame()] * k)
    for t in range(n_steps):
        next_stack = np.concatenate([stack[1:], new_frame()[None]])
        end = rng.random() < 0.15
        yield spec, {"observation": stack}, np.zeros(1, np.float32), float(t), {"observation": next_stack}, end, end
        stack = np.stack([new_frame()] * k) if end else next_stack


@pytest.mark.parametrize("capacity", [4, 9, 50])
def test_frame_stacks_are_stored_one_frame_per_row_and_read_back_exactly(capacity):
    rng = np.random.default_rng(capacity)
    spec = next(stacked_episodes(rng, 1))[0]
    buffer = ReplayBuffer(capacity, spec, 1, optimize_memory_usage=True, frame_stack=3)
    assert buffer.obs.arrays["observation"].shape == (capacity, 8, 9)  # one frame per row, not three
    added = {}
    for _, obs, action, reward, next_obs, terminated, truncated in stacked_episodes(rng, 400):
        buffer.add(obs, action, reward, next_obs, terminated, truncated)
        added[reward] = (obs["observation"], next_obs["observation"])
        batch = buffer.sample(3 * capacity, rng)
        for obs_s, reward_s, next_s in zip(batch.obs["observation"], batch.rewards, batch.next_obs["observation"]):
            np.testing.assert_array_equal(obs_s, added[float(reward_s)][0])
            np.testing.assert_array_equal(next_s, added[float(reward_s)][1])
            assert float(reward_s) > reward - capacity  # never a transition the ring has overwritten
        assert buffer.rewards[buffer.pos - 1] == reward and buffer.valid[buffer.pos - 1]  # the newest is kept
    frame = 8 * 9
    assert buffer.bytes_per_transition() == frame + 1 + 4 + 4 + 4 + 1 + 1  # frame, age, action, r, term, end, valid
    # restored into the same capacity (exact), a larger one (rows reordered oldest first) and a smaller one
    # (oldest rows dropped: the stacks that read into them leave the sample)
    for new_capacity in (capacity, 2 * capacity, max(6, capacity // 2)):
        restored = ReplayBuffer(new_capacity, spec, 1, optimize_memory_usage=True, frame_stack=3)
        restored.restore_arrays(buffer.state_arrays())
        batch = restored.sample(100, rng)
        for obs_s, reward_s, next_s in zip(batch.obs["observation"], batch.rewards, batch.next_obs["observation"]):
            np.testing.assert_array_equal(obs_s, added[float(reward_s)][0])
            np.testing.assert_array_equal(next_s, added[float(reward_s)][1])


def test_a_compact_stack_ring_restored_smaller_keeps_exactly_the_stacks_it_can_still_read():
    spec = obs_spec(gym.spaces.Box(0, 255, (3, 8, 8), np.uint8), "frames")
    buffer = ReplayBuffer(10, spec, 1, optimize_memory_usage=True, frame_stack=3)
    added, frame = {}, 0
    for episode, length in enumerate([3, 1, 2]):  # rows 0-2 (3: last next_obs), 4 (5), 6-7 (8: newest next_obs)
        frames = [np.full((8, 8), 100 + episode, np.uint8)] * 3
        for t in range(length):
            frame += 1
            obs, frames = np.stack(frames[-3:]), frames + [np.full((8, 8), frame, np.uint8)]
            added[frame] = obs, np.stack(frames[-3:])
            ends = episode < 2 and t == length - 1  # C is still going
            buffer.add({"observation": obs}, [frame], 0.0, {"observation": added[frame][1]}, ends)
    smaller = ReplayBuffer(5, spec, 1, optimize_memory_usage=True, frame_stack=3)
    smaller.restore_arrays(buffer.state_arrays())  # keeps rows 4-8: the one-step episode's two rows, then C's three
    assert smaller.sampleable() == 3  # that episode's transition (its first row reads no older row) and C's two
    batch = smaller.sample(300, np.random.default_rng(0))
    assert set(batch.actions[:, 0].astype(int)) == {4, 5, 6}
    for obs, action, next_obs in zip(batch.obs["observation"], batch.actions[:, 0], batch.next_obs["observation"]):
        np.testing.assert_array_equal(obs, added[int(action)][0])
        np.testing.assert_array_equal(next_obs, added[int(action)][1])


def test_two_frame_stacks_restored_smaller_drop_the_first_kept_row_when_it_reads_a_dropped_one():
    spec = obs_spec(gym.spaces.Box(0, 255, (2, 8, 8), np.uint8), "frames")
    buffer = ReplayBuffer(10, spec, 1, optimize_memory_usage=True, frame_stack=2)
    stack = lambda *frames: {"observation": np.stack([np.full((8, 8), f, np.uint8) for f in frames])}  # noqa: E731
    buffer.add(stack(9, 9), [0], 0.0, stack(9, 1), True)  # a one-step episode: rows 0 and 1
    for t, (a, b, c) in enumerate([(10, 10, 11), (10, 11, 12), (11, 12, 13)], start=1):  # rows 2-4, newest 5
        buffer.add(stack(a, b), [t], 0.0, stack(b, c), False)
    smaller = ReplayBuffer(3, spec, 1, optimize_memory_usage=True, frame_stack=2)
    smaller.restore_arrays(buffer.state_arrays())  # rows 3-5: row 3's stack reads row 2, which is not kept
    assert smaller.sampleable() == 1
    assert set(smaller.sample(50, np.random.default_rng(0)).actions[:, 0].astype(int)) == {3}


def test_stacks_not_padded_as_frame_stack_observation_are_refused_in_one_line():
    spec = obs_spec(gym.spaces.Box(0, 255, (3, 8, 8), np.uint8), "frames")
    buffer = ReplayBuffer(10, spec, 1, optimize_memory_usage=True, frame_stack=3)
    zero_padded = np.stack([np.zeros((8, 8)), np.zeros((8, 8)), np.ones((8, 8))]).astype(np.uint8)
    message = (
        "^frame stacks do not follow one another as FrameStackObservation's do \\(padding with the reset frame\\): "
        "set optimize_memory_usage: false to store whole stacks$"
    )
    with pytest.raises(ValueError, match=message):
        buffer.add({"observation": zero_padded}, np.zeros(1), 0.0, {"observation": zero_padded}, False)


def test_compact_sampling_is_uniform_over_the_valid_rows_however_many_are_redrawn():
    buffer = ReplayBuffer(20, 1, 1, optimize_memory_usage=True)
    for i in range(8):  # one-step episodes: every other row holds only an episode's last next_obs
        buffer.add([i], [0.0], 0.0, [i + 0.5], True)
    assert buffer.size == 16 and buffer.sampleable() == 8
    counts = np.bincount(buffer.sample(16000, np.random.default_rng(0)).obs[:, 0].astype(int), minlength=8)
    assert len(counts) == 8 and np.all(np.abs(counts - 2000) < 250), counts  # half the draws were redrawn


def test_a_single_envs_vector_step_stores_what_add_stores():
    spec = obs_spec(gym.spaces.Box(0, 255, (3, 8, 8), np.uint8), "frames")
    by_add, by_step = (ReplayBuffer(10, spec, 1, optimize_memory_usage=True, frame_stack=3) for _ in range(2))
    frames = [np.full((8, 8), f, np.uint8) for f in (7, 7, 7, 8, 9)]
    for t in range(2):
        obs, next_obs = {"observation": np.stack(frames[t : t + 3])}, {"observation": np.stack(frames[t + 1 : t + 4])}
        by_add.add(obs, np.array([t], np.float32), 1.0, next_obs, False)
        one = {"observation": obs["observation"][None]}, {"observation": next_obs["observation"][None]}
        by_step.add_step(one[0], np.array([[t]], np.float32), np.ones(1), one[1], np.zeros(1, bool), np.zeros(1, bool))
    for name, array in by_add.state_arrays().items():
        np.testing.assert_array_equal(by_step.state_arrays()[name], array, err_msg=name)


@pytest.mark.parametrize("compact", [False, True])
def test_an_empty_buffer_restored_into_another_capacity_is_a_fresh_buffer(compact):
    restored, fresh = (ReplayBuffer(6, 2, 1, optimize_memory_usage=compact) for _ in range(2))
    restored.restore_arrays(ReplayBuffer(9, 2, 1, optimize_memory_usage=compact).state_arrays())
    for buffer in (restored, fresh):
        fill(buffer, 0, 9)  # (wraps: a ring one row short would drop its oldest transition sooner)
    for name, array in fresh.state_arrays().items():
        np.testing.assert_array_equal(restored.state_arrays()[name], array, err_msg=name)


def test_a_buffer_saved_for_other_observations_is_refused_naming_what_it_lacks():
    saved = ReplayBuffer(4, 3, 2).state_arrays()
    image = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
    spec = obs_spec(gym.spaces.Dict({"camera": image, "joints": gym.spaces.Box(-1, 1, (2,))}), "robot")
    lacks = "['next_obs.camera', 'next_obs.joints', 'obs.camera', 'obs.joints']"
    message = f"^the saved buffer lacks {re.escape(lacks)}: it was saved for other observations$"
    with pytest.raises(ValueError, match=message):
        ReplayBuffer(4, spec, 2).restore_arrays(saved)


@pytest.mark.parametrize("obs_dim, action_dim", [(3, 2), (1, 1)])
def test_packed_width_is_the_width_pack_writes(obs_dim, action_dim):
    buffer = ReplayBuffer(4, obs_dim, action_dim)
    buffer.add(np.ones(obs_dim), np.ones(action_dim), 1.0, np.ones(obs_dim), False)
    packed = pack(buffer.sample(5, np.random.default_rng(0)))
    assert packed.shape == (5, packed_width(obs_dim, action_dim))


@pytest.mark.parametrize("capacity", [1, 10])
def test_bytes_per_transition_counts_one_row_of_every_stored_array(capacity):
    # obs and next_obs (3 float32 each), actions (2), reward and terminated (float32), the episode-end flag (bool)
    plain = ReplayBuffer(capacity, 3, 2)
    assert plain.bytes_per_transition() == 4 * (3 + 3 + 2 + 1 + 1) + 1
    several = MultiEnvReplayBuffer(2 * capacity, 3, 2, n_envs=2)
    assert several.bytes_per_transition() == plain.bytes_per_transition()


def test_a_multi_env_buffer_splits_its_capacity_and_refuses_too_few_rows_or_an_empty_sample():
    assert MultiEnvReplayBuffer(10, 3, 2, n_envs=3).capacity == 9  # 3 rows per env
    with pytest.raises(
        ValueError, match=r"^buffer_size \(2\) must be at least n_envs \(3\): each env keeps its own rows$"
    ):
        MultiEnvReplayBuffer(2, 3, 2, n_envs=3)
    with pytest.raises(ValueError, match="^cannot sample from an empty replay buffer$"):
        MultiEnvReplayBuffer(10, 3, 2, n_envs=2).sample(4, np.random.default_rng(0))


@pytest.mark.parametrize("saved_envs", [1, 3])
def test_a_buffer_saved_with_other_n_envs_is_refused_naming_both_counts(saved_envs):
    saved = ReplayBuffer(8, 3, 2) if saved_envs == 1 else MultiEnvReplayBuffer(9, 3, 2, n_envs=3)
    step = (np.ones((saved_envs, 3)), np.ones((saved_envs, 2)), np.ones(saved_envs), np.ones((saved_envs, 3)))
    saved.add_step(*step, np.zeros(saved_envs, bool), np.zeros(saved_envs, bool))
    message = (
        f"^the saved buffer holds the rows of {saved_envs} env\\(s\\), this agent has n_envs 2: load it with the "
        "n_envs it was saved with$"
    )
    with pytest.raises(ValueError, match=message):
        MultiEnvReplayBuffer(8, 3, 2, n_envs=2).restore_arrays(saved.state_arrays())
