"""An exported policy folder as files: where it is, and its metadata, read without TensorFlow.

`export.py` writes the folder (SavedModel + `assets.extra/keras_sac.json`) and loads it into TensorFlow;
this module lets evaluate.py refuse a wrong path or env in a fraction of a second, before TF starts.
"""

from __future__ import annotations

import json
from pathlib import Path

from keras_sac.core.spaces import EnvSpec
from keras_sac.io.files import old_path, recover_dir

METADATA_FILE = Path("assets.extra") / "keras_sac.json"
POLICY_SUBDIR = "policy"  # where train.py puts the policy inside a run folder


class PolicyError(ValueError):
    """An exported policy is missing or unreadable; the message names the path."""


def find_policy(path: str | Path) -> Path:
    """The SavedModel folder meant by `path`: itself, or the `policy/` folder of a run folder."""
    path = Path(path)
    if not path.exists() and not old_path(path).exists():
        raise PolicyError(f"'{path}' does not exist: pass a SavedModel policy folder or a run folder")
    for candidate in (path / POLICY_SUBDIR, path):
        candidate = recover_dir(candidate)  # an export killed between its two renames (no atomic swap)
        if (candidate / "saved_model.pb").is_file():
            return candidate
    raise PolicyError(
        f"no SavedModel policy at '{path}' (saved_model.pb is missing): pass the folder written "
        f"by KerasSAC.export or a run folder"
    )


def read_metadata(path: Path) -> dict:
    """The policy's metadata (env id, spaces, signatures) from its assets.extra file."""
    try:
        return json.loads((path / METADATA_FILE).read_text())
    except (OSError, ValueError):
        raise PolicyError(f"'{path}' is not a keras_sac policy ({METADATA_FILE} is missing or unreadable)") from None


def spec_from_metadata(metadata: dict) -> EnvSpec:
    """The env description an exported policy was trained on (its metadata holds `EnvSpec.to_dict()`)."""
    return EnvSpec.from_dict(metadata)
