"""The command-line tools: train.py / keras-sac-train, evaluate.py / keras-sac-evaluate, keras-sac-plot,
keras-sac-sweep and keras-sac-report. Each parses its arguments and checks them before TensorFlow starts."""
