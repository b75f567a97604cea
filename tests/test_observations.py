"""Image and Dict observations: how spaces are read, the encoders' preprocessing, DrQ's shift, uint8 storage,
the shared encoder's gradients, predict/save/load/export with images and dicts, and one-line errors."""

import json
import subprocess
import sys
import textwrap

import gymnasium as gym
import image_envs  # noqa: F401  (registers BrightSpot-*)
import numpy as np
import pytest
import tensorflow as tf
from conftest import SMALL

from keras_sac import ConfigError, EnvError, KerasSAC, LoadedPolicy
from keras_sac.core.encoders import random_shift, to_channels_last
from keras_sac.core.spaces import ObsEntry, ObsError, as_batch, obs_spec

# Tiny encoders: the tests check wiring and math, not learning.
IMAGE = dict(SMALL, encoder="small", encoder_channels=(4, 4, 4), encoder_features=8, buffer_size=2000)


def image_box(shape):
    return gym.spaces.Box(0, 255, shape, np.uint8)


# ---------------------------------------------------------------------------------------------- reading spaces
@pytest.mark.parametrize(
    "shape, layout, hwc",
    [
        ((64, 64, 3), "hwc", (64, 64, 3)),
        ((3, 64, 64), "chw", (64, 64, 3)),  # FrameStackObservation of grayscale frames
        ((64, 48), "hw", (64, 48, 1)),
        ((4, 64, 64, 3), "khwc", (64, 64, 12)),  # FrameStackObservation of colour frames
    ],
)
def test_uint8_boxes_are_read_as_images_in_their_layout(shape, layout, hwc):
    entry = obs_spec(image_box(shape), "env").entries[0]
    assert (entry.layout, entry.image_shape, entry.dtype) == (layout, hwc, "uint8")


def test_float_and_ambiguous_images_are_refused_with_the_fix():
    with pytest.raises(ObsError, match="float32 Box of shape .*must be uint8 .*FlattenObservation"):
        obs_spec(gym.spaces.Box(0.0, 1.0, (64, 64, 3), np.float32), "env")
    with pytest.raises(ObsError, match="bounds other than \\[0, 255\\]"):
        obs_spec(gym.spaces.Box(0, 1, (64, 64, 3), np.uint8), "env")
    with pytest.raises(ObsError, match="channel axis is ambiguous: set image_channels: first"):
        obs_spec(image_box((8, 64, 8)), "env")
    assert obs_spec(image_box((8, 64, 8)), "env", image_channels="first").entries[0].image_shape == (64, 8, 8)
    with pytest.raises(ObsError, match="'flag' is a Discrete"):
        obs_spec(gym.spaces.Dict({"flag": gym.spaces.Discrete(2)}), "env")


def test_to_channels_last_keeps_every_pixel_in_place():
    rng = np.random.default_rng(0)
    stacked = rng.integers(0, 255, (2, 3, 8, 9, 2), dtype=np.uint8)  # (batch, k, H, W, C)
    entry = ObsEntry("o", (3, 8, 9, 2), "uint8", "khwc")
    out = to_channels_last(tf.constant(stacked), entry).numpy()
    assert out.shape == (2, 8, 9, 6)
    np.testing.assert_array_equal(out[1, 4, 5], stacked[1, :, 4, 5, :].reshape(-1))  # frames in order
    chw = rng.integers(0, 255, (2, 3, 8, 9), dtype=np.uint8)
    np.testing.assert_array_equal(
        to_channels_last(tf.constant(chw), ObsEntry("o", (3, 8, 9), "uint8", "chw")), chw.transpose(0, 2, 3, 1)
    )


@pytest.mark.parametrize("layout, shape", [("hwc", (10, 12, 2)), ("chw", (2, 10, 12))])
def test_random_shift_is_a_crop_of_the_edge_padded_image(layout, shape):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, (64, *shape), dtype=np.uint8)
    entry = ObsEntry("o", shape, "uint8", layout)
    shifted = random_shift(tf.constant(images), entry, pad=4, seed=tf.constant([3, 4])).numpy()
    assert shifted.dtype == np.uint8 and shifted.shape == images.shape
    hwc = images if layout == "hwc" else images.transpose(0, 2, 3, 1)
    out = shifted if layout == "hwc" else shifted.transpose(0, 2, 3, 1)
    padded = np.pad(hwc, ((0, 0), (4, 4), (4, 4), (0, 0)), mode="edge")
    offsets = []
    for i in range(64):  # each image is exactly one of the 81 crops, the same for all its channels
        matches = [
            (dy, dx)
            for dy in range(9)
            for dx in range(9)
            if np.array_equal(padded[i, dy : dy + 10, dx : dx + 12], out[i])
        ]
        assert matches, f"image {i} is not a crop of its padded copy"
        offsets.append(matches[0])
    assert len(set(offsets)) > 20  # independent offsets per image
    again = random_shift(tf.constant(images), entry, pad=4, seed=tf.constant([3, 4])).numpy()
    np.testing.assert_array_equal(again, shifted)  # a seed fixes the shift


def test_as_batch_checks_keys_shapes_and_image_values():
    spec = obs_spec(gym.make("BrightSpot-dict-v0").observation_space, "BrightSpot")
    obs = {"image": np.zeros((24, 24, 1), np.uint8), "vector": np.zeros(2, np.float32)}
    batch, single = as_batch(spec, obs, "the agent")
    assert single and batch["image"].shape == (1, 24, 24, 1) and batch["vector"].dtype == np.float32
    with pytest.raises(ObsError, match=r"lacks key\(s\) \['vector'\]"):
        as_batch(spec, {"image": obs["image"]}, "the agent")
    with pytest.raises(ObsError, match="takes uint8 values in \\[0, 255\\]"):
        as_batch(spec, {**obs, "image": np.full((24, 24, 1), 0.5)}, "the agent")
    with pytest.raises(ObsError, match="'vector' contains NaN"):
        as_batch(spec, {**obs, "vector": np.array([np.nan, 0.0])}, "the agent")


# ---------------------------------------------------------------------------------------------- the agent
@pytest.fixture(scope="module")
def image_agent():
    agent = KerasSAC("BrightSpot-chw-v0", seed=0, **IMAGE, image_augmentation="random_shift")
    agent.learn(120)
    return agent


def test_images_are_stored_as_uint8_and_compact_storage_keeps_each_observation_once():
    plain = KerasSAC("BrightSpot-hwc-v0", seed=0, **IMAGE)
    compact = KerasSAC("BrightSpot-hwc-v0", seed=0, **IMAGE, optimize_memory_usage=True)
    for agent in (plain, compact):
        agent.learn(60)
        assert agent.buffer.obs.arrays["observation"].dtype == np.uint8
    frame = 24 * 24 * 3
    action, reward, terminated, episode_end, valid = (
        4,
        4,
        4,
        1,
        1,
    )  # bytes: float32 (1,) action, float32, float32, bool, bool
    assert plain.buffer.bytes_per_transition() == 2 * frame + action + reward + terminated + episode_end
    assert compact.buffer.bytes_per_transition() == frame + action + reward + terminated + episode_end + valid
    sample = compact.buffer.sample(16, np.random.default_rng(0))
    assert sample.obs["observation"].dtype == np.uint8 and sample.next_obs["observation"].shape == (16, 24, 24, 3)


class RecordPairs(gym.Wrapper):
    """Every (observation, next observation) pair the env itself produced, as bytes."""

    def __init__(self, env):
        super().__init__(env)
        self.pairs, self.last = set(), None

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.last = np.asarray(obs).tobytes()
        return obs, info

    def step(self, action):
        obs, *rest = self.env.step(action)
        self.pairs.add((self.last, np.asarray(obs).tobytes()))
        self.last = np.asarray(obs).tobytes()
        return obs, *rest


def test_compact_storage_samples_only_the_envs_own_observation_pairs():
    # BrightSpot's next observation is a fresh draw, and its 10-step episodes end often: a compact buffer, which
    # stores each observation once, must still pair each obs with the one the env returned after it, never
    # with the next episode's first observation.
    env = RecordPairs(gym.make("BrightSpot-hwc-v0"))
    agent = KerasSAC(env, seed=0, **IMAGE, optimize_memory_usage=True)
    agent.learn(60)
    sample = agent.buffer.sample(64, np.random.default_rng(0))
    obs, next_obs = sample.obs["observation"], sample.next_obs["observation"]
    for i in range(64):
        assert (obs[i].tobytes(), next_obs[i].tobytes()) in env.pairs, i


def test_the_shared_encoder_is_trained_by_the_critic_loss_only(image_agent):
    agent = image_agent
    encoder_ids = {id(v) for v in agent.critics.encoder.trainable_variables}
    assert agent.actor.encoder is agent.critics.encoder
    assert not encoder_ids & {id(v) for v in agent.actor.learned_variables}
    batch = agent.buffer.sample(32, agent.np_rng)
    obs = {k: tf.constant(v) for k, v in batch.obs.items()}
    before = [v.numpy().copy() for v in agent.critics.encoder.trainable_variables]
    actor_before = [v.numpy().copy() for v in agent.actor.learned_variables]
    seeds = {"actor": tf.constant([1, 2])}
    agent._update.update_actor_and_alpha(obs, tf.exp(agent.log_alpha), seeds)
    for b, v in zip(before, agent.critics.encoder.trainable_variables):
        np.testing.assert_array_equal(b, v.numpy())  # the actor's step left the encoder alone
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(actor_before, agent.actor.learned_variables))


def test_separate_encoders_each_train_with_their_own_loss():
    agent = KerasSAC("BrightSpot-hwc-v0", seed=0, **IMAGE, share_encoder=False)
    assert agent.actor.encoder is not agent.critics.encoder
    actor_encoder = [v.numpy().copy() for v in agent.actor.encoder.trainable_variables]
    critic_encoder = [v.numpy().copy() for v in agent.critics.encoder.trainable_variables]
    agent.learn(100)
    assert any(not np.array_equal(b, v.numpy()) for b, v in zip(actor_encoder, agent.actor.encoder.trainable_variables))
    assert any(
        not np.array_equal(b, v.numpy()) for b, v in zip(critic_encoder, agent.critics.encoder.trainable_variables)
    )
    assert len(agent.state_variables()) == len({id(v) for v in agent.state_variables().values()})


def test_image_predict_save_load_and_resume_exactly(image_agent, tmp_path):
    agent = image_agent
    obs, _ = gym.make("BrightSpot-chw-v0").reset(seed=3)
    action = agent.predict(obs, deterministic=True)[0]
    assert action.shape == (1,) and agent.predict(np.stack([obs, obs]))[0].shape == (2, 1)
    agent.save(tmp_path / "ck")
    loaded = KerasSAC.load(tmp_path / "ck")
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], action)
    agent.learn(40, reset_num_timesteps=False)
    loaded.learn(40, reset_num_timesteps=False)
    for a, b in zip(agent.critics.encoder.variables, loaded.critics.encoder.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # same minibatches, same shifts, same weights


STANDALONE = textwrap.dedent("""
    import json, sys
    sys.modules["keras_sac"] = None
    import numpy as np
    import tensorflow as tf
    policy = tf.saved_model.load(sys.argv[1])
    inputs = {k: tf.constant(v) for k, v in np.load(sys.argv[2]).items()}
    signature = policy.signatures["serving_default"]
    print(json.dumps({"action": signature(**inputs)["action"].numpy().tolist(),
                      "inputs": sorted(signature.structured_input_signature[1]),
                      "dtypes": {k: s.dtype.name for k, s in signature.structured_input_signature[1].items()},
                      "metadata": json.loads(policy.metadata().numpy())}))
""")


def test_a_dict_policy_exports_one_named_input_per_key(tmp_path):
    agent = KerasSAC("BrightSpot-dict-v0", seed=0, **IMAGE)
    agent.learn(100)
    env = gym.make("BrightSpot-dict-v0")
    observations = [env.reset(seed=i)[0] for i in range(5)]
    batch = {k: np.stack([o[k] for o in observations]) for k in ("image", "vector")}
    np.savez(tmp_path / "obs.npz", **batch)
    path = agent.export(tmp_path / "policy")
    proc = subprocess.run(
        [sys.executable, "-I", "-c", STANDALONE, str(path), str(tmp_path / "obs.npz")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["inputs"] == ["image", "vector"] and out["dtypes"] == {"image": "uint8", "vector": "float32"}
    expected = agent.predict(batch, deterministic=True)[0]
    np.testing.assert_allclose(out["action"], expected, atol=1e-5)
    entries = out["metadata"]["observation"]["entries"]
    assert [(e["key"], e["shape"], e["dtype"]) for e in entries] == [
        ("image", [24, 24, 1], "uint8"),
        ("vector", [2], "float32"),
    ]
    policy = LoadedPolicy(path)  # the keras_sac wrapper takes one dict, like predict
    np.testing.assert_allclose(policy(observations[0]), expected[0], atol=1e-5)
    with pytest.raises(ValueError, match="lacks key"):
        policy({"image": observations[0]["image"]})
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]  # the bare signature: TF's one line
    with pytest.raises(TypeError, match="missing required arguments: vector"):
        serve(image=tf.constant(batch["image"]))


def test_image_settings_on_a_vector_env_are_refused():
    with pytest.raises(
        ConfigError,
        match="image_augmentation apply to image observations, and env Pendulum-v1 observes \\(3,\\) float32",
    ):
        KerasSAC("Pendulum-v1", image_augmentation="random_shift")


def test_an_image_too_small_for_the_encoder_names_the_fix():
    with pytest.raises(
        ConfigError, match="24x24 image, too small for encoder nature_cnn .*at least 36x36.*encoder: small"
    ):
        KerasSAC("BrightSpot-hwc-v0", **SMALL)


def test_pixels_of_an_env_that_cannot_render_is_one_line():
    with pytest.raises(EnvError, match="does not render rgb_array frames"):
        KerasSAC("BrightSpot-hwc-v0", pixels={"size": 32}, **IMAGE)


def test_pixels_of_an_env_object_without_render_is_one_line():
    from keras_sac.envs.make import pixel_env

    env = gym.make("BrightSpot-hwc-v0")
    env.unwrapped.render_mode = "rgb_array"  # claims rgb_array, but its class has only gym.Env's render
    with pytest.raises(EnvError, match="'BrightSpot-hwc-v0' does not render rgb_array frames"):
        pixel_env(env, {"size": 32})


def test_pixel_pendulum_observes_stacked_grayscale_frames():
    agent = KerasSAC("Pendulum-v1", pixels={"size": [32, 32], "frame_stack": 3}, **IMAGE)
    entry = agent.spec.obs.entries[0]
    assert (entry.shape, entry.layout, entry.dtype) == ((3, 32, 32), "chw", "uint8")
    assert agent.spec.pixels == {"size": [32, 32], "grayscale": True, "frame_stack": 3}
    agent.learn(60)
    assert agent.buffer.obs.arrays["observation"][:60].max() == 255  # rendered frames, not zeros


def test_compact_storage_keeps_each_rendered_frame_once():
    agent = KerasSAC("Pendulum-v1", pixels={"size": [32, 32], "frame_stack": 3}, **IMAGE, optimize_memory_usage=True)
    agent.learn(60)
    assert agent.buffer.obs.arrays["observation"].shape[1:] == (32, 32)  # a frame per row, not a stack
    # the env's own current stack is the newest stored next_obs, read back from three rows
    np.testing.assert_array_equal(
        agent.buffer.obs[agent.buffer.pos]["observation"], agent.collector.obs["observation"][0]
    )
    assert agent.buffer.bytes_per_transition() == 32 * 32 + 1 + 4 + 4 + 4 + 1 + 1
