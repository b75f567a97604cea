"""TFLite and ONNX exports: equal to the SavedModel on random observations, run where TensorFlow cannot load."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import SMALL, make_match_env

from keras_sac import KerasSAC, LoadedPolicy
from keras_sac.io.export_formats import ExportError, to_tflite

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# Runs in a fresh interpreter in which `import tensorflow` fails: the runtimes need NumPy and their own package.
RUN_WITHOUT_TF = """
import json, sys
import numpy as np
sys.modules["tensorflow"] = None  # any import of TensorFlow now raises ImportError
from keras_sac.io.runtime import load_policy
obs = dict(np.load(sys.argv[2]))
obs = obs["observation"] if list(obs) == ["observation"] else obs
policy = load_policy(sys.argv[1])
single = {k: v[0] for k, v in obs.items()} if isinstance(obs, dict) else obs[0]
print(json.dumps({"batch": policy(obs).tolist(), "single": policy(single).tolist(),
                  "modules": sorted(m for m in ("tensorflow", "gymnasium", "keras") if sys.modules.get(m))}))
"""


def run_without_tf(path: Path, obs, tmp_path: Path) -> dict:
    np.savez(tmp_path / "obs.npz", **(obs if isinstance(obs, dict) else {"observation": obs}))
    proc = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_TF, str(path), str(tmp_path / "obs.npz")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def random_obs(space, n: int, rng):
    if hasattr(space, "spaces"):
        return {k: np.stack([s.sample() for _ in range(n)]) for k, s in space.spaces.items()}
    if space.dtype == np.uint8:
        return rng.integers(0, 256, (n, *space.shape), dtype=np.uint8)
    return rng.normal(0.0, 2.0, (n, *space.shape)).astype(np.float32)  # beyond the box too: no clipping inside


def check_formats(agent, tmp_path, atol=1e-4):
    rng = np.random.default_rng(0)
    obs = random_obs(agent.env.observation_space, 16, rng)
    agent.export(tmp_path / "policy")
    saved = LoadedPolicy(tmp_path / "policy")(obs)
    np.testing.assert_allclose(agent.predict(obs, deterministic=True)[0], saved, atol=1e-5)
    for fmt in ("tflite", "onnx"):
        path = agent.export(tmp_path / f"policy.{fmt}", format=fmt)
        out = run_without_tf(path, obs, tmp_path)
        assert out["modules"] == [], out["modules"]
        np.testing.assert_allclose(np.array(out["batch"]), saved, atol=atol, err_msg=fmt)
        np.testing.assert_allclose(np.array(out["single"]), saved[0], atol=atol, err_msg=fmt)
        metadata = json.loads(Path(f"{path}.json").read_text())
        assert metadata["file_format"] == fmt and metadata["output"] == "action"
        assert metadata["action_low"] == list(agent.spec.action_low)


def test_flat_policy_with_bounds_and_normalization(tmp_path):
    agent = KerasSAC(make_match_env(), seed=0, normalize_observations=True, **SMALL)
    agent.learn(200)  # trained weights and statistics; actions in [-2, 2], so the bounds must be baked in
    check_formats(agent, tmp_path)


@pytest.mark.slow  # ~25 s: two CNN agents; CI runs the slow tests too
@pytest.mark.parametrize("env_id", ["BrightSpot-hwc-v0", "BrightSpot-dict-v0"])
def test_image_and_dict_policies(env_id, tmp_path):
    sys.path.insert(0, str(TESTS))
    import image_envs  # noqa: F401  (registers the envs)

    agent = KerasSAC(
        env_id, seed=0, encoder="small", net_arch=(32, 32), batch_size=16, buffer_size=500, learning_starts=40
    )
    agent.learn(60)
    check_formats(agent, tmp_path)


def test_batch_renorm_actor_exports_its_inference_form(tmp_path):
    agent = KerasSAC(
        make_match_env(),
        seed=0,
        actor_batch_renorm=True,
        critic_batch_renorm=True,
        target_update="none",
        compile_mode="graph",  # the export is the subject; auto would spend ~20 s compiling the update with XLA
        **SMALL,
    )
    agent.learn(150)
    check_formats(agent, tmp_path)


def test_unconvertible_op_is_named():
    fn = tf.function(lambda x: {"action": tf.math.digamma(x)}, input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    with pytest.raises(ExportError, match="TFLite conversion failed: op.s. Digamma have no builtin equivalent"):
        to_tflite(fn)


def test_bad_export_arguments(tmp_path):
    agent = KerasSAC(make_match_env(), seed=0, **SMALL)
    with pytest.raises(ValueError, match="format must be one of savedmodel, tflite, onnx"):
        agent.export(tmp_path / "p", format="tfjs")
    with pytest.raises(ExportError, match="is a folder; a tflite policy is one file"):
        agent.export(tmp_path, format="tflite")


def test_runtime_errors(tmp_path):
    from keras_sac.io.runtime import load_policy

    agent = KerasSAC(make_match_env(), seed=0, **SMALL)
    path = agent.export(tmp_path / "p.onnx", format="onnx")
    policy = load_policy(path)
    with pytest.raises(
        ValueError, match=r"has shape \(3,\); the policy expects \(2,\) for one observation or \(batch, 2\)"
    ):
        policy(np.zeros(3, np.float32))
    Path(f"{path}.json").unlink()
    with pytest.raises(ValueError, match="p.onnx.json' is missing"):
        load_policy(path)
    with pytest.raises(ValueError, match="neither .tflite nor .onnx"):
        load_policy(tmp_path / "p.pb")


def test_a_failed_export_does_not_cost_the_run(tmp_path, monkeypatch):
    from keras_sac.config.sources import resolve_config
    from keras_sac.experiments.training import train
    from keras_sac.io import export_formats
    from keras_sac.io.run_files import write_run_start

    def fail(fn):
        raise ExportError("TFLite conversion failed: op(s) Digamma have no builtin equivalent")

    monkeypatch.setattr(export_formats, "to_tflite", fail)
    settings = {"learning_starts": 50, "net_arch": [16, 16], "eval_freq": 100, "n_eval_episodes": 1, "log_interval": 50}
    config = resolve_config("Pendulum-v1", ROOT / "configs", None, settings, {}, total_timesteps=150, seed=0)
    write_run_start(tmp_path, config)
    with pytest.raises(ExportError, match="Digamma have no builtin equivalent; the run is complete"):
        train(config, tmp_path, progress_bar=False, say=lambda line: None, export_formats=("tflite", "onnx"))
    for done in ("summary.json", "policy/saved_model.pb", "policy.onnx", "learning_curve.png", "checkpoints"):
        assert (tmp_path / done).exists(), done
    assert not (tmp_path / "policy.tflite").exists()
