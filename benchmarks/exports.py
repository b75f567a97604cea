"""Single-observation latency of every deployment form of the default HalfCheetah-v5 policy (256x256 actor).

    python benchmarks/exports.py --repeats 3 --peers /path/to/peer-venv/bin/python

In fresh processes per repeat: `predict` (NumPy copy of the actor) and the SavedModel signature in a
process with TensorFlow; the TFLite file on LiteRT and the ONNX file on onnxruntime in a process where
TensorFlow cannot be imported — through keras_sac.io.runtime's wrapper and through each runtime's own
lowest-overhead call (a pre-allocated interpreter's set_tensor/invoke/get_tensor; session.run). With
--peers: SB3's and SBX's `predict(obs, deterministic=True)` for the same architecture, in the same run.
Medians of `--repeats` processes, each the median of 2,000 calls after 50 warm-up calls.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import _quiet_tf, machine_line, median_us, run_child, serve_child  # noqa: E402

N = 2000

PEER_LATENCY = """
import json, statistics, sys, time
import gymnasium as gym, numpy as np
lib = sys.argv[1]
module = __import__("stable_baselines3" if lib == "sb3" else "sbx")
env = gym.make("HalfCheetah-v5")
model = module.SAC("MlpPolicy", env, policy_kwargs={"net_arch": [256, 256]}, seed=0, buffer_size=1000)
obs = env.reset(seed=0)[0]
for _ in range(50):
    model.predict(obs, deterministic=True)
samples = []
for _ in range(2000):
    start = time.perf_counter()
    model.predict(obs, deterministic=True)
    samples.append(time.perf_counter() - start)
print(json.dumps({"predict_us": statistics.median(samples) * 1e6}))
"""


def measure_tf(folder: str) -> dict:
    """In a TensorFlow process: export the three files into `folder`; predict and SavedModel latency."""
    _quiet_tf()
    import numpy as np
    import tensorflow as tf

    from keras_sac import KerasSAC

    agent = KerasSAC("HalfCheetah-v5", seed=0, buffer_size=1000, learning_starts=100)
    agent.learn(300)  # trained (non-initial) weights
    obs = agent.env.reset(seed=0)[0].astype(np.float32)
    folder = Path(folder)
    serve = tf.saved_model.load(str(agent.export(folder / "policy"))).signatures["serving_default"]
    agent.export(folder / "policy.tflite", format="tflite")
    agent.export(folder / "policy.onnx", format="onnx")
    np.save(folder / "obs.npy", obs)
    batch = tf.constant(obs[None])
    return {
        "predict_us": median_us(lambda: agent.predict(obs, deterministic=True), N),
        "savedmodel_us": median_us(lambda: serve(observation=batch)["action"].numpy(), N),
        "tflite_bytes": (folder / "policy.tflite").stat().st_size,
        "onnx_bytes": (folder / "policy.onnx").stat().st_size,
    }


def measure_runtimes(folder: str) -> dict:
    """Where TensorFlow cannot be imported: the TFLite and ONNX files through keras_sac.io.runtime and raw."""
    sys.modules["tensorflow"] = None
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import numpy as np
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    from keras_sac.io.runtime import load_policy

    folder = Path(folder)
    obs = np.load(folder / "obs.npy")
    batch = obs[None]
    lite, onnx = load_policy(folder / "policy.tflite"), load_policy(folder / "policy.onnx")
    interpreter = Interpreter(model_path=str(folder / "policy.tflite"), num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def raw_tflite():
        interpreter.set_tensor(inp, batch)
        interpreter.invoke()
        return interpreter.get_tensor(out)

    session = onnxruntime.InferenceSession(str(folder / "policy.onnx"), providers=["CPUExecutionProvider"])
    feed = {"observation": batch}
    return {
        "tflite_wrapper_us": median_us(lambda: lite(obs), N),
        "tflite_raw_us": median_us(raw_tflite, N),
        "onnx_wrapper_us": median_us(lambda: onnx(obs), N),
        "onnx_raw_us": median_us(lambda: session.run(["action"], feed), N),
        "tensorflow_loaded": sys.modules.get("tensorflow") is not None,
    }


CHILDREN = {"tf": measure_tf, "runtimes": measure_runtimes}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--peers", help="python of a virtualenv with stable-baselines3 and sbx-rl")
    args = p.parse_args(argv)
    print(machine_line())
    results: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            for part in (run_child("tf", tmp, script=__file__), run_child("runtimes", tmp, script=__file__)):
                for key, value in part.items():
                    results.setdefault(key, []).append(value)
        if args.peers:
            for lib in ("sb3", "sbx"):
                out = subprocess.run([args.peers, "-c", PEER_LATENCY, lib], capture_output=True, text=True, timeout=600)
                if out.returncode != 0:
                    raise RuntimeError(out.stderr[-2000:])
                results.setdefault(f"{lib}_predict_us", []).append(
                    json.loads(out.stdout.splitlines()[-1])["predict_us"]
                )
    assert not any(results["tensorflow_loaded"]), "TensorFlow was loaded beside the runtimes"
    for key, values in results.items():
        if key != "tensorflow_loaded":
            print(f"{key}: median {statistics.median(values):.1f} (runs: {', '.join(f'{v:.1f}' for v in values)})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(serve_child(CHILDREN, sys.argv[2:]))
    sys.exit(main())
