"""GFLOP/s of a chain of dense layers (x <- relu(x @ w), ten per call) in TensorFlow's graph executor, under
TensorFlow's XLA, and under JAX's XLA: how fast each stack's CPU kernels run the matmuls an update is made of.

    python benchmarks/matmul_rate.py tf 256 256          # in this project's virtualenv: graph and XLA
    python benchmarks/matmul_rate.py jax 256 256         # in the peers' virtualenv (SBX's JAX)

    python benchmarks/matmul_rate.py tf 512 512 tn      # x <- relu(x^T @ w): the weight gradient's layout

Arguments: the stack, the rows (the batch), the width (a square weight) and optionally the layout: nn (default,
a forward pass's x @ w) or tn (x^T @ w, contracting over the rows as a weight gradient x^T @ dy does; rows must
equal width to chain). Each layer waits for the one before,
so a stack can only use both cores inside a matmul. Prints one JSON line per form: median µs per matmul over
7 rounds of 20 calls, and GFLOP/s. Run the two stacks alternately and compare medians (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import statistics
import sys
import time

LAYERS = 10


def rate(call, rows: int, width: int) -> dict:
    call()
    rounds = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(20):
            call()
        rounds.append((time.perf_counter() - start) / 20 / LAYERS)
    seconds = statistics.median(rounds)
    return {"us_per_matmul": round(seconds * 1e6, 1), "gflops": round(2 * rows * width * width / seconds / 1e9, 1)}


def main() -> None:
    stack, rows, width = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    layout = sys.argv[4] if len(sys.argv) > 4 else "nn"
    if layout not in ("nn", "tn") or (layout == "tn" and rows != width):
        raise SystemExit(f"layout {layout!r}: use nn, or tn with rows equal to width")
    import numpy as np

    rng = np.random.default_rng(0)
    x0 = rng.random((rows, width), dtype=np.float32)
    w0 = rng.random((width, width), dtype=np.float32) * 0.01
    if stack == "tf":
        import tensorflow as tf

        x, w = tf.constant(x0), tf.constant(w0)
        for jit in (False, True):

            def chain(x):
                for _ in range(LAYERS):
                    x = tf.nn.relu(tf.linalg.matmul(x, w, transpose_a=layout == "tn"))
                return x

            f = tf.function(chain, jit_compile=jit)
            result = rate(lambda: f(x).numpy(), rows, width)  # noqa: B023 (called before the next loop)
            form = "xla" if jit else "graph"
            print(json.dumps({"stack": f"tensorflow {tf.__version__}", "form": form, "layout": layout, **result}))
    elif stack == "jax":
        import jax

        x, w = jax.numpy.asarray(x0), jax.numpy.asarray(w0)

        @jax.jit
        def chain(x):
            for _ in range(LAYERS):
                x = jax.nn.relu((x.T if layout == "tn" else x) @ w)
            return x

        result = rate(lambda: chain(x).block_until_ready(), rows, width)
        print(json.dumps({"stack": f"jax {jax.__version__}", "form": "xla", "layout": layout, **result}))
    else:
        raise SystemExit(f"unknown stack {stack!r}: use tf or jax")


if __name__ == "__main__":
    main()
