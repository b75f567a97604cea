"""keras_sac: Soft Actor-Critic for continuous control in TensorFlow 2 / Keras 3."""

__version__ = "0.1.0"

from keras_sac.agent import CheckpointError, KerasSAC  # noqa: E402
from keras_sac.config import ConfigError, RunConfig, SACConfig  # noqa: E402
from keras_sac.envs import EnvError  # noqa: E402

__all__ = ["KerasSAC", "SACConfig", "RunConfig", "ConfigError", "EnvError", "CheckpointError", "__version__"]
