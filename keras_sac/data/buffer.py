"""Preallocated ring buffer of transitions: float32, but images stay uint8."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_sac.core import spaces
from keras_sac.core.spaces import Batch, ObsSpec


def pack(batch: Batch) -> np.ndarray:
    """A batch as one (batch, 2 * obs_dim + action_dim + 3) array, columns in `Batch` order.

    One array instead of six: each argument of a compiled call costs ~50 us of dispatch here.
    """
    return np.concatenate(
        [
            batch.obs,
            batch.actions,
            batch.rewards[:, None],
            batch.next_obs,
            batch.terminated[:, None],
            batch.discounts[:, None],
        ],
        axis=1,
    )


def packed_width(obs_dim: int, action_dim: int) -> int:
    return 2 * obs_dim + action_dim + 3


def unpack(packed, obs_dim: int, action_dim: int) -> Batch:
    """Inverse of `pack` on the last axis; works on NumPy arrays and tensors alike."""
    sizes = [obs_dim, action_dim, 1, obs_dim, 1, 1]
    ends = np.cumsum(sizes)
    obs, actions, rewards, next_obs, terminated, discounts = (
        packed[..., end - size : end] for size, end in zip(sizes, ends)
    )
    return Batch(obs, actions, rewards[..., 0], next_obs, terminated[..., 0], discounts[..., 0])


class ObsArrays:
    """Observations with several keys or image dtypes: one preallocated array per key, indexed as one array
    (rows in, {key: rows} out).

    frame_stack k > 1 (compact storage of `pixels` frame stacks, key "observation" of shape (k, ...)): the
    row holds only the stack's newest frame, and `ages[key]` how many earlier frames of the same stack
    precede it in the rows just before (at most k - 1). A stack is read back from those rows; where the
    age runs out the oldest stored frame repeats, as FrameStackObservation pads an episode's first stacks
    with its reset frame. So each frame is stored once instead of k times.
    """

    def __init__(self, capacity: int, spec: ObsSpec, frame_stack: int = 1):
        self.capacity, self.frame_stack = capacity, frame_stack
        stacked = {spaces.BOX_KEY} if frame_stack > 1 else set()
        self.arrays = {
            e.key: np.zeros((capacity, *(e.shape[1:] if e.key in stacked else e.shape)), e.dtype) for e in spec.entries
        }
        self.ages = {key: np.zeros((capacity,), np.uint8) for key in stacked}

    def __getitem__(self, idx) -> dict:
        return {k: self._stacks(k, idx) if k in self.ages else a[idx] for k, a in self.arrays.items()}

    def _stacks(self, key: str, idx):
        """The frame stacks of rows `idx` of a stacked key, oldest frame first."""
        rows = np.asarray(idx)
        lags = np.arange(self.frame_stack - 1, -1, -1)
        back = np.minimum(lags, self.ages[key][rows][..., None])  # (..., k)
        return self.arrays[key][(rows[..., None] - back) % self.capacity]

    def __setitem__(self, idx: int, value: dict) -> None:
        for k, a in self.arrays.items():
            if k not in self.ages:
                a[idx] = value[k]
                continue
            stack = np.asarray(value[k])
            previous = (idx - 1) % self.capacity
            if np.array_equal(self._stacks(k, previous)[1:], stack[:-1]):  # continues the stack in the row before
                self.ages[k][idx] = min(int(self.ages[k][previous]) + 1, self.frame_stack - 1)
            elif (stack == stack[-1]).all():  # an episode's first stack: its reset frame k times
                self.ages[k][idx] = 0
            else:
                raise ValueError(
                    "frame stacks do not follow one another as FrameStackObservation's do (padding "
                    "with the reset frame): set optimize_memory_usage: false to store whole stacks"
                )
            a[idx] = stack[-1]

    def references(self, idx: int) -> int:
        """How many rows before `idx` its observation reads (0 without frame stacks)."""
        return max((int(age[idx]) for age in self.ages.values()), default=0)


def _obs_storage(capacity: int, obs: int | ObsSpec, frame_stack: int = 1):
    if isinstance(obs, ObsSpec) and not obs.flat:
        return ObsArrays(capacity, obs, frame_stack)
    return np.zeros((capacity, obs.obs_dim if isinstance(obs, ObsSpec) else obs), np.float32)


def _same_obs(a, b) -> bool:
    if isinstance(a, dict):
        return all(np.array_equal(a[k], b[k]) for k in a)
    return np.array_equal(a, b)


class ReplayBuffer:
    """Fixed-capacity FIFO of transitions in `capacity` rows; the oldest is overwritten once full.

    Stores `terminated`, not `done`: a Gymnasium time-limit truncation must still bootstrap from next_obs.
    Memory is allocated up front (np.zeros pages in lazily, so an unfilled buffer costs little RSS).

    Without `optimize_memory_usage` a row is one transition. With it, observations are stored once: row
    i's next_obs is row i + 1's obs, so `capacity` rows hold fewer transitions (one row per episode end).
    Each `add` also writes its next_obs into the following row; the next `add` starts there when its obs is
    that same observation (the episode went on) and one row further on otherwise (a new episode), leaving
    the old row as a pure next-obs row that is never sampled as a transition start (`valid` is False).
    """

    def __init__(
        self,
        capacity: int,
        obs_dim: int | ObsSpec,
        action_dim: int,
        optimize_memory_usage: bool = False,
        n_steps: int = 1,
        gamma: float = 0.99,
        frame_stack: int = 1,
    ):
        """obs_dim: the size of flat observations, or the `ObsSpec` of any observation (images keep their
        dtype: one array per key). frame_stack: with optimize_memory_usage, the "observation" key is a stack
        of this many frames (SACConfig.pixels), stored one frame per row (see `ObsArrays`)."""
        self.capacity = int(capacity)  # rows
        self.n_steps, self.gamma = int(n_steps), float(gamma)
        self.optimize_memory_usage = bool(optimize_memory_usage)
        if frame_stack > 1 and not self.optimize_memory_usage:
            raise ValueError("frame_stack storage needs optimize_memory_usage")
        if frame_stack > 1 and self.capacity < frame_stack + 1:  # a stack reads k - 1 rows back, next_obs 1 on
            raise ValueError(f"{frame_stack}-frame stacks stored once per row need at least {frame_stack + 1} rows")
        self.frame_stack = int(frame_stack)
        self.obs = _obs_storage(capacity, obs_dim, frame_stack)
        self.actions = np.zeros((capacity, action_dim), np.float32)
        self.rewards = np.zeros((capacity,), np.float32)
        self.terminated = np.zeros((capacity,), np.float32)
        # Episode ended (terminated or truncated) after this row's transition: n-step returns stop there.
        self.episode_ends = np.zeros((capacity,), bool)
        if self.optimize_memory_usage:
            if self.capacity < 2:
                raise ValueError("optimize_memory_usage needs buffer_size >= 2 (a transition takes two rows)")
            self.valid = np.zeros((capacity,), bool)  # rows that start a stored transition
            self.next_obs: Any = None
        else:
            self.next_obs = _obs_storage(capacity, obs_dim)
        self.pos = 0  # next row to write (compact mode: the newest transition's provisional next_obs row)
        self.size = 0  # rows written (<= capacity)
        self._transitions = 0  # transitions stored (== size unless optimize_memory_usage)

    def __len__(self) -> int:
        return self._transitions

    def bytes_per_transition(self) -> int:
        """Bytes one stored transition takes (compact mode: plus one row per episode end)."""
        return sum(a.itemsize * a[0].size for a in self._named_arrays().values())

    def _named_arrays(self) -> dict[str, np.ndarray]:
        """Every stored array by its checkpoint name ("obs", or "obs.<key>" per key of structured obs)."""
        out = {}
        for name in (
            "obs",
            "actions",
            "rewards",
            "terminated",
            "episode_ends",
            "valid" if self.optimize_memory_usage else "next_obs",
        ):
            store = getattr(self, name)
            if isinstance(store, ObsArrays):
                out.update({f"{name}.{k}": a for k, a in store.arrays.items()})
                out.update({f"{name}.{k}.age": a for k, a in store.ages.items()})
            else:
                out[name] = store
        return out

    def add(self, obs, action, reward: float, next_obs, terminated: bool, truncated: bool = False) -> None:
        """Store one transition (obs, next_obs: (obs_dim,); action: (action_dim,) in [-1, 1]).

        `truncated` (a time limit) is not stored as an end of the value, only as an episode end, so n-step
        sums never run into the next episode."""
        i = self.pos
        if self.optimize_memory_usage and self.size > 0 and not _same_obs(self.obs[i], obs):
            i = self._advance(i)  # row i keeps the previous transition's next_obs
        self.obs[i] = obs
        self.actions[i] = action
        self.rewards[i] = reward
        self.terminated[i] = terminated
        self.episode_ends[i] = bool(terminated or truncated)
        if self.optimize_memory_usage:
            self._set_valid(i, True)
            j = self._advance(i)
            self.obs[j] = next_obs  # provisional: the next add starts here if the episode goes on
            self._set_valid(j, False)
            self.pos = j
            if self.frame_stack > 1:
                self._forget_stacks_reading(j)
        else:
            self.next_obs[i] = next_obs
            self._transitions = min(self._transitions + 1, self.capacity)
            self.pos = self._advance(i)

    def add_step(self, obs, actions, rewards, next_obs, terminated, truncated) -> None:
        """Store one vector step from a single env: every argument with a leading axis of length 1."""
        self.add(spaces.take(obs, 0), actions[0], rewards[0], spaces.take(next_obs, 0), terminated[0], truncated[0])

    def sampleable(self) -> int:
        """Transitions `sample` draws from."""
        return self._transitions

    def _advance(self, i: int) -> int:
        self.size = min(max(self.size, i + 2 if self.optimize_memory_usage else i + 1), self.capacity)
        return (i + 1) % self.capacity

    def _forget_stacks_reading(self, written: int) -> None:
        """Rows i and j were just (over)written: the oldest rows after them whose frame stacks read back
        into those rows no longer hold their observation, so they leave the sample (k - 1 rows at most)."""
        for d in range(1, self.frame_stack):
            row = (written + d) % self.capacity
            if row >= self.size:
                break
            if self.valid[row] and self.obs.references(row) >= d:
                self._set_valid(row, False)

    def _set_valid(self, i: int, value: bool) -> None:
        self._transitions += int(value) - int(self.valid[i])
        self.valid[i] = value

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """Uniform sample with replacement of `batch_size` stored transitions (n-step ones if n_steps > 1)."""
        if self._transitions == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        if self.optimize_memory_usage:
            redraw = ~self.valid[idx]
            while redraw.any():  # uniform over valid rows; at most one row in (episode length + 1) is invalid
                idx[redraw] = rng.integers(0, self.size, size=int(redraw.sum()))
                redraw = ~self.valid[idx]
        if self.n_steps > 1:
            return self._n_step(idx)
        return Batch(
            self.obs[idx],
            self.actions[idx],
            self.rewards[idx],
            self._next_obs(idx),
            self.terminated[idx],
            np.full(batch_size, self.gamma, np.float32),
        )

    def _next_obs(self, idx: np.ndarray) -> np.ndarray:
        return self.obs[(idx + 1) % self.capacity] if self.optimize_memory_usage else self.next_obs[idx]

    def _n_step(self, idx: np.ndarray) -> Batch:
        """Transitions of up to n steps from each row in `idx` (Sutton & Barto 2018, sec. 7.1):
        r_t + gamma r_(t+1) + ... + gamma^(k-1) r_(t+k-1), next_obs s_(t+k), discount gamma^k, terminated if
        s_(t+k) is terminal. k < n where the episode ended (terminated or truncated: a truncated sum still
        bootstraps from its last next_obs) or the stored rows run out (the newest transition)."""
        rewards = self.rewards[idx].copy()
        discounts = np.full(len(idx), self.gamma, np.float32)
        last = idx.copy()
        going = ~self.episode_ends[idx]
        for j in range(1, self.n_steps):
            row = (idx + j) % self.capacity
            # The next row continues this transition's episode only if it was written after it: the plain
            # ring's write head (the oldest row, or unwritten) and the compact ring's invalid rows end it.
            going &= self.valid[row] if self.optimize_memory_usage else (row != self.pos) & (row < self.size)
            rewards += np.where(going, discounts * self.rewards[row], 0.0).astype(np.float32)
            discounts = np.where(going, discounts * self.gamma, discounts).astype(np.float32)
            last = np.where(going, row, last)
            going &= ~self.episode_ends[row]
        return Batch(self.obs[idx], self.actions[idx], rewards, self._next_obs(last), self.terminated[last], discounts)

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The filled rows and the write position, for a checkpoint."""
        n = self.size
        return {
            **{name: a[:n] for name, a in self._named_arrays().items()},
            "position": np.array([self.pos, self.size], np.int64),
        }

    def restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Inverse of `state_arrays`, stored the same way (plain or compact), into any capacity.

        The same capacity restores the rows as they were (so sampling continues exactly). Another capacity
        gets the rows in the order they were written, oldest first, so that a wrapped ring neither pairs
        its newest row with an unwritten one (compact mode) nor overwrites old rows while rows are free;
        a smaller capacity keeps the newest rows.
        """
        pos, size = (int(x) for x in arrays["position"])
        extra = "valid" if self.optimize_memory_usage else "next_obs"
        if not any(k == extra or k.startswith(extra + ".") for k in arrays):
            raise ValueError(
                f"saved buffer was stored with optimize_memory_usage={not self.optimize_memory_usage}; "
                f"load it with the same setting"
            )
        if "episode_ends" not in arrays:  # saved before keras_sac kept episode ends: work them out
            arrays = {**arrays, "episode_ends": _episode_ends(arrays, extra)}
        targets = self._named_arrays()
        missing = sorted(set(targets) - set(arrays))
        if missing:
            raise ValueError(f"the saved buffer lacks {missing}: it was saved for other observations")
        if size == self.capacity:
            rows = {name: arrays[name] for name in targets}
        else:
            # After a wrap the oldest row is `pos` (plain) or `pos + 1` (compact: `pos` is the newest
            # transition's next_obs row); before one, the rows are already oldest first and this is 0.
            oldest = (pos + self.optimize_memory_usage) % max(size, 1)
            keep = min(size, self.capacity)
            rows = {name: np.roll(arrays[name], -oldest, axis=0)[size - keep :] for name in targets}
            size = keep
            pos = max(size - 1, 0) if self.optimize_memory_usage else size
            if self.optimize_memory_usage and size:  # (an empty buffer has no newest row)
                rows["valid"] = rows["valid"].copy()
                rows["valid"][-1] = False  # the newest row only holds the last transition's next_obs
        for name, target in targets.items():
            target[:size] = rows[name]
        if self.frame_stack > 1 and size < len(arrays["valid"]):  # the oldest kept rows' stacks read dropped rows
            for row in range(min(self.frame_stack - 1, size)):
                self.valid[row] &= self.obs.references(row) <= row
        self.pos, self.size = pos % self.capacity, size
        self._transitions = int(self.valid[:size].sum()) if self.optimize_memory_usage else size


class MultiEnvReplayBuffer:
    """The replay buffer of `n_envs` envs stepped together: one `ReplayBuffer` of capacity // n_envs rows each.

    Each env's transitions stay consecutive in its own ring, so compact storage (next_obs = next row's obs)
    and n-step sums follow one episode exactly as with a single env. Sampling is uniform over all stored
    transitions: how many rows come from each env is drawn multinomially by its count, and the rows are
    shuffled, so that a minibatch cut from the sample mixes envs.
    """

    def __init__(self, capacity: int, obs_dim: int | ObsSpec, action_dim: int, n_envs: int, part=None, **options):
        """part: the class (or factory) of each env's buffer, `ReplayBuffer` by default (HER: HerReplayBuffer)."""
        if capacity < n_envs:
            raise ValueError(
                f"buffer_size ({capacity}) must be at least n_envs ({n_envs}): each env keeps its own rows"
            )
        part = part or ReplayBuffer
        self.parts = [part(capacity // n_envs, obs_dim, action_dim, **options) for _ in range(n_envs)]
        self.capacity = sum(p.capacity for p in self.parts)

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def bytes_per_transition(self) -> int:
        return self.parts[0].bytes_per_transition()

    def add_step(self, obs, actions, rewards, next_obs, terminated, truncated) -> None:
        """Store one vector step: row i of each argument is env i's transition."""
        for i, part in enumerate(self.parts):
            part.add(spaces.take(obs, i), actions[i], rewards[i], spaces.take(next_obs, i), terminated[i], truncated[i])

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        counts = np.array([p.sampleable() for p in self.parts], np.float64)
        if counts.sum() == 0:
            return self.parts[0].sample(batch_size, rng)  # raises, saying why nothing can be sampled
        per_part = rng.multinomial(batch_size, counts / counts.sum())
        batches = [p.sample(int(k), rng) for p, k in zip(self.parts, per_part) if k > 0]
        order = rng.permutation(batch_size)
        return Batch(*(spaces.take(spaces.concat(list(field)), order) for field in zip(*batches)))

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {f"env{i}.{k}": v for i, p in enumerate(self.parts) for k, v in p.state_arrays().items()}

    def restore_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        saved = {k.split(".")[0] for k in arrays} if all(k.startswith("env") for k in arrays) else {"env0"}
        if saved != {f"env{i}" for i in range(len(self.parts))}:
            raise ValueError(
                f"the saved buffer holds the rows of {len(saved)} env(s), this agent has n_envs "
                f"{len(self.parts)}: load it with the n_envs it was saved with"
            )
        for i, part in enumerate(self.parts):
            prefix = f"env{i}."
            part.restore_arrays({k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)})


def _episode_ends(arrays: dict[str, np.ndarray], extra: str) -> np.ndarray:
    """Rows after which an episode ended, from a buffer saved without them: a terminal row, or one whose
    next_obs is not the following row's obs (plain) / whose following row starts no transition (compact).
    The newest row always counts as ended (its truncation flag was not saved), which is safe: that only
    shortens the n-step sum starting on it."""
    ends = arrays["terminated"].astype(bool)
    if extra == "next_obs":
        following = np.roll(arrays["obs"], -1, axis=0)
        return ends | (arrays["next_obs"] != following).any(axis=1)
    return ends | ~np.roll(arrays["valid"], -1)
