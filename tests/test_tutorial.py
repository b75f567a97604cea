"""docs/tutorial.ipynb runs top to bottom as a user would run it (on a few hundred steps), so it cannot rot."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"


@pytest.mark.slow
def test_the_tutorial_notebook_runs_and_checks_its_exports(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    monkeypatch.setenv("TUTORIAL_STEPS", "600")
    monkeypatch.setenv("TUTORIAL_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "SavedModel vs predict, max |difference|" in text and "TFLite     vs predict" in text
    assert "return over 5 episodes" in text and "frames, return" in text
    assert (tmp_path / "out" / "episodes.csv").is_file() and (tmp_path / "out" / "policy.tflite").is_file()
    assert not any(o.get("output_type") == "error" for o in outputs)
    assert os.listdir(tmp_path / "out" / "videos")
