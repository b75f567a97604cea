"""`from keras_sac.runtime import load_policy`: TFLite and ONNX policies without TensorFlow or Gymnasium
(the code is keras_sac/io/runtime.py; this name is the public one)."""

from keras_sac.io.runtime import ONNXPolicy, TFLitePolicy, load_policy

__all__ = ["load_policy", "TFLitePolicy", "ONNXPolicy"]
