"""SACConfig.threads: the layout per setting, its validation, and that the first agent of a fresh process sets
TensorFlow's pools (and leaves them alone when the environment variables chose)."""

import concurrent.futures
import json
import os
import subprocess
import sys

import pytest

from keras_sac.config.settings import ConfigError, SACConfig
from keras_sac.core.threads import thread_layout


@pytest.mark.parametrize(
    "setting, use_xla, cores, layout",
    [
        ("auto", False, 2, (1, 2)),  # one thread per op, the executor on both cores
        ("auto", False, 1, (1, 2)),
        ("auto", False, 8, (4, 8)),
        ("auto", True, 2, None),  # XLA runs its ops one by one: its matmuls need the intra-op pool
        ("tensorflow", False, 2, None),
        ("3,1", True, 2, (3, 1)),
    ],
)
def test_thread_layout(setting, use_xla, cores, layout):
    assert thread_layout(setting, use_xla, cores) == layout


@pytest.mark.parametrize("bad", ["0,2", "2", "1,2,3", "fast", "a,b"])
def test_a_bad_threads_setting_is_refused_in_one_line(bad):
    with pytest.raises(ConfigError, match="threads .*'auto', 'tensorflow' or two positive integers"):
        SACConfig(threads=bad)


PROBE = """
import json, tensorflow as tf
from keras_sac import KerasSAC
KerasSAC("Pendulum-v1", seed=0, **json.loads({settings!r}))
print(json.dumps([tf.config.threading.get_intra_op_parallelism_threads(),
                  tf.config.threading.get_inter_op_parallelism_threads()]))
"""


def pools(settings: dict, env: dict) -> list:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TF_NUM_")}
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(settings=json.dumps(settings))],
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_first_agent_of_a_process_sizes_tensorflows_pools_unless_the_environment_did():
    # the two interpreters side by side, one per core: about half the wall time of one after the other
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        chosen = pool.submit(pools, {"threads": "3,1"}, {})
        by_environment = pool.submit(pools, {"threads": "3,1"}, {"TF_NUM_INTRAOP_THREADS": "2"})
        assert chosen.result() == [3, 1]  # set before TensorFlow's first op, even via `import keras_sac`
        assert by_environment.result() == [0, 0]  # 0: TensorFlow's own choice


def test_a_named_layout_that_can_no_longer_apply_is_reported_not_silently_dropped(monkeypatch):
    import tensorflow as tf

    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        monkeypatch.delenv(name, raising=False)
    from keras_sac.core.threads import configure_threads

    tf.constant(0.0) + 1.0  # TensorFlow has started in this (pytest's) process
    with pytest.warns(UserWarning, match=r"threads='7,5' not applied: TensorFlow already runs in this process"):
        assert configure_threads("7,5", use_xla=False) is None
