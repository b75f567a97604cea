"""keras_sac: Soft Actor-Critic for continuous control in TensorFlow 2 / Keras 3.

    from keras_sac import KerasSAC

The public names load on first use (PEP 562), so importing a light submodule such as
`keras_sac.config` or `keras_sac.runtime` does not start TensorFlow. The first name that needs TensorFlow
starts it quietly: its C++ start-up lines (CUDA probing on a CPU-only machine, oneDNN notes) are shown
only if the import fails (see startup.py).
"""

import importlib
import sys

__version__ = "0.3.0"

_EXPORTS = {
    "KerasSAC": "keras_sac.agent",
    "CheckpointError": "keras_sac.io.checkpoint",
    "TrainingDivergedError": "keras_sac.agent",
    "SACConfig": "keras_sac.config.settings",
    "RunConfig": "keras_sac.config.settings",
    "ConfigError": "keras_sac.config.settings",
    "EnvError": "keras_sac.envs.make",
    "PolicyError": "keras_sac.io.policy_files",
    "LoadedPolicy": "keras_sac.io.export",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        if "tensorflow" not in sys.modules:
            from keras_sac.io.startup import quiet_tensorflow_startup

            # TensorFlow is imported but not started: KerasSAC sizes its thread pools first (core/threads.py)
            with quiet_tensorflow_startup(first_op=False):
                return getattr(importlib.import_module(_EXPORTS[name]), name)
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'keras_sac' has no attribute {name!r}")


def __dir__():
    return __all__
