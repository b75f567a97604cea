"""Checkpoints: exact in-process resume, atomic writes, verification, fallback, no pickle."""

import errno
import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
from conftest import SMALL

from keras_sac import CheckpointError, KerasSAC
from keras_sac.io import checkpoint as ckpt

FAST = dict(SMALL, learning_starts=40)
FUSED = dict(optimize_memory_usage=True, train_freq=3, gradient_steps=2)


def weights(agent):
    return {
        name: np.array(v.numpy() if hasattr(v, "numpy") else v.state.numpy())
        for name, v in agent.state_variables().items()
    }


def assert_same_agent(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)
    for name, array in a.buffer.state_arrays().items():
        np.testing.assert_array_equal(array, b.buffer.state_arrays()[name], err_msg=f"buffer.{name}")
    assert a.num_timesteps == b.num_timesteps


@pytest.mark.parametrize(
    "env_id, extra",
    [
        ("Pendulum-v1", {}),
        ("InvertedPendulum-v5", {}),
        ("HalfCheetah-v5", {}),
        # Ant and Humanoid read derived MuJoCo quantities (contact forces) in their rewards: every MjData array
        pytest.param("Ant-v5", {}, marks=pytest.mark.slow),
        pytest.param("Humanoid-v5", {}, marks=pytest.mark.slow),
        # compact buffer across episode ends, fused phases, and an action already drawn when saved; in graph mode
        # here (auto compiles two gradient steps with XLA: 40 s of compiling for two agents), in XLA with -m slow
        ("InvertedPendulum-v5", dict(FUSED, compile_mode="graph")),
        pytest.param("InvertedPendulum-v5", dict(FUSED, compile_mode="xla"), marks=pytest.mark.slow),
    ],
)
def test_save_load_then_learn_is_bit_identical_to_never_stopping(tmp_path, env_id, extra):
    # Saved mid-episode: the env's physics, time-limit counter and RNG must come back too.
    agent = KerasSAC(env_id, seed=1, **FAST, **extra)
    agent.update_metrics.active = True  # as a MetricsLogger sets it: the updates since its last row are saved
    agent.learn(75 if not extra else 78)  # mid-episode; 78: a training phase just drew the next action
    agent.save(tmp_path / "a")
    resumed = KerasSAC.load(tmp_path / "a")
    resumed.update_metrics.active = True
    assert resumed.collector.episode_length[0] == agent.collector.episode_length[0] > 0
    np.testing.assert_array_equal(
        resumed.collector.next_action, agent.collector.next_action
    )  # drawn by the last phase, saved
    assert len(agent.update_metrics) > 0  # no row cleared them: the next row's mean goes on from here
    agent.learn(60, reset_num_timesteps=False)
    resumed.learn(60, reset_num_timesteps=False)
    assert_same_agent(agent, resumed)
    np.testing.assert_array_equal(agent.collector.obs, resumed.collector.obs)
    assert len(resumed.update_metrics) == len(agent.update_metrics)
    assert resumed.metrics() == pytest.approx(agent.metrics(), rel=1e-9)


def test_save_without_buffer(tmp_path):
    agent = KerasSAC("Pendulum-v1", seed=1, **FAST)
    agent.learn(50)
    agent.save(tmp_path / "a", include_buffer=False)
    assert len(KerasSAC.load(tmp_path / "a").buffer) == 0


def rolling(tmp_path, steps=(50, 50, 50)):
    agent = KerasSAC("Pendulum-v1", seed=1, **FAST)
    checkpoints = ckpt.RollingCheckpoints(tmp_path / "checkpoints")
    for n in steps:
        agent.learn(n, reset_num_timesteps=False)
        checkpoints.write(agent)
    return agent, checkpoints


def test_rolling_keeps_the_newest_two(tmp_path):
    _, checkpoints = rolling(tmp_path)
    assert [p.name for p in checkpoints.folders()] == ["step_000000000150", "step_000000000100"]
    assert checkpoints.latest().name == "step_000000000150"
    assert not [p for p in checkpoints.root.iterdir() if p.name.startswith(".")]  # no staging debris


@pytest.mark.parametrize("damage", ["truncate_data", "flip_byte_in_arrays", "drop_manifest", "drop_agent_json"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_with_a_warning(tmp_path, damage):
    _, checkpoints = rolling(tmp_path)
    newest = checkpoints.folders()[0]
    if damage == "truncate_data":
        data = next((newest / "variables").glob("agent.data*"))
        data.write_bytes(data.read_bytes()[:100])
    elif damage == "flip_byte_in_arrays":
        raw = bytearray((newest / "arrays.npz").read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        (newest / "arrays.npz").write_bytes(bytes(raw))
    elif damage == "drop_manifest":  # what a kill between the data files and the manifest leaves
        (newest / "MANIFEST.json").unlink()
    else:
        (newest / "agent.json").unlink()
    with pytest.warns(UserWarning, match=r"step_000000000150.*using the previous checkpoint .*step_000000000100"):
        agent = KerasSAC.load(tmp_path)  # a run folder: resolves to checkpoints/, newest good one
    assert agent.num_timesteps == 100


def test_no_good_checkpoint_is_an_error_naming_each_problem(tmp_path):
    _, checkpoints = rolling(tmp_path, steps=(50,))
    (checkpoints.folders()[0] / "MANIFEST.json").unlink()
    with pytest.raises(CheckpointError, match="no good checkpoint under .*step_000000000050.* is incomplete"):
        KerasSAC.load(tmp_path / "checkpoints")


def test_staging_leftovers_of_a_killed_write_are_ignored_and_cleaned(tmp_path):
    agent, checkpoints = rolling(tmp_path, steps=(50,))
    stale = checkpoints.root / ".step_000000000070.tmp"  # a write killed at another step
    stale.mkdir()
    (stale / "agent.json").write_text("{half")
    assert checkpoints.latest().name == "step_000000000050"
    agent.learn(50, reset_num_timesteps=False)
    checkpoints.write(agent)
    assert not stale.exists() and checkpoints.latest().name == "step_000000000100"


def test_a_full_disk_leaves_the_previous_checkpoint_valid(tmp_path, monkeypatch):
    agent, checkpoints = rolling(tmp_path, steps=(50,))

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", no_space)
    agent.learn(50, reset_num_timesteps=False)
    with pytest.raises(OSError, match="No space left"):
        checkpoints.write(agent)
    assert [p.name for p in checkpoints.root.iterdir()] == ["step_000000000050"]
    ckpt.verify(checkpoints.root / "step_000000000050")


def test_loading_never_unpickles(tmp_path):
    agent = KerasSAC("Pendulum-v1", seed=1, **FAST)
    agent.save(tmp_path / "a")
    # Replace the arrays with an object array (which only pickle can load) and re-sign the manifest,
    # as an attacker would: loading must refuse rather than run pickle.
    with open(tmp_path / "a" / "arrays.npz", "wb") as f:
        np.savez(f, evil=np.array([{"x": 1}], dtype=object))
    manifest = json.loads((tmp_path / "a" / "MANIFEST.json").read_text())
    manifest["files"]["arrays.npz"] = {
        "size": (tmp_path / "a" / "arrays.npz").stat().st_size,
        "crc32": ckpt._crc32(tmp_path / "a" / "arrays.npz"),
    }
    (tmp_path / "a" / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="holds data that needs pickle"):
        KerasSAC.load(tmp_path / "a")


def test_an_unsupported_env_resumes_with_a_new_episode(tmp_path):
    from conftest import make_match_env

    agent = KerasSAC(make_match_env(), seed=1, **FAST)
    agent.learn(55)
    agent.save(tmp_path / "a")
    with pytest.warns(UserWarning, match="mid-episode state of env MatchEnv cannot be saved .* new episode"):
        resumed = KerasSAC.load(tmp_path / "a", env=make_match_env())
    assert resumed.collector.obs is None and resumed.num_timesteps == 55
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed.learn(10, reset_num_timesteps=False)
    assert resumed.num_timesteps == 65 and len(resumed.buffer) == 65


def test_a_failed_save_over_an_existing_one_keeps_it_and_leaves_no_debris(tmp_path, monkeypatch):
    from keras_sac.io import files

    agent = KerasSAC("Pendulum-v1", seed=1, **FAST)
    agent.learn(50)
    agent.save(tmp_path / "a")
    agent.learn(20, reset_num_timesteps=False)

    def swap_fails(a, b):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(files, "_exchange", swap_fails)
    with pytest.raises(OSError, match="Input/output error"):
        agent.save(tmp_path / "a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert KerasSAC.load(tmp_path / "a").num_timesteps == 50


class Drifter(gym.Env):
    """x moves by the action plus a hidden drift that changes every step; `state` holds x only, so restoring
    `state` alone would be partial. With `protocol`, the env saves both through envs/state.py's protocol."""

    observation_space = gym.spaces.Box(-10, 10, (1,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (1,), np.float32)

    def __init__(self, protocol: bool = False):
        self.protocol = protocol
        if protocol:
            self.get_episode_state = lambda: {"x": self.state, "drift": np.array(self.drift)}
            self.set_episode_state = lambda s: (
                setattr(self, "state", s["x"].copy()),
                setattr(self, "drift", float(s["drift"])),
            )

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state, self.drift = np.zeros(1), 0.0
        return self.state.astype(np.float32), {}

    def step(self, action):
        self.drift += float(self.np_random.normal()) * 0.1
        self.state = np.clip(self.state + 0.1 * np.asarray(action, np.float64) + self.drift, -10, 10)
        return self.state.astype(np.float32), -abs(float(self.state[0])), False, False, {}


def drifter(protocol: bool) -> gym.Env:
    return gym.wrappers.TimeLimit(Drifter(protocol), max_episode_steps=100)


def test_an_env_with_state_beyond_its_state_attribute_is_not_restored_in_part(tmp_path):
    agent = KerasSAC(drifter(False), seed=1, **FAST)
    agent.learn(55)
    agent.save(tmp_path / "a")
    with pytest.warns(UserWarning, match="mid-episode state of env Drifter cannot be saved .* new episode"):
        resumed = KerasSAC.load(tmp_path / "a", env=drifter(False))
    assert resumed.collector.obs is None  # a new episode, not x restored without its drift


def test_an_env_with_the_episode_state_protocol_resumes_exactly(tmp_path):
    agent = KerasSAC(drifter(True), seed=1, **FAST)
    agent.learn(55)
    agent.save(tmp_path / "a")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed = KerasSAC.load(tmp_path / "a", env=drifter(True))
    assert resumed.collector.episode_length[0] == agent.collector.episode_length[0] == 55
    assert resumed.env.unwrapped.drift == agent.env.unwrapped.drift != 0.0
    agent.learn(30, reset_num_timesteps=False)
    resumed.learn(30, reset_num_timesteps=False)
    np.testing.assert_array_equal(agent.collector.obs, resumed.collector.obs)  # the same trajectory
