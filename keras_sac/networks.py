"""The learned functions: a Gaussian policy head and an ensemble of Q networks, as Keras 3 models.

Layer stacks are `keras.Sequential` trunks, not Python lists of layers: TensorFlow's object-graph
tracking (SavedModel, tf.train.Checkpoint) does not follow Keras 3's tracked lists.

Both return plain tensors; the tanh-Gaussian distribution is built from the actor's output outside `call`
(see `distributions.py`), so the models stay exportable without TensorFlow Probability.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf


class Actor(keras.Model):
    """MLP `obs -> (mean, log_std)` of a diagonal Gaussian over pre-tanh actions.

    log_std is squashed smoothly into `log_std_bounds` (CleanRL/SBX-style) instead of clipped, so its
    gradient never vanishes at the bounds.
    """

    def __init__(self, action_dim: int, net_arch: Sequence[int], log_std_bounds: Sequence[float], **kwargs):
        super().__init__(**kwargs)
        self.trunk = keras.Sequential([keras.layers.Dense(width, activation="relu", name=f"hidden_{i}")
                                       for i, width in enumerate(net_arch)], name="trunk")
        self.mean_head = keras.layers.Dense(action_dim, name="mean")
        self.log_std_head = keras.layers.Dense(action_dim, name="log_std")
        self.log_std_low, self.log_std_high = float(log_std_bounds[0]), float(log_std_bounds[1])

    def call(self, obs):
        """obs: (batch, obs_dim) -> mean, log_std: (batch, action_dim) each."""
        h = self.trunk(obs)
        mean = self.mean_head(h)
        unit = tf.tanh(self.log_std_head(h))  # in (-1, 1)
        log_std = self.log_std_low + 0.5 * (self.log_std_high - self.log_std_low) * (unit + 1.0)
        return mean, log_std


class ActorSnapshot:
    """A NumPy copy of an `Actor`'s weights giving its deterministic action tanh(mean).

    For single observations this skips TensorFlow's per-call dispatch (~250 us here) for three small
    matmuls (~15 us); it mirrors `Actor.call` and is tested against it (tests/test_agent.py).
    """

    def __init__(self, actor: Actor):
        self.hidden = [(layer.kernel.numpy(), layer.bias.numpy()) for layer in actor.trunk.layers]
        self.mean = (actor.mean_head.kernel.numpy(), actor.mean_head.bias.numpy())

    def mode(self, obs: np.ndarray) -> np.ndarray:
        """obs: (batch, obs_dim) float32 -> tanh(mean): (batch, action_dim)."""
        h = obs
        for kernel, bias in self.hidden:
            h = np.maximum(h @ kernel + bias, 0.0)
        return np.tanh(h @ self.mean[0] + self.mean[1])


class EnsembleDense(keras.layers.Layer):
    """`n` independent dense layers evaluated as one batched matmul.

    Input (batch, in) is shared by all members (first layer) or (n, batch, in) per member; output is
    (n, batch, units). Each member is initialised like a stand-alone Glorot-uniform `Dense`.
    """

    def __init__(self, n: int, units: int, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.n, self.units = n, units
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        limit = math.sqrt(6.0 / (fan_in + self.units))  # Glorot per member, not over the stacked shape
        self.kernel = self.add_weight(
            name="kernel", shape=(self.n, fan_in, self.units),
            initializer=keras.initializers.RandomUniform(-limit, limit))
        self.bias = self.add_weight(name="bias", shape=(self.n, 1, self.units), initializer="zeros")

    def call(self, x):
        if len(x.shape) == 2:
            y = tf.einsum("bi,nio->nbo", x, self.kernel)
        else:
            y = tf.matmul(x, self.kernel)
        return self.activation(y + self.bias)


class Critics(keras.Model):
    """`n_critics` Q networks on concat(obs, action): `(obs, actions) -> q_values (n_critics, batch)`."""

    def __init__(self, n_critics: int, net_arch: Sequence[int], **kwargs):
        super().__init__(**kwargs)
        self.n_critics = n_critics
        self.trunk = keras.Sequential([EnsembleDense(n_critics, width, activation="relu", name=f"hidden_{i}")
                                       for i, width in enumerate(net_arch)], name="trunk")
        self.q_head = EnsembleDense(n_critics, 1, name="q")

    def call(self, obs, actions):
        """obs: (batch, obs_dim), actions: (batch, action_dim) in [-1, 1] -> (n_critics, batch)."""
        h = self.trunk(tf.concat([obs, actions], axis=-1))  # (n_critics, batch, width)
        return tf.squeeze(self.q_head(h), axis=-1)
