import dataclasses

import pytest

from keras_sac.config.settings import ConfigError, RunConfig, SACConfig
from keras_sac.config.sources import parse_overrides, resolve_config


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("ent_coef", "auto_0.1", r"unknown config key 'ent_coef': SB3's ent_coef is split in two here: .*init_alpha"),
        (
            "policy_kwargs",
            {"net_arch": [64, 64]},
            r"unknown config key 'policy_kwargs': set the networks with net_arch",
        ),
        (
            "learning_rate",
            lambda progress: 3e-4 * progress,
            r"learning_rate must be a number, got a callable: keras_sac's "
            r"schedules are mappings",
        ),
        ("batch_sise", 64, r"unknown config key 'batch_sise': did you mean 'batch_size'\?"),
    ],
)
def test_sb3_names_and_forms_get_a_pointer_to_their_equivalent(key, value, message):
    from keras_sac.config.settings import make_sac_config

    with pytest.raises(ConfigError, match=message):
        make_sac_config(**{key: value})


def test_defaults_are_sb3s():
    c = SACConfig()
    assert (c.learning_rate, c.buffer_size, c.learning_starts, c.batch_size) == (3e-4, 1_000_000, 100, 256)
    assert (c.tau, c.gamma, c.train_freq, c.gradient_steps, c.net_arch, c.n_critics) == (
        0.005,
        0.99,
        1,
        1,
        (256, 256),
        2,
    )


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("gamma", 0.0, r"gamma = 0.0 is out of range: expected a number in \(0, 1\]"),
        ("tau", 1.01, "tau = 1.01 is out of range"),
        ("batch_size", 25.5, "batch_size must be an integer, got 25.5"),
        ("learn_alpha", "maybe", "learn_alpha must be true or false"),
        ("net_arch", "64", "net_arch must be a list"),
        ("net_arch", [64, 0], "net_arch = .* is out of range"),
        ("log_std_bounds", [2, -5], "log_std_bounds = .* is out of range"),
        ("learning_rate", "nan", "learning_rate must be a finite number"),
        ("precision", "float16", r"precision = 'float16' is out of range: expected 'float32' or 'mixed_bfloat16'"),
        ("precision", 16, "precision must be a string, got 16"),
        ("optimize_memory_usage", "sometimes", "optimize_memory_usage must be true or false"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(key, value, message):  # more in test_bad_input.py
    with pytest.raises(ConfigError, match=message):
        SACConfig(**{key: value})


def test_strings_from_the_command_line_are_coerced_to_the_declared_types():
    c = SACConfig(
        **parse_overrides(
            [
                "buffer_size=1e6",
                "learning_rate=1e-3",
                "net_arch=[64, 64]",
                "learn_alpha=false",
                "target_entropy=-2",
                "seed=none",
                "batch_size=1_024",
                "precision=mixed_bfloat16",
                "optimize_memory_usage=true",
            ]
        )
    )
    assert c.buffer_size == 1_000_000 and isinstance(c.buffer_size, int)
    assert c.learning_rate == 1e-3 and c.net_arch == (64, 64) and c.learn_alpha is False
    assert c.target_entropy == -2.0 and c.seed is None and c.batch_size == 1024
    assert c.precision == "mixed_bfloat16" and c.optimize_memory_usage is True


def test_override_without_equals_is_refused():
    with pytest.raises(ConfigError, match="--set expects key=value, got 'gamma'"):
        parse_overrides(["gamma"])


def test_run_config_is_validated():
    with pytest.raises(ConfigError, match="eval_freq must be an integer"):
        RunConfig(eval_freq="often")
    with pytest.raises(ConfigError, match="total_timesteps = 0 is out of range"):
        RunConfig(total_timesteps=0)


def toy_configs(tmp_path, env_file: str, user_file: str):
    """A configs folder holding Toy-v0.yaml (`env_file`) and a --config file (`user_file`): (folder, file)."""
    configs, user = tmp_path / "configs", tmp_path / "user.yaml"
    configs.mkdir()
    (configs / "Toy-v0.yaml").write_text(env_file)
    user.write_text(user_file)
    return configs, user


def test_resolve_config_precedence(tmp_path):
    configs, user = toy_configs(
        tmp_path, "gamma: 0.9\nbatch_size: 64\ntotal_timesteps: 5000\n", "batch_size: 128\ntau: 0.01\n"
    )
    r = resolve_config("Toy-v0", configs, str(user), {"tau": "0.02"}, total_timesteps=3000, seed=7)
    assert r.sac["gamma"] == 0.9  # env file over defaults
    assert r.sac["batch_size"] == 128  # --config over env file
    assert r.sac["tau"] == 0.02  # --set over --config
    assert r.run.total_timesteps == 3000 and r.sac["seed"] == 7  # flags over everything


def test_env_kwargs_come_from_config_files_and_set_merged_key_by_key_under_env_kwargs_flag(tmp_path):
    configs, preset = toy_configs(
        tmp_path, "gamma: 0.9\nenv_kwargs: {a: 1, b: 1, c: 1}\n", "env_kwargs:\n  b: 2\n  c: 2\n"
    )
    r = resolve_config("Toy-v0", configs, str(preset), {"env_kwargs": "{c: 3}"}, {"d": 4})
    assert r.env_kwargs == {"a": 1, "b": 2, "c": 3, "d": 4} and r.sac["gamma"] == 0.9
    assert resolve_config("Toy-v0", configs, None, None, {"a": 5}).env_kwargs == {"a": 5, "b": 1, "c": 1}
    assert resolve_config("Toy-v0", tmp_path).env_kwargs == {}  # no file names any
    preset.write_text("env_kwargs: [use_contact_forces, false]\n")
    with pytest.raises(ConfigError, match=r"user.yaml'?: env_kwargs must be a mapping of gym.make keywords"):
        resolve_config("Toy-v0", configs, str(preset))
    with pytest.raises(ConfigError, match="--set env_kwargs must be a mapping"):
        resolve_config("Toy-v0", configs, None, {"env_kwargs": "5"})


def test_a_run_folder_records_env_kwargs_in_its_config_file_and_resumes_with_them(tmp_path):
    from keras_sac.io.run_files import read_run_config, write_run_start

    config = resolve_config("Toy-v0", tmp_path, None, {"env_kwargs": "{g: 5.0}"}, total_timesteps=3000, seed=1)
    write_run_start(tmp_path, config, ["train.py"])
    text = (tmp_path / "config.yaml").read_text()
    assert "env_kwargs:\n  g: 5.0\n" in text  # the file alone is the run's whole config (usable as --config)
    again = read_run_config(tmp_path, 6000)
    assert again.env_kwargs == {"g": 5.0} and again.sac == config.sac and again.run.total_timesteps == 6000
    assert resolve_config("Toy-v0", tmp_path, str(tmp_path / "config.yaml")).env_kwargs == {"g": 5.0}


def test_resolve_config_refuses_bad_files_and_a_run_that_never_trains(tmp_path):
    with pytest.raises(ConfigError, match="config file .* does not exist"):
        resolve_config("Toy-v0", tmp_path, str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        resolve_config("Toy-v0", tmp_path, str(bad))
    with pytest.raises(ConfigError, match="unknown config key 'gama': did you mean 'gamma'"):
        resolve_config("Toy-v0", tmp_path, overrides={"gama": "0.9"})
    with pytest.raises(ConfigError, match=r"learning_starts \(500\) >= total_timesteps \(400\)"):
        resolve_config("Toy-v0", tmp_path, overrides={"learning_starts": "500"}, total_timesteps=400)


def test_resolve_config_draws_and_records_a_seed_when_none_is_given(tmp_path):
    first, second = resolve_config("Toy-v0", tmp_path), resolve_config("Toy-v0", tmp_path)
    assert isinstance(first.sac["seed"], int) and first.sac["seed"] != second.sac["seed"]


def test_an_unknown_key_names_the_few_closest_settings_never_all_of_them():
    from keras_sac.config.settings import SACConfig, _unknown_key

    known = [f.name for f in dataclasses.fields(SACConfig)]
    assert str(_unknown_key("bs", known)) == "unknown config key 'bs': did you mean 'batch_size'?"
    assert str(_unknown_key("q_lr", known)) == "unknown config key 'q_lr': did you mean 'critic_learning_rate'?"
    assert str(_unknown_key("quantiles", known)) == "unknown config key 'quantiles': did you mean 'n_quantiles'?"
    nothing = str(_unknown_key("xyzzy", known))
    assert "did you mean" not in nothing and len(nothing) < 150 and "README.md" in nothing


def test_a_schedule_without_steps_runs_over_the_whole_run_in_train_py_and_is_refused_by_the_bare_agent():
    from keras_sac import KerasSAC
    from keras_sac.config.sources import CONFIGS_DIR

    resolved = resolve_config(
        "Pendulum-v1",
        CONFIGS_DIR,
        None,
        {
            "critic_learning_rate": "{schedule: linear, end: 1.0e-5}",
            "policy_delay": "2",
            "gradient_steps": "2",
            "actor_learning_rate": "{schedule: cosine, warmup_steps: 100}",
        },
        total_timesteps=20_000,
    )
    # (20,000 - 100 learning_starts) env steps, 2 critic updates each; the actor steps every 2nd: 19,900 updates,
    # of which its warm-up takes 100
    assert resolved.sac["critic_learning_rate"] == {"schedule": "linear", "end": 1e-5, "steps": 39_800}
    assert resolved.sac["actor_learning_rate"] == {"schedule": "cosine", "warmup_steps": 100, "steps": 19_800}
    with pytest.raises(ConfigError, match="critic_learning_rate: a linear schedule without steps runs over the whole"):
        KerasSAC("Pendulum-v1", critic_learning_rate={"schedule": "linear", "end": 1e-5})
