"""SimBa's torso (Lee et al. 2024, "SimBa: Simplicity Bias for Scaling Up Parameters in Deep RL", sec. 4).

    x -> Dense(width) -> blocks x [h + Dense(width)(act(Dense(4 width)(LayerNorm(h))))] -> LayerNorm

A linear embedding, residual blocks with pre-LayerNorm and an inverted bottleneck of 4x the width, and a final
LayerNorm. The residual path keeps the stack close to a linear map at initialisation, the bias towards simple
functions that lets SimBa grow its networks without losing sample efficiency. SimBa's third part, running
observation normalisation, is the config's `normalize_observations` (normalization.py), applied before the
torso. Initialisation as in the authors' code: orthogonal (gain 1) embedding, He-normal blocks.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_sac.core.layers import ACTIVATIONS, BuiltOnCall, numpy_layer_norm


class SimbaTorso(BuiltOnCall, keras.layers.Layer):
    """`x: (batch, in_dim) -> (batch, width)`: SimBa's embedding, `blocks` residual blocks and final LayerNorm.

    The same torso interface as `layers.MLP` (`call(x, training, seed)`, `numpy_forward`); `training` and
    `seed` are accepted and unused (SimBa has no dropout or batch statistics). LayerNorms compute in float32.
    """

    def __init__(self, width: int, blocks: int, activation: str = "relu", dtype=None, **kwargs):
        super().__init__(dtype=dtype, **kwargs)
        self.width, self.blocks, self.activation = int(width), int(blocks), activation
        self.widths = (self.width,)  # the features' width, as MLP.widths[-1] gives it
        self.activation_fn = ACTIVATIONS[activation][0]
        self.embed = keras.layers.Dense(
            width, kernel_initializer=keras.initializers.Orthogonal(1.0), dtype=dtype, name="embed"
        )
        for i in range(blocks):  # attributes, not a list: TF's object graph does not follow Keras 3 lists
            setattr(self, f"norm_{i}", keras.layers.LayerNormalization(dtype="float32", name=f"norm_{i}"))
            setattr(
                self,
                f"expand_{i}",
                keras.layers.Dense(4 * width, kernel_initializer="he_normal", dtype=dtype, name=f"expand_{i}"),
            )
            setattr(
                self,
                f"project_{i}",
                keras.layers.Dense(width, kernel_initializer="he_normal", dtype=dtype, name=f"project_{i}"),
            )
        self.norm_out = keras.layers.LayerNormalization(dtype="float32", name="norm_out")

    def call(self, x, training=False, seed=None):
        h = self.embed(x)
        for i in range(self.blocks):
            z = tf.cast(getattr(self, f"norm_{i}")(h), self.compute_dtype)
            h = h + getattr(self, f"project_{i}")(self.activation_fn(getattr(self, f"expand_{i}")(z)))
        return tf.cast(self.norm_out(h), self.compute_dtype)

    def numpy_forward(self):
        """This torso at inference as a NumPy function of the weights now."""
        act = ACTIVATIONS[self.activation][1]

        def weights(layer):
            return layer.kernel.numpy(), layer.bias.numpy()

        embed = weights(self.embed)
        blocks = [
            (
                numpy_layer_norm(getattr(self, f"norm_{i}")),
                weights(getattr(self, f"expand_{i}")),
                weights(getattr(self, f"project_{i}")),
            )
            for i in range(self.blocks)
        ]
        norm_out = numpy_layer_norm(self.norm_out)

        def forward(x):
            h = x @ embed[0] + embed[1]
            for norm, (w1, b1), (w2, b2) in blocks:
                h = h + act(norm(h) @ w1 + b1) @ w2 + b2
            return norm_out(h)

        return forward
