"""Property tests of the replay machinery against a plain-Python reference model (hypothesis).

Random programs of adds (episodes of random lengths ending by termination or truncation, in one env or
several), samples, saves and restores into another capacity run against the buffer and against `Reference`,
a list of every transition in the order it was added. Each observation names its env, episode and step, so
every sampled transition is looked up in the reference and compared field by field: obs, action, the n-step
reward, discount and next_obs, terminated. The reference also says which transitions the ring still holds
(the newest rows, counted as the buffer lays them out) and the sample must come from exactly those.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_sac.core.spaces import obs_spec
from keras_sac.data.buffer import MultiEnvReplayBuffer, ReplayBuffer
from keras_sac.data.her import HerReplayBuffer

GAMMA = 0.9
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclasses.dataclass
class Step:
    env: int
    episode: int
    step: int
    action: float
    reward: float
    terminated: bool
    truncated: bool
    row: int = 0  # where the buffer puts its obs, counted from the env's first row ever (no wrap)

    @property
    def key(self) -> tuple[int, int, int]:
        return self.env, self.episode, self.step

    @property
    def ends(self) -> bool:
        return self.terminated or self.truncated


def state(env: int, episode: int, step: int) -> np.ndarray:
    return np.array([env, episode, step], np.float32)


class Reference:
    """Every transition added, per env, with the rows the buffer's layout gives them.

    Plain storage: one row per transition. Compact storage: a transition's obs row, and its next_obs in the
    row after (provisional until the next add); an add that does not continue the episode skips that row.
    The ring of `capacity` rows holds the rows newer than its newest minus capacity; a restore into another
    capacity keeps the newest rows that fit.
    """

    def __init__(self, n_envs: int, capacity: int, compact: bool, n_steps: int):
        self.compact, self.n_steps = compact, n_steps
        self.steps: list[list[Step]] = [[] for _ in range(n_envs)]
        self.capacity = capacity  # rows per env
        self.oldest = [0] * n_envs  # each env's oldest row the buffer still holds

    def add(self, step: Step) -> None:
        history = self.steps[step.env]
        if history:
            last = history[-1]
            step.row = last.row + (2 if self.compact and last.ends else 1)
        history.append(step)
        self._forget(step.env, self.capacity)

    def newest_row(self, env: int) -> int:
        last = self.steps[env][-1]
        return last.row + (1 if self.compact else 0)  # compact: the newest transition's next_obs row

    def _forget(self, env: int, capacity: int) -> None:
        if self.steps[env]:
            self.oldest[env] = max(self.oldest[env], self.newest_row(env) - capacity + 1)

    def restore(self, capacity: int) -> None:
        self.capacity = capacity
        for env in range(len(self.steps)):
            self._forget(env, capacity)

    def held(self) -> dict[tuple[int, int, int], int]:
        """{key: index in its env's history} of every transition the ring holds."""
        return {
            s.key: i
            for env, history in enumerate(self.steps)
            for i, s in enumerate(history)
            if s.row >= self.oldest[env]
        }

    def n_step(self, key: tuple[int, int, int]) -> tuple[float, float, np.ndarray, bool]:
        """(reward sum, discount, next_obs, terminated) of the transition `key` over up to n steps."""
        history = self.steps[key[0]]
        i = self.held()[key]
        reward, discount, j = 0.0, 1.0, i
        while True:
            reward += discount * history[j].reward
            discount *= GAMMA
            if history[j].ends or j - i + 1 == self.n_steps or j + 1 == len(history):
                break
            j += 1
        last = history[j]
        return reward, discount, state(last.env, last.episode, last.step + 1), last.terminated


@st.composite
def programs(draw):
    """(settings, operations): episodes of 1-7 steps per env, samples and save/restore points between them."""
    n_envs = draw(st.integers(1, 3))
    compact = draw(st.booleans())
    n_steps = draw(st.integers(1, 3))
    capacity = draw(st.integers(2 * n_envs if compact else n_envs, 24))
    operations = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("step"), st.floats(-5, 5, width=32), st.sampled_from(["", "", "", "term", "trunc"])),
                st.tuples(st.just("sample"), st.integers(1, 40)),
                st.tuples(st.just("restore"), st.integers(2 * n_envs if compact else n_envs, 30)),
            ),
            min_size=1,
            max_size=80,
        )
    )
    return dict(n_envs=n_envs, compact=compact, n_steps=n_steps, capacity=capacity), operations


def make_buffer(n_envs, capacity, compact, n_steps):
    options = dict(optimize_memory_usage=compact, n_steps=n_steps, gamma=GAMMA)
    if n_envs == 1:
        return ReplayBuffer(capacity, 3, 1, **options)
    return MultiEnvReplayBuffer(capacity, 3, 1, n_envs, **options)


@PROPERTY_SETTINGS
@given(programs(), st.integers(0, 2**32 - 1))
def test_every_sampled_transition_is_the_references_and_the_sample_is_the_held_set(program, seed):
    config, operations = program
    n_envs, compact, n_steps = config["n_envs"], config["compact"], config["n_steps"]
    buffer = make_buffer(n_envs, config["capacity"], compact, n_steps)
    reference = Reference(n_envs, config["capacity"] // n_envs, compact, n_steps)
    rng = np.random.default_rng(seed)
    episode, t = [0] * n_envs, [0] * n_envs  # each env's episode number and step in it
    for op in operations:
        if op[0] == "step":  # every env steps once (one vector step); env i's reward is op's plus i
            _, reward, end = op
            steps = [
                Step(i, episode[i], t[i], 0.1 * i + 0.01 * t[i], reward + i, end == "term", end == "trunc")
                for i in range(n_envs)
            ]
            buffer.add_step(
                np.stack([state(s.env, s.episode, s.step) for s in steps]),
                np.array([[s.action] for s in steps], np.float32),
                np.array([s.reward for s in steps]),
                np.stack([state(s.env, s.episode, s.step + 1) for s in steps]),
                np.array([s.terminated for s in steps]),
                np.array([s.truncated for s in steps]),
            )
            for s in steps:
                reference.add(s)
                episode[s.env], t[s.env] = (s.episode + 1, 0) if s.ends else (s.episode, s.step + 1)
        elif op[0] == "restore":  # a checkpoint of the buffer, loaded into a buffer of another capacity
            restored = make_buffer(n_envs, op[1], compact, n_steps)
            restored.restore_arrays(buffer.state_arrays())
            buffer = restored
            reference.restore(op[1] // n_envs)
        held = reference.held()
        assert len(buffer) == len(held)
        if op[0] != "sample" or not held:
            continue
        batch = buffer.sample(op[1], rng)
        for k in range(op[1]):
            key = tuple(int(v) for v in batch.obs[k])
            assert key in held, f"sampled {key}, which the ring no longer holds (or never held)"
            step = reference.steps[key[0]][held[key]]
            reward, discount, next_obs, terminated = reference.n_step(key)
            assert batch.actions[k, 0] == np.float32(step.action)
            np.testing.assert_allclose(batch.rewards[k], reward, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(batch.discounts[k], discount, rtol=1e-6)
            np.testing.assert_array_equal(batch.next_obs[k], next_obs)
            assert bool(batch.terminated[k]) == terminated
    if len(buffer):  # and a large sample reaches every held transition: uniform over exactly that set
        held = reference.held()
        batch = buffer.sample(200 * len(held), rng)
        assert {tuple(int(v) for v in o) for o in batch.obs} == set(held)


FRAME = (8, 8)


def stack_of(frames: list[np.ndarray], k: int) -> np.ndarray:
    """FrameStackObservation's stack: the last k frames, an episode's first ones padded with its reset frame."""
    padded = [frames[0]] * max(0, k - len(frames)) + frames[-k:]
    return np.stack(padded)


@PROPERTY_SETTINGS
@given(
    st.integers(2, 4),
    st.integers(5, 20),  # (k + 1 rows hold one transition of k-frame stacks; fewer are refused)
    st.lists(st.one_of(st.sampled_from(["", "", "", "end"]), st.integers(5, 25)), min_size=1, max_size=70),
)
def test_compact_frame_stacks_read_back_each_transitions_own_stacks_across_wraps_and_restores(k, capacity, ops):
    spec = obs_spec(gym.spaces.Box(0, 255, (k, *FRAME), np.uint8), "frames", "first")
    buffer = ReplayBuffer(capacity, spec, 1, optimize_memory_usage=True, frame_stack=k)
    added: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # transition id (its action) -> (obs, next_obs)
    # The reference layout: transition id -> the oldest row its stacks read (its obs row minus the earlier
    # frames of its episode, at most k - 1); an episode end leaves one row for the last next_obs.
    reads_from: dict[int, int] = {}
    next_row, step, newest, oldest = 0, 0, 0, 0
    # (a first frame of zeros would match the unwritten rows before it, and the buffer would count its stack
    # as continuing them: the same frames, read back from one row more than needed)
    frames = [np.full(FRAME, 255, np.uint8)]
    count = 0
    for op in ops:
        if isinstance(op, int):  # restore into another capacity: the newest `op` rows stay
            restored = ReplayBuffer(op, spec, 1, optimize_memory_usage=True, frame_stack=k)
            restored.restore_arrays(buffer.state_arrays())
            buffer = restored
            capacity = op
        else:
            count += 1
            obs = stack_of(frames, k)
            frames.append(np.full(FRAME, count % 256, np.uint8))
            next_obs = stack_of(frames, k)
            buffer.add({"observation": obs}, np.array([count], np.float32), 0.0, {"observation": next_obs}, op == "end")
            added[count] = (obs, next_obs)
            if op == "end":
                frames = [np.full(FRAME, (count + 128) % 256, np.uint8)]  # the next episode's reset frame
            reads_from[count], newest = next_row - min(step, k - 1), next_row + 1  # (newest: its next_obs row)
            next_row, step = (next_row + 2, 0) if op == "end" else (next_row + 1, step + 1)
        oldest = max(oldest, newest - capacity + 1)  # the ring holds the newest `capacity` rows
        held = {t for t, first in reads_from.items() if first >= oldest}
        assert buffer.sampleable() == len(held)
        if not held:
            continue
        everything = buffer.sample(100 * capacity, np.random.default_rng(count))
        ids, first = np.unique(everything.actions[:, 0].astype(int), return_index=True)
        assert set(ids) == held  # exactly the transitions whose rows it holds (the newest among them)
        for t, j in zip(ids, first):  # each one's stacks, once
            obs_j, next_j = added[int(t)]
            np.testing.assert_array_equal(everything.obs["observation"][j], obs_j)
            np.testing.assert_array_equal(everything.next_obs["observation"][j], next_j)


GOAL_SPEC = obs_spec(
    gym.spaces.Dict(
        {
            "observation": gym.spaces.Box(-1e6, 1e6, (2,), np.float32),
            "achieved_goal": gym.spaces.Box(-1e6, 1e6, (1,), np.float32),
            "desired_goal": gym.spaces.Box(-1e6, 1e6, (1,), np.float32),
        }
    ),
    "goals",
)


def goal_reward(achieved, desired, info):
    return -(np.abs(np.asarray(achieved) - np.asarray(desired))[..., 0] > 0.5).astype(np.float32)


@PROPERTY_SETTINGS
@given(
    st.integers(4, 30),
    st.sampled_from(["future", "final", "episode"]),
    st.lists(st.sampled_from(["", "", "", "term", "trunc"]), min_size=1, max_size=80),
    st.integers(0, 2**32 - 1),
)
def test_her_relabels_from_the_same_finished_episode_by_its_strategy(capacity, strategy, ends, seed):
    buffer = HerReplayBuffer(capacity, GOAL_SPEC, 1, goal_reward, n_sampled_goal=3, goal_selection_strategy=strategy)
    episodes: list[list[int]] = [[]]  # transition ids per episode; a transition's achieved goal is its id
    rng = np.random.default_rng(seed)
    for i, end in enumerate(ends, start=1):
        obs = {"observation": np.array([i, len(episodes)], np.float32), "achieved_goal": np.array([i - 1], np.float32)}
        obs["desired_goal"] = np.array([-1.0], np.float32)
        next_obs = {**obs, "achieved_goal": np.array([i], np.float32)}
        next_obs["observation"] = np.array([i + 1, len(episodes)], np.float32)
        buffer.add(obs, np.array([i], np.float32), -1.0, next_obs, end == "term", end == "trunc")
        episodes[-1].append(i)
        if end:
            episodes.append([])
        finished = [e for e in episodes[:-1] if e]
        # the finished episodes the ring holds whole (an episode it has begun to overwrite leaves the sample)
        whole = [e for e in finished if e[0] > i - capacity]
        assert buffer.sampleable() == sum(len(e) for e in whole)
        if not whole:
            continue
        batch = buffer.sample(64, rng)
        episode_of = {t: e for e in whole for t in e}
        for j in range(64):
            t = int(batch.actions[j, 0])
            assert t in episode_of, f"sampled transition {t}, not in a finished episode the ring holds"
            assert int(batch.obs["observation"][j, 0]) == t and int(batch.next_obs["observation"][j, 0]) == t + 1
            goal = float(batch.obs["desired_goal"][j, 0])
            assert goal == float(batch.next_obs["desired_goal"][j, 0])  # obs and next_obs get the same goal
            episode = episode_of[t]
            allowed = {
                "future": [g for g in episode if g >= t],
                "final": [episode[-1]],
                "episode": episode,
            }[strategy]
            assert goal == -1.0 or goal in allowed, (goal, t, strategy)
            assert batch.rewards[j] == goal_reward(np.array([t], np.float32), np.array([goal], np.float32), {})
