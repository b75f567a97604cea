"""Folder writes that never leave a half-written result at the destination."""

from __future__ import annotations

import shutil
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
