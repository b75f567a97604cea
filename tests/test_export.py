"""The SavedModel policy: loads without keras_sac or TFP, acts like predict, carries metadata."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import SMALL, make_match_env

from keras_sac import KerasSAC
from keras_sac.io.export import LoadedPolicy, PolicyError

# Runs in a fresh interpreter: -I ignores PYTHONPATH and the working directory, and blocking the
# imports makes any attempt to load keras_sac or TensorFlow Probability fail loudly.
STANDALONE = textwrap.dedent("""
    import json, sys
    sys.modules["keras_sac"] = None
    sys.modules["tensorflow_probability"] = None
    import numpy as np
    import tensorflow as tf
    policy = tf.saved_model.load(sys.argv[1])
    obs = tf.constant(np.load(sys.argv[2]))
    one_obs_many_times = tf.repeat(obs[:1], 4000, axis=0)
    out = {
        "action": policy.signatures["serving_default"](observation=obs)["action"].numpy().tolist(),
        "sample": policy.signatures["sample_action"](observation=obs)["action"].numpy().tolist(),
        "draws": policy.signatures["sample_action"](observation=one_obs_many_times)["action"].numpy().tolist(),
        "metadata": json.loads(policy.metadata().numpy()),
        "signatures": sorted(policy.signatures.keys()),
    }
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    agent = KerasSAC(make_match_env(), seed=0, **SMALL)
    agent.learn(150)
    path = agent.export(tmp_path_factory.mktemp("export") / "policy")
    return agent, path


def test_export_loads_without_keras_sac_or_tfp_and_matches_predict(trained, tmp_path):
    agent, path = trained
    obs = np.random.default_rng(0).uniform(-1, 1, (32, 2)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    proc = subprocess.run(
        [sys.executable, "-I", "-c", STANDALONE, str(path), str(tmp_path / "obs.npy")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(out["action"], agent.predict(obs, deterministic=True)[0], atol=1e-5)
    sample = np.asarray(out["sample"])
    assert sample.shape == (32, 2) and np.all(np.abs(sample) <= 2.0)
    # 4000 draws for one observation: back through the bounds (+-2) and tanh they are N(mean, std) of the actor
    u = np.arctanh(np.clip(np.asarray(out["draws"]) / 2.0, -1 + 1e-6, 1 - 1e-6))
    mean, log_std = (x.numpy()[0] for x in agent.actor(obs[:1]))
    std = np.exp(log_std)
    np.testing.assert_allclose(u.mean(axis=0), mean, atol=4 * std.max() / np.sqrt(4000))
    np.testing.assert_allclose(u.std(axis=0), std, rtol=0.08)
    meta = out["metadata"]
    assert meta["env_id"] is None  # the test env is not registered
    assert meta["observation_shape"] == [2] and meta["action_low"] == [-2.0, -2.0]
    assert meta["action_high"] == [2.0, 2.0] and meta["num_timesteps"] == 150
    assert out["signatures"] == ["sample_action", "serving_default"]


def test_metadata_file_travels_with_the_savedmodel(trained):
    _, path = trained
    meta = json.loads((path / "assets.extra" / "keras_sac.json").read_text())
    assert meta["format"] == "keras_sac.policy/1" and meta["keras_sac_version"]


def test_loaded_policy_wrapper(trained):
    agent, path = trained
    policy = LoadedPolicy(path)
    obs = np.array([0.3, -0.7], np.float32)
    np.testing.assert_allclose(policy(obs), agent.predict(obs, deterministic=True)[0], atol=1e-5)
    with pytest.raises(ValueError, match=r"observation has shape \(3,\); the policy at .* expects \(2,\) for one"):
        policy(np.zeros(3))


def test_missing_or_corrupt_savedmodel_is_reported(tmp_path, trained):
    with pytest.raises(PolicyError, match="no SavedModel policy at"):
        LoadedPolicy(tmp_path)
    (tmp_path / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(PolicyError, match="is corrupt or not a keras_sac policy"):
        LoadedPolicy(tmp_path)


def test_export_of_a_registered_env_records_its_id(tmp_path):
    agent = KerasSAC("Pendulum-v1", seed=0, **SMALL)
    assert LoadedPolicy(agent.export(tmp_path / "p")).metadata["env_id"] == "Pendulum-v1"


def test_a_failed_export_over_a_policy_keeps_the_old_one_and_leaves_no_debris(trained, tmp_path, monkeypatch):
    agent, _ = trained
    path = agent.export(tmp_path / "policy")
    before = LoadedPolicy(path)(np.zeros(2))
    import tensorflow as tf

    def disk_full(module, export_dir, signatures=None):
        (Path(export_dir) / "saved_model.pb").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tf.saved_model, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        agent.export(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy"]  # no .policy.tmp left behind
    np.testing.assert_array_equal(LoadedPolicy(path)(np.zeros(2)), before)


def test_an_exported_policy_is_fsynced_before_it_replaces_the_old_one(trained, tmp_path, monkeypatch):
    agent, _ = trained
    import os

    synced, real_fsync = [], os.fsync

    def recording_fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    agent.export(tmp_path / "policy")
    names = {Path(p).name for p in synced}
    assert {"saved_model.pb", "keras_sac.json", "variables.index"} <= names
    assert any(p.endswith(".policy.tmp") for p in synced)  # the staging folder itself, before the move
