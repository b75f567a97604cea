"""What leaves or enters the process: atomic files, checkpoints, SavedModel/TFLite/ONNX export and the
TensorFlow-free runtime that loads them, policy files, run folders, metrics logs and TensorFlow's quiet
start-up."""
