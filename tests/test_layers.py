"""The package's layers (pyproject.toml's import-linter contract): an import that points up a layer fails here,
naming the importing module and the line."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_each_layer_imports_only_layers_below_it():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert lint, "lint-imports is missing: pip install -r requirements-test.txt"
    proc = subprocess.run(
        [lint, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def test_the_runtime_and_the_light_modules_load_without_tensorflow():
    # keras_sac.runtime: no TensorFlow, no Gymnasium; the config and the CLIs' modules: no TensorFlow.
    code = (
        "import sys, keras_sac.runtime; assert 'tensorflow' not in sys.modules and 'gymnasium' not in sys.modules;"
        "import keras_sac.config, keras_sac.cli.train, keras_sac.cli.evaluate, keras_sac.cli.sweep, "
        "keras_sac.callbacks, keras_sac.experiments.video, keras_sac.experiments.plot;"
        "assert 'tensorflow' not in sys.modules, 'tensorflow loaded'"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
