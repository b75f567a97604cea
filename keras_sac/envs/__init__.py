"""Making envs: ids and their checks, pixel wrappers, the TensorFlow-free child process that renders MuJoCo,
mid-episode env state and keras_sac's own goal env. Gymnasium and NumPy only, never TensorFlow: this layer
runs inside the env child processes."""
