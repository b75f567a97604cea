"""The deterministic policy as one file for runtimes without TensorFlow: TFLite (LiteRT) and ONNX.

    agent.export("policy.tflite", format="tflite")    # runs with `ai-edge-litert` + NumPy
    agent.export("policy.onnx", format="onnx")        # runs with `onnxruntime` + NumPy

Both hold one function, observation(s) -> action in env bounds (tanh of the Gaussian's mean, the bounds
and any observation normalisation baked in), named inputs as in the SavedModel (`observation`, or one per
Dict key) and output `action`, with a free batch dimension. The metadata the SavedModel carries is written
beside the file as `<file>.json`; `keras_sac.io.runtime` loads either format from it without TensorFlow.

The TFLite graph is made from the actor with its weights frozen into constants first: converting the
Keras 3 layers with their variables gave wrong actions here (saturated at the bounds, see
tests/test_export_formats.py), while the frozen graph converts exactly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from keras_sac.core.distributions import policy_action
from keras_sac.core.signatures import obs_signature
from keras_sac.core.spaces import action_affine
from keras_sac.extras import require
from keras_sac.io.export import export_policy, policy_metadata
from keras_sac.io.files import write_atomic
from keras_sac.io.startup import parked_stderr, quiet_tensorflow_logs

FORMATS = ("savedmodel", "tflite", "onnx")
ONNX_OPSET = 17


class ExportError(RuntimeError):
    """A policy could not be converted to the asked format; the message names the op or the cause."""


def deterministic_function(agent) -> tf.types.experimental.GenericFunction:
    """obs -> {"action": tanh(mean) in env bounds}, as a tf.function with its input signature."""
    # NumPy arrays become constants inside the graph (captured tensors would become extra ONNX inputs)
    center, half_range = action_affine(agent.spec.action_low, agent.spec.action_high)
    spec = obs_signature(agent.spec.obs, [None], name="observation")
    actor = agent.actor

    if agent.spec.obs.flat:

        def act(observation):
            return {"action": policy_action(actor, observation, center, half_range)}

        return tf.function(act, input_signature=[spec])
    keys = list(spec)  # one keyword input per key, as the SavedModel's signature

    def act_on_keys(*tensors):
        return {"action": policy_action(actor, dict(zip(keys, tensors)), center, half_range)}

    return tf.function(act_on_keys, input_signature=list(spec.values()))


def to_tflite(fn) -> bytes:
    """A TFLite flatbuffer of the tf.function `fn` with builtin ops only (no Flex delegate needed)."""
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function())  # returns a flat list: name it again
    named = tf.function(lambda *x: {"action": frozen(*x)[0]}, input_signature=fn.input_signature)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([named.get_concrete_function()], tf.Module())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        with parked_stderr(), quiet_tensorflow_logs():  # MLIR's diagnostics: the exception carries them
            return converter.convert()
    except Exception as exc:  # the converter raises ConverterError (or others) with MLIR's diagnostics
        raise ExportError(f"TFLite conversion failed: {_converter_cause(str(exc))}") from None


def to_onnx(fn) -> bytes:
    """An ONNX model (opset ONNX_OPSET) of the tf.function `fn`, by tf2onnx."""
    import tf2onnx

    try:
        with parked_stderr(), quiet_tensorflow_logs():
            model, _ = tf2onnx.convert.from_function(fn, input_signature=fn.input_signature, opset=ONNX_OPSET)
    except Exception as exc:
        raise ExportError(f"ONNX conversion failed: {_converter_cause(str(exc))}") from None
    return model.SerializeToString()


def _converter_cause(message: str) -> str:
    """The op(s) a converter could not handle, or its first meaningful line."""
    ops = sorted(
        set(re.findall(r"'tf\.(\w+)'", message))
        | set(re.findall(r"\btf\.(\w+)\(", message))
        | set(re.findall(r"[Uu]nsupported ops?[^:]*: ([\w, ]+)", message))
    )
    if ops:
        return f"op(s) {', '.join(ops)} have no builtin equivalent"
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return next((line for line in lines if "error" in line.lower()), lines[0] if lines else "unknown error")


def export_file(agent, path: str | Path, fmt: str, metadata: dict) -> Path:
    """Write the TFLite or ONNX policy to `path` and its metadata to `<path>.json`, each atomically."""
    path = Path(path)
    if path.is_dir():
        raise ExportError(f"'{path}' is a folder; a {fmt} policy is one file, e.g. {path / ('policy.' + fmt)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fn = deterministic_function(agent)
    data = to_tflite(fn) if fmt == "tflite" else to_onnx(fn)
    inputs = ["observation"] if agent.spec.obs.flat else [e.key for e in agent.spec.obs.entries]
    metadata = {
        **metadata,
        "file_format": fmt,
        "inputs": inputs,
        "output": "action",
        "signatures": {"action": "deterministic action tanh(mean), in env bounds"},
    }
    write_atomic(path, data)
    write_atomic(metadata_path(path), json.dumps(metadata, indent=2))
    return path


def metadata_path(path: Path) -> Path:
    return Path(f"{path}.json")


def export_agent(agent, path: str | Path, format: str = "savedmodel") -> Path:
    """`KerasSAC.export`: a SavedModel folder (`export.py`), or one TFLite or ONNX file with its metadata."""
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if format == "savedmodel":
        return export_policy(agent, path)
    if format == "onnx":  # (TFLite's converter is TensorFlow's own)
        require("export", "export(format='onnx')", ("tf2onnx", "onnx"))
    return export_file(agent, path, format, policy_metadata(agent))
