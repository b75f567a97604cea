"""The three SAC losses against numbers worked out by hand (shown in the comments)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_sac.losses import actor_loss, alpha_loss, critic_loss, soft_td_target


def test_soft_td_target_uses_min_target_q_entropy_bonus_and_terminated_mask():
    y = soft_td_target(rewards=tf.constant([1.0, 2.0]), terminated=tf.constant([0.0, 1.0]),
                       next_q_values=tf.constant([[3.0, 5.0], [4.0, 1.0]]),
                       next_log_prob=tf.constant([-1.0, 0.5]), alpha=0.2, gamma=0.9)
    # column 0: 1 + 0.9 * (min(3, 4) - 0.2 * -1) = 1 + 0.9 * 3.2 = 3.88
    # column 1: terminated, so just the reward 2
    np.testing.assert_allclose(y.numpy(), [3.88, 2.0], rtol=1e-6)


def test_soft_td_target_carries_no_gradient():
    next_q = tf.Variable([[3.0], [4.0]])
    with tf.GradientTape() as tape:
        y = soft_td_target(tf.constant([1.0]), tf.constant([0.0]), next_q, tf.constant([0.0]), 0.1, 0.99)
    assert tape.gradient(y, next_q) is None


def test_critic_loss_is_half_mse_summed_over_critics():
    loss, info = critic_loss(tf.constant([[1.0, 3.0], [4.0, 0.0]]), tf.constant([2.0, 1.0]))
    # critic 0: errors (-1, 2) -> mse 2.5 -> 1.25; critic 1: errors (2, -1) -> 1.25; sum 2.5
    assert loss.numpy() == pytest.approx(2.5)
    assert info["train/mean_q"].numpy() == pytest.approx(2.0)


def test_actor_loss_uses_min_q_and_alpha():
    loss, info = actor_loss(log_prob=tf.constant([-1.0, -2.0]), q_values=tf.constant([[1.0, 3.0], [2.0, 0.0]]),
                            alpha=0.5)
    # min q = (1, 0); terms 0.5 * -1 - 1 = -1.5 and 0.5 * -2 - 0 = -1; mean -1.25
    assert loss.numpy() == pytest.approx(-1.25)
    assert info["train/entropy"].numpy() == pytest.approx(1.5)


def test_alpha_loss_value_and_direction():
    log_alpha = tf.Variable(math.log(0.5))
    with tf.GradientTape() as tape:
        loss, _ = alpha_loss(log_alpha, tf.constant([-1.0, -2.0]), target_entropy=-1.5)
    # mean(log_prob + target_entropy) = mean(-2.5, -3.5) = -3 -> loss = 3 * log(0.5)
    assert loss.numpy() == pytest.approx(3 * math.log(0.5))
    # entropy 1.5 is above the target -1.5, so descent must lower alpha: d loss / d log_alpha = +3 > 0
    assert tape.gradient(loss, log_alpha).numpy() == pytest.approx(3.0)
