"""Env steps/s of one agent setting on one CPU core: what a preset candidate costs before a long run.

    python benchmarks/setting_cost.py Hopper-v5 '{}'
    python benchmarks/setting_cost.py Hopper-v5 '{"critic_type": "quantile"}'
    python benchmarks/setting_cost.py Hopper-v5 '{"architecture": "simba", "normalize_observations": true,
        "actor_arch": [128], "critic_arch": [128, 128], "weight_decay": 0.01}'

One TensorFlow thread; 700 steps of warm-up (500 random, then training and tracing), then 500 timed steps.
Prints one JSON line: the settings, env steps/s and the hours 100k steps would take at that speed.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(env_id: str, settings: dict) -> dict:
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    from keras_sac.io.startup import quiet_tensorflow_startup

    with quiet_tensorflow_startup():
        from keras_sac import KerasSAC

    agent = KerasSAC(env_id, seed=0, learning_starts=500, **settings)
    agent.learn(700)
    start = time.perf_counter()
    agent.learn(500, reset_num_timesteps=False)
    speed = 500 / (time.perf_counter() - start)
    return {
        "env": env_id,
        "settings": settings,
        "steps_per_s": round(speed, 1),
        "hours_per_100k": round(100_000 / speed / 3600, 2),
    }


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(json.dumps(main(sys.argv[1], json.loads(sys.argv[2]))))
