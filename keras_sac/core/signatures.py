"""The TensorSpecs of observation batches: what every compiled function and exported signature takes."""

from __future__ import annotations

import tensorflow as tf

from keras_sac.core.spaces import Batch, ObsSpec


def obs_signature(obs: ObsSpec, batch_dims: list, name: str = "obs"):
    """The TensorSpec(s) of a batch of observations: (*batch_dims, obs_dim) float32 named `name`, or a dict
    of one spec per key in the key's own shape and dtype (images uint8), named by the key."""
    if obs.flat:
        return tf.TensorSpec([*batch_dims, obs.obs_dim], tf.float32, name=name)
    return {e.key: tf.TensorSpec([*batch_dims, *e.shape], e.dtype, name=e.key) for e in obs.entries}


def minibatch_signature(obs: ObsSpec, action_dim: int, gradient_steps: int, packed_width: int, batch_size: int):
    """The TensorSpec of a training phase's minibatches, each (gradient_steps, batch_size, ...): for flat
    observations one float32 array of `packed_width` columns (`data.buffer.pack`), else a `Batch` of the fields as
    they are (images stay uint8). The batch size is static: every shape in the update's graph is then known when it
    is traced, and Grappler folds the backward passes' shape arithmetic (Shape, BroadcastGradientArgs, their Sums
    and Reshapes: 114 of the default update's executed ops) into constants."""
    steps = [gradient_steps, batch_size]
    if obs.flat:
        return tf.TensorSpec([*steps, packed_width], tf.float32, name="minibatches")
    vector = tf.TensorSpec(steps)
    return Batch(
        obs_signature(obs, steps),
        tf.TensorSpec([*steps, action_dim], tf.float32),
        vector,
        obs_signature(obs, steps),
        vector,
        vector,
    )
