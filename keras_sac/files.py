"""Folder writes that never leave a half-written result at the destination."""

from __future__ import annotations

import shutil
import time
from pathlib import Path


def staging_dir(dst: Path) -> Path:
    """An empty sibling folder of `dst` to write into before `replace_dir(staging, dst)`."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def replace_dir(src: Path, dst: Path) -> None:
    """Move the finished folder `src` to `dst`, replacing any previous `dst` only after `src` is complete."""
    old = dst.with_name(f".{dst.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dst.exists():
        dst.rename(old)
    src.rename(dst)
    shutil.rmtree(old, ignore_errors=True)


def default_run_dir(env_id: str) -> Path:
    return Path("runs") / f"{env_id}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run_dir(run_dir: Path, force: bool) -> None:
    """Create `run_dir`; one that already holds files is refused unless `force`."""
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"--run-dir '{run_dir}' is a file; choose a folder path")
    if run_dir.is_dir() and any(run_dir.iterdir()) and not force:
        raise FileExistsError(f"--run-dir '{run_dir}' already holds files; choose a new folder or pass "
                              f"--force to write over it")
    run_dir.mkdir(parents=True, exist_ok=True)
