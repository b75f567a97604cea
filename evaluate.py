"""Evaluate an exported policy or a run folder: `python evaluate.py runs/<run> [--video DIR]`.

The same command as `keras-sac-evaluate` (pip install); see keras_sac/cli/evaluate.py and `--help`.
"""

import sys

from keras_sac.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
