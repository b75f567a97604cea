"""Folder writes that never leave a half-written or missing result at the destination.

A folder (checkpoint, exported policy) is written into a hidden staging sibling, fsynced, and only then
moved to its path. Replacing an existing folder swaps the two in one atomic step where the OS can
(Linux `renameat2(RENAME_EXCHANGE)`), so a kill at any instant leaves the old or the new folder at the
path. Elsewhere it takes two renames; a kill between them leaves the old folder under `.<name>.old`,
which `recover_dir` (called by every reader and by the next write) moves back.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import sys
from pathlib import Path

_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def staging_dir(dst: Path) -> Path:
    """An empty sibling folder of `dst` to write into before `replace_dir(staging, dst)`."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def old_path(dst: Path) -> Path:
    """Where the two-rename replacement parks the previous `dst` between its renames."""
    dst = Path(os.path.abspath(dst))  # "." has no name of its own
    return dst.with_name(f".{dst.name}.old")


def recover_dir(path: Path) -> Path:
    """Finish an interrupted two-rename replacement: if `path` is missing but its `.old` copy is there
    (the process died between the renames), move the old folder back. Returns `path`."""
    path = Path(path)
    old = old_path(path)
    if not path.exists() and old.is_dir():
        old.rename(path)
    return path


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap the paths `a` and `b`; False where the OS or filesystem cannot."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "renameat2"):  # glibc < 2.28, musl
        return False
    if libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: this filesystem or kernel has no exchange
        return False
    raise OSError(err, f"cannot swap '{a}' and '{b}': {os.strerror(err)}")


def replace_dir(src: Path, dst: Path) -> None:
    """Move the finished folder `src` to `dst`, replacing any previous `dst` only once `src` is complete.

    At every instant `dst` holds either the previous folder or `src` (or, on systems without an atomic
    exchange, the previous folder is at `.<dst>.old`, where `recover_dir` finds it). If the move fails,
    the previous folder stays at `dst` and `src` is left for the caller to clean up.
    """
    src, dst, old = Path(src), Path(dst), old_path(Path(dst))
    recover_dir(dst)  # never delete the only copy of an interrupted earlier replacement
    shutil.rmtree(old, ignore_errors=True)  # what is left is stale: a folder only reaches dst complete
    if not dst.exists():
        src.rename(dst)
    elif _exchange(src, dst):
        shutil.rmtree(src, ignore_errors=True)  # src now holds the previous folder
    else:
        dst.rename(old)
        try:
            src.rename(dst)
        except BaseException:
            old.rename(dst)  # put the previous folder back
            raise
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(dst.parent)


def fsync_tree(folder: Path) -> None:
    """fsync every file below `folder` and every folder's entry list, so a crash cannot lose them."""
    folder = Path(folder)
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb+") as f:
                os.fsync(f.fileno())
    for sub in [p for p in folder.rglob("*") if p.is_dir()] + [folder]:
        fsync_dir(sub)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, text: str | bytes) -> None:
    """Replace the file `path` with `text` (str or bytes): written beside it, fsynced, renamed over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        data = text if isinstance(text, bytes) else text.encode()  # UTF-8, newlines as given
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
