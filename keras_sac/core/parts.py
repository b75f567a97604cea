"""Extension points: your own Keras layers as the networks' torsos or observation encoder, your own replay
buffer class (Stable-Baselines3's `policy_kwargs` / `features_extractor_class` and `replay_buffer_class`).

    agent = KerasSAC(env, actor_torso=MyTorso, critic_torso=lambda: keras.Sequential([...]),
                     features_extractor=MyEncoder, replay_buffer_class=MyBuffer)
    agent = KerasSAC.load(path, actor_torso=MyTorso, ...)    # a checkpoint holds weights, never code

The contract of each part (`Parts`' docstring) is the one place it is written down; `check_parts` and
`check_layer` hold a part to it, each breach a one-line `PartError` naming the missing piece.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import keras

from keras_sac.core.layers import BuiltOnCall

BUFFER_METHODS = ("add_step", "sample", "__len__", "state_arrays", "restore_arrays")


class PartError(ValueError):
    """A custom part does not keep its contract; the message names the part and what is missing."""


@dataclasses.dataclass(frozen=True)
class Parts:
    """The user's own parts of an agent; each None means keras_sac's.

    Attributes:
        actor_torso, critic_torso: a `keras.layers.Layer` subclass, or a function, that called with no
            arguments returns a new Layer mapping `(batch, in_features)` float32 to `(batch, features)`. It is
            called once per network (the actor; each critic and each target critic), so each has weights of
            its own. Its `call` may take `training`. keras_sac puts its own heads on top (the actor's mean and
            log-std, each critic's value or quantiles), so `features` is any width.
        features_extractor: as a torso, but its Layer maps the observation as the env gives it -- flat
            `(batch, obs_dim)` float32 (after `normalize_observations`), uint8 images in their own layout,
            or a dict of those for a Dict space -- to `(batch, features)`. With `share_encoder` (the default)
            one extractor belongs to the critics, trained by their loss, and the actor reads its features
            without gradient; with `share_encoder: false` actor and critics each have one.
        replay_buffer_class: a class constructed as `cls(capacity, obs_spec, action_dim,
            optimize_memory_usage=..., n_steps=..., gamma=...)` with the methods `add_step(obs, actions,
            rewards, next_obs, terminated, truncated)` (one row per env, arrays), `sample(batch_size, rng)`
            returning a `keras_sac.core.spaces.Batch`, `__len__`, `state_arrays()` and `restore_arrays(arrays)`
            (what a checkpoint saves); subclassing `keras_sac.data.buffer.ReplayBuffer` provides them all.

    A custom part is built, trained, checkpointed (its weights, the buffer's arrays) and exported like
    keras_sac's own; a predict through a custom torso or extractor runs in TensorFlow rather than NumPy.
    """

    actor_torso: Callable[[], Any] | None = None
    critic_torso: Callable[[], Any] | None = None
    features_extractor: Callable[[], Any] | None = None
    replay_buffer_class: type | None = None

    def names(self) -> dict[str, str]:
        """{part: 'module.QualifiedName'} of the parts given: what a checkpoint records of them."""
        return {
            f.name: _qualified_name(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if getattr(self, f.name) is not None
        }

    def make(self, part: str) -> keras.layers.Layer:
        """A new Layer from the `part` factory, checked to be one. (Its weights' paths hold Keras' automatic,
        process-dependent names; the agent saves them by position instead: `custom_state_keys`.)"""
        layer = getattr(self, part)()
        if not isinstance(layer, keras.layers.Layer):
            raise PartError(
                f"{part} returned {type(layer).__name__}, not a keras.layers.Layer: it must return a "
                f"new Keras layer (or model) each call"
            )
        return layer


class UserExtractor(BuiltOnCall, keras.layers.Layer):
    """A user's features_extractor, handed the observation as its space has it: a flat vector or a single
    image as one tensor, a Dict space as a dict (inside keras_sac every non-flat observation is a dict)."""

    def __init__(self, layer: keras.layers.Layer, single_key: str | None, **kwargs):
        super().__init__(**kwargs)
        self.layer, self.single_key = layer, single_key

    def call(self, obs, training=False):
        return self.layer(obs[self.single_key] if self.single_key is not None else obs, training=training)


def _qualified_name(thing) -> str:
    return f"{getattr(thing, '__module__', '?')}.{getattr(thing, '__qualname__', type(thing).__name__)}"


def check_parts(parts: Parts) -> None:
    """Each given part is of the right kind (a callable; a buffer class with every method), or PartError."""
    for f in dataclasses.fields(parts):
        value = getattr(parts, f.name)
        if value is not None and (not callable(value) or isinstance(value, keras.layers.Layer)):
            raise PartError(
                f"{f.name} must be a class or a function returning a new one (each network gets its "
                f"own weights), got {type(value).__name__} object"
            )
    buffer = parts.replay_buffer_class
    if buffer is not None:
        if not isinstance(buffer, type):
            raise PartError(f"replay_buffer_class must be a class (keras_sac constructs it), got {buffer!r}")
        missing = [m for m in BUFFER_METHODS if not callable(getattr(buffer, m, None))]
        if missing:
            raise PartError(
                f"replay_buffer_class {buffer.__name__} has no {', '.join(missing)}: subclass "
                f"keras_sac.data.buffer.ReplayBuffer, or define them (keras_sac.core.parts.Parts)"
            )


def check_layer(part: str, output) -> None:
    """A torso's or extractor's output, built on a zero observation: it must be (batch, features), floating."""
    shape, dtype = getattr(output, "shape", None), getattr(output, "dtype", None)
    if shape is None or len(shape) != 2 or not keras.backend.is_float_dtype(keras.backend.standardize_dtype(dtype)):
        raise PartError(
            f"{part}'s layer returned {_describe(output)}: it must return one float tensor of shape (batch, features)"
        )


def _describe(output) -> str:
    if hasattr(output, "shape") and hasattr(output, "dtype"):
        return f"shape {tuple(output.shape)} of {keras.backend.standardize_dtype(output.dtype)}"
    return type(output).__name__


def custom_state_keys(layers: dict[str, keras.layers.Layer], optimizers) -> dict[str, str]:
    """{Keras path: stable path} for the variables of custom layers and their optimizer slots.

    `layers` maps a stable prefix (e.g. 'critics/q_0/torso') to a custom layer. Keras names a user's sublayers
    from process-wide counters ('dense_7'), so the same agent built in another process has other paths; its
    variables are keyed instead by the prefix and their position in the layer (created in the same order on
    every build), and each Adam slot (`<optimizer>/<path with _>_momentum`) follows its variable.
    """
    keys: dict[str, str] = {}
    for prefix, layer in layers.items():
        for i, v in enumerate(layer.variables):
            keys.setdefault(v.path, f"{prefix}/custom_{i}")
    slots = {}
    for optimizer in optimizers:
        for path, stable in keys.items():
            for slot in ("momentum", "velocity"):
                slots[f"{optimizer.name}/{path.replace('/', '_')}_{slot}"] = (
                    f"{optimizer.name}/{stable.replace('/', '_')}_{slot}"
                )
    return {**keys, **slots}
