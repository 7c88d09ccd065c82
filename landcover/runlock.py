"""Snakemake's working-directory lock stays; removing a stale one is an explicit step that checks first.

Snakemake writes its lock as plain files under ``.snakemake/locks`` and removes them when it ends; a run
killed with SIGKILL (the OOM killer, a lost login node) cannot, and the next run stops with "Directory
cannot be locked". That stop is a safeguard, never skipped by a workflow run: under the SLURM executor
the jobs of a killed main process keep running on the nodes, and a second run would submit the same
jobs again beside them (and remove their temporaries). ``landcover unlock`` (`unlock`) removes the lock
only when

- no Snakemake run of this workflow is alive in the directory on this machine: every main process holds
  a shared OS lock (flock) on one file for its whole life (`hold`), which the kernel releases however
  the process ends, so an exclusive lock proves there is none; and
- the scheduler has no job running in the directory: ``squeue`` lists the user's jobs with their working
  directory (the SLURM executor submits every job with ``-D <workdir>``). Where ``squeue`` exists but
  does not answer, nothing is removed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

FLOCK = "landcover-run.flock"
_HELD: list[int] = []  # the descriptors this process keeps open for its lifetime


class LockInUse(RuntimeError):
    """The lock belongs to a run that may still be alive; the message says which and what to do."""


def hold(snakemake_dir: str | os.PathLike) -> None:
    """Hold this main Snakemake process's share of the run lock until it ends (never in job processes).

    The descriptor is not inherited by child processes. A file system without flock (some NFS mounts) is
    left alone: `unlock` then cannot tell a live local run from a dead one and refuses without --force."""
    os.makedirs(snakemake_dir, exist_ok=True)
    fd = os.open(os.path.join(snakemake_dir, FLOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
    except OSError:
        os.close(fd)
        return
    _HELD.append(fd)


def local_run_alive(snakemake_dir: str | os.PathLike) -> bool | None:
    """True if a run of this workflow holds the directory on this machine, None if flock is unavailable."""
    path = os.path.join(snakemake_dir, FLOCK)
    if not os.path.exists(path):
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # releases the probe's lock
    return False


@dataclass(frozen=True)
class SchedulerJob:
    job_id: str
    name: str
    state: str
    comment: str


def slurm_jobs_in(workdir: str | os.PathLike) -> list[SchedulerJob] | None:
    """The user's queued or running SLURM jobs whose working directory is `workdir`; None without SLURM.

    Raises LockInUse when squeue exists but fails (a controller that does not answer proves nothing)."""
    squeue = shutil.which("squeue")
    if squeue is None:
        return None
    command = [squeue, "--me", "--noheader", "--format", "%i|%j|%T|%Z|%k"]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as err:
        detail = getattr(err, "stderr", "") or err
        raise LockInUse(
            f"squeue could not list your jobs ({str(detail).strip()}), so jobs of the earlier run may still be "
            "running; check with `squeue --me` and retry, or remove the lock with --force"
        ) from err
    target = Path(workdir).resolve()
    jobs = []
    for line in out.splitlines():
        parts = line.split("|", 4)
        if len(parts) == 5 and Path(parts[3]).resolve() == target:
            jobs.append(SchedulerJob(parts[0], parts[1], parts[2], parts[4]))
    return jobs


def unlock(workdir: str | os.PathLike, force: bool = False) -> list[str]:
    """Remove the Snakemake lock of `workdir` if no run can still be alive; the names of the removed files.

    Raises LockInUse, naming the live run or its SLURM jobs, otherwise; `force` skips both checks."""
    snakemake_dir = Path(workdir) / ".snakemake"
    locks = snakemake_dir / "locks"
    if not force:
        alive = local_run_alive(snakemake_dir)
        if alive:
            raise LockInUse(f"a Snakemake run of this workflow is still running in {workdir} on this machine")
        if alive is None:
            raise LockInUse(
                f"{snakemake_dir} is on a file system without flock, so a live run cannot be ruled out; "
                "make sure none is running, then use --force"
            )
        jobs = slurm_jobs_in(workdir)
        if jobs:
            listed = ", ".join(f"{j.job_id} ({j.state}, {j.comment or j.name})" for j in jobs[:10])
            more = f" and {len(jobs) - 10} more" if len(jobs) > 10 else ""
            raise LockInUse(
                f"{len(jobs)} SLURM job(s) of an earlier run still work in {workdir}: {listed}{more}. Wait for "
                f"them or cancel them (`scancel --name {jobs[0].name}`), then unlock again"
            )
    removed = sorted(p.name for p in locks.iterdir()) if locks.is_dir() else []
    if removed:
        shutil.rmtree(locks)
    return removed
