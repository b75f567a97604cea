"""Train SAC on a Gymnasium env and leave a run folder: `python train.py --env InvertedPendulum-v5`.

The same command as `keras-sac-train` (pip install); see keras_sac/cli/train.py and `--help`.
"""

import sys

from keras_sac.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
