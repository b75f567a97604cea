"""Extension points (core/parts.py): a user's Keras layers as torsos or extractor and a user's buffer class are
built, trained, checkpointed, loaded in place of a fresh build and exported as keras_sac's own parts are."""

import keras
import numpy as np
import pytest
from conftest import SMALL, make_match_env

from keras_sac import KerasSAC
from keras_sac.config.settings import ConfigError
from keras_sac.core.parts import PartError
from keras_sac.data.buffer import ReplayBuffer
from keras_sac.io.checkpoint import CheckpointError


class Torso(keras.layers.Layer):
    """Two Dense layers of Keras' automatic names (dense_<n>, different in every build)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.a, self.b = keras.layers.Dense(24, activation="tanh"), keras.layers.Dense(16, activation="relu")

    def call(self, x):
        return self.b(self.a(x))


class CountingBuffer(ReplayBuffer):
    rows = 0

    def add_step(self, *args):
        CountingBuffer.rows += 1
        super().add_step(*args)


def critic_torso():
    return keras.Sequential([keras.layers.Dense(20, activation="relu")])


def extractor():
    return keras.Sequential([keras.layers.Dense(8, activation="tanh")])


PARTS = dict(
    actor_torso=Torso, critic_torso=critic_torso, features_extractor=extractor, replay_buffer_class=CountingBuffer
)


def test_custom_parts_train_save_load_continue_and_export_like_our_own(tmp_path):
    from keras_sac.io.export import LoadedPolicy

    CountingBuffer.rows = 0
    agent = KerasSAC("Pendulum-v1", seed=0, **SMALL, normalize_observations=True, **PARTS)
    assert isinstance(agent.buffer, CountingBuffer) and agent.actor.trunk.__class__ is Torso
    assert agent.actor.encoder is agent.critics.encoder and agent.actor.detach_encoder  # share_encoder
    start = {k: v.numpy().copy() for k, v in agent.state_variables().items() if k.startswith("critics.q_0.torso")}
    agent.learn(90)
    assert CountingBuffer.rows == 90
    moved = [k for k, v in start.items() if not np.array_equal(v, agent.state_variables()[k].numpy())]
    assert moved == list(start) and len(start) == 2  # the user's critic torso trains (kernel and bias)
    agent.save(tmp_path / "a")
    # a second build in this process names the user's sublayers anew (dense_7, ...): keys must not depend on that
    loaded = KerasSAC.load(tmp_path / "a", **PARTS)
    assert agent.actor.trunk.a.kernel.path != loaded.actor.trunk.a.kernel.path
    ours, theirs = agent.state_variables(), loaded.state_variables()
    assert list(ours) == list(theirs)
    for key in ours:
        a, b = (getattr(v, "state", v).numpy() for v in (ours[key], theirs[key]))  # tf_rng: its state
        np.testing.assert_array_equal(a, b, err_msg=key)
    assert len(loaded.buffer) == 90
    obs = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    np.testing.assert_array_equal(agent.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    loaded.learn(20, reset_num_timesteps=False)
    assert np.isfinite(list(loaded.metrics().values())).all()
    policy = LoadedPolicy(loaded.export(tmp_path / "policy"))
    np.testing.assert_allclose(
        policy(obs, deterministic=True), loaded.predict(obs, deterministic=True)[0], rtol=1e-5, atol=1e-5
    )


def test_a_checkpoint_names_the_parts_that_load_must_be_given_again(tmp_path):
    agent = KerasSAC(make_match_env(), seed=0, **SMALL, actor_torso=Torso)
    agent.save(tmp_path / "a")
    with pytest.raises(
        CheckpointError,
        match=r"built with its own actor_torso \(test_parts.Torso\), which a "
        r"checkpoint does not store: pass it again: KerasSAC.load\(path, "
        r"actor_torso=Torso\)",
    ):
        KerasSAC.load(tmp_path / "a", env=make_match_env())
    with pytest.raises(CheckpointError, match="built without a custom critic_torso: leave it out of load"):
        KerasSAC.load(tmp_path / "a", env=make_match_env(), actor_torso=Torso, critic_torso=critic_torso)


@pytest.mark.parametrize(
    "parts, message",
    [
        (dict(actor_torso=lambda: keras.layers.Dense), "actor_torso returned type, not a keras.layers.Layer"),
        (
            dict(critic_torso=lambda: keras.layers.Reshape((4, -1))),
            r"critic_torso's layer returned shape \(1, 4, 1\) of float32: it must return one float tensor of shape "
            r"\(batch, features\)",
        ),
        (
            dict(actor_torso=keras.layers.Dense(4)),
            r"actor_torso must be a class or a function returning a new one \(each network gets its own weights\), got "
            r"Dense object",
        ),
        (
            dict(replay_buffer_class=object),
            "replay_buffer_class object has no add_step, sample, __len__, state_arrays, "
            "restore_arrays: subclass keras_sac.data.buffer.ReplayBuffer",
        ),
        (dict(replay_buffer_class=len), "replay_buffer_class must be a class"),
    ],
)
def test_a_part_that_breaks_its_contract_is_one_line_naming_what_is_missing(parts, message):
    with pytest.raises(PartError, match=message) as err:
        KerasSAC(make_match_env(), seed=0, **SMALL, **parts)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "parts, settings, message",
    [
        (dict(actor_torso=Torso), dict(use_sde=True), "use_sde apply to keras_sac's own actor torso"),
        (
            dict(critic_torso=critic_torso),
            dict(critic_dropout=0.1, critic_layer_norm=True),
            "critic_layer_norm, critic_dropout apply to keras_sac's own critic torsos",
        ),
        (dict(replay_buffer_class=CountingBuffer), dict(replay_buffer="her"), "replay_buffer apply to keras_sac's own"),
    ],
)
def test_settings_of_our_own_parts_are_refused_beside_a_users(parts, settings, message):
    with pytest.raises(ConfigError, match=message):
        KerasSAC(make_match_env(), seed=0, **SMALL, **parts, **settings)


def test_a_custom_extractor_reads_image_observations(tmp_path):
    import image_envs  # noqa: F401  (registers BrightSpot-*)

    def cnn():
        return keras.Sequential(
            [
                keras.layers.Rescaling(1 / 255),
                keras.layers.Conv2D(4, 3, strides=2),
                keras.layers.Flatten(),
                keras.layers.Dense(8),
            ]
        )

    agent = KerasSAC("BrightSpot-hwc-v0", seed=0, **SMALL, features_extractor=cnn)
    agent.learn(60)
    import gymnasium as gym

    obs, _ = gym.make("BrightSpot-hwc-v0").reset(seed=0)  # (24, 24, 3) uint8
    action = agent.predict(obs, deterministic=True)[0]
    from keras_sac.io.export import LoadedPolicy

    policy = LoadedPolicy(agent.export(tmp_path / "policy"))
    np.testing.assert_allclose(policy(obs[None], deterministic=True)[0], action, rtol=1e-5, atol=1e-5)
