"""A suite (sweep.py --suite): envs x presets x seeds as a sweep, and its report beside published figures.

The plan, the suite file's checks and the published comparison are tested without Ray; the whole command on
a tiny budget (Ray, four trials, the report, a re-run) is slow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from keras_sac.config.settings import ConfigError
from keras_sac.experiments.published import at_step, beside_published, load_published, published_markdown, task_of
from keras_sac.experiments.sweep_plan import Plan, load_suite, validate

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "keras_sac" / "configs"


def sweep(args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "sweep.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=1200
    )


def test_the_shipped_mujoco_suite_names_five_envs_and_existing_presets():
    path, suite = load_suite("mujoco", CONFIGS)
    assert Path(path).name == "mujoco.yaml"
    assert [env for env, _ in suite] == ["HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5"]
    assert all(presets[0] == "default" for _, presets in suite)
    plan = Plan(tuple(env for env, _ in suite), (0, 1, 2), (), suite=suite, suite_file=path)
    validate(plan, CONFIGS)  # every preset resolves on its env


def test_a_suite_plan_runs_each_env_s_presets_over_the_seeds_and_resolves_the_preset_file(tmp_path):
    suite = (("Hopper-v5", ("default", "HalfCheetah-v5-crossq")),)
    plan = Plan(
        ("Hopper-v5",), (0, 1), (), (("gamma", "0.98"),), suite=suite, suite_file="s.yaml", total_timesteps=20_000
    )
    trials = plan.trials()
    assert [(t.label, t.seed) for t in trials] == [
        ("preset=default", 0),
        ("preset=default", 1),
        ("preset=HalfCheetah-v5-crossq", 0),
        ("preset=HalfCheetah-v5-crossq", 1),
    ]
    assert trials[2].run_dir == "Hopper-v5/preset=HalfCheetah-v5-crossq/seed0"
    crossq = plan.resolve("Hopper-v5", dict(trials[2].values), 0, CONFIGS)
    default = plan.resolve("Hopper-v5", dict(trials[0].values), 0, CONFIGS)
    assert crossq.sac["critic_batch_renorm"] and not default.sac.get("critic_batch_renorm", False)
    assert crossq.sac["gamma"] == default.sac["gamma"] == 0.98 and crossq.run.total_timesteps == 20_000  # --set, total
    assert Plan.from_definition(json.loads(json.dumps(plan.definition()))) == plan  # sweep.json round trip


@pytest.mark.parametrize(
    "text, message",
    [
        ("Hopper-v5: default\n", "must map each env id to a list of presets"),
        (
            "Hopper-v5: [default, Hopper-v5-nosuch]\n",
            "Hopper-v5 names an unknown preset 'Hopper-v5-nosuch' (presets: default, ",  # the shipped ones follow
        ),
        ("Hopper-v5: [default, default]\n", "Hopper-v5 lists a preset twice"),
        ("Hopper-v5: [default\n", "is not valid YAML"),
    ],
)
def test_a_bad_suite_file_is_one_line_naming_the_fix(tmp_path, text, message):
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_suite(str(tmp_path / "s.yaml"), CONFIGS)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--suite", "nosuch"], "--suite nosuch: no suite file"),
        (["--suite", "{tmp}/bad.yaml"], "names an unknown preset 'nosuch'"),
        (["--suite", "{tmp}/badenv.yaml"], "NoSuchEnv"),
        (["--suite", "mujoco", "--env", "Hopper-v5"], "give the envs with --env (and settings with --grid) or a whole"),
        (["--suite", "mujoco", "--grid", "gamma=0.9,0.99"], "--grid does not go with --suite"),
        ([], "name the envs: --env Hopper-v5 ..., or a suite: --suite mujoco"),
    ],
)
def test_bad_suite_input_is_one_line_exit_2_and_starts_nothing(tmp_path, args, message):
    (tmp_path / "bad.yaml").write_text("Hopper-v5: [default, nosuch]\n")
    (tmp_path / "badenv.yaml").write_text("NoSuchEnv-v0: [default]\n")
    done = sweep([a.format(tmp=tmp_path) for a in args] + ["--sweep-dir", "s"], tmp_path)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("sweep.py: error: ") and message in line, line
    assert not (tmp_path / "s").exists()


def test_published_figures_are_a_cited_row_per_method_task_and_step():
    rows = load_published()
    assert {r["task"] for r in rows} == {"HalfCheetah", "Hopper", "Walker2d", "Ant", "Humanoid"}
    assert all(r["source"] and r["seeds"] >= 5 for r in rows)
    crossq = {(r["task"], r["step"]): r["return"] for r in rows if r["method"] == "CrossQ"}
    assert crossq[("Humanoid", 100_000)] == 2603 and crossq[("Walker2d", 300_000)] == 5941  # the table
    assert task_of("Hopper-v5") == "Hopper" and task_of("mymod:Hopper-v5") == "Hopper"


def test_our_figure_at_a_step_is_the_iqm_of_each_seed_s_nearest_evaluation_beside_the_published():
    def run(label, seed, values):
        return {
            "env_id": "Hopper-v5",
            "label": label,
            "seed": seed,
            "evaluations": [(s, v) for s, v in zip((50_000, 98_000, 150_000, 290_000), values)],
        }

    trials = [
        run("preset=a", s, v)
        for s, v in enumerate([(1, 10, 20, 30), (2, 40, 21, 31), (3, 70, 22, 32), (4, 100, 23, 33)])
    ]
    trials.append({"env_id": "Pendulum-v1", "label": "x", "seed": 0, "evaluations": [(100_000, -150.0)]})
    published = [
        {"method": "M", "task": "Hopper", "step": 100_000, "return": 2000.0, "seeds": 10, "source": "a"},
        {"method": "M", "task": "Hopper", "step": 1_000_000, "return": 3000.0, "seeds": 10, "source": "a"},
    ]
    beside = beside_published(trials, published)
    assert list(beside) == ["Hopper-v5"]  # no published rows for Pendulum: no table
    ours = beside["Hopper-v5"]["ours"]["preset=a"]
    assert ours[100_000]["iqm"] == pytest.approx(scipy.stats.trim_mean([10, 40, 70, 100], 0.25))  # 98k within 5%
    assert ours[300_000]["iqm"] == pytest.approx(scipy.stats.trim_mean([30, 31, 32, 33], 0.25))  # 290k within 5%
    assert 1_000_000 not in ours and ours[100_000]["n"] == 4
    assert at_step([(50_000, 1.0)], 100_000) is None
    table = "\n".join(published_markdown(beside, published))
    assert "| ours: `preset=a` | **55** [" in table and "| M | 2,000 | – | 3,000 |" in table


@pytest.mark.slow
def test_the_suite_command_reproduces_its_table_from_scratch_and_resumes(tmp_path):
    (tmp_path / "tiny.yaml").write_text("Hopper-v5: [default, HalfCheetah-v5-crossq]\n")
    args = [
        "--suite",
        str(tmp_path / "tiny.yaml"),
        "--seeds",
        "0-1",
        "--total-timesteps",
        "400",
        "--set",
        "learning_starts=100",
        "--set",
        "eval_freq=200",
        "--set",
        "n_eval_episodes=1",
        "--set",
        "batch_size=32",
        "--set",
        "checkpoint_freq=200",
        "--sweep-dir",
        "s",
    ]
    done = sweep(args, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    root = tmp_path / "s"
    report = json.loads((root / "report.json").read_text())
    hopper = report["beside_published"]["Hopper-v5"]
    assert hopper["steps"] == [400, 100_000, 300_000, 1_000_000]
    for label in ("preset=default", "preset=HalfCheetah-v5-crossq"):
        finals = []
        for seed in (0, 1):  # straight from each run's metrics.csv
            rows = (root / "Hopper-v5" / label / f"seed{seed}" / "metrics.csv").read_text().splitlines()
            column = rows[0].split(",").index("eval/mean_return")
            step_column = rows[0].split(",").index("step")
            finals += [
                float(r.split(",")[column])
                for r in rows[1:]
                if r.split(",")[column] and int(float(r.split(",")[step_column])) == 400
            ]
        assert len(finals) == 2
        assert hopper["ours"][label]["400"]["iqm"] == pytest.approx(np.mean(finals))  # (JSON keys are text)
    md = (root / "report.md").read_text()
    assert "## Beside published figures" in md and "| CrossQ | – | 2,764 | 2,644 | 2,467 |" in md
    assert (root / "published_Hopper.png").stat().st_size > 10_000
    again = sweep(args, tmp_path)  # the same command after the sweep finished: nothing runs again
    assert again.returncode == 0, again.stderr
    assert json.loads((root / "report.json").read_text())["beside_published"] == report["beside_published"]


MACHINE = {"cpu": "test", "cores": 2, "cpu_id": "family 25 model 1", "isa": "AVX2"}


def _fake_run(folder: Path, env_id: str, returns: dict[int, float], env_kwargs: dict | None = None) -> None:
    """A run folder as train.py leaves it, as far as the results need: run.json, config.yaml, metrics.csv."""
    folder.mkdir(parents=True)
    record = {"env_id": env_id, "started": "2026-12-02T00:00:00", "commit": "abc1234", "machine": MACHINE}
    (folder / "run.json").write_text(json.dumps({**record, "env_kwargs": env_kwargs or {}}))
    (folder / "config.yaml").write_text("gamma: 0.99\n")
    rows = ["step,time/elapsed_s,eval/mean_return"] + [f"{s},{s / 100},{v}" for s, v in returns.items()]
    (folder / "metrics.csv").write_text("\n".join(rows) + "\n")


def test_results_are_collected_from_run_folders_and_rebuilt_into_their_block(tmp_path):
    from keras_sac.experiments.results import build, collect, read_data

    runs = tmp_path / "runs"
    for seed, last in enumerate((1000.0, 1200.0, 1400.0)):
        kwargs = {"healthy_reward": 0.5} if seed == 2 else None
        _fake_run(runs / "Hopper-v5" / "tqc" / f"seed{seed}", "Hopper-v5", {50_000: 300.0, 100_000: last}, kwargs)
    data = tmp_path / "data"
    csv_path, json_path = collect(runs, "screen", data)
    assert csv_path.read_text().splitlines()[:2] == ["env,config,seed,step,return", "Hopper-v5,tqc,0,50000,300.00"]
    meta = json.loads(json_path.read_text())
    assert [r["seed"] for r in meta["runs"]] == [0, 1, 2] and meta["runs"][0]["commit"] == "abc1234"
    assert [r.get("env_kwargs") for r in meta["runs"]] == [None, None, {"healthy_reward": 0.5}]  # gym.make's
    assert meta["runs"][0]["wall_seconds"] == 1000.0
    assert len(read_data("screen", data)) == 3
    results = tmp_path / "results.md"
    results.write_text(
        "# Results\n\nHand-written text.\n\n<!-- results: screen -->\nold table\n<!-- end results -->\n\nMore text.\n"
    )
    assert build(results, data, tmp_path / "img") == ["screen"]
    text = results.read_text()
    assert "old table" not in text and "Hand-written text." in text and "More text." in text
    # three seeds' 100k returns 1000, 1200, 1400: IQM 1200; the runs went to 100k, so that is the one column
    assert "| | 100k |\n" in text and "| ours: `tqc` | **1,200** [1,000, 1,400] (3) |" in text
    assert "| CrossQ | 2,764 |\n" in text and "![published_Hopper](img/screen/published_Hopper.png)" in text
    assert (tmp_path / "img" / "screen" / "published_Hopper.png").stat().st_size > 10_000
    # the runs behind it, folded: steps, wall-clock (1,000 s), commit, start date, machine
    assert "<details><summary>The 3 runs behind this table (docs/data/screen.json)</summary>" in text
    assert (
        "| Hopper-v5 | `tqc` | 2 | 100,000 | 17 min | `abc1234` | 2026-12-02 | test (family 25 model 1, AVX2), 2 |"
        in text
    )
    assert build(results, data, tmp_path / "img") == ["screen"] and results.read_text() == text  # idempotent
    results.write_text("<!-- results: screen steps=50000,100000 -->\n<!-- end results -->\n")
    build(results, data, tmp_path / "img")
    assert (
        "| | 50k | 100k |" in results.read_text() and "| ours: `tqc` | **300** [300, 300] (3) |" in results.read_text()
    )


def test_collect_merge_keeps_earlier_runs_and_replaces_only_the_runs_found_again(tmp_path):
    from keras_sac.experiments.results import collect, main

    first, second, data = tmp_path / "first", tmp_path / "second", tmp_path / "data"
    _fake_run(first / "Hopper-v5" / "tqc" / "seed0", "Hopper-v5", {50_000: 300.0, 100_000: 1000.0})
    _fake_run(first / "Hopper-v5" / "tqc" / "seed1", "Hopper-v5", {50_000: 310.0})  # stopped at 50k then
    collect(first, "screen", data)
    # a later session: seed 1 resumed to 100k elsewhere, seed 10 new; seed 0's folder is gone
    _fake_run(second / "Hopper-v5" / "tqc" / "seed1", "Hopper-v5", {50_000: 310.0, 100_000: 1200.0})
    _fake_run(second / "Hopper-v5" / "tqc" / "seed10", "Hopper-v5", {100_000: 900.0})
    assert main(["collect", str(second), "--name", "screen", "--data-dir", str(data), "--merge"]) == 0
    assert (data / "screen.csv").read_text().splitlines() == [
        "env,config,seed,step,return",
        "Hopper-v5,tqc,0,50000,300.00",
        "Hopper-v5,tqc,0,100000,1000.00",
        "Hopper-v5,tqc,1,50000,310.00",
        "Hopper-v5,tqc,1,100000,1200.00",
        "Hopper-v5,tqc,10,100000,900.00",
    ]
    meta = json.loads((data / "screen.json").read_text())
    assert [r["seed"] for r in meta["runs"]] == [0, 1, 10] and meta["source"] == f"{first}; {second}"
    collect(second, "screen", data)  # without --merge the data set is what the folder holds, as before
    assert [r["seed"] for r in json.loads((data / "screen.json").read_text())["runs"]] == [1, 10]


def test_take_gathers_one_config_s_runs_from_another_data_set_relabelled(tmp_path, capsys):
    from keras_sac.experiments.results import collect, main, read_data

    runs, data = tmp_path / "runs", tmp_path / "data"
    for seed, last in enumerate((1000.0, 1200.0)):
        _fake_run(runs / "Walker2d-v5" / "crossq" / f"seed{seed}", "Walker2d-v5", {100_000: last})
    _fake_run(runs / "Walker2d-v5" / "tqc" / "seed0", "Walker2d-v5", {100_000: 50.0})
    _fake_run(runs / "Hopper-v5" / "crossq" / "seed0", "Hopper-v5", {100_000: 70.0})
    collect(runs, "screen", data)
    suite_runs = tmp_path / "suite"
    _fake_run(suite_runs / "Walker2d-v5" / "default" / "seed0", "Walker2d-v5", {100_000: 600.0})
    _fake_run(suite_runs / "Walker2d-v5" / "Walker2d-v5-crossq" / "seed1", "Walker2d-v5", {100_000: 5.0})
    collect(suite_runs, "suite", data)
    args = ["take", "screen", "--env", "Walker2d-v5", "--config", "crossq", "--as", "Walker2d-v5-crossq"]
    assert main([*args, "--name", "suite", "--data-dir", str(data)]) == 0
    # the two crossq runs on Walker2d only, relabelled; the suite's own seed-1 run of that label is replaced
    assert (data / "suite.csv").read_text().splitlines() == [
        "env,config,seed,step,return",
        "Walker2d-v5,Walker2d-v5-crossq,0,100000,1000.00",
        "Walker2d-v5,Walker2d-v5-crossq,1,100000,1200.00",
        "Walker2d-v5,default,0,100000,600.00",
    ]
    meta = json.loads((data / "suite.json").read_text())["runs"]
    assert [(r["label"], r["seed"], r.get("taken_from")) for r in meta] == [
        ("Walker2d-v5-crossq", 0, "screen:crossq"),
        ("Walker2d-v5-crossq", 1, "screen:crossq"),
        ("default", 0, None),
    ]
    assert meta[0]["commit"] == "abc1234" and meta[0]["folder"] == "Walker2d-v5/crossq/seed0"  # the record kept
    assert {(t["label"], t["seed"]) for t in read_data("screen", data)} >= {("crossq", 0), ("tqc", 0)}  # untouched
    # a label the source does not have: one line naming what it has, exit 2, nothing written
    before = (data / "suite.csv").read_text()
    bad = ["take", "screen", "--env", "Walker2d-v5", "--config", "droq", "--name", "suite", "--data-dir", str(data)]
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no runs of Walker2d-v5:droq" in err and "Walker2d-v5:tqc" in err
    assert (data / "suite.csv").read_text() == before
