"""The learned functions: a Gaussian policy head and an ensemble of Q networks, as Keras 3 models.

Both are built on `MLP`, one hidden stack with the config's options (activation, init, LayerNorm, dropout,
batch renormalisation). Sublayers are attributes, not Python lists: TensorFlow's object-graph tracking
(SavedModel, tf.train.Checkpoint) does not follow Keras 3's tracked lists.

Both return plain tensors; the tanh-Gaussian distribution is built from the actor's output outside `call`
(see `distributions.py`), so the models stay exportable without TensorFlow Probability.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_sac.core.distributions import numpy_action

# Each activation twice: in the graph, and in NumPy for predict's snapshot of the actor (tested equal).
ACTIVATIONS = {
    "relu": (tf.nn.relu, lambda x: np.maximum(x, 0.0)),
    "tanh": (tf.tanh, np.tanh),
    "elu": (tf.nn.elu, lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))),
    "gelu": (lambda x: tf.nn.gelu(x, approximate=True),
             lambda x: 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))),
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
    rng_alg: str = "auto_select"  # dropout's generator: "threefry" under XLA, where it is 2x faster than Philox


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

    def __init__(self, momentum: float = 0.99, warmup: int = 100_000, r_max: float = 3.0, d_max: float = 5.0,
                 epsilon: float = 1e-3, **kwargs):
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
            d = tf.stop_gradient(tf.clip_by_value((batch_mean - self.moving_mean) / running_std,
                                                  -self.d_max, self.d_max))
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


class MLP(keras.layers.Layer):
    """Hidden stack: [BatchRenorm on the input] then per width Dense -> Dropout -> LayerNorm | BatchRenorm -> act.

    The order Dense -> Dropout -> LayerNorm -> activation is DroQ's (Hiraoka et al. 2022, fig. 1); CrossQ
    normalises the input too (Bhatt et al. 2024, SBX). Dropout is stateless, seeded by the caller: the
    update draws its seeds from the agent's generator, so a resumed run drops the same units.
    """

    def __init__(self, widths: Sequence[int], options: MLPOptions, dtype=None, **kwargs):
        super().__init__(dtype=dtype, **kwargs)
        self.widths, self.options = tuple(widths), options
        self.activation_fn = ACTIVATIONS[options.activation][0]
        renorm = dict(momentum=options.renorm_momentum, warmup=options.renorm_warmup)
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
            if o.batch_renorm:
                x = tf.cast(getattr(self, f"renorm_{i}")(x, training=training), self.compute_dtype)
            x = self.activation_fn(x)
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
                steps.append(_numpy_layer_norm(getattr(self, f"norm_{i}")))
            if o.batch_renorm:
                scale, shift = getattr(self, f"renorm_{i}").numpy_inference()
                steps[-1] = (steps[-1][0] * scale, steps[-1][1] * scale + shift)  # fold into the Dense
            steps.append(act)

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


def _numpy_layer_norm(layer: keras.layers.LayerNormalization):
    gamma, beta, eps = layer.gamma.numpy(), layer.beta.numpy(), layer.epsilon

    def norm(x):
        return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * gamma + beta

    return norm


class Actor(keras.Model):
    """MLP `obs -> (mean, log_std)` of a diagonal Gaussian over pre-tanh actions.

    log_std is squashed into `log_std_bounds` through tanh (CleanRL/SBX-style) instead of clipped: a clip's
    gradient is exactly zero past a bound, where the policy can get stuck; the squash's only fades as it
    nears one.

    With `use_sde` (gSDE, Raffin et al. 2021, sec. 3) there is no log-std head: noise weights `sde_log_std`
    (features x action_dim, state-independent) scale a noise matrix W that multiplies the last hidden
    features h, so the pre-tanh action is mean + h @ W. For one W drawn afresh, that action is Gaussian with
    variance (h^2) @ exp(sde_log_std)^2 per dimension, which `call` returns as log_std; h enters the noise
    without gradient, as in SB3 (`learn_features=False`).
    """

    def __init__(self, action_dim: int, net_arch: Sequence[int], log_std_bounds: Sequence[float],
                 options: MLPOptions = MLPOptions(), dtype=None, use_sde: bool = False, log_std_init: float = -3.0,
                 encoder=None, detach_encoder: bool = False, normalizer=None, **kwargs):
        super().__init__(dtype=dtype, **kwargs)
        self.normalizer = normalizer  # normalize_observations: the ObsNormalizer shared with the critics
        # Image/Dict observations: obs -> features first. A detached encoder is the critics' (shared): the
        # actor reads its features without gradient and does not train it (learned_variables leaves it out).
        self.encoder, self.detach_encoder = encoder, detach_encoder
        self.trunk = MLP(net_arch, options, dtype=dtype, name="trunk")
        self.mean_head = dense(action_dim, options.init, 0.01, dtype, "mean")
        self.use_sde = use_sde
        if use_sde:
            self.sde_log_std = self.add_weight(shape=(net_arch[-1], action_dim), dtype="float32",
                                               initializer=keras.initializers.Constant(log_std_init),
                                               name="sde_log_std")
        else:
            self.log_std_head = dense(action_dim, options.init, 0.01, dtype, "log_std")
        self.log_std_low, self.log_std_high = float(log_std_bounds[0]), float(log_std_bounds[1])

    def call(self, obs, training=False):
        """obs: (batch, obs_dim) -> mean, log_std: (batch, action_dim) each, float32 under any dtype policy.

        `training` matters only with batch renorm: batch statistics (and a running-statistics update) in the
        actor's own update, running statistics everywhere else.
        """
        mean, log_std, _ = self.with_features(obs, training)
        return mean, log_std

    def with_features(self, obs, training=False):
        """(mean, log_std, h): h (batch, features) the last hidden layer (float32 and without gradient with gSDE)."""
        if self.normalizer is not None:
            obs = self.normalizer(obs)
        if self.encoder is not None:
            obs = self.encoder(obs)
            if self.detach_encoder:
                obs = tf.stop_gradient(obs)
        h = self.trunk(obs, training=training)
        mean = tf.cast(self.mean_head(h), tf.float32)
        if self.use_sde:
            features = tf.stop_gradient(tf.cast(h, tf.float32))
            variance = tf.matmul(tf.square(features), tf.exp(2.0 * self.sde_log_std))
            return mean, 0.5 * tf.math.log(variance + SDE_EPSILON), features
        unit = tf.tanh(tf.cast(self.log_std_head(h), tf.float32))  # in (-1, 1)
        log_std = self.log_std_low + 0.5 * (self.log_std_high - self.log_std_low) * (unit + 1.0)
        return mean, log_std, h

    @property
    def learned_variables(self) -> list:
        """The variables the actor's loss trains: all trainable ones but a shared (detached) encoder's."""
        if self.encoder is None or not self.detach_encoder:
            return self.trainable_variables
        shared = {id(v) for v in self.encoder.variables}
        return [v for v in self.trainable_variables if id(v) not in shared]


SDE_EPSILON = 1e-6  # keeps gSDE's std > 0 where the features are all zero (SB3's epsilon)


class ActorSnapshot:
    """A NumPy copy of an `Actor`'s weights: its deterministic action tanh(mean) and tanh-Gaussian samples.

    For single observations this skips TensorFlow's per-call dispatch (~250 us here) for three small
    matmuls (~15 us); it mirrors `Actor.call` at inference and is tested against it (tests/test_agent.py).
    """

    def __init__(self, actor: Actor):
        self._trunk = actor.trunk.numpy_forward()
        if actor.normalizer is not None:
            normalize, trunk = actor.normalizer.numpy_forward(), self._trunk
            self._trunk = lambda obs: trunk(normalize(obs))
        self.mean = (actor.mean_head.kernel.numpy(), actor.mean_head.bias.numpy())
        if actor.use_sde:
            self.sde_variance = np.exp(2.0 * actor.sde_log_std.numpy())
        else:
            self.log_std = (actor.log_std_head.kernel.numpy(), actor.log_std_head.bias.numpy())
        self.use_sde = actor.use_sde
        self.log_std_low, self.log_std_high = actor.log_std_low, actor.log_std_high

    def mode(self, obs: np.ndarray) -> np.ndarray:
        """obs: (batch, obs_dim) float32 -> tanh(mean): (batch, action_dim)."""
        return numpy_action(self._trunk(obs) @ self.mean[0] + self.mean[1])

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """obs: (batch, obs_dim) -> tanh(mean + std * noise), noise ~ N(0, I) from `rng`: (batch, action_dim).

        gSDE: std is the spread of h @ W over W, i.e. each row drawn as with a fresh noise matrix."""
        h = self._trunk(obs)
        if self.use_sde:
            log_std = 0.5 * np.log(np.square(h) @ self.sde_variance + SDE_EPSILON)
        else:
            unit = np.tanh(h @ self.log_std[0] + self.log_std[1])
            log_std = self.log_std_low + 0.5 * (self.log_std_high - self.log_std_low) * (unit + 1.0)
        return numpy_action(h @ self.mean[0] + self.mean[1], log_std, rng)


class QNetwork(MLP):
    """One critic: the hidden stack then a linear output, `x -> (batch,)` float32."""

    def __init__(self, net_arch: Sequence[int], options: MLPOptions, dtype=None, **kwargs):
        super().__init__(net_arch, options, dtype=dtype, **kwargs)
        self.q = dense(1, options.init, 1.0, dtype, "q")

    def call(self, x, training=False, seed=None):
        return tf.cast(tf.squeeze(self.q(super().call(x, training=training, seed=seed)), axis=-1), tf.float32)


class Critics(keras.Model):
    """`n_critics` independent Q networks on concat(obs, action): `(obs, actions) -> q_values (n_critics, batch)`.

    Kept as separate MLPs rather than one batched (n_critics, ...) matmul per layer: TensorFlow's graph
    executor runs the members' matmuls concurrently on the two cores here, which made the whole update 28%
    faster (6.5 -> 4.7 ms, HalfCheetah-v5, batch 256; docs/benchmarks.md).
    """

    def __init__(self, n_critics: int, net_arch: Sequence[int], options: MLPOptions = MLPOptions(), dtype=None,
                 encoder=None, normalizer=None, **kwargs):
        super().__init__(dtype=dtype, **kwargs)
        self.n_critics = n_critics
        self.normalizer = normalizer  # shared with the actor (and the target critics)
        self.encoder = encoder  # image/Dict observations: one encoder feeds every member
        for i in range(n_critics):  # attributes, not a list: TF's object graph does not follow Keras 3 lists
            setattr(self, f"q_{i}", QNetwork(net_arch, options, dtype=dtype, name=f"q_{i}"))

    @property
    def own_variables(self) -> list:
        """The variables that belong to these critics alone (not the shared ObsNormalizer's): what Polyak
        averaging copies to the target critics."""
        if self.normalizer is None:
            return self.variables
        shared = {id(v) for v in self.normalizer.variables}
        return [v for v in self.variables if id(v) not in shared]

    @property
    def members(self) -> list[QNetwork]:
        return [getattr(self, f"q_{i}") for i in range(self.n_critics)]

    def call(self, obs, actions, training=False, seed=None):
        """obs: (batch, obs_dim), actions: (batch, action_dim) in [-1, 1] -> (n_critics, batch), float32.

        `training`: batch-renorm batch statistics; `seed` ((2,) int): dropout on. Both off by default.
        """
        if self.normalizer is not None:
            obs = self.normalizer(obs)
        if self.encoder is not None:
            obs = tf.cast(self.encoder(obs), actions.dtype)
        x = tf.concat([obs, actions], axis=-1)
        seeds = [None] * self.n_critics
        if seed is not None:
            seeds = tf.unstack(tf.random.experimental.stateless_split(seed, self.n_critics))
        return tf.stack([q(x, training=training, seed=s) for q, s in zip(self.members, seeds)])
