"""`python -m keras_sac.report`: the same command as `keras-sac-report` (keras_sac/experiments/report.py)."""

import sys

from keras_sac.experiments.report import main

if __name__ == "__main__":
    sys.exit(main())
