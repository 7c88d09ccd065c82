"""Write-then-rename, so that a crash never leaves a complete-looking output.

A writer killed with SIGKILL runs no cleanup; its temporaries are removed by the next writer of
the same target (one job writes one target, so they cannot belong to a live writer). The data is
flushed to disk before the rename and the rename after it, so that after a power cut the target is
either absent or complete (ext4 and others may otherwise show a renamed, still empty file)."""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only if the block succeeds.

    The temporary name keeps the suffix (GDAL and pandas pick drivers by it)."""
    target = Path(path)
    tmp = _fresh(target, ".tmp-", target.suffix)
    try:
        yield tmp
        for written in [*(p for p in tmp.rglob("*") if p.is_file()), tmp] if tmp.is_dir() else [tmp]:
            _sync(written)
        os.replace(tmp, target)
        _sync(target.parent)
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def scratch_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A private folder beside `path` for a writer's intermediate files, removed afterwards.

    For writers that make files of their own next to their output (rio-cogeo does)."""
    folder = _fresh(Path(path), ".scratch-", "")
    folder.mkdir()
    try:
        yield folder
    finally:
        _remove(folder)


def _fresh(target: Path, kind: str, suffix: str) -> Path:
    """This process's temporary name for `target`, after removing those of killed writers."""
    target.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{target.stem}{kind}"
    pattern = f"{glob.escape(prefix)}*{glob.escape(suffix)}*" if suffix else f"{glob.escape(prefix)}*"
    for stale in target.parent.glob(pattern):  # with their sidecars (a GeoPackage's -journal)
        _remove(stale)
    return target.with_name(f"{prefix}{os.getpid()}{suffix}")


def _sync(path: Path) -> None:
    """fsync a file or a folder entry."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
