"""The building blocks of the networks: activations, a linear layer with the config's init, batch
renormalisation and `MLP`, the hidden stack with the config's options (activation, init, LayerNorm, dropout,
batch renormalisation). Sublayers are attributes, not Python lists: TensorFlow's object-graph tracking
(SavedModel, tf.train.Checkpoint) does not follow Keras 3's tracked lists.

Every stack here is a torso: `call(x, training=False, seed=None) -> (batch, features)` and
`numpy_forward()`, its inference as a NumPy function (predict's actor snapshot). `simba.py` has the other.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

# Each activation twice: in the graph, and in NumPy for predict's snapshot of the actor (tested equal).
ACTIVATIONS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "relu": (tf.nn.relu, lambda x: np.maximum(x, 0.0)),
    "tanh": (tf.tanh, np.tanh),
    "elu": (tf.nn.elu, lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))),
    "gelu": (
        lambda x: tf.nn.gelu(x, approximate=True),
        lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3))),
    ),
    "silu": (tf.nn.silu, lambda x: x / (1.0 + np.exp(-x))),
}


@dataclasses.dataclass(frozen=True)
class MLPOptions:
    """How a hidden stack is built (the config's network settings)."""

    activation: str = "relu"
    init: str = "default"  # "default" (Glorot uniform, zero bias) or "orthogonal" (gain sqrt(2), zero bias)
    layer_norm: bool = False
    dropout: float = 0.0
    batch_renorm: bool = False
    renorm_momentum: float = 0.99
    renorm_warmup: int = 100_000
    renorm_after_activation: bool = False  # Dense -> act -> renorm (CrossQ's code), else Dense -> renorm -> act
    rng_alg: str = "auto_select"  # dropout's generator: "threefry" under XLA, where it is 2x faster than Philox
    architecture: str = "mlp"  # "mlp" (this module's MLP) or "simba" (simba.SimbaTorso); see networks.make_torso


class BuiltOnCall:
    """A composite layer whose sublayers build themselves on its first call (keras_sac calls every network
    eagerly on a zero observation once, at construction: build.build_networks).

    Keras builds a layer that has no `build` of its own and unbuilt sublayers by tracing its `call` on symbolic
    inputs first, then runs the call: that trace was half of every agent's construction and of each network
    reset (docs/benchmarks.md, 2026-12-04), for nothing the eager call does not do. The variables, their names,
    their order of creation and so their seeded values are the same either way (tests/test_networks.py builds
    both ways). First among the bases, so that its `build` is the one Keras finds."""

    def build(self, input_shape=None) -> None:
        """Nothing to create here: each sublayer builds on its first call, from the shapes it is given."""


def dense(units: int, init: str, gain: float, dtype, name: str) -> keras.layers.Dense:
    """A linear layer; 'orthogonal' uses Orthogonal(gain) and zero bias (the PyTorch seed notebook's init)."""
    kernel = keras.initializers.Orthogonal(gain) if init == "orthogonal" else "glorot_uniform"
    return keras.layers.Dense(units, kernel_initializer=kernel, dtype=dtype, name=name)


class BatchRenorm(keras.layers.Layer):
    """Batch renormalisation (Ioffe 2017) as CrossQ uses it (Bhatt et al. 2024, SBX's `BatchRenorm`).

    In training, x is normalised with the batch's statistics corrected towards the running ones:
    x_hat = r * (x - mu_B) / sigma_B + d, r = clip(sigma_B / sigma, 1/r_max, r_max), d = clip((mu_B - mu) / sigma,
    -d_max, d_max), r and d without gradient; for the first `warmup` training calls r = 1, d = 0 (plain batch
    norm), while the running statistics settle. At inference the running statistics are used, so an
    exported policy is a fixed affine map. Computes in float32 under any dtype policy.
    """

    def __init__(
        self,
        momentum: float = 0.99,
        warmup: int = 100_000,
        r_max: float = 3.0,
        d_max: float = 5.0,
        epsilon: float = 1e-3,
        **kwargs,
    ):
        super().__init__(**{**kwargs, "dtype": "float32"})
        self.momentum, self.warmup, self.r_max, self.d_max, self.epsilon = momentum, warmup, r_max, d_max, epsilon

    def build(self, input_shape):
        dim = (input_shape[-1],)
        self.gamma = self.add_weight(shape=dim, initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=dim, initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(shape=dim, initializer="zeros", trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight(shape=dim, initializer="ones", trainable=False, name="moving_variance")
        self.steps = self.add_weight(shape=(), initializer="zeros", trainable=False, name="steps")

    def call(self, x, training=False):
        if not training:
            mean, variance = self.moving_mean, self.moving_variance
        else:
            batch_mean, batch_variance = tf.nn.moments(x, axes=[0])
            std, running_std = tf.sqrt(batch_variance + self.epsilon), tf.sqrt(self.moving_variance + self.epsilon)
            r = tf.stop_gradient(tf.clip_by_value(std / running_std, 1.0 / self.r_max, self.r_max))
            d = tf.stop_gradient(
                tf.clip_by_value((batch_mean - self.moving_mean) / running_std, -self.d_max, self.d_max)
            )
            warmed_up = self.steps >= self.warmup
            mean = tf.where(warmed_up, batch_mean - d * std / r, batch_mean)
            variance = tf.where(warmed_up, batch_variance / tf.square(r), batch_variance)
            m = self.momentum
            self.moving_mean.assign(m * self.moving_mean + (1 - m) * tf.stop_gradient(batch_mean))
            self.moving_variance.assign(m * self.moving_variance + (1 - m) * tf.stop_gradient(batch_variance))
            self.steps.assign_add(1.0)
        return self.gamma * (x - mean) * tf.math.rsqrt(variance + self.epsilon) + self.beta

    def numpy_inference(self):
        """This layer at inference as (scale, shift) NumPy arrays: x * scale + shift."""
        scale = self.gamma.numpy() / np.sqrt(self.moving_variance.numpy() + self.epsilon)
        return scale, self.beta.numpy() - self.moving_mean.numpy() * scale


class MLP(BuiltOnCall, keras.layers.Layer):
    """Hidden stack: [BatchRenorm on the input] then per width Dense -> Dropout -> LayerNorm | BatchRenorm -> act
    (or, with `renorm_after_activation`, Dense -> act -> BatchRenorm, the order of CrossQ's code and SBX's).

    The order Dense -> Dropout -> LayerNorm -> activation is DroQ's (Hiraoka et al. 2022, fig. 1); CrossQ
    normalises the input too (Bhatt et al. 2024, SBX). Dropout is stateless, seeded by the caller: the
    update draws its seeds from the agent's generator, so a resumed run drops the same units.
    """

    def __init__(self, widths: Sequence[int], options: MLPOptions, dtype=None, **kwargs):
        super().__init__(dtype=dtype, **kwargs)
        self.widths, self.options = tuple(widths), options
        self.activation_fn = ACTIVATIONS[options.activation][0]
        renorm: dict[str, Any] = dict(momentum=options.renorm_momentum, warmup=options.renorm_warmup)
        if options.batch_renorm:
            self.renorm_in = BatchRenorm(**renorm, name="renorm_in")
        for i, width in enumerate(self.widths):
            setattr(self, f"hidden_{i}", dense(width, options.init, math.sqrt(2.0), dtype, f"hidden_{i}"))
            if options.layer_norm:
                setattr(self, f"norm_{i}", keras.layers.LayerNormalization(dtype="float32", name=f"norm_{i}"))
            if options.batch_renorm:
                setattr(self, f"renorm_{i}", BatchRenorm(**renorm, name=f"renorm_{i}"))

    @property
    def layers(self) -> list:
        return [getattr(self, f"hidden_{i}") for i in range(len(self.widths))]

    def call(self, x, training=False, seed=None):
        """x: (batch, in_dim) -> (batch, widths[-1]).

        training: batch renorm normalises with (and updates) batch statistics. seed: (2,) int; with a seed,
        dropout (if its rate > 0) is on, without one it is off.
        """
        o = self.options
        if o.batch_renorm:
            x = self.renorm_in(x, training=training)
        dropping = seed is not None and o.dropout > 0
        if dropping:
            seeds = tf.random.experimental.stateless_split(seed, len(self.widths))
        for i in range(len(self.widths)):
            x = getattr(self, f"hidden_{i}")(x)
            if dropping:
                x = tf.nn.experimental.stateless_dropout(x, o.dropout, seeds[i], rng_alg=o.rng_alg)
            if o.layer_norm:
                x = tf.cast(getattr(self, f"norm_{i}")(x), self.compute_dtype)
            if o.batch_renorm and not o.renorm_after_activation:
                x = tf.cast(getattr(self, f"renorm_{i}")(x, training=training), self.compute_dtype)
            x = self.activation_fn(x)
            if o.batch_renorm and o.renorm_after_activation:
                x = tf.cast(getattr(self, f"renorm_{i}")(x, training=training), self.compute_dtype)
        return x

    def numpy_forward(self):
        """This stack at inference as a NumPy function (no dropout; running batch-renorm statistics)."""
        o = self.options
        act = ACTIVATIONS[o.activation][1]
        steps = []
        if o.batch_renorm:
            steps.append(self.renorm_in.numpy_inference())
        for i in range(len(self.widths)):
            layer = getattr(self, f"hidden_{i}")
            steps.append((layer.kernel.numpy(), layer.bias.numpy()))
            if o.layer_norm:
                steps.append(numpy_layer_norm(getattr(self, f"norm_{i}")))
            renorm = getattr(self, f"renorm_{i}").numpy_inference() if o.batch_renorm else None
            if renorm is not None and not o.renorm_after_activation:
                scale, shift = renorm
                steps[-1] = (steps[-1][0] * scale, steps[-1][1] * scale + shift)  # fold into the Dense
            steps.append(act)
            if renorm is not None and o.renorm_after_activation:
                steps.append(renorm)  # (scale, shift): x * scale + shift

        def forward(x: np.ndarray) -> np.ndarray:  # steps: functions, (kernel, bias) or (scale, shift)
            for step in steps:
                if callable(step):
                    x = step(x)
                elif step[0].ndim == 2:
                    x = x @ step[0] + step[1]
                else:
                    x = x * step[0] + step[1]
            return x

        return forward


def numpy_layer_norm(layer: keras.layers.LayerNormalization):
    gamma, beta, eps = layer.gamma.numpy(), layer.beta.numpy(), layer.epsilon

    def norm(x):
        return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * gamma + beta

    return norm
