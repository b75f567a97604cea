"""The optional parts of keras_sac, each installed by a pip extra (pyproject.toml; requirements/<extra>.txt).

The core (`pip install keras_sac`) trains, evaluates, plots, logs and exports SavedModels. A feature that needs
an extra checks for it before it starts anything (`require`), without importing it, and a missing one is one
line naming the pip command. This module imports nothing of keras_sac's: any layer may use it.
"""

from __future__ import annotations

import importlib.util
import sys

EXTRAS = {  # extra: the modules its features import (their distributions are in requirements/<extra>.txt)
    "pixels": ("cv2", "pygame"),
    "video": ("imageio", "imageio_ffmpeg"),
    "export": ("tf2onnx", "onnx", "onnxruntime", "ai_edge_litert"),
    "sweep": ("ray", "optuna", "rliable"),
}


class MissingExtra(ImportError):
    """A feature's optional dependencies are not installed; the message names the pip command."""


def installed(module: str) -> bool:
    """Whether `module` can be imported, found without importing it (`sys.modules[name] = None` blocks one)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(extra: str, feature: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise MissingExtra unless the modules `feature` needs from `extra` (default: all of them) are installed."""
    missing = [m for m in (modules or EXTRAS[extra]) if not installed(m)]
    if missing:
        raise MissingExtra(
            f"{feature} needs keras_sac's optional '{extra}' part ({', '.join(missing)} not installed): "
            f"pip install 'keras_sac[{extra}]'  (in a clone: pip install -e '.[{extra}]')"
        )
