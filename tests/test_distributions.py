"""The tanh-Gaussian against an independent float64 computation, and at saturation."""

import numpy as np
import pytest
import tensorflow as tf

from keras_sac.core.distributions import TanhGaussian, TanhGSDE, numpy_action


def reference_log_prob(actions, mean, log_std):
    """log N(atanh(a); mean, std) - sum log(1 - a^2), in float64 with no TFP involved."""
    a, mean, std = (np.asarray(x, np.float64) for x in (actions, mean, np.exp(log_std)))
    u = np.arctanh(a)
    normal = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    return np.sum(normal - np.log1p(-(a**2)), axis=-1)


def reference_log_prob_of_draw(u, mean, log_std):
    """The same from the pre-tanh draw u, with log(1 - tanh(u)^2) in float64 (no atanh of a rounded action)."""
    u, mean, std = (np.asarray(x, np.float64) for x in (u, mean, np.exp(log_std)))
    normal = -0.5 * ((u - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    return np.sum(normal - np.log1p(-(np.tanh(u) ** 2)), axis=-1)


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


def test_the_detached_draw_is_the_same_draw_with_only_the_score_gradient():
    # REINFORCE's sample (losses.reinforce_actor_loss): the same action and log-prob as the reparameterised draw
    # for the same seed, no gradient through the action, and log-prob's gradient the Gaussian score
    rng = np.random.default_rng(1)
    mean = tf.Variable(rng.normal(size=(32, 2)).astype(np.float32) * 0.5)
    log_std = tf.Variable(rng.uniform(-1.0, 0.0, size=(32, 2)).astype(np.float32))
    seed = tf.constant([7, 8])
    actions, log_prob = TanhGaussian(mean, log_std).sample_and_log_prob(seed)
    with tf.GradientTape(persistent=True) as tape:
        detached, detached_log_prob = TanhGaussian(mean, log_std).sample_detached_and_log_prob(seed)
        total = tf.reduce_sum(detached_log_prob)
        action_sum = tf.reduce_sum(detached)
    np.testing.assert_array_equal(detached.numpy(), actions.numpy())
    np.testing.assert_allclose(detached_log_prob.numpy(), log_prob.numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        detached_log_prob.numpy(), reference_log_prob(actions.numpy(), mean, log_std), rtol=1e-4, atol=1e-4
    )
    assert tape.gradient(action_sum, [mean, log_std]) == [None, None]
    u = np.arctanh(actions.numpy().astype(np.float64))
    std = np.exp(log_std.numpy().astype(np.float64))
    d_mean, d_log_std = tape.gradient(total, [mean, log_std])
    np.testing.assert_allclose(d_mean.numpy(), (u - mean.numpy()) / std**2, rtol=2e-3, atol=2e-3)
    np.testing.assert_allclose(d_log_std.numpy(), ((u - mean.numpy()) / std) ** 2 - 1, rtol=2e-3, atol=2e-3)


def test_gsde_draws_one_weight_matrix_for_the_batch_and_scores_it_under_the_per_state_gaussian():
    # u = mean + h @ (sigma * eps), eps ~ N(0, I) of sigma's shape from the seed; log-prob of tanh(u) under
    # N(mean, exp(log_std)^2) (networks.Actor sets log_std from h and sigma) minus the tanh log-det
    rng = np.random.default_rng(2)
    mean = rng.normal(size=(16, 2)).astype(np.float32) * 0.3
    features = rng.normal(size=(16, 3)).astype(np.float32)
    features[1] = features[0]  # two states with the same features and mean share the draw: W is one matrix
    mean[1] = mean[0]
    sigma = rng.uniform(0.2, 0.8, size=(3, 2)).astype(np.float32)
    log_std = rng.uniform(-1.0, 0.0, size=(16, 2)).astype(np.float32)
    seed = tf.constant([9, 10])
    actions, log_prob = TanhGSDE(mean, log_std, features, sigma).sample_and_log_prob(seed)
    eps = tf.random.stateless_normal(sigma.shape, seed=seed).numpy()
    u = mean.astype(np.float64) + features.astype(np.float64) @ (sigma * eps).astype(np.float64)
    np.testing.assert_allclose(actions.numpy(), np.tanh(u), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(actions.numpy()[0], actions.numpy()[1])
    assert log_prob.shape == (16,)
    np.testing.assert_allclose(log_prob.numpy(), reference_log_prob_of_draw(u, mean, log_std), rtol=1e-4, atol=1e-4)
    other, _ = TanhGSDE(mean, log_std, features, sigma).sample_and_log_prob(tf.constant([9, 11]))
    assert not np.allclose(other.numpy(), actions.numpy())  # the seed picks the draw


def test_predicts_numpy_action_is_tanh_of_mean_or_of_one_float32_draw_per_entry():
    mean = np.array([[0.3, -2.0], [1.0, 0.0], [0.0, 0.5]], np.float32)
    log_std = np.array([[-1.0, 0.0], [-0.5, -2.0], [0.2, -1.0]], np.float32)
    deterministic = numpy_action(mean)
    assert deterministic.dtype == np.float32
    np.testing.assert_array_equal(deterministic, np.tanh(mean))
    sampled = numpy_action(mean, log_std, np.random.default_rng(4))
    noise = np.random.default_rng(4).standard_normal(mean.shape, dtype=np.float32)  # the same stream
    assert sampled.dtype == np.float32
    np.testing.assert_allclose(sampled, np.tanh(mean + np.exp(log_std) * noise), rtol=1e-6)
    with pytest.raises(ValueError, match="^numpy_action draws a sample from log_std: pass it with rng$"):
        numpy_action(mean, None, np.random.default_rng(4))
