"""Replacing a folder: a kill at any step leaves the old or the new folder findable; a failure puts the old back."""

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from keras_sac.io import files

ROOT = Path(__file__).resolve().parents[1]

# Runs replace_dir in a child that dies (os._exit, no clean-up, like SIGKILL) just before its step number
# `kill_at` among the file-system calls it makes; `exchange` False forces the two-rename path.
KILLED_REPLACE = textwrap.dedent("""
    import os, shutil, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[1])
    from keras_sac.io import files
    root, kill_at, exchange = Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
    calls = [0]
    def step(real):
        def wrapped(*args, **kwargs):
            if calls[0] == kill_at:
                os._exit(9)
            calls[0] += 1
            return real(*args, **kwargs)
        return wrapped
    os.rename = step(os.rename)
    files.shutil.rmtree = step(shutil.rmtree)
    files._exchange = step(files._exchange if exchange else lambda a, b: False)
    files.replace_dir(root / "staging", root / "target")
    print("steps", calls[0])
""")


def make_folder(path: Path, version: str) -> None:
    path.mkdir()
    (path / "a.txt").write_text(version)
    (path / "b.txt").write_text(version * 1000)


def version_at(path: Path) -> str:
    a, b = (path / "a.txt").read_text(), (path / "b.txt").read_text()
    assert b == a * 1000, "a torn folder"
    return a


def killed_replace(root: Path, kill_at: int, exchange: bool) -> subprocess.CompletedProcess:
    make_folder(root / "target", "old")
    make_folder(root / "staging", "new")
    return subprocess.run(
        [sys.executable, "-c", KILLED_REPLACE, str(ROOT), str(root), str(kill_at), "1" if exchange else "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("exchange", [True, False], ids=["atomic_exchange", "two_renames"])
def test_a_kill_at_any_step_of_a_replacement_leaves_the_old_or_the_new_folder(tmp_path, exchange):
    (tmp_path / "probe").mkdir()
    steps = int(killed_replace(tmp_path / "probe", 10_000, exchange).stdout.split()[-1])
    assert steps >= 2
    seen = set()
    for kill_at in range(steps + 1):
        root = tmp_path / f"kill_{kill_at}"
        root.mkdir()
        proc = killed_replace(root, kill_at, exchange)
        assert proc.returncode == (9 if kill_at < steps else 0), proc.stderr
        target = root / "target"
        if exchange:  # atomic: the path itself always holds a complete folder
            seen.add(version_at(target))
        else:  # between the two renames the old folder waits under .target.old; readers move it back
            seen.add(version_at(files.recover_dir(target)))
        # and the next write over it works and leaves no debris
        make_folder(root / "third", "third")
        files.replace_dir(root / "third", target)
        assert version_at(target) == "third"
        # ("staging" may remain: the caller's staging folder, cleaned by its next write; no ".target.old")
        assert {p.name for p in root.iterdir()} <= {"target", "staging"}, list(root.iterdir())
    assert seen == {"old", "new"}  # the kills landed both before and after the switch


def test_when_moving_the_new_folder_in_fails_the_old_one_is_put_back(tmp_path, monkeypatch):
    make_folder(tmp_path / "target", "old")
    make_folder(tmp_path / "staging", "new")
    monkeypatch.setattr(files, "_exchange", lambda a, b: False)  # the two-rename path
    real_rename = os.rename

    def failing_rename(src, dst):
        if Path(src).name == "staging":
            raise OSError(errno.EIO, "I/O error")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError, match="I/O error"):
        files.replace_dir(tmp_path / "staging", tmp_path / "target")
    assert version_at(tmp_path / "target") == "old"
    assert not (tmp_path / ".target.old").exists()


def test_write_atomic_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    path.write_text("old")

    def no_space(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OSError, match="No space"):
        files.write_atomic(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["run.json"]
