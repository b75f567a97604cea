"""Observation normalisation (`normalize_observations: true`): running mean and variance, inside the networks.

Stable-Baselines3 normalises in a VecNormalize wrapper around the env, which the deployed policy must then
re-create; here the statistics are weights of a layer that actor and critics share, so every export
(SavedModel, TFLite, ONNX) takes raw observations. As SB3 does for off-policy agents, the replay buffer
keeps raw observations and each minibatch is normalised with the current statistics.

Statistics are updated from the observations training collects (`update`, in NumPy float64 with Chan et
al.'s parallel formula), never by evaluation or predict, and are saved with the agent (its variables).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


class ObsNormalizer(keras.layers.Layer):
    """x -> clip((x - mean) / sqrt(var + epsilon), -clip, clip), statistics as non-trainable float64 weights."""

    def __init__(self, obs_dim: int, clip: float = 10.0, epsilon: float = 1e-8, **kwargs):
        super().__init__(**{**kwargs, "dtype": "float32"})
        self.clip, self.epsilon = float(clip), float(epsilon)
        self.mean = self.add_weight(
            shape=(obs_dim,), initializer="zeros", dtype="float64", trainable=False, name="mean"
        )
        self.var = self.add_weight(shape=(obs_dim,), initializer="ones", dtype="float64", trainable=False, name="var")
        # SB3's RunningMeanStd starts its count at epsilon: the first batch then sets the statistics alone
        self.count = self.add_weight(
            shape=(), initializer=keras.initializers.Constant(1e-4), dtype="float64", trainable=False, name="count"
        )

    def call(self, x):
        """x: (batch, obs_dim) -> same shape, float32."""
        mean, var = tf.cast(self.mean, tf.float32), tf.cast(self.var, tf.float32)
        return tf.clip_by_value(
            (tf.cast(x, tf.float32) - mean) * tf.math.rsqrt(var + self.epsilon), -self.clip, self.clip
        )

    def update(self, batch: np.ndarray) -> None:
        """Fold a batch of collected observations (n, obs_dim) into the running statistics."""
        batch = np.asarray(batch, np.float64).reshape(-1, self.mean.shape[0])
        mean, var, count = self.mean.numpy(), self.var.numpy(), float(self.count.numpy())
        b_mean, b_var, b_count = batch.mean(0), batch.var(0), batch.shape[0]
        delta, total = b_mean - mean, count + b_count
        new_mean = mean + delta * b_count / total
        m2 = var * count + b_var * b_count + np.square(delta) * count * b_count / total
        self.mean.assign(new_mean)
        self.var.assign(m2 / total)
        self.count.assign(total)

    def numpy_forward(self):
        """This normalisation as a NumPy function of the statistics now (for predict's actor snapshot)."""
        mean = self.mean.numpy().astype(np.float32)
        scale = (1.0 / np.sqrt(self.var.numpy() + self.epsilon)).astype(np.float32)
        clip = self.clip
        return lambda x: np.clip((x - mean) * scale, -clip, clip)
