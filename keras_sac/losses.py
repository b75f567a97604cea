"""SAC's three losses as pure functions of tensors (Haarnoja et al. 2018, arXiv 1812.05905).

Each returns `(loss, metrics)`; nothing here reads a variable or an optimizer, so each can be checked
against numbers worked out by hand (tests/test_losses.py).
"""

from __future__ import annotations

import tensorflow as tf


def soft_td_target(rewards, terminated, next_q_values, next_log_prob, alpha, gamma):
    """y = r + gamma * (1 - terminated) * (min_i Q'_i(s', a') - alpha * log pi(a'|s'))   (eq. 3, 5).

    Args:
        rewards, terminated: (batch,). `terminated` is 1.0 only for a true terminal state; a time-limit
            truncation is stored as 0.0 so the value bootstraps through it.
        next_q_values: (n_critics, batch) target critics at (s', a'), a' ~ pi(.|s').
        next_log_prob: (batch,) log pi(a'|s').
    Returns:
        (batch,) target, with no gradient flowing into it.
    """
    soft_value = tf.reduce_min(next_q_values, axis=0) - alpha * next_log_prob
    return tf.stop_gradient(rewards + gamma * (1.0 - terminated) * soft_value)


def critic_loss(q_values, target_q):
    """Sum over critics of 0.5 * mean squared TD error (SB3's scaling).

    q_values: (n_critics, batch); target_q: (batch,).
    """
    loss = tf.reduce_sum(0.5 * tf.reduce_mean(tf.square(q_values - target_q[None, :]), axis=1))
    return loss, {"train/critic_loss": loss, "train/mean_q": tf.reduce_mean(q_values)}


def actor_loss(log_prob, q_values, alpha):
    """E[alpha * log pi(a|s) - min_i Q_i(s, a)] with a ~ pi(.|s) reparameterised (eq. 7, 12).

    log_prob: (batch,); q_values: (n_critics, batch); alpha: scalar, held constant.
    """
    loss = tf.reduce_mean(alpha * log_prob - tf.reduce_min(q_values, axis=0))
    return loss, {"train/actor_loss": loss, "train/entropy": -tf.reduce_mean(log_prob)}


def alpha_loss(log_alpha, log_prob, target_entropy):
    """-E[log_alpha * (log pi(a|s) + target_entropy)]: raises alpha while entropy < target (eq. 18).

    Written on log-alpha, as SB3 and the authors' code do, so alpha stays positive and the gradient
    scale does not depend on alpha itself.
    """
    loss = -tf.reduce_mean(log_alpha * tf.stop_gradient(log_prob + target_entropy))
    return loss, {"train/alpha_loss": loss}
