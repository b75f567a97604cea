"""What an observation is — a flat vector, an image, or a Dict of both — decided once, from the env's space.

The agent, the replay buffer, the exported policy and evaluate.py all read the same `ObsSpec`, so they agree
on key order, dtypes and image layout. NumPy only: evaluate.py checks a policy against an env before
TensorFlow starts.

Observations inside keras_sac:
- flat: a float32 array (batch, obs_dim) — the path keras_sac always had, unchanged.
- structured (images, Dicts): a dict {key: array (batch, *shape)} in the space's own dtype (uint8 images
  stay uint8 in the buffer); a Box image has the single key "observation".

An image is a Box of dtype uint8 with bounds [0, 255] (Stable-Baselines3's rule, `is_image_space`) of shape
    (H, W)          one grayscale channel
    (H, W, C)       channels last (what env.render() and ResizeObservation give)
    (C, H, W)       channels first (FrameStackObservation of grayscale frames gives (k, H, W))
    (k, H, W, C)    FrameStackObservation of colour frames: read as an H x W image of k * C channels
For rank 3 the channel axis is the smaller end axis (at most 16 channels); when that is ambiguous, such as
(4, 64, 4), set `image_channels: first | last`. Float or wrongly bounded multi-dimensional Boxes are refused
with one line, never guessed at.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import gymnasium as gym

BOX_KEY = "observation"  # the key of a (non-Dict) Box observation: also the exported signature's input name
MAX_CHANNELS = 16


class ObsError(ValueError):
    """An observation space or value keras_sac cannot read; the message says why and what would work."""


@dataclass(frozen=True)
class ObsEntry:
    """One observation key: its shape and dtype as the env gives them, and how to read it."""

    key: str
    shape: tuple[int, ...]
    dtype: str  # "float32" (vectors) or "uint8" (images)
    layout: str  # "vector", or an image layout: "hw", "hwc", "chw", "khwc"

    @property
    def image(self) -> bool:
        return self.layout != "vector"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) as the encoder sees it, channels last."""
        s = self.shape
        if self.layout == "hw":
            return s[0], s[1], 1
        if self.layout == "chw":
            return s[1], s[2], s[0]
        if self.layout == "khwc":
            return s[1], s[2], s[0] * s[3]
        return s[0], s[1], s[2]

    def to_dict(self) -> dict:
        return {"key": self.key, "shape": list(self.shape), "dtype": self.dtype, "layout": self.layout}


@dataclass(frozen=True)
class ObsSpec:
    """The observation of an env: `entries` in a fixed key order; `is_dict` if the env's space is a Dict."""

    entries: tuple[ObsEntry, ...]
    is_dict: bool = False

    @property
    def flat(self) -> bool:
        """A single float vector: keras_sac's original path (packed minibatches, NumPy predict)."""
        return not self.is_dict and not self.entries[0].image

    @property
    def obs_dim(self) -> int:
        if not self.flat:
            raise AttributeError("obs_dim is defined for flat vector observations only")
        return self.entries[0].shape[0]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(e.key for e in self.entries)

    @property
    def has_images(self) -> bool:
        return any(e.image for e in self.entries)

    def describe(self) -> str:
        if self.flat:
            return f"({self.obs_dim},) float32"
        parts = [f"{e.key}: {tuple(e.shape)} {e.dtype}" for e in self.entries]
        return ("Dict{" + ", ".join(parts) + "}") if self.is_dict else parts[0].split(": ", 1)[1]

    def to_dict(self) -> dict:
        return {"is_dict": self.is_dict, "entries": [e.to_dict() for e in self.entries]}

    @classmethod
    def from_dict(cls, d: dict) -> "ObsSpec":
        return cls(
            tuple(ObsEntry(e["key"], tuple(int(x) for x in e["shape"]), e["dtype"], e["layout"]) for e in d["entries"]),
            bool(d["is_dict"]),
        )

    @classmethod
    def vector(cls, obs_dim: int) -> "ObsSpec":
        return cls((ObsEntry(BOX_KEY, (int(obs_dim),), "float32", "vector"),))


def obs_spec(space: gym.Space, name: str, image_channels: str = "auto") -> ObsSpec:
    """Describe `space` (the env `name`'s observation space), or raise ObsError naming the fix.

    `image_channels` is SACConfig's (validated there): "auto", "first" or "last"."""
    import gymnasium as gym  # only here: io/runtime.py reads ObsSpec from this module without Gymnasium

    if isinstance(space, gym.spaces.Dict):
        entries = []
        for key, sub in space.spaces.items():
            if not isinstance(sub, gym.spaces.Box):
                raise ObsError(
                    f"env '{name}' has a Dict observation whose key '{key}' is a {type(sub).__name__}; "
                    f"keras_sac reads Dicts of Box entries (vectors and images): wrap the env to "
                    f"turn '{key}' into a Box"
                )
            entries.append(_box_entry(sub, str(key), name, image_channels))
        if not entries:
            raise ObsError(f"env '{name}' has an empty Dict observation space")
        return ObsSpec(tuple(entries), is_dict=True)
    if isinstance(space, gym.spaces.Box):
        return ObsSpec((_box_entry(space, BOX_KEY, name, image_channels),))
    raise ObsError(
        f"env '{name}' has observation space {space}; keras_sac reads Box observations (vectors or "
        f"uint8 images) and Dicts of them: wrap it with gymnasium.wrappers.FlattenObservation"
    )


def _box_entry(box: gym.spaces.Box, key: str, name: str, image_channels: str) -> ObsEntry:
    what = f"env '{name}' observation" + (f" '{key}'" if key != BOX_KEY else "")
    shape = tuple(int(x) for x in box.shape)
    if len(shape) == 1:
        return ObsEntry(key, shape, "float32", "vector")
    if len(shape) == 0:
        raise ObsError(f"{what} is a scalar Box; reshape it to (1,) (gymnasium.wrappers.ReshapeObservation)")
    if box.dtype != np.uint8:
        raise ObsError(
            f"{what} is a {box.dtype} Box of shape {shape}; keras_sac reads multi-dimensional "
            f"observations as images, which must be uint8 in [0, 255] (scaled to [0, 1] in the graph): "
            f"return uint8 frames, or wrap with gymnasium.wrappers.FlattenObservation for an MLP"
        )
    if not (np.all(box.low == 0) and np.all(box.high == 255)):
        raise ObsError(
            f"{what} is a uint8 Box of shape {shape} with bounds other than [0, 255]; an image needs "
            f"low 0 and high 255 (or flatten it with gymnasium.wrappers.FlattenObservation)"
        )
    if len(shape) == 2:
        layout = "hw"
    elif len(shape) == 4:
        layout = "khwc"  # (frames, H, W, C): FrameStackObservation of colour frames
    elif len(shape) == 3:
        layout = _channel_axis(shape, what, image_channels)
    else:
        raise ObsError(
            f"{what} is a uint8 Box of rank {len(shape)} {shape}; images are (H, W), (H, W, C), "
            f"(C, H, W) or frame-stacked (k, H, W, C)"
        )
    entry = ObsEntry(key, shape, "uint8", layout)
    h, w, c = entry.image_shape
    if c > MAX_CHANNELS * 4 or min(h, w) < 8:
        raise ObsError(
            f"{what} of shape {shape} reads as a {h}x{w} image of {c} channels, which is not an image "
            f"keras_sac can encode: set image_channels: first | last, or resize it"
        )
    return entry


def _channel_axis(shape: tuple[int, int, int], what: str, image_channels: str) -> str:
    if image_channels == "first":
        return "chw"
    if image_channels == "last":
        return "hwc"
    first = shape[0] <= MAX_CHANNELS and shape[0] < min(shape[1], shape[2])
    last = shape[2] <= MAX_CHANNELS and shape[2] < min(shape[0], shape[1])
    if first == last:
        raise ObsError(
            f"{what} is a uint8 image of shape {shape} whose channel axis is ambiguous: set "
            f"image_channels: first (C, H, W) or last (H, W, C)"
        )
    return "chw" if first else "hwc"


# ---------------------------------------------------------------------------------------------- the env
@dataclass(frozen=True)
class EnvSpec:
    """What the agent needs to know of an env; saved with checkpoints and exported policies."""

    env_id: str | None
    obs: ObsSpec
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]
    env_kwargs: dict = dataclasses.field(default_factory=dict)  # gym.make keywords beyond the registered ones
    pixels: dict | None = None  # the env is observed through its rendered frames (`make_env`'s pixels)

    @property
    def obs_dim(self) -> int:
        """The size of a flat vector observation (AttributeError for images and Dicts)."""
        return self.obs.obs_dim

    @property
    def action_dim(self) -> int:
        return len(self.action_low)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "env_id": self.env_id,
            "env_kwargs": self.env_kwargs,
            "action_low": list(self.action_low),
            "action_high": list(self.action_high),
        }
        if self.obs.flat:  # as keras_sac always wrote it
            out["obs_dim"] = self.obs.obs_dim
        else:
            out["observation"] = self.obs.to_dict()
        if self.pixels is not None:
            out["pixels"] = self.pixels
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "EnvSpec":
        """From `to_dict`'s output: a checkpoint's "env", or an exported policy's metadata (which holds the
        same keys; policies written before keras_sac 0.4 give a flat observation as observation_shape only)."""
        if "observation" in d:
            obs = ObsSpec.from_dict(d["observation"])
        else:
            obs = ObsSpec.vector(int(d["obs_dim"] if "obs_dim" in d else d["observation_shape"][0]))
        return cls(
            d["env_id"],
            obs,
            tuple(map(float, d["action_low"])),
            tuple(map(float, d["action_high"])),
            dict(d.get("env_kwargs") or {}),
            d.get("pixels"),
        )


def action_affine(low, high) -> tuple[np.ndarray, np.ndarray]:
    """(center, half_range) float32, with env_action = center + half_range * unit_action; exact at 0 for +-b."""
    low, high = np.asarray(low, np.float32), np.asarray(high, np.float32)
    return 0.5 * (high + low), 0.5 * (high - low)


def to_env_action(unit_actions, center, half_range):
    """[-1, 1] -> [low, high] elementwise; NumPy arrays (predict) and tensors (exported graphs) alike."""
    return center + unit_actions * half_range


# ---------------------------------------------------------------------------------------------- values
class Batch(NamedTuple):
    """A minibatch; every field float32 with leading dimension `batch` (image observations: uint8). NumPy
    arrays where the buffer samples it, tensors (or TensorSpecs) inside the compiled update: hence `Any`."""

    obs: Any  # (batch, obs_dim), or {key: (batch, *shape)} for image and Dict observations
    actions: Any  # (batch, action_dim), in the agent's [-1, 1] units
    rewards: Any  # (batch,)
    next_obs: Any  # as obs
    terminated: Any  # (batch,) 1.0 at a true terminal state only; truncation is 0.0
    discounts: Any  # (batch,) gamma^k for the k steps between obs and next_obs (k = 1 without n-step)


def as_batch(spec: ObsSpec, observation, owner: str):
    """One observation or a batch, as the agent's internal batch, and whether it was a single one.

    flat: float32 (batch, obs_dim). Structured: {key: (batch, *shape)} in each key's dtype; a Dict space
    takes a mapping with every key, a Box image an array. Wrong shapes, keys, NaN/inf in float entries and
    images that are not integers in [0, 255] raise ObsError naming `owner` and what it accepts.
    """
    if isinstance(observation, tuple) and len(observation) == 2 and isinstance(observation[1], dict):
        raise ObsError(
            f"{owner} got an (observation, info) tuple, as env.reset() returns: unpack it first, "
            f"obs, info = env.reset()"
        )
    if spec.is_dict:
        if not isinstance(observation, dict):
            raise ObsError(f"{owner} takes a dict with keys {list(spec.keys)}, got {type(observation).__name__}")
        missing = [k for k in spec.keys if k not in observation]
        if missing:
            raise ObsError(f"observation lacks key(s) {missing}; {owner} takes a dict with keys {list(spec.keys)}")
        values = {e.key: observation[e.key] for e in spec.entries}
    else:
        if isinstance(observation, dict):
            raise ObsError(f"{owner} takes an array of shape {spec.entries[0].shape}, not a dict")
        values = {BOX_KEY: observation}
    out, single = {}, None
    for e in spec.entries:
        array, one = _entry_batch(e, values[e.key], owner)
        if single is not None and one != single:
            raise ObsError(
                f"observation keys disagree on being one observation or a batch; {owner} needs all keys batched alike"
            )
        single, out[e.key] = one, array
    if spec.is_dict:
        sizes = {len(a) for a in out.values()}
        if len(sizes) > 1:
            raise ObsError(f"observation keys have different batch sizes {sorted(sizes)}")
    return (out[BOX_KEY] if spec.flat else out), single


def _entry_batch(e: ObsEntry, value, owner: str) -> tuple[np.ndarray, bool]:
    name = f"observation '{e.key}'" if e.key != BOX_KEY else "observation"
    try:
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError
    except (TypeError, ValueError):
        try:
            dtype = f" of dtype {np.asarray(value).dtype}"
        except Exception:  # not even an array of objects
            dtype = ""
        raise ObsError(f"{name} must be numeric; {owner} got {type(value).__name__}{dtype}") from None
    if array.shape == e.shape:
        array, single = array[None], True
    elif array.shape[1:] == e.shape:
        single = False
    else:
        raise ObsError(
            f"{name} has shape {array.shape}; {owner} expects {e.shape} for one observation or "
            f"(batch, {', '.join(map(str, e.shape))}) for a batch"
        )
    if e.image:
        if array.dtype != np.uint8:
            if not (np.all(array == np.round(array)) and array.min(initial=0) >= 0 and array.max(initial=0) <= 255):
                raise ObsError(
                    f"{name} is an image: {owner} takes uint8 values in [0, 255], got {array.dtype} values outside that"
                )
            array = array.astype(np.uint8)
        return array, single
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise ObsError(f"{name} contains NaN or inf; {owner} needs finite values")
    return array, single


def env_batch(spec: ObsSpec, obs, n: int):
    """An env's (n = 1, unbatched) or a vector env's (batched) observation as the internal batch of n rows."""
    if spec.flat:
        return np.asarray(obs, np.float32).reshape(n, -1)
    values = obs if spec.is_dict else {BOX_KEY: obs}
    return {e.key: np.asarray(values[e.key], e.dtype).reshape(n, *e.shape) for e in spec.entries}


def take(obs, idx):
    """Rows `idx` of an internal batch (array or dict of arrays)."""
    return {k: v[idx] for k, v in obs.items()} if isinstance(obs, dict) else obs[idx]


def concat(batches: list):
    """Internal batches joined along the batch axis."""
    if isinstance(batches[0], dict):
        return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    return np.concatenate(batches)


def copy(obs):
    return {k: v.copy() for k, v in obs.items()} if isinstance(obs, dict) else obs.copy()


def set_row(obs, i: int, value) -> None:
    """Row i of an internal batch <- one unbatched observation (an array, or a dict for Dict spaces)."""
    if isinstance(obs, dict):
        values = value if isinstance(value, dict) else {BOX_KEY: value}
        for k, v in obs.items():
            v[i] = values[k]
    else:
        obs[i] = value


def nonfinite_rows(obs) -> np.ndarray:
    """(batch,) True where a float entry of the row holds NaN or inf (uint8 images always pass)."""
    arrays = obs.values() if isinstance(obs, dict) else [obs]
    bad = None
    for a in arrays:
        if a.dtype.kind == "f":
            rows = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
            bad = rows if bad is None else bad | rows
    return bad if bad is not None else np.zeros(len(next(iter(arrays))), bool)
