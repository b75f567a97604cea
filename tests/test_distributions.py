"""The tanh-Gaussian against an independent float64 computation, and at saturation."""

import numpy as np
import tensorflow as tf

from keras_sac.core.distributions import TanhGaussian


def reference_log_prob(actions, mean, log_std):
    """log N(atanh(a); mean, std) - sum log(1 - a^2), in float64 with no TFP involved."""
    a, mean, std = (np.asarray(x, np.float64) for x in (actions, mean, np.exp(log_std)))
    u = np.arctanh(a)
    normal = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    return np.sum(normal - np.log1p(-(a**2)), axis=-1)


def test_sampled_log_prob_matches_independent_computation():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(64, 3)).astype(np.float32) * 0.5
    log_std = rng.uniform(-1.5, 0.0, size=(64, 3)).astype(np.float32)
    actions, log_prob = TanhGaussian(mean, log_std).sample_and_log_prob(seed=tf.constant([1, 2]))
    np.testing.assert_allclose(
        log_prob.numpy(), reference_log_prob(actions.numpy(), mean, log_std), rtol=1e-4, atol=1e-4
    )


def test_log_prob_and_gradients_stay_finite_when_actions_saturate():
    mean = tf.Variable([[20.0, -20.0], [15.0, 0.0]])  # tanh(u) rounds to exactly +-1 in float32 here
    log_std = tf.Variable([[-5.0, -5.0], [-5.0, 2.0]])
    with tf.GradientTape() as tape:
        actions, log_prob = TanhGaussian(mean, log_std).sample_and_log_prob(seed=tf.constant([3, 4]))
        loss = tf.reduce_sum(log_prob)
    assert np.all(np.abs(actions.numpy()[:, 0]) == 1.0)  # truly saturated
    assert np.all(np.isfinite(log_prob.numpy()))
    assert all(np.all(np.isfinite(g.numpy())) for g in tape.gradient(loss, [mean, log_std]))


def test_saturated_log_prob_follows_the_stable_formula():
    # u = 12 exactly when std is tiny; log(1 - tanh(12)^2) = 2 * (log 2 - 12 - softplus(-24))
    mean, log_std = np.array([[12.0]], np.float32), np.array([[-20.0]], np.float32)
    _, log_prob = TanhGaussian(mean, log_std).sample_and_log_prob(seed=tf.constant([5, 6]))
    u = 12.0
    log_det = 2 * (np.log(2) - u - np.log1p(np.exp(-2 * u)))
    # the Gaussian part at u ~ mean: -log(std) - 0.5 log(2 pi) - 0.5 z^2, z ~ N(0, 1) unknown; bound it
    gaussian_max = 20.0 - 0.5 * np.log(2 * np.pi)
    assert gaussian_max - log_det - 10 < log_prob.numpy()[0] <= gaussian_max - log_det + 1e-3


def test_mode_is_tanh_of_mean():
    mean = np.array([[0.3, -2.0, 9.0]], np.float32)
    np.testing.assert_allclose(TanhGaussian(mean, np.zeros_like(mean)).mode().numpy(), np.tanh(mean), rtol=1e-6)
