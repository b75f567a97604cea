"""SACUpdate.step against a reference written out here, gradient by gradient.

The update runs eagerly (the compiled path is the same Python, traced: test_agent checks the two agree), with each
optimizer step wrapped so the test sees the gradients it is given and the state at that moment. The reference
uses the networks, the distributions and, for the variants' own formulas, the loss functions (each tested by
value in test_losses); the wiring between them (which seed, which critics, which alpha, which observations, in
which order) is written out by hand.
"""

import image_envs  # noqa: F401 (registers BrightSpot)
import numpy as np
import pytest
import tensorflow as tf
from conftest import SMALL
from test_observations import IMAGE

from keras_sac import KerasSAC
from keras_sac.agent import polyak_update
from keras_sac.core import losses
from keras_sac.core.distributions import TanhGaussian, TanhGSDE
from keras_sac.core.encoders import augment
from keras_sac.core.spaces import Batch

VARIANTS = {
    "sac": {},
    "fixed alpha, no entropy in the target": dict(learn_alpha=False, entropy_backup=False),
    "redq": dict(n_critics=4, target_backup="redq", redq_subset=2),
    "mean backup, 3 critics": dict(n_critics=3, target_backup="mean"),
    "reinforce, 3 actor samples": dict(actor_gradient="reinforce", num_actor_samples=3),
    "reinforce, 2 actor samples, dropout": dict(
        actor_gradient="reinforce", num_actor_samples=2, critic_dropout=0.3, compile_mode="graph"
    ),
    "tqc": dict(critic_type="quantile", n_quantiles=5, top_quantiles_to_drop_per_net=2, n_critics=3),
    "gsde": dict(use_sde=True),
    "images, random shift": dict(IMAGE, image_augmentation="random_shift", learning_starts=100),
    "images, no augmentation": dict(IMAGE, learning_starts=100),
    "droq, redq": dict(
        critic_dropout=0.3,
        critic_layer_norm=True,
        n_critics=3,
        target_backup="redq",
        redq_subset=2,
        compile_mode="graph",
    ),
    "no target critics": dict(target_update="none"),  # the TD target bootstraps from the online critics
    # CrossQ with dropout: (s, a) and (s', a') through the batch-renormalised online critics as one batch, one
    # dropout mask for the joint pass (in batch renorm's warm-up, so the output reads the batch's own statistics)
    # (compile_mode graph, here and above: auto compiles dropout with XLA's threefry, which this eager step cannot run)
    "crossq, dropout": dict(critic_batch_renorm=True, target_update="none", critic_dropout=0.3, compile_mode="graph"),
}


def make_batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    f = lambda *shape: rng.uniform(-1, 1, shape).astype(np.float32)  # noqa: E731
    # n-step discounts differ per row, and some rows are terminal: gamma or a shared discount would be caught
    discounts = (0.9 ** rng.integers(1, 4, n)).astype(np.float32)
    terminated = (np.arange(n) % 4 == 0).astype(np.float32)
    return Batch(f(n, 2), f(n, 2), f(n), f(n, 2), terminated, discounts)


def grads_of(loss_fn, variables):
    with tf.GradientTape() as tape:
        loss, info = loss_fn()
    return [g.numpy() for g in tape.gradient(loss, variables)], info


def squared_td_loss(q, y):
    """SAC's critic loss written out: the sum over critics of half the mean squared TD error, and its metrics."""
    value = tf.reduce_sum(0.5 * tf.reduce_mean((q - y) ** 2, axis=1))
    return value, {"train/critic_loss": value, "train/mean_q": tf.reduce_mean(q)}


def assert_grads_close(got, expected, what):
    assert len(got) == len(expected), what
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=2e-4, atol=1e-6, err_msg=what)
    assert any(np.abs(e).max() > 1e-4 for e in expected), f"{what}: the reference gradient is zero"


@pytest.mark.parametrize("name", VARIANTS)
def test_one_update_is_the_reference_gradient_by_gradient(match_env, name):
    settings = VARIANTS[name]
    images = "encoder" in settings
    env = "BrightSpot-chw-v0" if images else match_env
    agent = KerasSAC(env, seed=0, gamma=0.9, init_alpha=0.3, tau=0.2, **{**SMALL, **settings})
    update, c = agent._update, agent.config
    crossq, targets = c.critic_batch_renorm, agent.target_critics
    for w in [] if targets is None else targets.variables:  # targets apart from the online critics, so
        w.assign(w * 0.5 + 0.1)  # swapping them shows
    if images:  # image observations from the env itself, through the buffer (no update before learning_starts)
        agent.learn(60)
        b = agent.buffer.sample(16, np.random.default_rng(0))
        b = b._replace(terminated=(np.arange(16) % 4 == 0).astype(np.float32))
    else:
        b = make_batch()
    obs, actions, rewards, next_obs, terminated, discounts = (tf.nest.map_structure(tf.constant, x) for x in b)
    alpha = float(np.exp(agent.log_alpha.numpy()))  # the step's temperature, in all three losses
    log_alpha_before = agent.log_alpha.numpy().copy()
    targets_before = [] if targets is None else [w.numpy().copy() for w in targets.variables]
    twin_rng = tf.random.Generator.from_state(agent.tf_rng.state.numpy(), agent.tf_rng.algorithm)
    # the seeds the update draws, in one generator call: gSDE's noise matrix (for next and actor actions
    # alike) or next then actor, then one each for dropout and REDQ's subset
    names = ["noise"] if c.use_sde else ["next", "actor"]
    names += (["dropout"] if c.critic_dropout else []) + (["redq"] if c.target_backup == "redq" else [])
    shifting = c.image_augmentation == "random_shift"
    names += ["augment"] if shifting else []
    seeds = dict(zip(names, tf.unstack(twin_rng.make_seeds(len(names)), axis=1)))
    next_seed, actor_seed = (seeds["noise"], seeds["noise"]) if c.use_sde else (seeds["next"], seeds["actor"])
    drop_online = drop_target = drop_actor = None  # DroQ: one mask each, split from the dropout seed
    if c.critic_dropout:
        drop_online, drop_target, drop_actor = tf.unstack(tf.random.experimental.stateless_split(seeds["dropout"], 3))
    if shifting:  # DrQ: one random shift of obs for the critics and the actor, another of next_obs
        obs_seed, next_obs_seed = tf.unstack(tf.random.experimental.stateless_split(seeds["augment"], 2))
        obs = augment(obs, agent.spec.obs, c.augmentation_pad, obs_seed)
        next_obs = augment(next_obs, agent.spec.obs, c.augmentation_pad, next_obs_seed)
    k = c.num_actor_samples
    obs_k = tf.tile(obs, [k, 1]) if k > 1 else obs  # row j * batch + i: sample j of state i

    def pi(x):
        if c.use_sde:  # one noise matrix W for the batch, scaled by the learned sigma
            mean, log_std, features = agent.actor.with_features(x)
            return TanhGSDE(mean, log_std, features, tf.exp(agent.actor.sde_log_std))
        return TanhGaussian(*agent.actor(x))

    def crossq_critic_reference():
        next_a, next_lp = pi(next_obs).sample_and_log_prob(next_seed)
        statistics = [v.numpy() for v in agent.critics.non_trainable_variables]  # (the real pass moved them)

        def loss():
            joint = agent.critics(
                tf.concat([obs, next_obs], 0), tf.concat([actions, next_a], 0), training=True, seed=drop_online
            )
            q, next_q = tf.split(joint, 2, axis=1)
            y = rewards + discounts * (1 - terminated) * (tf.reduce_min(tf.stop_gradient(next_q), 0) - alpha * next_lp)
            return squared_td_loss(q, y)

        grads = grads_of(loss, agent.critics.trainable_variables)
        for v, value in zip(agent.critics.non_trainable_variables, statistics, strict=True):
            v.assign(value)  # as the real pass left them, for the actor's step
        return grads

    def critic_reference():
        if crossq:
            return crossq_critic_reference()
        next_a, next_lp = pi(next_obs).sample_and_log_prob(next_seed)
        next_q = (agent.critics if targets is None else targets)(next_obs, next_a, seed=drop_target)
        entropy_alpha = alpha if c.entropy_backup else 0.0
        if c.critic_type == "quantile":
            # the paper's truncated mixture: pooled, sorted, the largest drop_per_net * N cut off (the update
            # weights the atoms instead of sorting them)
            pooled = tf.reshape(tf.transpose(next_q, [1, 0, 2]), [tf.shape(next_q)[1], -1])
            n_kept = pooled.shape[-1] - c.top_quantiles_to_drop_per_net * c.n_critics
            atoms = tf.sort(pooled, axis=-1)[:, :n_kept]
            y = rewards[:, None] + discounts[:, None] * (1 - terminated[:, None]) * (
                atoms - entropy_alpha * next_lp[:, None]
            )
            return grads_of(
                lambda: losses.quantile_huber_loss(agent.critics(obs, actions), y),
                agent.critics.trainable_variables,
            )
        if c.target_backup == "redq":
            backup = losses.redq_backup(next_q, seeds["redq"], subset=c.redq_subset)
        elif c.target_backup == "mean":
            backup = tf.reduce_mean(next_q, axis=0)
        else:
            backup = tf.reduce_min(next_q, axis=0)
        y = rewards + discounts * (1 - terminated) * (backup - entropy_alpha * next_lp)

        return grads_of(
            lambda: squared_td_loss(agent.critics(obs, actions, seed=drop_online), y), agent.critics.trainable_variables
        )

    actor_log_prob = []

    def actor_reference():
        def loss():
            policy = pi(obs_k)
            if c.actor_gradient == "reinforce":
                a, lp = policy.sample_detached_and_log_prob(actor_seed)
            else:
                a, lp = policy.sample_and_log_prob(actor_seed)
            q_all = agent.critics(obs_k, a, seed=drop_actor)
            if c.critic_type == "quantile":
                q = tf.reduce_mean(q_all, axis=[0, 2])
            elif c.target_backup == "redq":
                q = tf.reduce_mean(q_all, axis=0)  # REDQ's actor: the ensemble mean
            else:
                q = tf.reduce_min(q_all, axis=0)
            actor_log_prob.append(lp.numpy())
            if c.actor_gradient == "reinforce":
                return losses.reinforce_actor_loss(lp, tf.stop_gradient(q), alpha, k)
            value = tf.reduce_mean(alpha * lp - q)
            return value, {"train/actor_loss": value, "train/entropy": -tf.reduce_mean(lp)}

        return grads_of(loss, agent.actor.learned_variables)

    def alpha_reference():
        lp = actor_log_prob[-1]
        target = lp + agent.target_entropy
        value = -np.mean(log_alpha_before * target)
        return [np.float32(-np.mean(target))], {"train/alpha_loss": value}

    references = {"critic": critic_reference, "actor": actor_reference, "alpha": alpha_reference}
    seen, expected_metrics = [], {}
    for role in references:
        step = getattr(update, f"{role}_step")
        real_apply = step.apply

        def recording_apply(grads, role=role, real_apply=real_apply):
            expected, info = references[role]()  # the state as the real step finds it
            assert_grads_close([np.asarray(g) for g in grads], expected, f"{role} gradient")
            expected_metrics.update(info)
            seen.append(role)
            real_apply(grads)

        step.apply = recording_apply

    metrics = update.step(Batch(*(tf.nest.map_structure(tf.constant, x) for x in b)))

    assert seen == (["critic", "actor", "alpha"] if c.learn_alpha else ["critic", "actor"])
    for key, value in expected_metrics.items():
        np.testing.assert_allclose(np.asarray(metrics[key]), np.asarray(value), rtol=1e-5, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(float(metrics["train/alpha"]), alpha, rtol=1e-6)
    assert int(agent.n_updates.numpy()) == 1
    np.testing.assert_array_equal(agent.tf_rng.state.numpy(), twin_rng.state.numpy())  # one draw of n seeds
    if targets is not None:
        for online, target, old in zip(agent.critics.variables, targets.variables, targets_before):
            np.testing.assert_allclose(target.numpy(), 0.2 * online.numpy() + 0.8 * old, rtol=1e-5, atol=1e-7)
    if not c.learn_alpha:
        assert agent.log_alpha.numpy() == log_alpha_before


def test_polyak_refuses_lists_of_other_lengths():
    # a target list one short would leave a target critic's layer untrained without a word
    online, target = [tf.Variable(1.0), tf.Variable(2.0)], [tf.Variable(0.0)]
    with pytest.raises(ValueError):
        polyak_update(online, target, 0.5)


def test_an_error_that_is_not_a_divergence_check_passes_through_unchanged(match_env):
    update = KerasSAC(match_env, seed=0, **SMALL)._update

    def failing():
        raise tf.errors.InvalidArgumentError(None, None, "some other op: shapes differ")

    with pytest.raises(tf.errors.InvalidArgumentError, match="^some other op: shapes differ$"):
        update.call(failing, (), step=7)
