"""`python -m keras_sac.plot`: the same command as `keras-sac-plot` (keras_sac/experiments/plot.py)."""

import sys

from keras_sac.experiments.plot import main

if __name__ == "__main__":
    sys.exit(main())
