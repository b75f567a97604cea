"""TensorFlow's two thread pools, sized for the update the agent compiles (SACConfig.threads).

TensorFlow's default gives both pools every core. For a graph-mode update on a few cores that is the slow
layout: the update is a chain of small matmuls (256 x 256 at batch 256) with the critics as independent
branches, and splitting each matmul across cores costs more in hand-offs than it gains, while the executor
already runs the two critics' ops side by side on the inter-op pool. `auto` therefore gives a graph-mode
update one thread per op and the executor every core (`intra = max(1, cores // 2)` beyond two cores, so an op
still gets its share on a big machine); an XLA-compiled update runs its ops one after another, so its
matmuls need the intra-op pool and keep TensorFlow's default. Measured in docs/benchmarks.md (#29).

The pools belong to the process and are fixed once TensorFlow has run its first op: the first agent of a
process sets them; later agents, and processes where TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS are set
(sweep trials, benchmarks), keep what they find.
"""

from __future__ import annotations

import os
import warnings

import tensorflow as tf

ENV_VARS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def cores() -> int:
    """CPUs this process may run on (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def thread_layout(setting, use_xla: bool, n_cores: int) -> tuple[int, int] | None:
    """(intra, inter) for a `threads` setting, or None for TensorFlow's own default."""
    if setting == "tensorflow" or (setting == "auto" and use_xla):
        return None
    if setting == "auto":
        return max(1, n_cores // 2), max(2, n_cores)
    intra, inter = (int(n) for n in str(setting).split(","))
    return intra, inter


def configure_threads(setting, use_xla: bool) -> tuple[int, int] | None:
    """Apply `thread_layout` if this process's TensorFlow has not started and no env var chose for it.
    Returns the layout applied (None when it left TensorFlow's pools alone)."""
    layout = thread_layout(setting, use_xla, cores())
    if layout is None or any(os.environ.get(name) for name in ENV_VARS):
        return None
    try:
        tf.config.threading.set_intra_op_parallelism_threads(layout[0])
        tf.config.threading.set_inter_op_parallelism_threads(layout[1])
    except RuntimeError:  # TensorFlow has already started: its pools are fixed for this process
        current = (
            tf.config.threading.get_intra_op_parallelism_threads(),
            tf.config.threading.get_inter_op_parallelism_threads(),
        )
        if setting != "auto" and current != layout:  # asked for by name: say it did not happen
            warnings.warn(
                f"threads={setting!r} not applied: TensorFlow already runs in this process with its pools "
                f"sized {current[0]},{current[1]} (0: its default); give threads to the process's first agent, "
                f"or set TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS before Python starts",
                stacklevel=3,
            )
        return None
    return layout
