"""Settings: `SACConfig` (the agent) and `RunConfig` (a train.py run), their validation (`settings`), the
small mapping-valued settings (`values`: schedules, pixels) and where a run's values come from (`sources`:
YAML files, --set, --env-kwargs). The bottom layer: every other part of keras_sac reads these, and they
import nothing of keras_sac's (nor TensorFlow).

    from keras_sac.config import SACConfig, RunConfig, ConfigError
"""

from keras_sac.config.settings import RunConfig, SACConfig, make_sac_config, to_dict
from keras_sac.config.values import ConfigError

__all__ = ["ConfigError", "RunConfig", "SACConfig", "make_sac_config", "to_dict"]
