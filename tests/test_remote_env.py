"""MuJoCo envs observed through their frames: rendered in a TensorFlow-free child process, invisibly.

This process has TensorFlow loaded; rendering MuJoCo here (Mesa's EGL) would crash it, so each test passing
at all shows the frames were made elsewhere."""

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import tensorflow as tf

from keras_sac import EnvError, KerasSAC, LoadedPolicy
from keras_sac.envs.make import make_env
from keras_sac.envs.remote import RemoteEnv, renders_with_mujoco

PIXELS = {"size": [24, 24], "frame_stack": 2}
SMALL_RENDER = {"width": 48, "height": 48}  # MuJoCo renders this size; ResizeObservation takes it to 24x24
TINY = dict(
    pixels=PIXELS,
    encoder="small",
    encoder_features=16,
    net_arch=[32],
    batch_size=8,
    learning_starts=10,
    buffer_size=500,
    seed=0,
)


def loads_tensorflow(pid: int) -> bool:
    return "tensorflow" in Path(f"/proc/{pid}/maps").read_text()


def test_only_mujoco_envs_are_sent_to_a_subprocess():
    assert renders_with_mujoco("HalfCheetah-v5") and renders_with_mujoco("InvertedPendulum-v5")
    assert not renders_with_mujoco("Pendulum-v1") and not renders_with_mujoco("keras_sac/PointGoal-v0")
    assert type(make_env("Pendulum-v1", pixels=PIXELS)).__name__ != "RemoteEnv"


def test_a_mujoco_pixel_env_renders_in_a_child_without_tensorflow():
    env = make_env("InvertedPendulum-v5", pixels=PIXELS, **SMALL_RENDER)
    try:
        assert isinstance(env, RemoteEnv)
        assert env.observation_space.shape == (2, 24, 24)  # grayscale (the default), 2 frames
        assert env.observation_space.dtype == np.uint8
        assert env.spec.id == "InvertedPendulum-v5" and env.spec.max_episode_steps == 1000
        assert loads_tensorflow(_own_pid()) and not loads_tensorflow(env._process.pid)
        obs, _ = env.reset(seed=0)
        frames = [obs]
        for _ in range(5):
            obs, reward, terminated, truncated, _ = env.step(np.array([3.0], np.float32))
            frames.append(obs)
        assert obs.dtype == np.uint8 and obs.std() > 0  # a real picture, not a blank buffer
        assert not np.array_equal(frames[0], frames[-1])  # the pole moved
        obs_again, _ = env.reset(seed=0)
        np.testing.assert_array_equal(obs_again, frames[0])  # seeding reaches the child
    finally:
        env.close()
    assert not env._process.is_alive()


def test_errors_in_the_child_arrive_as_one_line():
    with pytest.raises(EnvError, match="does not accept the keyword arguments"):
        make_env("InvertedPendulum-v5", pixels=PIXELS, no_such_option=1)


def test_a_mujoco_env_object_with_pixels_is_refused_in_one_line():
    env = gym.make("InvertedPendulum-v5")
    with pytest.raises(EnvError, match="pass the env id with pixels set"):
        KerasSAC(env, **TINY)


@pytest.mark.parametrize("n_envs", [1, 2])
def test_the_agent_trains_saves_and_exports_a_mujoco_pixel_policy(tmp_path, n_envs):
    if n_envs == 1:  # an env made by make_env (here with a small render size) is taken as it is
        agent = KerasSAC(make_env("InvertedPendulum-v5", pixels=PIXELS, **SMALL_RENDER), **TINY)
    else:  # Gymnasium's async subprocesses; its copy made here to read the spaces is a RemoteEnv too
        agent = KerasSAC("InvertedPendulum-v5", **TINY, n_envs=2, vectorization="async")
    try:
        agent.learn(30)
        assert agent.buffer.sample(4, np.random.default_rng(0)).obs["observation"].dtype == np.uint8
        agent.save(tmp_path / "agent")
        agent.export(tmp_path / "policy")
        obs = agent.collector.obs["observation"]  # (n_envs, 2, 24, 24): what the env gave
        policy = LoadedPolicy(tmp_path / "policy")
        np.testing.assert_allclose(
            policy(obs, deterministic=True), agent.predict(obs, deterministic=True)[0], atol=1e-5
        )
    finally:
        agent.close()
    loaded = KerasSAC.load(tmp_path / "agent")  # the env is made again from its id and kwargs: in a child again
    try:
        assert loaded.spec == agent.spec
        assert isinstance(loaded.env, RemoteEnv if n_envs == 1 else gym.vector.AsyncVectorEnv)
        loaded.learn(10, reset_num_timesteps=False)
    finally:
        loaded.close()


def _own_pid() -> int:
    import os

    return os.getpid()


assert tf  # TensorFlow is loaded in this process before any env is made
