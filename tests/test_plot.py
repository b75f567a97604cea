"""keras_sac.experiments.plot: single-run figures, seeds x variants comparisons, and its errors (no TensorFlow needed)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from keras_sac.experiments.plot import PlotError, Run, moving_average, plot_runs, variant_labels

ROOT = Path(__file__).resolve().parents[1]


def fake_run(
    folder: Path,
    env_id="Pendulum-v1",
    seed=0,
    config=None,
    steps=range(1000, 21000, 1000),
    n_critics=2,
    level=0.0,
    sources="defaults, flags",
):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i, step in enumerate(steps):
        row = {
            "step": step,
            "rollout/episode_return": level + i * 10 + rng.normal(0, 5),
            "train/critic_loss": 1.0 / (i + 1),
            "train/actor_loss": -i,
            "train/alpha": 0.5 ** (i / 5),
            "train/alpha_loss": 0.1,
            "train/entropy": 1.0 - i * 0.1,
            "train/target_entropy": -1.0,
            "train/mean_q": i * 2.0,
            **{f"train/mean_q_{k + 1}": i * 2.0 + k for k in range(n_critics)},
        }
        if step % 5000 == 0:
            row.update({"eval/mean_return": level + i * 12.0, "eval/std_return": 3.0})
        rows.append(row)
    with open(folder / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}, key=lambda k: k != "step"))
        writer.writeheader()
        writer.writerows(rows)
    (folder / "run.json").write_text(json.dumps({"env_id": env_id}))
    (folder / "config.yaml").write_text(
        f"# Resolved config of this run ({env_id}); sources: {sources}\n"
        + yaml.safe_dump({"seed": seed, "n_critics": n_critics, **(config or {})})
    )
    return folder


def test_moving_average_by_hand():
    np.testing.assert_allclose(moving_average(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])
    np.testing.assert_allclose(moving_average(np.array([2.0, 4.0]), 10), [2.0, 3.0])


def test_single_run_draws_curve_and_diagnostics(tmp_path):
    run = fake_run(tmp_path / "run", n_critics=3)
    paths = plot_runs([run])
    assert [p.name for p in paths] == ["learning_curve.png", "diagnostics.png"]
    for p in paths:
        assert p.parent == run and p.stat().st_size > 20_000  # a real figure, not an empty canvas
    critics = [k for k in Run(run).rows[-1] if k.startswith("train/mean_q_")]
    assert len(critics) == 3


def drawn_figures(monkeypatch):
    """The figures plot_runs draws, kept open: {file name: figure}."""
    import keras_sac.experiments.plot as plot

    figures = {}

    def keep(fig, path):
        figures[path.name] = fig
        return path

    monkeypatch.setattr(plot, "_save", keep)
    return figures


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_the_learning_curve_draws_each_training_episode_at_its_end_step_and_their_moving_average(tmp_path, monkeypatch):
    run = fake_run(tmp_path / "run")
    episodes = [(step, float(step) / 10, 20) for step in range(20, 20_001, 20)]  # 1,000 episodes
    with open(run / "episodes.csv", "w", newline="") as f:
        csv.writer(f).writerows([("step", "return", "length"), *episodes])
    figures = drawn_figures(monkeypatch)
    plot_runs([run])
    ax = figures["learning_curve.png"].axes[0]
    points, average = ax.lines[:2]
    np.testing.assert_array_equal(points.get_xdata(), [e[0] for e in episodes])
    np.testing.assert_array_equal(points.get_ydata(), [e[1] for e in episodes])
    # the mean of the episodes that ended in the last 1,000 steps (a twentieth of the run): the last 50 here
    np.testing.assert_allclose(average.get_ydata(), moving_average(np.array([e[1] for e in episodes]), 50))
    assert legend_texts(ax)[:2] == [
        "training episode (at its end step)",
        "training, mean of the episodes that ended in the last 1,000 steps",
    ]


def test_the_window_average_spans_env_steps_not_a_count_of_episodes():
    from keras_sac.experiments.plot import window_average

    steps = np.array([10, 20, 30, 1030, 2030])  # three short episodes, then two 1000-step ones
    returns = np.array([1.0, 2.0, 3.0, 1000.0, 1000.0])
    np.testing.assert_allclose(window_average(steps, returns, 1000), [1.0, 1.5, 2.0, 1000.0, 1000.0])
    np.testing.assert_allclose(window_average(steps, returns, 1015), [1.0, 1.5, 2.0, 335.0, 1000.0])


def test_without_episodes_csv_the_logged_mean_is_one_line_named_for_what_it_is(tmp_path, monkeypatch):
    run = fake_run(tmp_path / "run")  # a run logged before episodes.csv existed
    figures = drawn_figures(monkeypatch)
    plot_runs([run])
    ax = figures["learning_curve.png"].axes[0]
    assert legend_texts(ax)[0] == "training, mean of the last 100 episodes (logged)"
    assert len([line for line in ax.lines if line.get_label().startswith("training")]) == 1


@pytest.mark.parametrize("rows, smoothed", [(20, False), (60, True)])
def test_diagnostics_smooth_only_runs_with_enough_rows_and_say_what_is_drawn(tmp_path, monkeypatch, rows, smoothed):
    run = fake_run(tmp_path / "run", steps=range(1000, 1000 * (rows + 1), 1000), config={"log_interval": 1000})
    figures = drawn_figures(monkeypatch)
    plot_runs([run])
    fig = figures["diagnostics.png"]
    critic_loss = fig.axes[0]
    assert len(critic_loss.lines) == (2 if smoothed else 1)
    title = fig._suptitle.get_text()
    assert "the mean over the updates of each 1000 steps" in title
    assert ("moving average of 3 rows" in title) == smoothed


def test_variants_and_seeds_grouped(tmp_path):
    runs = [fake_run(tmp_path / f"sac-{s}", seed=s) for s in (0, 1, 2)]
    runs += [
        fake_run(tmp_path / f"redq-{s}", seed=s, n_critics=10, config={"target_backup": "redq"}, level=100)
        for s in (0, 1)
    ]
    runs += [fake_run(tmp_path / "hopper", env_id="Hopper-v5")]
    labels = variant_labels([Run(r) for r in runs])
    assert labels[0] == labels[1] == labels[2] != labels[3] == labels[4]
    assert "n_critics=10" in labels[3] and 'target_backup="redq"' in labels[3]
    assert labels[0] == 'n_critics=2, target_backup="min"'  # a key one config lacks counts as its default
    paths = plot_runs(runs, out=tmp_path / "plots")
    assert sorted(p.name for p in paths) == ["compare_Hopper-v5.png", "compare_Pendulum-v1.png"]


def test_presets_name_their_groups(tmp_path):
    env_yaml = "/somewhere/configs/Pendulum-v1.yaml"
    runs = [
        fake_run(tmp_path / "a", sources=f"defaults, {env_yaml}, flags"),
        fake_run(
            tmp_path / "b",
            sources=f"defaults, {env_yaml}, configs/presets/fast.yaml, flags",
            config={"learning_rate": 1e-3, "batch_size": 512, "tau": 0.01, "gamma": 0.98, "n_critics": 3},
        ),
        fake_run(
            tmp_path / "c",
            seed=1,
            sources=f"defaults, {env_yaml}, configs/presets/fast.yaml, --set, flags",
            config={"learning_rate": 1e-3, "batch_size": 512, "tau": 0.01, "gamma": 0.98, "n_critics": 3},
        ),
    ]
    assert variant_labels([Run(r) for r in runs]) == ["defaults", "fast", "fast"]
    many = [
        fake_run(tmp_path / "d", config={"learning_rate": 1e-3, "batch_size": 512, "tau": 0.01, "gamma": 0.98}),
        fake_run(tmp_path / "e"),
    ]
    assert variant_labels([Run(r) for r in many])[0] == "batch_size=512, gamma=0.98, learning_rate=0.001, +1 more"


def test_cli_errors_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    fake = fake_run(tmp_path / "ok")
    (tmp_path / "header_only").mkdir()
    (tmp_path / "header_only" / "metrics.csv").write_text("step,eval/mean_return\n")
    for args, fragment in (
        ([tmp_path / "empty"], "has no metrics.csv: not a train.py run folder"),
        ([tmp_path / "header_only"], "holds no rows yet"),
        ([tmp_path / "missing"], "missing' does not exist: pass train.py run folders"),
        ([tmp_path / "ok" / "metrics.csv"], "metrics.csv' is not a folder"),
        ([fake, fake, "--labels", "a"], "--labels gave 1 labels for 2 run folders"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "keras_sac.plot", *map(str, args)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and fragment in proc.stderr, proc.stderr


def test_plot_error_names_folder(tmp_path):
    with pytest.raises(PlotError, match="nowhere' does not exist"):
        plot_runs([tmp_path / "nowhere"])
