"""SAC's losses and their variants as pure functions of tensors (Haarnoja et al. 2018, arXiv 1812.05905).

Nothing here reads a variable or an optimizer, so each can be checked against numbers worked out by hand
(tests/test_losses.py). `update.py` picks one of each kind when the agent is built:
- backups (how the TD target combines the ensemble): `min_backup`, `mean_backup`, `redq_backup`, and for
  quantile critics `truncated_mixture` (TQC);
- the TD target: `soft_td_target` (alpha = 0 gives the backup without the entropy bonus);
- critic loss: `critic_loss`, or `quantile_huber_loss` for quantile critics;
- actor losses: `actor_loss` (reparameterised), `reinforce_actor_loss` (score function);
- temperature: `alpha_loss`.
"""

from __future__ import annotations

import tensorflow as tf


def min_backup(next_q_values, seed=None):
    """min_i Q'_i(s', a'): clipped double Q (Fujimoto et al. 2018; SAC eq. 5 with two critics). -> (batch,)"""
    return tf.reduce_min(next_q_values, axis=0)


def mean_backup(next_q_values, seed=None):
    """mean_i Q'_i(s', a'): the plain ensemble average (no clipping). -> (batch,)"""
    return tf.reduce_mean(next_q_values, axis=0)


def redq_backup(next_q_values, seed, subset: int):
    """min over a random subset M of the N target critics, M drawn once per update (REDQ, Chen et al. 2021,
    Alg. 1 lines 5-6). next_q_values: (N, batch); seed: (2,) int. -> (batch,)"""
    scores = tf.random.stateless_uniform([tf.shape(next_q_values)[0]], seed=seed)
    chosen = tf.math.top_k(scores, k=subset).indices  # a uniform random subset of size M
    return tf.reduce_min(tf.gather(next_q_values, chosen), axis=0)


def truncated_mixture(next_quantiles, seed=None, *, drop_per_net: int):
    """TQC's target atoms (Kuznetsov et al. 2020, sec. 4, eq. 10-11): the N target critics' M quantiles each
    pooled into one mixture of N * M atoms, and the largest drop_per_net * N removed, which controls
    overestimation as the min of two critics does for scalar ones, but in finer steps.

    The loss averages over the kept atoms in any order, so they are not sorted out (a sort of every row was a
    single-threaded 0.7 ms of TQC's update under XLA): every atom is returned with a weight, 0.0 for the dropped
    ones (`drop_mask`) and 1.0 for the kept, for `quantile_huber_loss`'s `atom_weights`.

    next_quantiles: (N, batch, M) -> (atoms (batch, N * M) in pooled order, weights (batch, N * M)).
    """
    n, m = next_quantiles.shape[0], next_quantiles.shape[-1]
    pooled = tf.reshape(tf.transpose(next_quantiles, [1, 0, 2]), [-1, n * m])
    return pooled, 1.0 - drop_mask(pooled, drop_per_net * n)


def drop_mask(atoms, k: int):
    """(batch, K) 1.0 at the k largest atoms of each row, 0.0 elsewhere; among equal atoms the first is taken
    first, so exactly k per row. Found by k rounds of argmax (a sort where k > 16). atoms: (batch, K)."""
    if k == 0:
        return tf.zeros_like(atoms)
    if k > 16:  # each atom's place in the descending order, from a stable sort: the first k go
        place = tf.argsort(tf.argsort(-atoms, axis=-1, stable=True), axis=-1, stable=True)
        return tf.cast(place < k, atoms.dtype)
    mask = tf.zeros_like(atoms)
    remaining = atoms
    for _ in range(k):
        top = tf.one_hot(tf.argmax(remaining, axis=-1), atoms.shape[-1], dtype=atoms.dtype)
        mask = tf.maximum(mask, top)
        remaining = tf.where(top > 0, tf.constant(-float("inf"), atoms.dtype), remaining)
    return mask


def mean_over_atoms(q_values):
    """The critics' mean over every member and quantile: what TQC's actor maximises (Kuznetsov et al. 2020,
    eq. 12). q_values: (N, batch, M) -> (batch,)."""
    return tf.reduce_mean(q_values, axis=[0, 2])


def soft_td_target(rewards, terminated, next_q, next_log_prob, alpha, discounts):
    """y = r + gamma^k * (1 - terminated) * (Q'(s', a') - alpha * log pi(a'|s'))   (eq. 3, 5).

    Args:
        rewards: (batch,) the (n-step, discounted) reward sum r_t + ... + gamma^(k-1) r_(t+k-1).
        terminated: (batch,) 1.0 only if a true terminal state ended those k steps; a time-limit truncation is
            0.0 so the value bootstraps through it.
        next_q: (batch,) the backup of the target critics at (s', a'), a' ~ pi(.|s') (`min_backup`, ...).
        next_log_prob: (batch,) log pi(a'|s').
        alpha: scalar temperature; 0.0 drops the entropy bonus from the target (`entropy_backup: false`).
        discounts: (batch,) gamma^k, k the steps actually taken (k < n where an episode ended sooner).
    Returns:
        (batch,) target, with no gradient flowing into it.
    """
    soft_value = next_q - alpha * next_log_prob
    return tf.stop_gradient(rewards + discounts * (1.0 - terminated) * soft_value)


def critic_loss(q_values, target_q):
    """Sum over critics of 0.5 * mean squared TD error (SB3's scaling).

    q_values: (n_critics, batch); target_q: (batch,). Metrics: the loss, the mean Q, and each critic's
    mean Q as one (n_critics,) vector `train/mean_q_per_critic` (logged as train/mean_q_1, ...).
    """
    loss = tf.reduce_sum(0.5 * tf.reduce_mean(tf.square(q_values - target_q[None, :]), axis=1))
    return loss, {
        "train/critic_loss": loss,
        "train/mean_q": tf.reduce_mean(q_values),
        "train/mean_q_per_critic": tf.reduce_mean(q_values, axis=1),
    }


def quantile_huber_loss(quantiles, target_atoms, atom_weights=None, kappa: float = 1.0):
    """The quantile Huber loss of TQC (Kuznetsov et al. 2020, eq. 13; Dabney et al. 2018, eq. 10).

    Critic n's quantile m, at level tau_m = (2m + 1) / (2M), is pulled toward every target atom z_k:
    rho(delta) = |tau_m - 1{delta < 0}| * huber_kappa(delta), delta = z_k - theta_nm, averaged over critics,
    quantiles, atoms and the batch (the authors' code and sb3-contrib take this mean).

    quantiles: (N, batch, M); target_atoms: (batch, K), no gradient; atom_weights: None, or (batch, K) weights
    of the atoms (`truncated_mixture`'s: 0.0 for the dropped), the mean over atoms then a weighted mean. Metrics
    as `critic_loss`'s, the mean Q being the mean quantile.
    """
    m = quantiles.shape[-1]
    tau = (2.0 * tf.range(m, dtype=tf.float32) + 1.0) / (2.0 * m)  # (M,)
    delta = target_atoms[None, :, None, :] - quantiles[..., None]  # (N, batch, M, K)
    abs_delta = tf.abs(delta)
    huber = tf.where(abs_delta <= kappa, 0.5 * tf.square(delta), kappa * (abs_delta - 0.5 * kappa))
    weight = tf.abs(tau[:, None] - tf.cast(delta < 0.0, tf.float32))
    if atom_weights is None:
        loss = tf.reduce_mean(weight * huber)
    else:
        per_atom = tf.reduce_sum(weight * huber * atom_weights[None, :, None, :], axis=-1)  # (N, batch, M)
        loss = tf.reduce_mean(per_atom / tf.reduce_sum(atom_weights, axis=-1)[None, :, None])
    return loss, {
        "train/critic_loss": loss,
        "train/mean_q": tf.reduce_mean(quantiles),
        "train/mean_q_per_critic": tf.reduce_mean(quantiles, axis=[1, 2]),
    }


def actor_loss(log_prob, q, alpha):
    """E[alpha * log pi(a|s) - Q(s, a)] with a ~ pi(.|s) reparameterised (eq. 7, 12).

    log_prob: (batch,); q: (batch,) the critics' min (or REDQ's mean) at the fresh actions; alpha: scalar,
    held constant.
    """
    loss = tf.reduce_mean(alpha * log_prob - q)
    return loss, {"train/actor_loss": loss, "train/entropy": -tf.reduce_mean(log_prob)}


def reinforce_actor_loss(log_prob, q, alpha, num_samples: int):
    """Score-function (REINFORCE) estimate of the same objective's gradient (eq. 12 without reparameterising).

    grad E_a[f(s, a)] = E_a[(f(s, a) - b(s)) grad log pi(a|s)] with f = alpha * log pi - Q, the entropy term
    kept inside f (its own extra term E[grad log pi] is zero). The baseline b is leave-one-out: for each of
    the K actions of a state, the mean f of the other K - 1 (Kool et al. 2019), which keeps the estimate
    unbiased and needs no learned value.

    Args:
        log_prob: (K * batch,) log pi(a|s) of actions held fixed (no gradient through the actions), rows
            ordered sample-major (row k * batch + i is sample k of state i).
        q: (K * batch,) critic value at those actions (no gradient needed).
        alpha: scalar, held constant.
        num_samples: K >= 2.
    Returns:
        (surrogate loss whose gradient is the estimate, metrics); `train/actor_loss` reports the objective
        E[alpha * log pi - Q] itself, comparable with the reparameterised loss.
    """
    f = tf.reshape(tf.stop_gradient(alpha * log_prob - q), [num_samples, -1])  # (K, batch)
    baseline = (tf.reduce_sum(f, axis=0, keepdims=True) - f) / (num_samples - 1)
    surrogate = tf.reduce_mean(tf.reshape(log_prob, [num_samples, -1]) * (f - baseline))
    return surrogate, {"train/actor_loss": tf.reduce_mean(f), "train/entropy": -tf.reduce_mean(log_prob)}


def alpha_loss(log_alpha, log_prob, target_entropy):
    """-E[log_alpha * (log pi(a|s) + target_entropy)]: raises alpha while entropy < target (eq. 18).

    Written on log-alpha, as SB3 and the authors' code do, so alpha stays positive and the gradient
    scale does not depend on alpha itself.
    """
    loss = -tf.reduce_mean(log_alpha * tf.stop_gradient(log_prob + target_entropy))
    return loss, {"train/alpha_loss": loss}
