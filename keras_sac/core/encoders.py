"""Encoders: observation -> features, for image and Dict observations (flat vectors need none).

`ObsEncoder` holds one encoder per key of an `ObsSpec` — a CNN for an image, an MLP (or nothing) for a
vector — and concatenates their features in the spec's key order. Images arrive as uint8 in the env's
layout; the encoder turns them into float32 channels-last in [0, 1] inside the graph, so the replay buffer
and the exported policy's inputs stay uint8.

`random_shift` is DrQ's augmentation (Kostrikov et al. 2020, sec. 3.1), used by the update on minibatches.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from keras_sac.core.layers import MLP, BuiltOnCall, MLPOptions
from keras_sac.core.spaces import ObsEntry, ObsSpec

# (kernel, stride) of the three convolutions, default filters, default output width.
CNNS = {
    # Mnih et al. 2015 (SB3's NatureCNN): ReLU output layer.
    "nature_cnn": {"convs": ((8, 4), (4, 2), (3, 1)), "channels": (32, 64, 64), "features": 512},
    # SAC-AE/DrQ's output layer (LayerNorm + tanh) on three strided convolutions sized for 64x64 frames.
    "small": {"convs": ((4, 2), (4, 2), (3, 1)), "channels": (16, 32, 32), "features": 50},
}


class EncoderError(ValueError):
    """An image too small for the chosen encoder; the message names the fix."""


def conv_output_size(size: int, convs) -> int:
    for kernel, stride in convs:
        size = (size - kernel) // stride + 1
    return size


def to_channels_last(x, entry: ObsEntry):
    """A batch of `entry`'s images (its own layout, any dtype) as (batch, H, W, C)."""
    if entry.layout == "hw":
        return x[..., None]
    if entry.layout == "chw":
        return tf.transpose(x, [0, 2, 3, 1])
    if entry.layout == "khwc":  # (batch, k, H, W, C) -> (batch, H, W, k * C), frames in order
        h, w, c = entry.image_shape
        return tf.reshape(tf.transpose(x, [0, 2, 3, 1, 4]), [-1, h, w, c])
    return x


def spatial_axes(entry: ObsEntry) -> tuple[int, int]:
    """The height and width axes of a batch of `entry`'s images in its own layout."""
    return (2, 3) if entry.layout in ("chw", "khwc") else (1, 2)


def random_shift(images, entry: ObsEntry, pad: int, seed):
    """DrQ's random shift: pad each image by `pad` pixels on every side, repeating the edge pixels, and crop
    it back to its size at an offset drawn uniformly from [0, 2 * pad]^2, independently per image (all
    frames of a stack shift together). Done as two gathers with clamped indices, without building the
    padded images. images: (batch, ...) in `entry`'s layout, any dtype; seed: (2,) int32."""
    h_axis, w_axis = spatial_axes(entry)
    shape = tf.shape(images)
    offsets = tf.random.stateless_uniform([shape[0], 2], seed, minval=0, maxval=2 * pad + 1, dtype=tf.int32) - pad
    for axis, column in ((h_axis, 0), (w_axis, 1)):
        size = images.shape[axis]
        index = tf.clip_by_value(offsets[:, column : column + 1] + tf.range(size)[None], 0, size - 1)  # (batch, size)
        images = tf.gather(images, index, axis=axis, batch_dims=1)
    return images


class ConvEncoder(BuiltOnCall, keras.layers.Layer):
    """uint8 images -> (batch, features) float: scale to [0, 1], three ReLU convolutions, one dense layer."""

    def __init__(
        self,
        entry: ObsEntry,
        kind: str,
        channels=None,
        features: int | None = None,
        init: str = "default",
        dtype=None,
        **kwargs,
    ):
        super().__init__(dtype=dtype, **kwargs)
        spec: dict[str, Any] = CNNS[kind]
        self.entry, self.kind = entry, kind
        channels = tuple(channels or spec["channels"])
        self.features = int(features or spec["features"])
        h, w, _ = entry.image_shape
        out_h, out_w = conv_output_size(h, spec["convs"]), conv_output_size(w, spec["convs"])
        if min(out_h, out_w) < 1:
            smallest = next(s for s in range(8, 512) if conv_output_size(s, spec["convs"]) >= 1)
            raise EncoderError(
                f"observation '{entry.key}' is a {h}x{w} image, too small for encoder {kind} (it needs "
                f"at least {smallest}x{smallest}): use encoder: small, or larger frames"
            )
        kernel = keras.initializers.Orthogonal(math.sqrt(2.0)) if init == "orthogonal" else "glorot_uniform"
        for i, ((size, stride), filters) in enumerate(zip(spec["convs"], channels)):
            setattr(
                self,
                f"conv_{i}",
                keras.layers.Conv2D(
                    filters,
                    size,
                    strides=stride,
                    activation="relu",
                    kernel_initializer=kernel,
                    dtype=dtype,
                    name=f"conv_{i}",
                ),
            )
        self.out = keras.layers.Dense(self.features, kernel_initializer=kernel, dtype=dtype, name="out")
        if kind == "small":
            self.norm = keras.layers.LayerNormalization(dtype="float32", name="norm")

    def call(self, images):
        x = tf.cast(to_channels_last(images, self.entry), self.compute_dtype) / 255.0
        for i in range(3):
            x = getattr(self, f"conv_{i}")(x)
        x = self.out(keras.ops.reshape(x, [-1, math.prod(x.shape[1:])]))
        if self.kind == "small":
            return tf.tanh(tf.cast(self.norm(x), self.compute_dtype))
        return tf.nn.relu(x)


class VectorEncoder(BuiltOnCall, keras.layers.Layer):
    """A vector key: an MLP of `arch` widths, or (arch empty) the vector itself as float."""

    def __init__(self, entry: ObsEntry, arch, options: MLPOptions, dtype=None, **kwargs):
        super().__init__(dtype=dtype, **kwargs)
        self.arch = tuple(arch)
        self.features = self.arch[-1] if self.arch else entry.shape[0]
        if self.arch:
            self.mlp = MLP(self.arch, options, dtype=dtype, name="mlp")

    def call(self, x):
        x = tf.cast(x, self.compute_dtype)
        return self.mlp(x) if self.arch else x


class ObsEncoder(BuiltOnCall, keras.layers.Layer):
    """An observation dict {key: (batch, *shape)} -> (batch, features): one encoder per key, concatenated."""

    def __init__(
        self,
        spec: ObsSpec,
        kind: str,
        channels=None,
        features: int | None = None,
        vector_arch=(64,),
        options: MLPOptions = MLPOptions(),
        dtype=None,
        **kwargs,
    ):
        super().__init__(dtype=dtype, **kwargs)
        self.spec = spec
        for i, entry in enumerate(spec.entries):  # attributes, not a list: TF's object graph follows these
            if entry.image:
                layer = ConvEncoder(entry, kind, channels, features, options.init, dtype=dtype, name=f"cnn_{i}")
            else:
                layer = VectorEncoder(entry, vector_arch, options, dtype=dtype, name=f"mlp_{i}")
            setattr(self, f"key_{i}", layer)
        self.features = sum(getattr(self, f"key_{i}").features for i in range(len(spec.entries)))

    def call(self, obs):
        parts = [getattr(self, f"key_{i}")(obs[e.key]) for i, e in enumerate(self.spec.entries)]
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=-1)


def augment(obs: dict, spec: ObsSpec, pad: int, seed) -> dict:
    """`random_shift` on every image key of an observation dict (vectors pass unchanged), one seed per key."""
    images = [e for e in spec.entries if e.image]
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, len(images))) if images else []
    out = dict(obs)
    for entry, key_seed in zip(images, seeds):
        out[entry.key] = random_shift(obs[entry.key], entry, pad, key_seed)
    return out
