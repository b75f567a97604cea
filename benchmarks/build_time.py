"""Seconds to construct an agent (`KerasSAC("Pendulum-v1")`: env, networks, optimizers; nothing traced) and to reset
its networks (`reset_interval`'s re-initialisation), for the default MLP and SimBa, in one fresh process.

    python benchmarks/build_time.py                      # this checkout
    python benchmarks/build_time.py ../before            # another checkout's keras_sac, to alternate with this one

Prints one JSON line: the first construction (Python and TensorFlow warming up), the median of five more, and the
median of three resets. Compare checkouts by alternating fresh processes (docs/benchmarks.md).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

SETTINGS = {"mlp": {}, "simba": {"architecture": "simba", "normalize_observations": True}}


def main() -> None:
    tree = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]).resolve()
    sys.path.insert(0, str(tree))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras_sac
    from keras_sac import KerasSAC

    result: dict = {"tree": str(Path(keras_sac.__file__).parents[1])}
    for name, settings in SETTINGS.items():
        builds, resets = [], []
        for _ in range(6):
            start = time.perf_counter()
            agent = KerasSAC("Pendulum-v1", seed=0, **settings)
            builds.append(time.perf_counter() - start)
        for count in range(1, 4):
            start = time.perf_counter()
            agent._reset_networks(count)
            resets.append(time.perf_counter() - start)
        result[name] = {
            "first_s": round(builds[0], 3),
            "construct_s": round(statistics.median(builds[1:]), 3),
            "reset_s": round(statistics.median(resets), 3),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
