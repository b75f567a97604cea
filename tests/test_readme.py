"""Every Python snippet in the README runs as shown (with tiny training budgets), in order, in one fresh folder
and a fresh interpreter each, as a user pasting them would."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SNIPPETS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def shrink(code: str) -> str:
    """The same code with every learn(N, ...) budget cut to 300 steps."""
    return re.sub(r"\.learn\([\d_]+", ".learn(300", code)


def test_the_readme_has_the_snippets_this_test_runs():
    assert len(SNIPPETS) >= 3 and all(".learn(" not in s or re.search(r"\.learn\([\d_]+", s) for s in SNIPPETS)


@pytest.mark.slow  # eight fresh interpreters: about five minutes of CPU
def test_the_readme_snippets_run_in_order_as_written(tmp_path):
    # One test, not one per snippet: a later snippet reads what an earlier one wrote (pendulum_agent,
    # pendulum_policy), as a user pasting them in order would, so they pass or fail together in any test order.
    for index, snippet in enumerate(SNIPPETS):
        proc = subprocess.run(
            [sys.executable, "-c", shrink(snippet)], capture_output=True, text=True, timeout=600, cwd=tmp_path
        )  # one folder for all: the working directory of the earlier snippets
        assert proc.returncode == 0, f"snippet {index}:\n{snippet}\n{proc.stderr[-3000:]}"


def test_every_setting_is_documented_in_the_settings_tables_of_docs():
    import dataclasses

    from keras_sac.config.settings import RunConfig, SACConfig

    pages = "".join((ROOT / "docs" / page).read_text() for page in ("configuration.md", "observations.md"))
    first_cells = re.findall(r"^\| (`[^|]*) \|", pages, flags=re.M)  # "`a`" or "`a`, `b`" in a table's key column
    names = {name for cell in first_cells for name in re.findall(r"`([a-z_0-9]+)`", cell)}
    missing = [f.name for cls in (SACConfig, RunConfig) for f in dataclasses.fields(cls) if f.name not in names]
    assert not missing, f"add to the settings tables of docs/configuration.md: {missing}"


def test_the_readme_links_resolve():
    # every relative link to a file exists, and every #anchor names a heading of its page (GitHub's slugs)
    def slugs(text):
        headings = re.findall(r"^#+ (.+)$", text, flags=re.M)
        return {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in headings}

    pages = [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    for page in pages:
        prose = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", page.read_text(), flags=re.S))  # code aside
        for target in re.findall(r"\]\(([^)\s]+)\)", prose):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: link to {target}: no such file"
            if anchor and linked.suffix == ".md":
                assert anchor in slugs(linked.read_text()), f"{page.name}: link to {target}: no such heading"


def test_the_exported_policy_snippet_prints_no_tensorflow_start_up_lines(tmp_path):
    snippet = next(s for s in SNIPPETS if "tf.saved_model.load" in s)
    make = "from keras_sac import KerasSAC\nKerasSAC('InvertedPendulum-v5', seed=0).export('pendulum_policy')\n"
    subprocess.run([sys.executable, "-c", make], cwd=tmp_path, check=True, capture_output=True, timeout=600)
    proc = subprocess.run([sys.executable, "-c", snippet], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == "", proc.stderr  # no I0000/E0000 cuInit lines
    assert '"env_id": "InvertedPendulum-v5"' in proc.stdout.replace("'", '"')
