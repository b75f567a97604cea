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
    with _parked():
        yield


class _Parked:
    def __init__(self, saved: int, file):
        self.saved: int | None = saved
        self.file = file

    def replay(self) -> None:
        """Put stderr back now and write what was parked to it."""
        if self.saved is not None:
            _restore(self.saved)
            self.saved = None
        self.file.seek(0)
        sys.stderr.write(self.file.read().decode(errors="replace"))


@contextlib.contextmanager
def _parked():
    sys.stderr.flush()
    with tempfile.TemporaryFile() as file:
        parked = _Parked(os.dup(2), file)
        os.dup2(file.fileno(), 2)
        try:
            yield parked
        finally:
            if parked.saved is not None:
                _restore(parked.saved)


@contextlib.contextmanager
def quiet_tensorflow_startup(first_op: bool = True):
    """Inside the block, stderr (the file descriptor, so C++ writes too) goes to a temporary file, replayed
    only if the block (or TensorFlow's first op) fails.

    first_op=False leaves TensorFlow unstarted (its thread pools can still be sized: core/threads.py); whoever
    starts it then calls `quiet_first_op` (KerasSAC does, after sizing them)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _parked() as parked:
        try:
            yield
            if first_op:
                _first_op()
        except BaseException:
            parked.replay()
            raise


def quiet_first_op() -> None:
    """TensorFlow's first op with stderr parked (a no-op op, and silent, once TensorFlow has started)."""
    with quiet_tensorflow_startup():
        pass


def _first_op() -> None:
    import tensorflow as tf

    tf.constant(0.0) + 1.0  # the first op triggers the last batch of start-up lines


@contextlib.contextmanager
def quiet_tensorflow_logs():
    """Inside the block, TensorFlow's Python INFO lines (`INFO:tensorflow:Assets written to: ...`, which
    tf.saved_model.save prints for every save) are not shown; warnings and errors still are."""
    import logging

    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def _restore(saved: int) -> None:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
