"""Clear the working-directory lock a killed Snakemake run leaves behind, and only that one.

Snakemake writes its lock as plain files under ``.snakemake/locks`` and removes them when it ends; a run
killed with SIGKILL (the OOM killer, a lost login node) cannot, and the next run then stops with
"Directory cannot be locked" until someone runs ``snakemake --unlock``. Every main Snakemake process of
this workflow also holds an OS lock (flock) on one file for its whole life, which the kernel releases
however the process ends. A process that can take that lock exclusively knows no other run is alive in
the directory, so any lock files are stale and can go; it then keeps a shared hold like every other run.
"""

from __future__ import annotations

import fcntl
import os
import shutil

_HELD: list[int] = []  # the descriptors this process keeps open for its lifetime


def claim(snakemake_dir: str | os.PathLike) -> bool:
    """Hold this process's share of the run lock; True if stale Snakemake locks were removed.

    Call it once per main Snakemake process, never in job processes (they run while their main process
    holds the lock, and must not take part). The descriptor is not inherited by child processes."""
    os.makedirs(snakemake_dir, exist_ok=True)
    fd = os.open(os.path.join(snakemake_dir, "landcover-run.flock"), os.O_RDWR | os.O_CREAT, 0o644)
    _HELD.append(fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # another run of this workflow is alive here: its locks are real
        fcntl.flock(fd, fcntl.LOCK_SH)
        return False
    except OSError:  # a file system without flock (some NFS mounts): leave locks to `snakemake --unlock`
        return False
    locks = os.path.join(snakemake_dir, "locks")
    stale = os.path.isdir(locks) and any(os.scandir(locks))
    if stale:
        shutil.rmtree(locks)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return stale
