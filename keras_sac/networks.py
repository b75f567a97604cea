"""The learned functions: a Gaussian policy head and an ensemble of Q networks, as Keras 3 models.

Layer stacks are `keras.Sequential` trunks, not Python lists of layers: TensorFlow's object-graph
tracking (SavedModel, tf.train.Checkpoint) does not follow Keras 3's tracked lists.

Both return plain tensors; the tanh-Gaussian distribution is built from the actor's output outside `call`
(see `distributions.py`), so the models stay exportable without TensorFlow Probability.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
import tensorflow as tf


class Actor(keras.Model):
    """MLP `obs -> (mean, log_std)` of a diagonal Gaussian over pre-tanh actions.

    log_std is squashed into `log_std_bounds` through tanh (CleanRL/SBX-style) instead of clipped: a clip's
    gradient is exactly zero past a bound, where the policy can get stuck; the squash's only fades as it
    nears one.
    """

    def __init__(self, action_dim: int, net_arch: Sequence[int], log_std_bounds: Sequence[float], dtype=None,
                 **kwargs):
        super().__init__(dtype=dtype, **kwargs)
        self.trunk = keras.Sequential([keras.layers.Dense(width, activation="relu", dtype=dtype, name=f"hidden_{i}")
                                       for i, width in enumerate(net_arch)], name="trunk")
        self.mean_head = keras.layers.Dense(action_dim, dtype=dtype, name="mean")
        self.log_std_head = keras.layers.Dense(action_dim, dtype=dtype, name="log_std")
        self.log_std_low, self.log_std_high = float(log_std_bounds[0]), float(log_std_bounds[1])

    def call(self, obs):
        """obs: (batch, obs_dim) -> mean, log_std: (batch, action_dim) each, float32 under any dtype policy."""
        h = self.trunk(obs)
        mean = tf.cast(self.mean_head(h), tf.float32)
        unit = tf.tanh(tf.cast(self.log_std_head(h), tf.float32))  # in (-1, 1)
        log_std = self.log_std_low + 0.5 * (self.log_std_high - self.log_std_low) * (unit + 1.0)
        return mean, log_std


class ActorSnapshot:
    """A NumPy copy of an `Actor`'s weights: its deterministic action tanh(mean) and tanh-Gaussian samples.

    For single observations this skips TensorFlow's per-call dispatch (~250 us here) for three small
    matmuls (~15 us); it mirrors `Actor.call` and is tested against it (tests/test_agent.py).
    """

    def __init__(self, actor: Actor):
        self.hidden = [(layer.kernel.numpy(), layer.bias.numpy()) for layer in actor.trunk.layers]
        self.mean = (actor.mean_head.kernel.numpy(), actor.mean_head.bias.numpy())
        self.log_std = (actor.log_std_head.kernel.numpy(), actor.log_std_head.bias.numpy())
        self.log_std_low, self.log_std_high = actor.log_std_low, actor.log_std_high

    def _trunk(self, obs: np.ndarray) -> np.ndarray:
        h = obs
        for kernel, bias in self.hidden:
            h = np.maximum(h @ kernel + bias, 0.0)
        return h

    def mode(self, obs: np.ndarray) -> np.ndarray:
        """obs: (batch, obs_dim) float32 -> tanh(mean): (batch, action_dim)."""
        return np.tanh(self._trunk(obs) @ self.mean[0] + self.mean[1])

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """obs: (batch, obs_dim) -> tanh(mean + std * noise), noise ~ N(0, I) from `rng`: (batch, action_dim)."""
        h = self._trunk(obs)
        unit = np.tanh(h @ self.log_std[0] + self.log_std[1])
        log_std = self.log_std_low + 0.5 * (self.log_std_high - self.log_std_low) * (unit + 1.0)
        noise = rng.standard_normal(log_std.shape, dtype=np.float32)
        return np.tanh(h @ self.mean[0] + self.mean[1] + np.exp(log_std) * noise)


class Critics(keras.Model):
    """`n_critics` independent Q networks on concat(obs, action): `(obs, actions) -> q_values (n_critics, batch)`.

    Kept as separate MLPs rather than one batched (n_critics, ...) matmul per layer: TensorFlow's graph
    executor runs the members' matmuls concurrently on the two cores here, which made the whole update 28%
    faster (6.5 -> 4.7 ms, HalfCheetah-v5, batch 256; docs/benchmarks.md).
    """

    def __init__(self, n_critics: int, net_arch: Sequence[int], dtype=None, **kwargs):
        super().__init__(dtype=dtype, **kwargs)
        self.n_critics = n_critics
        for i in range(n_critics):  # attributes, not a list: TF's object graph does not follow Keras 3 lists
            setattr(self, f"q_{i}", _q_network(net_arch, dtype, name=f"q_{i}"))

    @property
    def members(self) -> list[keras.Sequential]:
        return [getattr(self, f"q_{i}") for i in range(self.n_critics)]

    def call(self, obs, actions):
        """obs: (batch, obs_dim), actions: (batch, action_dim) in [-1, 1] -> (n_critics, batch), float32."""
        x = tf.concat([obs, actions], axis=-1)
        return tf.stack([tf.cast(tf.squeeze(q(x), axis=-1), tf.float32) for q in self.members])


def _q_network(net_arch: Sequence[int], dtype, name: str) -> keras.Sequential:
    layers = [keras.layers.Dense(width, activation="relu", dtype=dtype, name=f"hidden_{i}")
              for i, width in enumerate(net_arch)]
    return keras.Sequential([*layers, keras.layers.Dense(1, dtype=dtype, name="q")], name=name)
