"""Would one batched critic ensemble beat separate critics under XLA? (issue #29: CrossQ's gap to SBX)

A CrossQ-shaped critic update, written twice in plain TensorFlow and compiled with XLA: `n` critics of two hidden
layers (`width`), each layer batch-normalised over the joint (s, a) + (s', a') batch of `rows` rows, ReLU, a
squared error, Adam. "separate": each critic its own variables and ops, as keras_sac's `Critics` holds them
today; "stacked": every layer's weights of all critics on a leading axis, one batched matmul per layer for all of
them, as SBX's vmapped ensemble computes. Both do the same FLOPs. Prints, per layout, the optimised HLO's
top-level instructions and the median ms per update, the layouts alternating in rounds in one process.

    python benchmarks/ensemble_layout.py                  # one TensorFlow thread, 2 critics, 512 wide
    python benchmarks/ensemble_layout.py --threads 2 --critics 10 --width 256
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from xla_census import INSTRUCTION  # noqa: E402  (an HLO instruction's first line: name, opcode)

LAYOUTS = ("separate", "stacked")
BETA1, BETA2, LR, EPS = 0.5, 0.999, 1e-3, 1e-8  # CrossQ's Adam


def build(layout: str, n: int, width: int, in_dim: int, seed: int = 0):
    """(variables, forward(x) -> q (n, rows)) of `n` critics in `layout`, Glorot-uniform kernels, zero biases."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    sizes = [in_dim, width, width, 1]

    def glorot(*shape):
        limit = np.sqrt(6 / (shape[-2] + shape[-1]))
        return tf.Variable(rng.uniform(-limit, limit, shape).astype(np.float32))

    def normalise(h):  # over the rows: the last-but-one axis in both layouts
        mean, var = tf.nn.moments(h, axes=[-2], keepdims=True)
        return (h - mean) * tf.math.rsqrt(var + 1e-3)

    if layout == "separate":
        nets = [[(glorot(a, b), tf.Variable(tf.zeros([b]))) for a, b in zip(sizes, sizes[1:])] for _ in range(n)]

        def forward(x):
            outs = []
            for layers in nets:
                h = x
                for i, (w, b) in enumerate(layers):
                    h = h @ w + b
                    if i < len(layers) - 1:
                        h = tf.nn.relu(normalise(h))
                outs.append(h[:, 0])
            return tf.stack(outs)

        variables = [v for layers in nets for pair in layers for v in pair]
    else:
        layers = [(glorot(n, a, b), tf.Variable(tf.zeros([n, 1, b]))) for a, b in zip(sizes, sizes[1:])]

        def forward(x):
            h = tf.einsum("ri,nio->nro", x, layers[0][0]) + layers[0][1]
            h = tf.nn.relu(normalise(h))
            for i, (w, b) in enumerate(layers[1:], start=1):
                h = h @ w + b  # batched over the critics
                if i < len(layers) - 1:
                    h = tf.nn.relu(normalise(h))
            return h[:, :, 0]

        variables = [v for pair in layers for v in pair]
    return variables, forward


def compiled_update(variables, forward):
    """An XLA-compiled update: squared error of every critic to the target, Adam on every variable."""
    import tensorflow as tf

    moments = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))) for v in variables]
    step = tf.Variable(0.0)

    @tf.function(jit_compile=True)
    def update(x, target):
        with tf.GradientTape() as tape:
            q = forward(x)[:, : target.shape[0]]  # the (s, a) half is regressed, as in CrossQ
            loss = tf.reduce_sum(tf.reduce_mean((q - target) ** 2, axis=-1))
        grads = tape.gradient(loss, variables)
        t = step.assign_add(1.0)
        rate = LR * tf.sqrt(1 - BETA2**t) / (1 - BETA1**t)
        for v, g, (m, s) in zip(variables, grads, moments, strict=True):
            m.assign(BETA1 * m + (1 - BETA1) * g)
            s.assign(BETA2 * s + (1 - BETA2) * g * g)
            v.assign_sub(rate * m / (tf.sqrt(s) + EPS))
        return loss

    return update


def entry_instructions(hlo: str) -> int:
    """Top-level instructions of the ENTRY computation of an HLO module's text, parameters and constants aside."""
    entry = hlo[hlo.index("\nENTRY") :].split("\n}")[0].splitlines()[1:]
    opcodes = [m.group(2) for line in entry if (m := INSTRUCTION.match(line))]
    return sum(1 for op in opcodes if op not in ("parameter", "constant"))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="TensorFlow intra- and inter-op threads")
    p.add_argument("--critics", type=int, default=2)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--rows", type=int, default=512, help="the joint batch: 2 x batch_size")
    p.add_argument("--in-dim", type=int, default=23, help="observation + action width (HalfCheetah: 17 + 6)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--calls", type=int, default=30, help="updates per round")
    args = p.parse_args(argv)
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(args.threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal((args.rows, args.in_dim)).astype(np.float32))
    target = tf.constant(rng.standard_normal(args.rows // 2).astype(np.float32))
    updates, result = {}, {}
    for layout in LAYOUTS:
        update = compiled_update(*build(layout, args.critics, args.width, args.in_dim))
        hlo = update.experimental_get_compiler_ir(x, target)(stage="optimized_hlo")
        update(x, target).numpy()  # compile
        updates[layout] = update
        result[layout] = {"hlo_instructions": entry_instructions(hlo), "rounds_ms": []}
    for _ in range(args.rounds):
        for layout in LAYOUTS:
            start = time.perf_counter()
            for _ in range(args.calls):
                updates[layout](x, target).numpy()
            result[layout]["rounds_ms"].append((time.perf_counter() - start) / args.calls * 1e3)
    settings = {k: getattr(args, k) for k in ("threads", "critics", "width", "rows", "in_dim")}
    for layout in LAYOUTS:
        r = result[layout]
        r["ms_per_update"] = statistics.median(r["rounds_ms"])
        print(json.dumps({"layout": layout, **settings, **r}, default=lambda v: round(v, 3)))
    ratio = result["stacked"]["ms_per_update"] / result["separate"]["ms_per_update"]
    print(f"stacked / separate time: {ratio:.3f}")


if __name__ == "__main__":
    main()
