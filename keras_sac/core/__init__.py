"""The learning core: what an observation and an action are (spaces, the env spec, the action map), the
tanh-Gaussian, the networks and encoders, observation normalisation, the losses, the update and the
learning-rate schedules. TensorFlow and NumPy only: nothing here makes an env or touches a file.

Import the modules themselves (`from keras_sac.core.losses import critic_loss`); this file imports nothing,
so `keras_sac.core.spaces` stays free of TensorFlow."""
