"""What train.py and evaluate.py share: one-line warnings and notes, and commands that work as printed.

Imports nothing heavy: the CLIs check their input before TensorFlow starts.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import warnings
from pathlib import Path

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def setup_warnings(prog: str) -> None:
    """Show every warning as one plain line `prog: warning: ...` (no source line, no colour codes:
    Gymnasium colours its warnings, which a log file or CI shows as raw escape sequences)."""

    def one_line(message, *_, **__):
        text = _ANSI.sub("", str(message)).removeprefix("WARN: ")
        return f"{prog}: warning: {' '.join(text.split())}\n"

    warnings.formatwarning = one_line


def note(prog: str, text: str) -> None:
    print(f"{prog}: note: {text}", file=sys.stderr)


CONSOLE_COMMANDS = {"train.py": "keras-sac-train", "evaluate.py": "keras-sac-evaluate"}


def command(script: str) -> str:
    """How to run `script` (a sibling of this repo's train.py) from the current shell, e.g.
    `python evaluate.py` in an activated virtualenv, `.venv/bin/python evaluate.py` otherwise; without the
    repository (a `pip install .`), its console command, e.g. `keras-sac-evaluate`."""
    path = Path(__file__).resolve().parents[2] / script  # keras_sac/cli/common.py -> the repository
    if not path.is_file():
        return CONSOLE_COMMANDS[script]
    python = sys.executable
    on_path = shutil.which("python")
    if on_path and os.path.dirname(os.path.abspath(on_path)) == os.path.dirname(os.path.abspath(python)):
        python = "python"  # the `python` this shell finds is this interpreter (an activated virtualenv)
    else:
        python = _relative(Path(python))
    return f"{python} {_relative(path)}"


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
