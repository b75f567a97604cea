"""Run keras_sac over envs x seeds x settings on Ray: `python sweep.py --env InvertedPendulum-v5 --seeds 0-2
--grid learning_rate=3e-4,1e-3`.

The same command as `keras-sac-sweep` (pip install); see keras_sac/cli/sweep.py and `--help`.
"""

import sys

from keras_sac.cli.sweep import main

if __name__ == "__main__":
    sys.exit(main())
