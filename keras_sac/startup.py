"""Importing TensorFlow for the command-line tools without its C++ start-up lines on the terminal.

TensorFlow 2.21 writes several lines to stderr while it loads and on its first op (oneDNN notes, CUDA
probing on a CPU-only machine) before its logging is initialised, so TF_CPP_MIN_LOG_LEVEL cannot hide
them, and to users they read like errors. The CLIs park file descriptor 2 in a temporary file for that
moment and replay it only if start-up fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def parked_stderr():
    """Inside the block, file descriptor 2 (C++ writes too) goes to a temporary file, dropped afterwards.
    For converters that print their diagnostics there and also raise them (export_formats.py)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as parked:
        os.dup2(parked.fileno(), 2)
        try:
            yield
        finally:
            _restore(saved)


@contextlib.contextmanager
def quiet_tensorflow_startup():
    """Inside the block, stderr (the file descriptor, so C++ writes too) goes to a temporary file."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as parked:
        os.dup2(parked.fileno(), 2)
        try:
            yield
            import tensorflow as tf

            tf.constant(0.0) + 1.0  # the first op triggers the last batch of start-up lines
        except BaseException:
            _restore(saved)
            parked.seek(0)
            sys.stderr.write(parked.read().decode(errors="replace"))
            raise
        _restore(saved)


def _restore(saved: int) -> None:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
