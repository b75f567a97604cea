"""The networks' heads by value: the actor's mean and squashed log-std (and gSDE's), the critics' outputs, shapes,
dropout seeds and variable lists, each against the same arithmetic written out in NumPy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_sac.core.layers import MLPOptions
from keras_sac.core.networks import (
    SDE_EPSILON,
    Actor,
    ActorSnapshot,
    Critics,
    QNetwork,
    SimbaQNetwork,
    TorsoQNetwork,
    make_torso,
)
from keras_sac.core.normalization import ObsNormalizer
from keras_sac.core.simba import SimbaTorso

OBS = np.random.default_rng(0).uniform(-2, 2, (6, 3)).astype(np.float32)
ACTIONS = np.random.default_rng(1).uniform(-1, 1, (6, 2)).astype(np.float32)


def linear(layer, x):
    return x @ layer.kernel.numpy() + layer.bias.numpy()


def scramble(*models, seed=0):
    """Every trainable weight drawn afresh, biases too (they start at zero, where `+ b` and `- b` agree)."""
    rng = np.random.default_rng(seed)
    for model in models:
        for w in model.trainable_variables:
            w.assign(rng.normal(0.0, 0.3, w.shape).astype(np.float32))


def running_stats(model) -> list[np.ndarray]:
    """Copies of the batch-renorm running statistics (a model's non-trainable variables)."""
    return [v.numpy().copy() for v in model.non_trainable_variables]


def same(before, after) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def fitted_normalizer():
    normalizer = ObsNormalizer(3)
    normalizer.update(np.random.default_rng(2).normal(1.0, 3.0, (64, 3)).astype(np.float32))
    return normalizer


@pytest.mark.parametrize("normalize", [False, True])
def test_actor_mean_and_log_std_are_linear_heads_on_the_trunk_squashed_into_the_bounds(normalize):
    keras.utils.set_random_seed(0)
    normalizer = fitted_normalizer() if normalize else None
    actor = Actor(2, (8, 8), (-5.0, 2.0), normalizer=normalizer)
    actor(OBS)
    scramble(actor)
    mean, log_std = actor(OBS)
    x = normalizer.numpy_forward()(OBS) if normalize else OBS
    h = actor.trunk(x).numpy()
    np.testing.assert_allclose(mean.numpy(), linear(actor.mean_head, h), rtol=1e-5, atol=1e-6)
    unit = np.tanh(linear(actor.log_std_head, h))
    np.testing.assert_allclose(log_std.numpy(), -5.0 + 0.5 * 7.0 * (unit + 1.0), rtol=1e-5, atol=1e-6)
    assert mean.dtype == log_std.dtype == tf.float32 and mean.shape == (6, 2)
    # the squash reaches the bounds and only them: a saturated head gives low for -inf and high for +inf
    actor.log_std_head.bias.assign([-50.0, 50.0])
    actor.log_std_head.kernel.assign(np.zeros_like(actor.log_std_head.kernel.numpy()))
    np.testing.assert_allclose(actor(OBS)[1].numpy(), np.tile([-5.0, 2.0], (6, 1)), atol=1e-6)
    np.testing.assert_allclose(ActorSnapshot(actor).mode(OBS), np.tanh(mean.numpy()), rtol=1e-5, atol=1e-6)
    assert ActorSnapshot.supports(actor)
    scramble(actor, seed=1)  # the NumPy twin's draw: tanh(mean + std * noise) with the same noise
    mean, log_std = actor(OBS)
    noise = np.random.default_rng(4).standard_normal(mean.shape, dtype=np.float32)
    expected = np.tanh(mean.numpy() + np.exp(log_std.numpy()) * noise)
    sample = ActorSnapshot(actor).sample(OBS, np.random.default_rng(4))
    np.testing.assert_allclose(sample, expected, rtol=1e-4, atol=1e-5)


def test_head_initialisers_scale_the_actor_by_a_hundredth_and_leave_the_critics_alone():
    keras.utils.set_random_seed(0)
    options = MLPOptions(init="orthogonal")
    actor, critics = Actor(2, (16, 16), (-5.0, 2.0), options), Critics(1, (16, 16), options)
    actor(OBS), critics(OBS, ACTIONS)
    for head, gain in ((actor.mean_head, 0.01), (actor.log_std_head, 0.01), (critics.q_0.q, 1.0)):
        kernel = head.kernel.numpy()  # (16, k): orthonormal columns times the gain
        np.testing.assert_allclose(kernel.T @ kernel, gain**2 * np.eye(kernel.shape[1]), atol=1e-6 * gain)
        assert not head.bias.numpy().any()


def test_gsde_log_std_is_the_spread_of_features_times_noise_weights_and_carries_no_feature_gradient():
    keras.utils.set_random_seed(0)
    actor = Actor(2, (8, 6, 4), (-5.0, 2.0), use_sde=True, log_std_init=-1.5, name="actor")
    actor(OBS)
    assert actor.sde_log_std.shape == (4, 2) and np.all(actor.sde_log_std.numpy() == -1.5)
    assert actor.sde_log_std.path == "actor/sde_log_std"  # its checkpoint name
    scramble(actor)
    with tf.GradientTape(persistent=True) as tape:
        mean, log_std, features = actor.with_features(OBS)
        total = tf.reduce_sum(log_std)
    assert not hasattr(actor, "log_std_head")
    h = actor.trunk(OBS).numpy()
    np.testing.assert_allclose(features.numpy(), h, rtol=1e-6)
    expected = 0.5 * np.log(np.square(h) @ np.exp(2 * actor.sde_log_std.numpy()) + SDE_EPSILON)
    np.testing.assert_allclose(log_std.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert SDE_EPSILON == 1e-6
    # the noise scale trains the noise weights, never the trunk (SB3's learn_features=False)
    assert all(g is None for g in tape.gradient(total, actor.trunk.trainable_variables))
    assert tape.gradient(total, actor.sde_log_std) is not None
    # the NumPy twin draws each row with that spread: log_std comes out the same
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    samples = ActorSnapshot(actor).sample(OBS, rng_a)
    noise = rng_b.standard_normal(mean.shape, dtype=np.float32)
    np.testing.assert_allclose(samples, np.tanh(mean.numpy() + np.exp(expected) * noise), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("detach", [False, True])
def test_a_shared_detached_encoder_feeds_the_actor_without_training_with_it(detach):
    keras.utils.set_random_seed(0)
    encoder = keras.layers.Dense(5, name="encoder")
    actor = Actor(2, (8,), (-5.0, 2.0), encoder=encoder, detach_encoder=detach)
    with tf.GradientTape() as tape:
        mean, _ = actor(OBS)
        total = tf.reduce_sum(mean)
    h = actor.trunk(linear(encoder, OBS)).numpy()
    np.testing.assert_allclose(mean.numpy(), linear(actor.mean_head, h), rtol=1e-5, atol=1e-6)
    learned = {id(v) for v in actor.learned_variables}
    encoder_ids = {id(v) for v in encoder.variables}
    assert (encoder_ids <= learned) != detach and {id(v) for v in actor.trainable_variables} - encoder_ids <= learned
    assert (tape.gradient(total, encoder.kernel) is None) == detach
    assert not ActorSnapshot.supports(actor)  # images or a user's encoder: predict goes through TensorFlow


@pytest.mark.parametrize("n_quantiles", [None, 1, 4])
@pytest.mark.parametrize("normalize", [False, True])
def test_critics_are_independent_linear_heads_on_obs_and_action_stacked_per_member(n_quantiles, normalize):
    keras.utils.set_random_seed(0)
    normalizer = fitted_normalizer() if normalize else None
    critics = Critics(3, (8, 8), n_quantiles=n_quantiles, normalizer=normalizer)
    critics(OBS, ACTIONS)
    scramble(critics)
    q = critics(OBS, ACTIONS).numpy()
    x = np.concatenate([normalizer.numpy_forward()(OBS) if normalize else OBS, ACTIONS], axis=1)
    members = [linear(m.q, m.numpy_forward()(x)) for m in critics.members]  # each member: torso, then head
    expected = np.stack([m[:, 0] if (n_quantiles or 1) == 1 else m for m in members])
    assert q.shape == ((3, 6) if (n_quantiles or 1) == 1 else (3, 6, n_quantiles))
    np.testing.assert_allclose(q, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(q[0], q[1])  # members are initialised apart
    assert [m.name for m in critics.members] == ["q_0", "q_1", "q_2"]
    own = {id(v) for v in critics.own_variables}
    shared = {id(v) for v in normalizer.variables} if normalize else set()
    assert own == {id(v) for v in critics.variables} - shared and not own & shared


def test_critic_dropout_draws_one_mask_per_member_from_the_seed():
    keras.utils.set_random_seed(0)
    critics = Critics(3, (32, 32), MLPOptions(dropout=0.5))
    plain = critics(OBS, ACTIONS).numpy()
    np.testing.assert_array_equal(critics(OBS, ACTIONS).numpy(), plain)  # no seed: no dropout
    seed = tf.constant([4, 5])
    dropped = critics(OBS, ACTIONS, seed=seed).numpy()
    np.testing.assert_array_equal(critics(OBS, ACTIONS, seed=seed).numpy(), dropped)  # a seed fixes the masks
    assert not np.allclose(dropped, plain)
    member_seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    x = tf.concat([OBS, ACTIONS], axis=-1)
    for i, member in enumerate(critics.members):
        np.testing.assert_allclose(dropped[i], member(x, seed=member_seeds[i]).numpy(), rtol=1e-6)


def test_simba_torsos_are_blocks_of_the_first_width():
    torso = make_torso((64, 64, 64), MLPOptions(architecture="simba", activation="silu"), name="trunk")
    assert isinstance(torso, SimbaTorso) and torso.name == "trunk"
    assert (torso.width, torso.blocks, torso.activation) == (64, 3, "silu")
    critics = Critics(2, (16, 16), MLPOptions(architecture="simba", activation="silu"), n_quantiles=3)
    assert critics(OBS, ACTIONS).shape == (2, 6, 3)
    assert all(
        isinstance(m, SimbaTorso) and (m.width, m.blocks, m.activation) == (16, 2, "silu") for m in critics.members
    )


@pytest.mark.parametrize("architecture", ["mlp", "simba"])
def test_checkpoint_paths_name_each_member_and_its_head(architecture):
    # checkpoints store variables by path: files written by earlier versions load only while these stay
    critics = Critics(2, (8,), MLPOptions(architecture=architecture), name="critics")
    critics(OBS, ACTIONS)
    paths = {v.path for v in critics.variables}
    assert {f"critics/q_{i}/q/{w}" for i in (0, 1) for w in ("kernel", "bias")} <= paths
    assert all(p.startswith(("critics/q_0/", "critics/q_1/")) for p in paths)


@pytest.mark.parametrize("architecture", ["mlp", "simba"])
def test_under_mixed_bfloat16_every_layer_computes_in_bfloat16_and_the_outputs_are_float32(architecture):
    options = MLPOptions(architecture=architecture)
    critics = Critics(2, (8,), options, dtype="mixed_bfloat16", n_quantiles=3)
    actor = Actor(2, (8,), (-5.0, 2.0), options, dtype="mixed_bfloat16")
    q, (mean, log_std) = critics(OBS, ACTIONS), actor(OBS)
    assert q.dtype == mean.dtype == log_std.dtype == tf.float32
    for model in (critics, actor):
        dense = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dense)]
        assert dense and all(layer.compute_dtype == "bfloat16" for layer in dense), model.name
        assert all(v.dtype == "float32" for v in model.variables)


def test_critics_pass_training_to_batch_renorm_and_members_default_to_inference():
    critics = Critics(1, (8,), MLPOptions(batch_renorm=True, renorm_warmup=0))
    critics(OBS, ACTIONS)
    before = running_stats(critics)
    critics(OBS, ACTIONS)
    critics.q_0(tf.concat([OBS, ACTIONS], -1))  # a member called on its own: running statistics, no update
    assert same(before, running_stats(critics))
    critics(OBS, ACTIONS, training=True)  # the update's call: batch statistics, and the running ones move
    assert not same(before, running_stats(critics))


def test_one_row_gives_one_value_per_critic_and_a_lone_q_network_one_value_per_row():
    critics = Critics(2, (8,))
    assert critics(OBS[:1], ACTIONS[:1]).shape == (2, 1)
    assert QNetwork((8,), MLPOptions())(tf.concat([OBS, ACTIONS], -1)).shape == (6,)


@pytest.mark.parametrize("n_quantiles", [None, 3])
def test_a_users_torso_gets_our_linear_head_per_member(n_quantiles):
    keras.utils.set_random_seed(0)
    critics = Critics(2, (8,), torso_factory=lambda: keras.layers.Dense(5, name="torso"), n_quantiles=n_quantiles)
    critics(OBS, ACTIONS)
    scramble(critics)
    q = critics(OBS, ACTIONS).numpy()
    x = np.concatenate([OBS, ACTIONS], axis=1)
    for i, member in enumerate(critics.members):
        expected = linear(member.q, linear(member.torso, x))
        np.testing.assert_allclose(q[i], expected[:, 0] if n_quantiles is None else expected, rtol=1e-5, atol=1e-6)
        assert member.name == f"q_{i}"
    assert q.shape == ((2, 6) if n_quantiles is None else (2, 6, 3))


def test_under_mixed_bfloat16_the_normaliser_reads_the_raw_float32_observations():
    # bfloat16 spaces numbers near 1000 by 4: observations 1000.25 and 1000.5 are one number there, and
    # normalised with mean 1000 and std 1 they must stay a quarter apart
    normalizer = ObsNormalizer(3)
    normalizer.update(np.random.default_rng(0).normal(1000.0, 1.0, (4096, 3)))
    actor = Actor(2, (8,), (-5.0, 2.0), dtype="mixed_bfloat16", normalizer=normalizer)
    critics = Critics(2, (8,), dtype="mixed_bfloat16", normalizer=normalizer)
    obs = np.array([[1000.25] * 3, [1000.5] * 3], np.float32)
    x = normalizer(obs).numpy()
    assert abs(x[1, 0] - x[0, 0] - 0.25) < 0.01
    mean, _ = actor(obs)
    q = critics(obs, np.zeros((2, 2), np.float32))
    assert not np.array_equal(mean[0].numpy(), mean[1].numpy()) and q[0, 0] != q[0, 1]


def test_critics_read_an_encoders_features_beside_the_actions():
    keras.utils.set_random_seed(0)
    encoder = keras.layers.Dense(4, name="encoder")
    critics = Critics(2, (8,), encoder=encoder)
    critics(OBS, ACTIONS)
    scramble(critics)
    q = critics(OBS, ACTIONS).numpy()
    x = np.concatenate([linear(encoder, OBS), ACTIONS], axis=1)
    for i, member in enumerate(critics.members):
        np.testing.assert_allclose(q[i], linear(member.q, member.numpy_forward()(x))[:, 0], rtol=1e-5, atol=1e-6)


def test_the_actor_trains_its_own_encoder_unless_told_to_detach_and_takes_a_users_torso():
    keras.utils.set_random_seed(0)
    encoder = keras.layers.Dense(4, name="encoder")
    actor = Actor(2, (8,), (-5.0, 2.0), encoder=encoder, torso=keras.layers.Dense(6, name="trunk"))
    actor(OBS)
    scramble(actor)
    assert {id(v) for v in encoder.variables} <= {id(v) for v in actor.learned_variables}
    mean, _ = actor(OBS)
    np.testing.assert_allclose(
        mean.numpy(), linear(actor.mean_head, linear(actor.trunk, linear(encoder, OBS))), rtol=1e-5, atol=1e-6
    )


def test_actor_checkpoint_paths():
    actor = Actor(2, (8,), (-5.0, 2.0), name="actor")
    actor(OBS)
    paths = {v.path for v in actor.variables}
    expected = {"actor/trunk/hidden_0/kernel", "actor/mean/kernel", "actor/mean/bias", "actor/log_std/kernel"}
    assert expected <= paths


def test_the_actor_passes_training_to_batch_renorm_and_defaults_to_inference():
    actor = Actor(2, (8,), (-5.0, 2.0), MLPOptions(batch_renorm=True, renorm_warmup=0))
    actor(OBS)
    before = running_stats(actor)
    actor(OBS), actor.with_features(OBS)
    assert same(before, running_stats(actor))
    actor.with_features(OBS, training=True)  # gSDE's update reads the features directly
    moved = running_stats(actor)
    assert not same(before, moved)
    actor(OBS, training=True)
    assert not same(moved, running_stats(actor))


def test_gsde_twin_keeps_the_std_positive_where_the_features_are_all_zero():
    keras.utils.set_random_seed(0)
    actor = Actor(2, (8,), (-5.0, 2.0), use_sde=True)
    actor(OBS)
    scramble(actor)
    hidden = actor.trunk.hidden_0
    hidden.kernel.assign(np.zeros_like(hidden.kernel.numpy()))
    hidden.bias.assign(np.full(hidden.bias.shape, -1.0, np.float32))  # relu(-1) = 0: every feature is zero
    mean, log_std = actor(OBS)
    np.testing.assert_allclose(log_std.numpy(), 0.5 * np.log(SDE_EPSILON), rtol=1e-5)
    sample = ActorSnapshot(actor).sample(OBS, np.random.default_rng(0))
    noise = np.random.default_rng(0).standard_normal(mean.shape, dtype=np.float32)
    np.testing.assert_allclose(sample, np.tanh(mean.numpy() + np.sqrt(SDE_EPSILON) * noise), rtol=1e-4, atol=1e-6)


def test_single_critics_output_one_value_per_row_by_default_and_a_users_torso_ones_too():
    x = tf.concat([OBS, ACTIONS], -1)
    assert SimbaQNetwork((8,), MLPOptions(architecture="simba"))(x).shape == (6,)
    torso_critic = TorsoQNetwork(RecordingTorso(), name="q_0")
    assert torso_critic(x).shape == (6,) and torso_critic(x[:1]).shape == (1,)
    assert torso_critic.torso.training is False  # called alone: inference, as our own torsos default to
    assert {v.path for v in torso_critic.q.variables} == {"q_0/q/kernel", "q_0/q/bias"}  # its checkpoint names


class RecordingTorso(keras.layers.Layer):
    """A user's float32 torso that keeps the input it was given."""

    def build(self, input_shape):
        self.dense = keras.layers.Dense(5)

    def call(self, x, training=False):
        self.seen, self.training = x, training
        return self.dense(x)


def test_under_mixed_bfloat16_a_users_torso_keeps_its_own_precision_and_our_head_computes_in_bfloat16():
    critics = Critics(2, (8,), dtype="mixed_bfloat16", torso_factory=RecordingTorso)
    obs = OBS + np.float32(1000.25)  # bfloat16 would round these to multiples of 4
    q = critics(obs, ACTIONS)
    assert q.dtype == tf.float32
    for member in critics.members:
        assert member.q.compute_dtype == "bfloat16" and member.torso.compute_dtype == "float32"
        np.testing.assert_array_equal(member.torso.seen.numpy(), np.concatenate([obs, ACTIONS], axis=1))


BUILDS = {
    "mlp": {},
    "simba": dict(architecture="simba", normalize_observations=True),
    "batch_renorm": dict(critic_batch_renorm=True, actor_batch_renorm=True, target_update="none"),
    "quantile_sde": dict(critic_type="quantile", n_quantiles=5, use_sde=True),
}


@pytest.mark.parametrize("name", BUILDS)
def test_networks_build_on_their_first_call_with_the_weights_a_symbolic_build_draws(name, monkeypatch):
    # Keras (keras.src.layers.layer.Layer._maybe_build) traces a composite layer's call on symbolic inputs to build
    # it unless the layer has a `build` of its own; core.layers.BuiltOnCall gives ours one that leaves the building
    # to the first eager call. Same variables, names, order and seeded values as the symbolic way, without its trace.
    from keras.src import backend

    from keras_sac import KerasSAC
    from keras_sac.core.layers import BuiltOnCall

    def weights():
        agent = KerasSAC("Pendulum-v1", seed=0, **BUILDS[name])
        nets = [agent.actor, agent.critics] + [agent.target_critics] * (agent.target_critics is not None)
        return [(v.path, v.numpy()) for net in nets for v in net.variables]

    traces = []
    symbolic = backend.compute_output_spec
    monkeypatch.setattr(backend, "compute_output_spec", lambda *a, **k: traces.append(1) or symbolic(*a, **k))
    on_call = weights()
    assert traces == []  # no symbolic pass over any of our layers
    monkeypatch.setattr(BuiltOnCall.build, "_is_default", True, raising=False)  # Keras' own way, for comparison
    by_trace = weights()
    assert traces  # the comparison did take the symbolic path
    assert [p for p, _ in on_call] == [p for p, _ in by_trace]
    for (path, a), (_, b) in zip(on_call, by_trace, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=path)
