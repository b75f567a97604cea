"""Run an exported TFLite or ONNX policy with NumPy and its runtime only: no TensorFlow, no keras_sac deps.

    from keras_sac.io.runtime import load_policy
    policy = load_policy("policy.tflite")          # or "policy.onnx"
    action = policy(obs)                           # one observation or a batch; actions in env bounds

Importing this module imports neither TensorFlow nor Gymnasium (tested): it needs `ai-edge-litert` for
TFLite or `onnxruntime` for ONNX, and NumPy. Deployment targets without Python read the same file with
their own runtime: inputs and output are named in `<file>.json` (see export_formats.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from keras_sac.core.spaces import BOX_KEY, EnvSpec, as_batch
from keras_sac.extras import require

__all__ = ["load_policy", "TFLitePolicy", "ONNXPolicy"]


class _FilePolicy:
    _run: Callable[[dict[str, np.ndarray]], np.ndarray]  # each format's interpreter call, set by the subclass

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"no exported policy at '{self.path}': the file does not exist (write one with "
                f"KerasSAC.export(path, format='tflite' or 'onnx'))"
            )
        try:
            self.metadata = json.loads(Path(f"{self.path}.json").read_text())
        except (OSError, ValueError):
            raise ValueError(
                f"'{self.path}.json' is missing or unreadable: export the policy with "
                f"KerasSAC.export(path, format=...), which writes it"
            ) from None
        self.inputs = self.metadata["inputs"]
        self.obs = EnvSpec.from_dict(self.metadata).obs

    def _batch(self, observation) -> tuple[dict[str, np.ndarray], bool]:
        """{input name: batch} and whether one observation (no batch axis) was given; checked as the agent
        and the SavedModel policy check theirs (shape, keys, numbers, NaN/inf)."""
        batch, single = as_batch(self.obs, observation, "the policy")
        return ({BOX_KEY: batch} if self.obs.flat else batch), single

    def __call__(self, observation) -> np.ndarray:
        batch, single = self._batch(observation)
        actions = self._run(batch)
        return actions[0] if single else actions


class TFLitePolicy(_FilePolicy):
    """A `.tflite` policy on the LiteRT interpreter (`ai-edge-litert`)."""

    def __init__(self, path: str | Path, num_threads: int = 1):
        super().__init__(path)
        require("export", "a .tflite policy (LiteRT)", ("ai_edge_litert",))
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        self._runner = self.interpreter.get_signature_runner()
        self._names = self._input_names()

    def _input_names(self) -> dict[str, str]:
        """Our input names -> the signature's (TFLite may suffix or reorder them)."""
        details = self._runner.get_input_details()
        return {name: next((k for k in details if k == name or k.startswith(name)), name) for name in self.inputs}

    def _run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self._runner(**{self._names[k]: v for k, v in batch.items()})["action"]


class ONNXPolicy(_FilePolicy):
    """An `.onnx` policy on onnxruntime's CPU provider."""

    def __init__(self, path: str | Path):
        super().__init__(path)
        require("export", "an .onnx policy (onnxruntime)", ("onnxruntime",))
        import onnxruntime

        self.session = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])

    def _run(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(["action"], batch)[0]


def load_policy(path: str | Path):
    """A TFLitePolicy or ONNXPolicy, by the file's extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".tflite":
        return TFLitePolicy(path)
    if suffix == ".onnx":
        return ONNXPolicy(path)
    raise ValueError(
        f"'{path}' is neither .tflite nor .onnx; a SavedModel loads with keras_sac.LoadedPolicy or tf.saved_model.load"
    )
