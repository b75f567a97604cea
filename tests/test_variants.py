"""The SAC family as settings: each variant's wiring, its math inside the update, and its persistence.

The variants' losses are checked against hand numbers in test_losses.py and n-step sampling in
test_buffer.py; these tests check what the update does with them.
"""

import numpy as np
import pytest
import tensorflow as tf
from conftest import SMALL, make_match_env
from test_agent import batch_of

from keras_sac import KerasSAC
from keras_sac.config.settings import ConfigError, SACConfig
from keras_sac.core.losses import mean_backup, mean_over_atoms, min_backup, quantile_huber_loss
from keras_sac.core.metrics import metric_values
from keras_sac.core.networks import MLP, Actor, ActorSnapshot, MLPOptions
from keras_sac.core.simba import SimbaTorso
from keras_sac.core.update import SACUpdate


def all_variables(agent) -> list:
    """Every saved TF variable's value, in the agent's own order (held metrics, BN statistics included)."""
    return [getattr(v, "state", v) for v in agent.state_variables().values()]


VARIANTS = {
    "redq": dict(n_critics=5, target_backup="redq", redq_subset=2, gradient_steps=3),
    "droq": dict(critic_dropout=0.05, critic_layer_norm=True, gradient_steps=2),
    "crossq": dict(
        critic_batch_renorm=True,
        actor_batch_renorm=True,
        target_update="none",
        policy_delay=3,
        adam_beta1=0.5,
        critic_arch=(64, 64),
        batch_renorm_warmup=20,
        gradient_steps=2,
        max_grad_norm=1.0,  # with policy_delay: the actor's norm is held between its updates like its loss
    ),
    "reinforce": dict(actor_gradient="reinforce", num_actor_samples=4),
    "hard_targets_n_step": dict(target_update="hard", target_update_period=10, n_steps=3, entropy_backup=False),
    "networks": dict(activation="gelu", init="orthogonal", actor_arch=(16,), critic_arch=(24, 24, 24)),
    "gsde": dict(use_sde=True, sde_sample_freq=8),
    "schedules": dict(
        actor_learning_rate={"schedule": "cosine", "steps": 100, "warmup_steps": 10},
        critic_learning_rate={"schedule": "linear", "end": 1e-5, "steps": 50},
        alpha_learning_rate=1e-3,
    ),
    "tqc": dict(
        critic_type="quantile", n_quantiles=5, top_quantiles_to_drop_per_net=1, n_critics=3, n_steps=2, policy_delay=2
    ),
    # resets at 25 and 50 updates: one before the save, one after it (the resumed run must redraw the same)
    "simba_adamw_resets": dict(architecture="simba", normalize_observations=True, weight_decay=0.01, reset_interval=25),
}


def update_of(config: dict, actor, critics) -> SACUpdate:
    cfg = SACConfig(**config)
    optimizers = [tf.keras.optimizers.Adam(1e-2) for _ in range(3)]
    log_alpha = tf.Variable(np.log(0.01), dtype=tf.float32)
    optimizers[0].build(actor.trainable_variables)
    optimizers[2].build([log_alpha])
    return SACUpdate(
        cfg,
        actor,
        critics,
        None,
        log_alpha,
        -1.0,
        optimizers,
        tf.Variable(0, dtype=tf.int64),
        tf.random.Generator.from_seed(0),
    )


class FixedCritics:
    """Two identical fixed critics, Q(s, a) = -sum((a - 0.5)^2): the best action is 0.5 everywhere."""

    trainable_variables: list = []  # nothing to learn

    def __call__(self, obs, actions, training=False, seed=None):
        q = -tf.reduce_sum(tf.square(actions - 0.5), axis=-1)
        return tf.stack([q, q])


@pytest.mark.parametrize("gradient", ["reparametrize", "reinforce"])
def test_both_actor_gradients_move_the_policy_toward_the_critics_best_action(gradient):
    tf.keras.utils.set_random_seed(0)
    actor = Actor(1, (16,), (-5.0, 2.0), name="actor")
    obs = tf.random.stateless_uniform((64, 3), seed=[1, 2], minval=-1, maxval=1)
    actor(obs)
    update = update_of(dict(actor_gradient=gradient, num_actor_samples=8, learn_alpha=False), actor, FixedCritics())
    step = tf.function(
        lambda o: update.update_actor_and_alpha(o, tf.constant(0.01), {"actor": update.rng.make_seeds(1)[:, 0]})
    )
    start = float(tf.reduce_mean(tf.tanh(actor(obs)[0])))
    for _ in range(150):
        step(obs)
    end = float(tf.reduce_mean(tf.tanh(actor(obs)[0])))
    assert abs(start) < 0.2 and abs(end - 0.5) < 0.1, (start, end)


def test_redq_actor_maximises_the_ensemble_mean_and_the_others_the_min(match_env):
    assert KerasSAC(match_env, seed=0, **SMALL, **VARIANTS["redq"])._update.actor_q is mean_backup
    assert KerasSAC(match_env, seed=0, **SMALL, target_backup="mean")._update.actor_q is min_backup


# auto compiles redq, droq and crossq with XLA and the rest as graphs; the rest are also run under XLA. Every
# case on XLA is slow (5-15 s of compiles per agent, two agents per test); the default suite keeps the graph
# cases. With -m slow, test_agent also checks the fused phase and the non-finite guard under XLA; the default
# suite's one XLA-compiled agent is test_learning's TQC (auto compiles it with XLA).
ON_XLA = {n for n in VARIANTS if SACConfig(**VARIANTS[n]).use_xla}


@pytest.mark.parametrize(
    "name, compile_mode",
    [pytest.param(n, "auto", marks=[pytest.mark.slow] * (n in ON_XLA)) for n in VARIANTS]
    + [pytest.param(n, "xla", marks=pytest.mark.slow) for n in VARIANTS if n not in ON_XLA],
)
def test_each_variant_learns_traces_once_restores_exactly_and_resumes_to_float_rounding(name, compile_mode, tmp_path):
    # Pendulum: its mid-episode state can be saved. The restored state is compared bit for bit; the continued
    # runs only to float rounding, because two agents in one process may differ in the last bits where
    # TensorFlow's threads reduce in another order (bit-identical continuation needs op determinism, which is
    # process-wide: test_resume.py checks it with --deterministic in a fresh process).
    agent = KerasSAC("Pendulum-v1", seed=0, compile_mode=compile_mode, **SMALL, **VARIANTS[name])
    agent.learn(90)
    assert agent._compiled_update_and_act.experimental_get_tracing_count() == 1
    # and every other phase program it ran (CrossQ's critic-only one) once, however often it was called
    assert all(f.experimental_get_tracing_count() <= 1 for f in agent._phases.values())
    agent.save(tmp_path / "a")
    loaded = KerasSAC.load(tmp_path / "a")
    for a, b in zip(all_variables(agent), all_variables(loaded), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    agent.learn(30, reset_num_timesteps=False)
    loaded.learn(30, reset_num_timesteps=False)
    for a, b in zip(all_variables(agent), all_variables(loaded), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    obs = np.full(3, 0.3, np.float32)
    np.testing.assert_array_equal(agent.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    assert np.isfinite(list(agent.metrics().values())).all()


@pytest.mark.parametrize("name", ["crossq", "networks", "gsde", "simba_adamw_resets"])
def test_exported_variant_policies_act_as_predict_does(name, tmp_path):
    from keras_sac.io.export import LoadedPolicy

    # graph mode: export is the subject (auto would compile the variants' updates with XLA, ~25 s for CrossQ)
    agent = KerasSAC("Pendulum-v1", seed=0, **SMALL, **VARIANTS[name], compile_mode="graph")
    agent.learn(80)  # batch renorm's running statistics have moved: export must use them, as predict does
    policy = LoadedPolicy(agent.export(tmp_path / "policy"))
    obs = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    np.testing.assert_allclose(
        policy(obs, deterministic=True), agent.predict(obs, deterministic=True)[0], rtol=1e-5, atol=1e-5
    )


def test_hard_targets_copy_every_period_and_hold_in_between(match_env):
    agent = KerasSAC(match_env, seed=0, target_update="hard", target_update_period=3, **SMALL)
    first = [v.numpy().copy() for v in agent.target_critics.variables]
    for i in range(3):
        agent.train_step(*batch_of(agent, seed=i))
        targets = [v.numpy() for v in agent.target_critics.variables]
        if i < 2:
            for t, f in zip(targets, first):
                np.testing.assert_array_equal(t, f)
    for t, online in zip(targets, agent.critics.variables):
        np.testing.assert_array_equal(t, online.numpy())


@pytest.mark.parametrize("learn_alpha", [True, False], ids=["learned alpha", "fixed alpha"])
def test_policy_delay_updates_the_actor_and_alpha_every_kth_critic_update(match_env, learn_alpha):
    agent = KerasSAC(match_env, seed=0, policy_delay=3, learn_alpha=learn_alpha, **SMALL)
    changed, held = [], []
    for i in range(6):
        actor, alpha = [v.numpy().copy() for v in agent.actor.variables], float(agent.log_alpha.numpy())
        critic = agent.critics.variables[0].numpy().copy()
        metrics = agent.train_step(*batch_of(agent, seed=i))
        assert not np.array_equal(agent.critics.variables[0].numpy(), critic)  # critics: every update
        changed.append(not np.array_equal(agent.actor.variables[0].numpy(), actor[0]))
        assert (float(agent.log_alpha.numpy()) != alpha) == (changed[-1] and learn_alpha)
        assert ("train/alpha_loss" in metrics) == learn_alpha
        held.append(float(metrics["train/actor_loss"]))
    assert changed == [True, False, False, True, False, False]
    # between its updates the actor's metrics are those of its last update, held
    assert held[0] == held[1] == held[2] != held[3] == held[4] == held[5]


@pytest.mark.parametrize("gradient_steps", [1, 3])
def test_learn_picks_each_phase_program_from_the_true_update_count_even_after_train_step(match_env, gradient_steps):
    # learn keeps the update count in Python (a read of the variable costs ~80 µs a call); an update outside a
    # phase (train_step) must not leave it stale, or the actor would step at the wrong updates
    agent = KerasSAC(match_env, seed=0, policy_delay=3, gradient_steps=gradient_steps, compile_mode="graph", **SMALL)
    plan, seen = agent._update.plan, []
    agent._update.plan = lambda n: seen.append((n, int(agent.n_updates.numpy()))) or plan(n)
    agent.learn(60)
    agent.train_step(*batch_of(agent))  # one update outside a phase: the count moves by one
    agent.learn(10, reset_num_timesteps=False)
    assert len(seen) == 20 and all(n == actual for n, actual in seen)  # phases after steps 50-59 and 60-69
    # the phases after train_step start mid-period: a tf.cond per update ("cond") or the critic-only program
    assert plan(seen[-1][0]) == ("cond" if gradient_steps == 3 else ["actor", "critic", "critic"][seen[-1][0] % 3])
    updates = int(agent.n_updates.numpy())
    assert updates == 20 * gradient_steps + 1
    assert int(agent.actor_optimizer.iterations.numpy()) == -(-updates // 3)  # the actor at updates 0, 3, 6, ...


def test_crossq_has_no_target_critics_and_batch_renorm_tracks_the_joint_batch(match_env):
    agent = KerasSAC(match_env, seed=0, **SMALL, **VARIANTS["crossq"], compile_mode="graph")  # XLA: -m slow above
    assert agent.target_critics is None
    renorm = agent.critics.q_0.renorm_in
    batch = batch_of(agent)
    agent.train_step(*batch)
    obs, next_obs = batch[0], batch[3]
    assert float(renorm.steps.numpy()) == 1.0  # one joint pass per update, not two
    # the actor's batch renorm learns from the actor's own pass only (not from sampling the next actions)
    assert float(agent.actor.trunk.renorm_in.steps.numpy()) == 1.0
    # the running mean (from 0, momentum 0.99) moved 1% of the way to the joint (s, a) + (s', a') batch's mean:
    # its 2 observation columns are those of obs and next_obs together (next actions are drawn inside the update)
    joint = np.concatenate([obs, next_obs]).mean(axis=0)
    np.testing.assert_allclose(renorm.moving_mean.numpy()[:2], 0.01 * joint, rtol=1e-4, atol=1e-7)
    assert not np.allclose(0.01 * obs.mean(axis=0), 0.01 * joint, rtol=1e-2)  # (s, a) alone would differ
    assert SACConfig(**VARIANTS["crossq"]).adam_beta1 == agent.critic_optimizer.beta_1 == 0.5


def test_gsde_with_actor_batch_renorm_trains_the_renorm_in_the_actors_pass_only(match_env):
    agent = KerasSAC(match_env, seed=0, **SMALL, use_sde=True, actor_batch_renorm=True)
    agent.train_step(*batch_of(agent))
    assert float(agent.actor.trunk.renorm_in.steps.numpy()) == 1.0  # not from sampling the next actions


def test_dropout_is_seeded_and_off_without_a_seed(match_env):
    agent = KerasSAC(match_env, seed=0, **SMALL, **VARIANTS["droq"], compile_mode="graph")  # Philox: runs eagerly
    obs, actions = batch_of(agent)[:2]
    plain = agent.critics(obs, actions).numpy()
    np.testing.assert_array_equal(plain, agent.critics(obs, actions).numpy())
    a, b = (agent.critics(obs, actions, seed=tf.constant([s, 0])).numpy() for s in (1, 2))
    assert not np.array_equal(a, plain) and not np.array_equal(a, b)
    np.testing.assert_array_equal(a, agent.critics(obs, actions, seed=tf.constant([1, 0])).numpy())


def test_dropout_under_xla_uses_threefry_at_its_rate_and_is_seeded():
    assert KerasSAC("Pendulum-v1", **VARIANTS["droq"]).critics.q_0.options.rng_alg == "threefry"  # gradient_steps 2
    assert (
        KerasSAC("Pendulum-v1", **VARIANTS["droq"], compile_mode="graph").critics.q_0.options.rng_alg == "auto_select"
    )
    tf.keras.utils.set_random_seed(0)
    mlp = MLP((512,), MLPOptions(dropout=0.25, rng_alg="threefry"))
    x = tf.ones((256, 8))
    mlp(x)
    drop = tf.function(lambda x, seed: mlp(x, seed=seed), jit_compile=True)  # TF's ThreeFry kernel is XLA-only
    plain = mlp(x).numpy()
    a, b, a_again = (drop(x, tf.constant(s)).numpy() for s in ([1, 0], [2, 0], [1, 0]))
    np.testing.assert_array_equal(a, a_again)
    dropped = (a == 0) & (plain != 0)
    assert abs(dropped.sum() / (plain != 0).sum() - 0.25) < 0.01
    assert not np.array_equal(a == 0, b == 0)
    kept = ~dropped & (plain != 0)
    np.testing.assert_allclose(a[kept], plain[kept] / 0.75, rtol=1e-5)  # inverted dropout: kept units scaled


@pytest.mark.parametrize("activation", ["relu", "tanh", "elu", "gelu", "silu"])
@pytest.mark.parametrize("batch_renorm, after", [(False, False), (True, False), (True, True)])
def test_predicts_numpy_actor_matches_the_keras_actor(activation, batch_renorm, after):
    tf.keras.utils.set_random_seed(0)
    options = MLPOptions(
        activation=activation, batch_renorm=batch_renorm, renorm_warmup=0, renorm_after_activation=after
    )
    actor = Actor(3, (16, 8), (-5.0, 2.0), options)
    obs = np.random.default_rng(0).normal(size=(32, 5)).astype(np.float32)
    for _ in range(5):  # move the running statistics away from (0, 1)
        actor(obs * 3 + 1, training=True)
    mean, log_std = actor(obs)
    np.testing.assert_allclose(ActorSnapshot(actor).mode(obs), np.tanh(mean.numpy()), rtol=1e-5, atol=1e-5)
    samples = ActorSnapshot(actor).sample(obs, np.random.default_rng(1))
    noise = np.random.default_rng(1).standard_normal(mean.shape, dtype=np.float32)
    np.testing.assert_allclose(samples, np.tanh(mean.numpy() + np.exp(log_std.numpy()) * noise), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("after", [False, True])
def test_batch_renorm_sits_before_or_after_each_activation(after):
    # In training mode, during its warm-up (plain batch norm), a renorm layer's output has batch mean beta (0)
    # and std gamma (1) per unit. After the ReLU (CrossQ's order) the head reads exactly that; before it, the
    # head reads ReLU(normalised): all >= 0, mean ~0.4.
    tf.keras.utils.set_random_seed(0)
    torso = MLP((16, 8), MLPOptions(batch_renorm=True, renorm_warmup=1000, renorm_after_activation=after))
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(256, 5)).astype(np.float32)
    h = torso(x, training=True).numpy()
    if after:
        np.testing.assert_allclose(h.mean(0), 0.0, atol=1e-4)
        np.testing.assert_allclose(h.std(0), 1.0, atol=1e-2)
        assert h.min() < 0
    else:
        assert h.min() >= 0 and np.all(h.mean(0) > 0.2)


def test_orthogonal_init_gains():
    tf.keras.utils.set_random_seed(0)
    actor = Actor(2, (32, 32), (-5.0, 2.0), MLPOptions(init="orthogonal"))
    actor(tf.zeros((1, 32)))
    kernel = actor.trunk.hidden_1.kernel.numpy()  # 32 x 32: orthogonal with gain sqrt(2)
    np.testing.assert_allclose(kernel.T @ kernel, 2.0 * np.eye(32), atol=1e-4)
    head = actor.mean_head.kernel.numpy()  # 32 x 2: orthonormal columns scaled by 0.01
    np.testing.assert_allclose(head.T @ head, 1e-4 * np.eye(2), atol=1e-8)
    assert not actor.trunk.hidden_0.bias.numpy().any()


def test_learning_rate_schedules_follow_their_optimizers_steps_and_resume(match_env, tmp_path):
    agent = KerasSAC(
        match_env,
        seed=0,
        **SMALL,
        policy_delay=2,
        critic_learning_rate={"schedule": "linear", "end": 1e-4, "steps": 10},
        actor_learning_rate={"schedule": "linear", "start": 1e-3, "end": 0.0, "steps": 10, "warmup_steps": 4},
    )
    for i in range(8):
        agent.train_step(*batch_of(agent, seed=i))
    # critics: 8 steps of 10 from 3e-4 to 1e-4; the actor stepped 4 times (policy_delay 2): its warm-up's end
    assert float(agent.critic_optimizer.learning_rate) == pytest.approx(3e-4 - 0.8 * 2e-4, rel=1e-5)
    assert float(agent.actor_optimizer.learning_rate) == pytest.approx(1e-3, rel=1e-5)
    assert agent.metrics()["train/learning_rate"] == pytest.approx(1.4e-4, rel=1e-5)
    agent.save(tmp_path / "a")
    loaded = KerasSAC.load(tmp_path / "a", env=match_env)
    assert float(loaded.critic_optimizer.learning_rate) == pytest.approx(1.4e-4, rel=1e-5)
    loaded.train_step(*batch_of(agent, seed=9)), loaded.train_step(*batch_of(agent, seed=10))
    assert float(loaded.critic_optimizer.learning_rate) == pytest.approx(1e-4, rel=1e-5)  # and stays there
    assert float(loaded.actor_optimizer.learning_rate) == pytest.approx(1e-3 * 0.9, rel=1e-5)


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(target_backup="redq", n_critics=2, redq_subset=3), r"redq_subset \(3\) must be between 1 and n_critics"),
        (dict(actor_gradient="reinforce"), "reinforce needs num_actor_samples >= 2"),
        (dict(critic_batch_renorm=True), "critic_batch_renorm .* set target_update: none"),
        (dict(batch_renorm_after_activation=True), "batch_renorm_after_activation places batch renorm layers"),
        (dict(target_update="none", target_backup="redq"), "redq draws its subset from target critics"),
        (dict(target_update="soft"), "target_update = 'soft' is out of range: expected 'polyak' or 'hard' or 'none'"),
        (dict(use_sde=True, actor_gradient="reinforce", num_actor_samples=2), "use_sde draws one noise matrix"),
        (dict(sde_sample_freq=0), "sde_sample_freq = 0 is out of range: expected -1 or an integer >= 1"),
        (dict(critic_dropout=1.0), r"critic_dropout = 1.0 is out of range: expected a number in \[0, 1\)"),
        (dict(compile_mode="jit"), "compile_mode = 'jit' is out of range: expected 'auto' or 'graph' or 'xla'"),
        (dict(n_steps=0), "n_steps = 0 is out of range"),
        (dict(critic_arch=[]), "critic_arch = \\(\\) is out of range"),
        (dict(actor_learning_rate="{schedule: step, steps: 3}"), "schedule must name 'schedule: linear"),
        (dict(critic_learning_rate={"schedule": "linear", "steps": 10}), r"a linear schedule needs \['end'\]"),
        (dict(alpha_learning_rate={"schedule": "cosine", "steps": 10, "power": 2}), r"unknown key\(s\) \['power'\]"),
        (
            dict(critic_type="quantile", n_quantiles=3, top_quantiles_to_drop_per_net=3),
            r"top_quantiles_to_drop_per_net \(3\) must be smaller than n_quantiles \(3\)",
        ),
        (
            dict(critic_type="quantile", target_backup="redq", n_critics=5),
            "target_backup: redq combines scalar critics",
        ),
        (dict(n_quantiles=10), "n_quantiles apply to quantile critics: set critic_type: quantile"),
        (dict(critic_type="distributional"), "critic_type = 'distributional' is out of range"),
        (
            dict(architecture="simba", critic_dropout=0.01, critic_layer_norm=True),
            "critic_layer_norm, critic_dropout shape an mlp torso",
        ),
        (
            dict(architecture="simba", critic_arch=(512, 256)),
            r"critic_arch \[512, 256\]: SimBa's blocks share one width",
        ),
        (dict(reset_interval=0), r"reset_interval = 0 is out of range: expected an integer >= 1 \(or null: never\)"),
        (
            dict(reset_interval=10, gradient_steps=4),
            r"reset_interval \(10\) must be a multiple of gradient_steps \(4\)",
        ),
        (
            dict(reset_interval=100, critic_learning_rate={"schedule": "linear", "end": 1e-5, "steps": 50}),
            "reset_interval restarts the optimizers",
        ),
        (dict(weight_decay=-0.1), "weight_decay = -0.1 is out of range: expected a number >= 0"),
        (dict(max_grad_norm=0), r"max_grad_norm = 0.0 is out of range: expected a number > 0 \(or null"),
    ],
)
def test_bad_variant_settings_are_one_line_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        SACConfig(**values)


def test_gsde_noise_is_held_between_resamples_and_drawn_at_episode_starts(tmp_path):
    agent = KerasSAC("Pendulum-v1", seed=0, **SMALL, use_sde=True, sde_sample_freq=4)
    agent.learn(60)  # past learning_starts: actions now come from the policy and its noise matrix
    noise = agent.sde_noise.numpy().copy()
    assert agent.sde_noise.shape == (1, 32, 1) and noise.std() > 0.5
    steps_to_resample = 4 - agent.num_timesteps % 4
    if steps_to_resample > 1:
        agent.learn(steps_to_resample - 1, reset_num_timesteps=False)
    np.testing.assert_array_equal(agent.sde_noise.numpy(), noise)  # held within the 4 steps
    agent.learn(1, reset_num_timesteps=False)
    assert not np.array_equal(agent.sde_noise.numpy(), noise)
    # same noise matrix -> the env action is a fixed function of the state: two calls agree exactly
    obs = np.full((1, 3), 0.2, np.float32)
    a, b = (agent._compiled("_stochastic_action")(obs).numpy() for _ in range(2))
    np.testing.assert_array_equal(a, b)
    mean = np.tanh(agent.actor(obs)[0].numpy())
    assert not np.allclose(a, mean)
    # deterministic predict is tanh(mean), unaffected by the noise
    np.testing.assert_allclose(agent.predict(obs[0], deterministic=True)[0], 2.0 * mean[0], rtol=1e-5)
    sde = KerasSAC("Pendulum-v1", seed=0, **SMALL, use_sde=True)  # sde_sample_freq -1: episode starts only
    sde.learn(199)
    held = sde.sde_noise.numpy().copy()
    sde.learn(1, reset_num_timesteps=False)  # Pendulum's 200-step time limit: a new episode, a new matrix
    assert sde.num_episodes == 1 and not np.array_equal(sde.sde_noise.numpy(), held)


def test_gsde_update_shares_one_noise_matrix_and_trains_the_noise_scale():
    tf.keras.utils.set_random_seed(0)
    actor = Actor(2, (8,), (-5.0, 2.0), use_sde=True, log_std_init=-1.0)
    obs = tf.random.stateless_normal((64, 3), seed=[3, 4])
    mean, log_std, h = actor.with_features(obs)
    # the marginal std: sqrt(h^2 @ exp(-1)^2)
    np.testing.assert_allclose(
        np.exp(log_std.numpy()), np.sqrt(h.numpy() ** 2 @ np.full((8, 2), np.exp(-2.0)) + 1e-6), rtol=1e-5
    )
    update = update_of(dict(use_sde=True, learn_alpha=False), actor, FixedCritics())
    pi = update.policy(obs)
    actions, _ = pi.sample_and_log_prob(tf.constant([1, 2]))
    u = np.arctanh(np.clip(actions.numpy(), -1 + 1e-6, 1 - 1e-6))
    # one W for the batch: the noise u - mean = h @ W is exactly linear in h, solvable for a single W
    w, *_ = np.linalg.lstsq(h.numpy(), u - mean.numpy(), rcond=None)
    np.testing.assert_allclose(h.numpy() @ w, u - mean.numpy(), atol=1e-3)
    before = actor.sde_log_std.numpy().copy()
    update.update_actor_and_alpha(obs, tf.constant(0.5), {"actor": tf.constant([5, 6])})
    assert not np.array_equal(actor.sde_log_std.numpy(), before)  # the noise scale learns


@pytest.mark.parametrize(
    "settings, xla",
    [
        (dict(), False),
        (dict(gradient_steps=2), True),
        (dict(critic_dropout=0.01), True),
        (dict(critic_batch_renorm=True, target_update="none"), True),
        (dict(critic_type="quantile"), True),
        (dict(n_critics=5, target_backup="redq"), False),
        (dict(compile_mode="graph", gradient_steps=20, critic_dropout=0.01), False),
        (dict(compile_mode="xla"), True),
    ],
)
def test_compile_mode_auto_uses_xla_except_for_plain_one_step_updates(settings, xla):
    assert SACConfig(**settings).use_xla is xla


def test_tqc_critics_output_quantiles_and_the_update_regresses_them_on_the_truncated_target(match_env):
    agent = KerasSAC(match_env, seed=0, **SMALL, **VARIANTS["tqc"], compile_mode="graph")  # XLA: learns_traces
    obs, actions, *_ = batch_of(agent)
    assert agent.critics(obs, actions).shape == (3, 32, 5) and agent.target_critics(obs, actions).shape == (3, 32, 5)
    update = agent._update
    assert update.critic_loss is quantile_huber_loss and update.actor_q is mean_over_atoms
    next_quantiles = tf.constant(np.arange(30, dtype=np.float32).reshape(3, 2, 5))
    # row 0 pools 0-4, 10-14 and 20-24; the top 1 x 3 critics of the pool go (22, 23, 24, all from one critic)
    atoms, weights = (x.numpy()[0] for x in update.backup(next_quantiles))
    np.testing.assert_array_equal(atoms, np.r_[0:5, 10:15, 20:25])
    np.testing.assert_array_equal(atoms[weights == 1.0], np.r_[0:5, 10:15, 20:22])
    metrics = agent.train_step(*batch_of(agent, seed=1))
    assert np.isfinite(float(metrics["train/critic_loss"]))


def test_a_reset_redraws_actor_critics_and_optimizer_state_and_keeps_buffer_alpha_and_statistics():
    settings = dict(seed=0, **SMALL, normalize_observations=True, weight_decay=0.01)
    agent = KerasSAC(make_match_env(), **settings, reset_interval=30)
    plain = KerasSAC(make_match_env(), **settings)  # the same run without resets, for what must be kept
    initial = [v.numpy().copy() for v in agent.critics.trainable_variables]
    agent.learn(79), plain.learn(79)  # 29 updates: no reset yet
    before = [v.numpy().copy() for v in agent.actor.trainable_variables + agent.critics.trainable_variables]
    agent.learn(1, reset_num_timesteps=False), plain.learn(1, reset_num_timesteps=False)  # update 30, then the reset
    after = [v.numpy() for v in agent.actor.trainable_variables + agent.critics.trainable_variables]
    assert all(not np.allclose(a, b) for a, b in zip(after, before) if a.size > 1)
    # fresh draws, not the construction's weights again (kernels: biases start at zero either way)
    assert all(not np.allclose(a, b) for a, b in zip(agent.critics.trainable_variables, initial) if a.ndim == 2)
    for v, w in zip(agent.critics.own_variables, agent.target_critics.own_variables, strict=True):
        np.testing.assert_array_equal(v.numpy(), w.numpy())  # targets restart as copies
    for optimizer in (agent.actor_optimizer, agent.critic_optimizer):
        assert int(optimizer.iterations.numpy()) == 0
        assert not any(v.numpy().any() for v in optimizer.variables if "momentum" in v.path or "velocity" in v.path)
        assert float(optimizer.learning_rate) == pytest.approx(3e-4)  # a setting, not state: kept
    assert int(agent.alpha_optimizer.iterations.numpy()) == 30
    # kept, not restarted at log(init_alpha) = 0 (two agents in one process agree to float rounding only)
    np.testing.assert_allclose(agent.log_alpha.numpy(), plain.log_alpha.numpy(), rtol=1e-4, atol=0)
    assert agent.log_alpha.numpy() != 0.0
    np.testing.assert_array_equal(agent.actor.normalizer.mean.numpy(), plain.actor.normalizer.mean.numpy())
    assert len(agent.buffer) == len(plain.buffer) == 80
    obs = np.full(2, 0.3, np.float32)  # predict follows the new actor
    assert not np.allclose(agent.predict(obs, deterministic=True)[0], plain.predict(obs, deterministic=True)[0])


def test_weight_decay_shrinks_the_actor_and_critic_weights_decoupled_from_adams_step(match_env):
    decayed = KerasSAC(match_env, seed=0, **SMALL, weight_decay=0.5)
    plain = KerasSAC(match_env, seed=0, **SMALL)
    assert decayed.alpha_optimizer.__class__.__name__ == "Adam"  # the temperature is not decayed
    start = [v.numpy().copy() for v in decayed.critics.trainable_variables + decayed.actor.trainable_variables]
    batch = batch_of(plain, seed=3)
    decayed.train_step(*batch), plain.train_step(*batch)
    # AdamW (Loshchilov & Hutter 2019): w <- w - lr * wd * w, then Adam's step from the same gradients
    pairs = zip(
        decayed.critics.trainable_variables + decayed.actor.trainable_variables,
        plain.critics.trainable_variables + plain.actor.trainable_variables,
        start,
        strict=True,
    )
    # Two agents' gradients agree to float rounding only, and Adam's first step g / (|g| + eps) magnifies that
    # where |g| is near eps: allow a few such elements, not a missing or coupled decay (which moves them all).
    close = [np.isclose(d.numpy() - p.numpy(), -3e-4 * 0.5 * w, rtol=1e-3, atol=2e-7) for d, p, w in pairs]
    assert np.mean(np.concatenate([c.ravel() for c in close])) > 0.99


def test_clip_scales_the_gradients_to_the_global_norm_and_reports_the_norm_before():
    grads = [tf.constant([3.0, 0.0]), None, tf.constant([[4.0]])]
    clipped, info = SACUpdate._clip(grads, 1.0, "critic loss")
    np.testing.assert_allclose(clipped[0].numpy(), [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped[2].numpy(), [[0.8]], rtol=1e-6)
    assert clipped[1] is None and float(info["train/critic_grad_norm"]) == pytest.approx(5.0)
    kept, info = SACUpdate._clip(grads, 10.0, "actor loss")  # under the limit: unchanged
    np.testing.assert_array_equal(kept[2].numpy(), [[4.0]])
    assert set(info) == {"train/actor_grad_norm"}
    assert SACUpdate._clip(grads, None, "actor loss") == (grads, {})


def test_max_grad_norm_clips_the_actor_and_critic_steps_and_logs_their_norms_before_clipping(match_env):
    agents = {
        clip: KerasSAC(match_env, seed=0, **SMALL, max_grad_norm=clip, learning_rate=1e-3) for clip in (None, 1e9, 1e-9)
    }
    batch = batch_of(agents[None], seed=3)
    start = [
        v.numpy().copy() for v in agents[None].critics.trainable_variables + agents[None].actor.trainable_variables
    ]
    metrics = {clip: metric_values(agent.train_step(*batch)) for clip, agent in agents.items()}
    moved = {
        clip: np.concatenate(
            [
                np.abs(v.numpy() - w).ravel()
                for v, w in zip(agent.critics.trainable_variables + agent.actor.trainable_variables, start, strict=True)
            ]
        )
        for clip, agent in agents.items()
    }
    assert "train/critic_grad_norm" not in metrics[None]
    # a limit above the norm changes nothing, bit for bit (the scale is exactly 1)
    np.testing.assert_array_equal(moved[1e9], moved[None])
    # Adam's first step is lr * g / (|g| + eps): lr for a plain gradient, ~lr * |g| / eps for one clipped to 1e-9
    assert np.median(moved[None]) > 0.5e-3 and moved[1e-9].max() < 0.05e-3
    # both report the norm before clipping (after it, it would be 1e-9); the actor's loss is taken on the
    # critics just updated, which differ between the two by one (clipped or not) step
    critic, actor = (np.array([metrics[c][f"train/{k}_grad_norm"] for c in (1e9, 1e-9)]) for k in ("critic", "actor"))
    assert critic[0] == pytest.approx(critic[1], rel=1e-5) and actor[0] == pytest.approx(actor[1], rel=1e-2)
    assert min(critic.min(), actor.min()) > 1e-3


def test_simba_torso_is_embedding_residual_blocks_and_a_final_layer_norm():
    tf.keras.utils.set_random_seed(0)
    torso = SimbaTorso(8, 2, name="trunk")
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    out = torso(x).numpy()
    assert torso.expand_0.kernel.shape == (8, 32) and torso.project_1.kernel.shape == (32, 8)  # 4x bottleneck

    def norm(h):
        return (h - h.mean(-1, keepdims=True)) / np.sqrt(h.var(-1, keepdims=True) + 1e-3)

    h = x @ torso.embed.kernel.numpy()  # biases start at zero, LayerNorms at gamma 1, beta 0
    for i in range(2):
        expand, project = getattr(torso, f"expand_{i}").kernel.numpy(), getattr(torso, f"project_{i}").kernel.numpy()
        h = h + np.maximum(norm(h) @ expand, 0.0) @ project
    np.testing.assert_allclose(out, norm(h), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(torso.numpy_forward()(x), out, rtol=1e-5, atol=1e-5)
    assert len(torso.trainable_variables) == 2 + 2 * 6 + 2
