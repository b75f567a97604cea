"""The SAC policy distribution: a diagonal Gaussian squashed by tanh into [-1, 1]^d.

Built from TensorFlow Probability's `Normal`, `Independent` and `Tanh` pieces. The one pitfall is
log-prob at saturation: in float32, tanh(u) rounds to exactly +-1 once |u| > ~9, and log-prob through the
inverse (atanh(+-1) = inf) turns NaN. SAC only needs the log-prob of its own fresh samples, so sampling
keeps the pre-tanh draw `u` and uses
log p(a) = log N(u) - sum_i log(1 - tanh(u_i)^2), where TFP's Tanh bijector evaluates the log-det as
2 * (log 2 - u - softplus(-2u)), finite for every finite u (Haarnoja et al. 2018, appendix C).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_sac.core.spaces import to_env_action

tfd = tfp.distributions
tfb = tfp.bijectors


class TanhGaussian:
    """tanh(N(mean, exp(log_std)^2)) with independent action dimensions.

    Args:
        mean: (batch, action_dim) pre-tanh mean.
        log_std: (batch, action_dim) pre-tanh log standard deviation.
    """

    def __init__(self, mean: tf.Tensor, log_std: tf.Tensor):
        self.mean = mean
        self.gaussian = tfd.Independent(tfd.Normal(mean, tf.exp(log_std)), reinterpreted_batch_ndims=1)
        self.squash = tfb.Tanh()

    def sample_and_log_prob(self, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Reparameterised draw. seed: integer (2,) stateless seed -> actions (batch, d), log_prob (batch,)."""
        u = self.gaussian.sample(seed=tf.cast(seed, tf.int32))  # TFP wants int32; Generator.make_seeds gives int64
        log_det = tf.reduce_sum(self.squash.forward_log_det_jacobian(u, event_ndims=0), axis=-1)
        return self.squash.forward(u), self.gaussian.log_prob(u) - log_det

    def sample_detached_and_log_prob(self, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """A draw held fixed (no gradient through it), with log_prob differentiable in mean and log_std: the
        score function REINFORCE needs. seed: (2,) -> actions (batch, d), log_prob (batch,)."""
        u = tf.stop_gradient(self.gaussian.sample(seed=tf.cast(seed, tf.int32)))
        log_det = tf.reduce_sum(self.squash.forward_log_det_jacobian(u, event_ndims=0), axis=-1)
        return self.squash.forward(u), self.gaussian.log_prob(u) - log_det

    def mode(self) -> tf.Tensor:
        """The deterministic action tanh(mean), (batch, d)."""
        return self.squash.forward(self.mean)


class TanhGSDE(TanhGaussian):
    """gSDE's tanh-Gaussian (Raffin et al. 2021, sec. 3): u = mean + h @ W, one W ~ N(0, sigma^2) shared by the
    whole batch, as in one SB3 gradient step; log-prob under the per-state Gaussian N(mean, (h^2) @ sigma^2),
    which `log_std` holds (see `networks.Actor`).

    Args:
        mean, log_std: (batch, action_dim). features: h, (batch, n_features), without gradient.
        sigma: (n_features, action_dim) exp(sde_log_std), differentiable (W = sigma * eps reparameterises it).
    """

    def __init__(self, mean, log_std, features, sigma):
        super().__init__(mean, log_std)
        self.features, self.sigma = features, sigma

    def sample_and_log_prob(self, seed):
        eps = tf.random.stateless_normal(tf.shape(self.sigma), seed=tf.cast(seed, tf.int32))
        u = self.mean + tf.matmul(self.features, self.sigma * eps)
        log_det = tf.reduce_sum(self.squash.forward_log_det_jacobian(u, event_ndims=0), axis=-1)
        return self.squash.forward(u), self.gaussian.log_prob(u) - log_det


def policy_action(actor, obs, center, half_range, seed=None) -> tf.Tensor:
    """The policy's action in env bounds, in TensorFlow (exported SavedModel, TFLite and ONNX graphs):
    tanh(mean), or with a (2,) stateless `seed` a draw from the tanh-Gaussian. obs -> (batch, action_dim)."""
    dist = TanhGaussian(*actor(obs))
    unit_actions = dist.mode() if seed is None else dist.sample_and_log_prob(seed)[0]
    return to_env_action(unit_actions, center, half_range)


def numpy_action(mean: np.ndarray, log_std: np.ndarray | None = None, rng: np.random.Generator | None = None):
    """The policy's action in [-1, 1] in NumPy (`KerasSAC.predict`): tanh(mean) without `rng`, else
    tanh(mean + exp(log_std) * noise) with noise ~ N(0, I) drawn from `rng`. (batch, action_dim) float32."""
    if rng is None:
        return np.tanh(mean).astype(np.float32)
    if log_std is None:
        raise ValueError("numpy_action draws a sample from log_std: pass it with rng")
    noise = rng.standard_normal(log_std.shape, dtype=np.float32)
    return np.tanh(mean + np.exp(log_std) * noise).astype(np.float32)
