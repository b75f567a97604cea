"""Hindsight experience replay: which goals relabelling picks, the rewards it recomputes, where episodes are cut,
what is never sampled, and that it is saved and resumed with the agent."""

import gymnasium as gym
import numpy as np
import pytest
from conftest import SMALL

from keras_sac import ConfigError, KerasSAC
from keras_sac.core.spaces import obs_spec
from keras_sac.data.buffer import MultiEnvReplayBuffer, ReplayBuffer
from keras_sac.data.her import HerError, HerReplayBuffer, check_goal_env
from keras_sac.envs.goal import ENV_ID, PointGoalEnv

SPEC = obs_spec(PointGoalEnv().observation_space, "PointGoal")


def goal_obs(step: float, episode: int, goal: float) -> dict:
    """An observation whose achieved goal names its episode and step: (episode, step)."""
    return {
        "observation": np.array([episode, step], np.float32),
        "achieved_goal": np.array([episode, step], np.float32),
        "desired_goal": np.array([goal, goal], np.float32),
    }


def fill(buffer, lengths, truncate=True, start_episode=0):
    """Episodes of the given lengths; each ends truncated (or, truncate=False, the last one stays open)."""
    for e, length in enumerate(lengths, start=start_episode):
        for t in range(length):
            last = t == length - 1 and (truncate or e < start_episode + len(lengths) - 1)
            buffer.add(goal_obs(t, e, 9.0), np.zeros(2), -1.0, goal_obs(t + 1, e, 9.0), False, last)


def sparse_reward(achieved, desired, info):
    return -(np.linalg.norm(achieved - desired, axis=-1) > 0.05).astype(np.float32)


def her(capacity=100, k=4, strategy="future"):
    return HerReplayBuffer(capacity, SPEC, 2, sparse_reward, n_sampled_goal=k, goal_selection_strategy=strategy)


@pytest.mark.parametrize("strategy", ["future", "final", "episode"])
def test_relabelled_goals_come_from_the_same_episode_by_the_strategy(strategy):
    buffer = her(strategy=strategy)
    fill(buffer, [5, 7, 3])
    batch = buffer.sample(4000, np.random.default_rng(0))
    relabelled = batch.obs["desired_goal"][:, 0] != 9.0
    assert abs(relabelled.mean() - 0.8) < 0.03  # n_sampled_goal 4: a share 4/5
    episode, step = batch.obs["observation"][relabelled].T
    goal_episode, goal_step = batch.obs["desired_goal"][relabelled].T
    np.testing.assert_array_equal(goal_episode, episode)  # never another episode's goal
    np.testing.assert_array_equal(batch.next_obs["desired_goal"][relabelled], batch.obs["desired_goal"][relabelled])
    lengths = np.array([5, 7, 3])[episode.astype(int)]
    # goal = next_obs achieved_goal of step j: (episode, j + 1)
    if strategy == "future":
        assert np.all(goal_step >= step + 1) and np.all(goal_step <= lengths)
        assert np.any(goal_step == step + 1) and np.any(goal_step > step + 1)
    elif strategy == "final":
        np.testing.assert_array_equal(goal_step, lengths)
    else:
        assert np.all((goal_step >= 1) & (goal_step <= lengths)) and np.any(goal_step < step + 1)
    # rewards recomputed for the new goal: 0 exactly where the transition reached it
    reached = goal_step == step + 1
    np.testing.assert_array_equal(batch.rewards[relabelled], np.where(reached, 0.0, -1.0))
    np.testing.assert_array_equal(batch.rewards[~relabelled], -1.0)  # real goals keep the env's reward


def test_only_finished_episodes_are_sampled_and_none_finished_is_one_line():
    buffer = her()
    fill(buffer, [4], truncate=False)
    with pytest.raises(HerError, match="none has finished .* raise learning_starts"):
        buffer.sample(8, np.random.default_rng(0))
    fill(buffer, [3, 6, 2], truncate=False, start_episode=1)  # episodes 1 and 2 end, episode 3 is in progress
    batch = buffer.sample(2000, np.random.default_rng(0))
    assert set(batch.obs["observation"][:, 0].astype(int)) == {1, 2}  # episode 0 was left by a reset


def test_a_reset_without_an_episode_end_starts_a_new_episode():
    buffer = her()
    fill(buffer, [4], truncate=False)  # an episode abandoned by a reset (e.g. a new learn())
    fill(buffer, [3], start_episode=1)
    batch = buffer.sample(2000, np.random.default_rng(1))
    assert set(batch.obs["observation"][:, 0].astype(int)) == {1}  # the abandoned one never mixes in


def test_overwriting_the_oldest_episode_drops_all_of_it():
    buffer = her(capacity=12)
    fill(buffer, [5, 5, 4])  # 14 rows in 12: episode 0 loses its first two rows
    batch = buffer.sample(3000, np.random.default_rng(0))
    assert set(batch.obs["observation"][:, 0].astype(int)) == {1, 2}
    assert buffer.sampleable() == 9


def test_her_state_is_saved_and_sampling_resumes_exactly():
    buffer = her(capacity=20)
    fill(buffer, [6, 6, 6, 5])
    fill(buffer, [3], truncate=False, start_episode=4)
    copy = her(capacity=20)
    # checkpoints name each array: files written by earlier versions load only while the names stay
    her_names = {"ep_start", "ep_length", "episode_steps"}
    assert her_names <= set(buffer.state_arrays()) and not her_names & set(ReplayBuffer(4, 2, 2).state_arrays())
    copy.restore_arrays(buffer.state_arrays())
    a, b = buffer.sample(64, np.random.default_rng(5)), copy.sample(64, np.random.default_rng(5))
    for x, y in zip(a, b):
        for key in x if isinstance(x, dict) else [None]:
            np.testing.assert_array_equal(x[key] if key else x, y[key] if key else y)
    # another capacity rebuilds the episodes from their ends
    bigger = her(capacity=50)
    bigger.restore_arrays(buffer.state_arrays())
    assert bigger.sampleable() == buffer.sampleable()
    batch = bigger.sample(2000, np.random.default_rng(0))
    goal_episode = batch.obs["desired_goal"][:, 0]
    relabelled = goal_episode != 9.0
    np.testing.assert_array_equal(goal_episode[relabelled], batch.obs["observation"][relabelled, 0])


def test_her_agent_trains_saves_and_resumes_on_the_goal_env(tmp_path):
    agent = KerasSAC(ENV_ID, seed=0, replay_buffer="her", **SMALL, vector_encoder_arch=(16,))
    agent.learn(120)
    assert isinstance(agent.buffer, HerReplayBuffer)
    agent.save(tmp_path / "ck")
    loaded = KerasSAC.load(tmp_path / "ck")
    agent.learn(60, reset_num_timesteps=False)
    loaded.learn(60, reset_num_timesteps=False)
    for a, b in zip(agent.actor.variables, loaded.actor.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    obs, _ = gym.make(ENV_ID).reset(seed=0)
    assert agent.predict(obs, deterministic=True)[0].shape == (2,)


def test_her_on_an_env_without_goals_or_with_compact_storage_is_one_line():
    with pytest.raises(ConfigError, match="replay_buffer: her needs a goal-conditioned env with Dict observations"):
        KerasSAC("Pendulum-v1", replay_buffer="her")
    with pytest.raises(ConfigError, match="set optimize_memory_usage: false and n_steps: 1"):
        KerasSAC(ENV_ID, replay_buffer="her", optimize_memory_usage=True)


def test_her_with_several_envs_keeps_one_ring_per_env():
    with pytest.raises(
        ConfigError, match="learning_starts \\(50\\) must cover one 50-step episode per env; set learning_starts: 100"
    ):
        KerasSAC(ENV_ID, seed=0, replay_buffer="her", n_envs=2, **SMALL)
    agent = KerasSAC(ENV_ID, seed=0, replay_buffer="her", n_envs=2, **{**SMALL, "learning_starts": 100})
    agent.learn(160)
    assert all(isinstance(p, HerReplayBuffer) for p in agent.buffer.parts)
    assert sum(p.sampleable() for p in agent.buffer.parts) >= 100  # two 50-step episodes per env at least


def test_several_envs_sample_the_finished_episodes_of_one_while_the_other_has_none():
    buffer = MultiEnvReplayBuffer(40, SPEC, 2, n_envs=2, part=lambda *a, **k: her(capacity=20))
    fill(buffer.parts[0], [4])
    fill(buffer.parts[1], [3], truncate=False, start_episode=1)  # env 1's episode goes on: nothing to sample
    batch = buffer.sample(32, np.random.default_rng(0))
    assert set(batch.obs["observation"][:, 0]) == {0.0}  # env 0's episode only


def test_an_env_her_cannot_relabel_is_refused_in_one_line_naming_why():
    box = gym.spaces.Box(-1, 1, (2,), np.float32)
    no_goals = obs_spec(gym.spaces.Dict({"observation": box}), "reach")
    with pytest.raises(
        HerError, match=r"^replay_buffer: her needs .* \(env 'reach' observes .*\): use replay_buffer: uniform$"
    ):
        check_goal_env(no_goals, sparse_reward, "reach")
    other_shapes = obs_spec(gym.spaces.Dict({"achieved_goal": box, "desired_goal": gym.spaces.Box(-1, 1, (3,))}), "x")
    message = (
        r"^env 'x': achieved_goal \(2,\) and desired_goal \(3,\) differ in shape, so one cannot stand for the other$"
    )
    with pytest.raises(HerError, match=message):
        check_goal_env(other_shapes, sparse_reward, "x")
    goals_only = obs_spec(gym.spaces.Dict({"achieved_goal": box, "desired_goal": box}), "y")
    check_goal_env(goals_only, sparse_reward, "y")  # the two goals are all HER needs
    message = "^env 'y' has no compute_reward\\(achieved_goal, desired_goal, info\\) method, which HER needs"
    with pytest.raises(HerError, match=message):
        check_goal_env(goals_only, None, "y")


@pytest.mark.parametrize("options", [dict(optimize_memory_usage=True), dict(n_steps=2)])
def test_the_her_buffer_itself_refuses_compact_storage_and_n_step_sums(options):
    message = "^replay_buffer: her stores plain one-step transitions: set optimize_memory_usage: false and n_steps: 1$"
    with pytest.raises(HerError, match=message):
        HerReplayBuffer(10, SPEC, 2, sparse_reward, **options)
    HerReplayBuffer(10, SPEC, 2, sparse_reward, optimize_memory_usage=False, n_steps=1)  # the one-step ring is fine


def test_defaults_are_sb3s_and_the_ring_gets_the_other_options():
    buffer = HerReplayBuffer(50, SPEC, 2, sparse_reward, gamma=0.9)
    assert buffer.her_ratio == 0.8 and buffer.strategy == "future"  # n_sampled_goal 4, as SB3
    fill(buffer, [3])
    discounts = buffer.sample(16, np.random.default_rng(0)).discounts
    assert discounts.dtype == np.float32 and np.all(discounts == np.float32(0.9))


def test_flags_are_stored_as_given_and_an_add_without_truncated_goes_on():
    buffer = her()
    buffer.add(goal_obs(0, 0, 9.0), np.zeros(2), -1.0, goal_obs(1, 0, 9.0), False)  # `truncated` left out
    assert buffer.sampleable() == 0
    buffer.add(goal_obs(1, 0, 9.0), np.zeros(2), -1.0, goal_obs(2, 0, 9.0), True)  # terminated
    fill(buffer, [2], start_episode=1)  # truncated
    batch = buffer.sample(400, np.random.default_rng(0))
    episode, step = batch.obs["observation"].T
    np.testing.assert_array_equal(batch.terminated, (episode == 0) & (step == 1))  # the truncated end bootstraps


def test_an_episode_as_long_as_the_ring_is_sampled_and_a_longer_one_is_not():
    exact, longer = her(capacity=6), her(capacity=6)
    fill(exact, [6])
    fill(longer, [7])
    assert exact.sampleable() == 6 and longer.sampleable() == 0


def continue_episode(buffer, episode, first_step, last_step):
    """Steps first_step..last_step of an open episode, the last one truncated."""
    for t in range(first_step, last_step + 1):
        buffer.add(goal_obs(t, episode, 9.0), np.zeros(2), -1.0, goal_obs(t + 1, episode, 9.0), False, t == last_step)


@pytest.mark.parametrize("capacity", [20, 50])
@pytest.mark.parametrize("saved_steps", [True, False])
def test_an_episode_open_at_a_save_goes_on_after_the_restore(capacity, saved_steps):
    buffer = her(capacity=20)
    fill(buffer, [6, 1, 6])  # (a one-step episode counts too)
    fill(buffer, [3], truncate=False, start_episode=3)
    arrays = buffer.state_arrays()
    if not saved_steps:  # files written before the step count was saved: counted from the rows
        del arrays["episode_steps"]
    copy = her(capacity=capacity)
    copy.restore_arrays(arrays)
    assert copy.sampleable() == buffer.sampleable() == 13
    for b in (buffer, copy):
        continue_episode(b, 3, 3, 4)
    assert copy.sampleable() == buffer.sampleable() == 18
    for name, array in buffer.state_arrays().items():  # (16 rows: the same layout in either capacity)
        np.testing.assert_array_equal(copy.state_arrays()[name], array, err_msg=name)


def her_with_an_open_long_episode():
    """Episode 0 (3 steps), then episode 1 still open after 10 steps in 8 rows: it overwrote its own beginning."""
    buffer = her(capacity=8)
    fill(buffer, [3])
    fill(buffer, [10], truncate=False, start_episode=1)
    return buffer


def test_an_open_episode_longer_than_the_ring_stays_out_of_the_sample_after_a_restore():
    buffer, copy = her_with_an_open_long_episode(), her(capacity=8)
    copy.restore_arrays(buffer.state_arrays())
    for b in (buffer, copy):
        continue_episode(b, 1, 10, 10)
        assert b.sampleable() == 0
        fill(b, [2], start_episode=2)
        assert b.sampleable() == 2
    # In a larger ring the steps it holds (2-9) are the episode, as if it had begun there: 9 rows once it ends
    larger = her(capacity=50)
    larger.restore_arrays(her_with_an_open_long_episode().state_arrays())
    continue_episode(larger, 1, 10, 10)
    assert larger.sampleable() == 9
    batch = larger.sample(500, np.random.default_rng(0))
    assert set(batch.obs["observation"][:, 1].astype(int)) == set(range(2, 11))


def test_sampling_is_uniform_over_the_finished_rows_however_many_are_redrawn():
    buffer = her(capacity=100)
    fill(buffer, [4, 4])
    fill(buffer, [80], truncate=False, start_episode=2)  # 80 of 88 rows are an episode in progress
    batch = buffer.sample(16000, np.random.default_rng(0))
    episode, step = batch.obs["observation"].T.astype(int)
    counts = np.bincount(4 * episode + step, minlength=8)
    assert len(counts) == 8 and np.all(np.abs(counts - 2000) < 250), counts


@pytest.mark.parametrize("strategy", ["future", "episode"])
def test_each_relabelled_transition_draws_its_own_goal(strategy):
    buffer = her(strategy=strategy)
    fill(buffer, [7])
    batch = buffer.sample(2000, np.random.default_rng(0))
    first = (batch.obs["observation"][:, 1] == 0) & (batch.obs["desired_goal"][:, 0] != 9.0)
    goal_steps = set(batch.obs["desired_goal"][first, 1].astype(int))
    assert goal_steps == set(range(1, 8))  # from a step-0 transition every step of its episode is a goal


def test_compute_reward_gets_one_info_dict_per_relabelled_transition():
    seen = []

    def reward(achieved, desired, info):
        seen.append((len(achieved), info))
        return sparse_reward(achieved, desired, info)

    buffer = HerReplayBuffer(50, SPEC, 2, reward)
    fill(buffer, [5])
    buffer.sample(64, np.random.default_rng(0))
    ((n, info),) = seen
    assert isinstance(info, np.ndarray) and info.shape == (n,) and all(i == {} for i in info)


def test_several_envs_sample_the_one_finished_transition_of_the_second_env():
    buffer = MultiEnvReplayBuffer(40, SPEC, 2, n_envs=2, part=lambda *a, **k: her(capacity=20))
    fill(buffer.parts[0], [3], truncate=False)  # env 0: nothing finished
    fill(buffer.parts[1], [1], start_episode=1)  # env 1: one finished one-step episode
    batch = buffer.sample(8, np.random.default_rng(0))
    assert set(batch.obs["observation"][:, 0]) == {1.0}
