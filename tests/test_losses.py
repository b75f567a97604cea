"""The three SAC losses against numbers worked out by hand (shown in the comments)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_sac.core.losses import (
    actor_loss,
    alpha_loss,
    critic_loss,
    drop_mask,
    mean_backup,
    mean_over_atoms,
    min_backup,
    quantile_huber_loss,
    redq_backup,
    reinforce_actor_loss,
    soft_td_target,
    truncated_mixture,
)

NEXT_Q = tf.constant([[3.0, 5.0], [4.0, 1.0], [1.0, 9.0]])  # 3 target critics x 2 transitions


def test_soft_td_target_uses_the_backup_entropy_bonus_discount_and_terminated_mask():
    y = soft_td_target(
        rewards=tf.constant([1.0, 2.0]),
        terminated=tf.constant([0.0, 1.0]),
        next_q=min_backup(NEXT_Q[:2]),
        next_log_prob=tf.constant([-2.0, 0.5]),
        alpha=0.2,
        discounts=tf.constant([0.9, 0.9]),
    )
    # column 0: 1 + 0.9 * (min(3, 4) - 0.2 * -2) = 1 + 0.9 * 3.4 = 4.06 (a log-prob of -1 would not tell
    # alpha * log_prob from alpha / log_prob: mutation testing found that)
    # column 1: terminated, so just the reward 2
    np.testing.assert_allclose(y.numpy(), [4.06, 2.0], rtol=1e-6)


def test_soft_td_target_without_entropy_bonus_and_with_n_step_discounts():
    # entropy_backup: false passes alpha = 0; an n-step transition carries gamma^k (here 0.9^3 = 0.729).
    y = soft_td_target(
        tf.constant([1.0]), tf.constant([0.0]), tf.constant([3.0]), tf.constant([-1.0]), 0.0, tf.constant([0.729])
    )
    np.testing.assert_allclose(y.numpy(), [1 + 0.729 * 3], rtol=1e-6)


def test_soft_td_target_carries_no_gradient():
    next_q = tf.Variable([3.0])
    with tf.GradientTape() as tape:
        y = soft_td_target(tf.constant([1.0]), tf.constant([0.0]), next_q, tf.constant([0.0]), 0.1, tf.constant([0.99]))
    assert tape.gradient(y, next_q) is None


def test_min_and_mean_backups():
    np.testing.assert_allclose(min_backup(NEXT_Q).numpy(), [1.0, 1.0])
    np.testing.assert_allclose(mean_backup(NEXT_Q).numpy(), [8 / 3, 5.0], rtol=1e-6)


def test_redq_backup_is_the_min_over_a_random_subset_drawn_per_seed():
    # All 3 subsets of 2 of the 3 critics give per-column minima (critics {0,1}: (3, 1), {0,2}: (1, 5),
    # {1,2}: (1, 1)); each seed must give one of them, and over many seeds all three must come up.
    subsets = {(3.0, 1.0), (1.0, 5.0), (1.0, 1.0)}
    seen = {tuple(redq_backup(NEXT_Q, tf.constant([s, 7]), subset=2).numpy().tolist()) for s in range(60)}
    assert seen == subsets
    # subset = N is the plain min; subset = 1 picks a single critic's row
    np.testing.assert_allclose(redq_backup(NEXT_Q, tf.constant([1, 2]), subset=3).numpy(), [1.0, 1.0])
    assert redq_backup(NEXT_Q, tf.constant([1, 2]), subset=1).numpy().tolist() in NEXT_Q.numpy().tolist()


def test_critic_loss_is_half_mse_summed_over_critics():
    loss, info = critic_loss(tf.constant([[1.0, 3.0], [4.0, 0.0]]), tf.constant([2.0, 1.0]))
    # critic 0: errors (-1, 2) -> mse 2.5 -> 1.25; critic 1: errors (2, -1) -> 1.25; sum 2.5
    assert loss.numpy() == pytest.approx(2.5)
    assert info["train/mean_q"].numpy() == pytest.approx(2.0)


def test_actor_loss_uses_the_given_q_and_alpha():
    loss, info = actor_loss(
        log_prob=tf.constant([-1.0, -2.0]), q=min_backup(tf.constant([[1.0, 3.0], [2.0, 0.0]])), alpha=0.5
    )
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


def test_reinforce_loss_baseline_is_leave_one_out_and_its_gradient_is_the_score_estimate():
    # K = 2 samples of one state: f = alpha * log_prob - q = (0.5 * -1 - 1, 0.5 * -3 - 4) = (-1.5, -5.5).
    # Leave-one-out baselines: (-5.5, -1.5); advantages (4, -4); surrogate mean(log_prob * adv) = (-4 + 12) / 2.
    log_prob = tf.Variable([-1.0, -3.0])
    with tf.GradientTape() as tape:
        loss, info = reinforce_actor_loss(log_prob, tf.constant([1.0, 4.0]), alpha=0.5, num_samples=2)
    assert loss.numpy() == pytest.approx(4.0)
    np.testing.assert_allclose(tape.gradient(loss, log_prob).numpy(), [4 / 2, -4 / 2])  # adv / (K * batch)
    assert info["train/actor_loss"].numpy() == pytest.approx(-3.5)  # the objective E[f], not the surrogate
    assert info["train/entropy"].numpy() == pytest.approx(2.0)


def test_reinforce_baselines_leave_one_out_per_state_with_three_samples_of_two_states():
    # alpha 0, so f = -q. Rows sample-major: q = (1, 2 | 4, 5 | 7, 11), samples k = 0, 1, 2 of states 0 and 1.
    # State 0: f = (-1, -4, -7), sum -12, baselines ((-12 + 1) / 2, (-12 + 4) / 2, (-12 + 7) / 2) = (-5.5, -4, -2.5),
    # advantages (4.5, 0, -4.5). State 1: f = (-2, -5, -11), sum -18, baselines (-8, -6.5, -3.5), advantages
    # (6, 1.5, -7.5). log_prob (-1, -2 | -3, -1 | -2, -3): surrogate (-4.5 - 12 + 0 - 1.5 + 9 + 22.5) / 6 = 2.25.
    # (K = 3 and two states: with K = 2 dividing and multiplying by K - 1 agree, and with one state a baseline
    # summed over every row looks per-state: mutation testing found both.)
    log_prob = tf.Variable([-1.0, -2.0, -3.0, -1.0, -2.0, -3.0])
    q = tf.constant([1.0, 2.0, 4.0, 5.0, 7.0, 11.0])
    with tf.GradientTape() as tape:
        loss, info = reinforce_actor_loss(log_prob, q, alpha=0.0, num_samples=3)
    assert loss.numpy() == pytest.approx(2.25)
    np.testing.assert_allclose(tape.gradient(loss, log_prob).numpy(), np.array([4.5, 6, 0, 1.5, -4.5, -7.5]) / 6)
    assert info["train/actor_loss"].numpy() == pytest.approx(-5.0)


def test_mean_over_atoms_is_per_transition_over_critics_and_quantiles():
    q_values = tf.constant([[[1.0, 3.0], [10.0, 20.0]], [[5.0, 7.0], [0.0, 2.0]]])  # 2 critics x 2 transitions x 2
    np.testing.assert_allclose(mean_over_atoms(q_values).numpy(), [4.0, 8.0])  # (1+3+5+7)/4, (10+20+0+2)/4


# TQC: 2 critics x 1 transition x 3 quantiles each.
NEXT_QUANTILES = tf.constant([[[1.0, 4.0, 9.0]], [[2.0, 3.0, 7.0]]])


def kept(atoms_and_weights) -> list:
    """The atoms a truncated mixture keeps (weight 1), ascending, one list per row; every weight 0 or 1."""
    atoms, weights = (x.numpy() for x in atoms_and_weights)
    assert set(np.unique(weights)) <= {0.0, 1.0}
    return [sorted(a[w == 1.0].tolist()) for a, w in zip(atoms, weights, strict=True)]


def test_truncated_mixture_pools_and_drops_the_top_quantiles_of_every_critic():
    # pooled: 1, 4, 9, 2, 3, 7; drop 1 per critic = the top 2 (9 and 7) -> 1, 2, 3, 4 kept
    atoms, weights = truncated_mixture(NEXT_QUANTILES, drop_per_net=1)
    np.testing.assert_array_equal(atoms.numpy(), [[1, 4, 9, 2, 3, 7]])  # every atom, in pooled order
    np.testing.assert_array_equal(weights.numpy(), [[1, 1, 0, 1, 1, 0]])
    assert kept(truncated_mixture(NEXT_QUANTILES, drop_per_net=0)) == [[1, 2, 3, 4, 7, 9]]
    assert kept(truncated_mixture(NEXT_QUANTILES, drop_per_net=2)) == [[1, 2]]
    # two transitions: each row pooled over its own critics only
    two = tf.constant([[[1.0, 4.0], [0.0, 5.0]], [[2.0, 3.0], [8.0, 6.0]]])  # (2 critics, 2 transitions, 2)
    assert kept(truncated_mixture(two, drop_per_net=1)) == [[1, 2], [0, 5]]


@pytest.mark.parametrize("k", [1, 3, 16, 17, 29])  # 16 and fewer: rounds of argmax; more: a stable sort
def test_drop_mask_takes_the_k_largest_atoms_and_the_first_of_equal_ones(k):
    rng = np.random.default_rng(k)
    atoms = rng.integers(0, 6, size=(64, 30)).astype(np.float32)  # few values: many ties at the cut
    expected = np.zeros_like(atoms)
    for row, order in enumerate(np.argsort(-atoms, axis=1, kind="stable")):  # descending, first of equals first
        expected[row, order[:k]] = 1.0
    np.testing.assert_array_equal(drop_mask(tf.constant(atoms), k).numpy(), expected)
    np.testing.assert_array_equal(drop_mask(tf.constant(atoms), 0).numpy(), np.zeros_like(atoms))


def test_the_weighted_quantile_loss_equals_the_loss_on_the_kept_atoms_alone():
    rng = np.random.default_rng(0)
    next_quantiles = tf.constant(rng.normal(size=(3, 8, 5)), tf.float32)  # 3 critics, 8 transitions, 5 quantiles
    quantiles = tf.Variable(rng.normal(size=(3, 8, 5)).astype(np.float32))
    atoms, weights = truncated_mixture(next_quantiles, drop_per_net=2)
    only_kept = tf.constant(kept((atoms, weights)))  # (8, 9): the paper's sorted, truncated mixture
    with tf.GradientTape(persistent=True) as tape:
        weighted, _ = quantile_huber_loss(quantiles, atoms, weights)
        plain, _ = quantile_huber_loss(quantiles, only_kept)
    assert weighted.numpy() == pytest.approx(plain.numpy(), rel=1e-6)
    np.testing.assert_allclose(tape.gradient(weighted, quantiles), tape.gradient(plain, quantiles), rtol=1e-5)
    unit, _ = quantile_huber_loss(quantiles, atoms, tf.ones_like(atoms))  # weights of one: the plain mean
    assert unit.numpy() == pytest.approx(quantile_huber_loss(quantiles, atoms)[0].numpy(), rel=1e-6)


def test_quantile_td_target_shifts_every_atom_by_the_same_reward_discount_and_entropy():
    atoms, _ = truncated_mixture(NEXT_QUANTILES, drop_per_net=1)
    y = soft_td_target(
        tf.constant([[1.0]]), tf.constant([[0.0]]), atoms, tf.constant([[-1.0]]), 0.5, tf.constant([[0.5]])
    )
    # 1 + 0.5 * (z + 0.5) for z = 1, 4, 9, 2, 3, 7
    np.testing.assert_allclose(y.numpy(), [[1.75, 3.25, 5.75, 2.25, 2.75, 4.75]])


def test_quantile_huber_loss_against_hand_numbers():
    # One critic, one transition, 2 quantiles at levels 1/4 and 3/4: theta = (0, 1); target atoms (0.5, 3).
    # theta_0 = 0, tau 0.25: deltas 0.5 (huber 0.125, weight 0.25), 3 (huber 2.5, weight 0.25)
    # theta_1 = 1, tau 0.75: deltas -0.5 (huber 0.125, weight |0.75 - 1| = 0.25), 2 (huber 1.5, weight 0.75)
    # mean of 0.03125, 0.625, 0.03125, 1.125 = 1.8125 / 4
    quantiles = tf.Variable([[[0.0, 1.0]]])
    with tf.GradientTape() as tape:
        loss, info = quantile_huber_loss(quantiles, tf.constant([[0.5, 3.0]]))
    assert loss.numpy() == pytest.approx(1.8125 / 4)
    assert info["train/mean_q"].numpy() == pytest.approx(0.5)
    np.testing.assert_allclose(info["train/mean_q_per_critic"].numpy(), [0.5])
    # d/d theta_0: -(0.25 * 0.5 + 0.25 * 1) / 4 (both deltas pull it up; the second past kappa, slope 1)
    # d/d theta_1: -(-0.25 * 0.5 + 0.75 * 1) / 4
    np.testing.assert_allclose(tape.gradient(loss, quantiles).numpy(), [[[-0.375 / 4, -0.625 / 4]]])
    # kappa 2, one quantile (level 1/2) and one atom 3 away: past kappa, huber = 2 * (3 - 0.5 * 2) = 4, weight 1/2
    wide, _ = quantile_huber_loss(tf.constant([[[0.0]]]), tf.constant([[3.0]]), kappa=2.0)
    assert wide.numpy() == pytest.approx(2.0)
    # two critics, two transitions: the mean Q per critic is over its transitions and quantiles, one per critic
    two = tf.constant([[[0.0, 1.0], [2.0, 3.0]], [[4.0, 6.0], [8.0, 10.0]]])
    _, info = quantile_huber_loss(two, tf.zeros((2, 3)))
    assert info["train/mean_q_per_critic"].shape == (2,)
    np.testing.assert_allclose(info["train/mean_q_per_critic"].numpy(), [1.5, 7.0])
    assert info["train/mean_q"].numpy() == pytest.approx(4.25)


def test_quantile_huber_loss_pulls_each_quantile_to_its_level_of_the_targets():
    # Gradient descent on the loss against fixed atoms 0..99 must put quantile m near the (2m + 1) / 2M level.
    atoms = tf.range(100, dtype=tf.float32)[None, :]
    quantiles = tf.Variable(tf.zeros((1, 1, 4)))

    @tf.function  # one graph for the 3,000 steps (eagerly they took 25 s)
    def descend():
        for _ in tf.range(3000):
            with tf.GradientTape() as tape:
                loss, _ = quantile_huber_loss(quantiles, atoms)
            quantiles.assign_sub(40.0 * tape.gradient(loss, quantiles))

    descend()
    np.testing.assert_allclose(quantiles.numpy().ravel(), [12.5, 37.5, 62.5, 87.5], atol=1.0)


def test_tqc_actor_maximises_the_mean_over_every_critic_and_quantile():
    np.testing.assert_allclose(mean_over_atoms(NEXT_QUANTILES).numpy(), [26 / 6])
