"""A run killed with SIGKILL, twice, reruns to the byte-identical map and model of an uninterrupted run.

A fresh tiny workdir (the `completed_run` config) is run and killed, the whole process group at once, first
while a per-tile job runs, then while the model trains. After each kill Snakemake's lock stays (the next run
stops before any job) until `landcover unlock` finds no live process of the run; then the same command
completes. Its model and merged
map are compared with `completed_run`'s by checksum, which also shows that two complete runs of one config and
seed give identical files (determinism).
"""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, SNAKEMAKE, snakemake, tiny_config, write_config

pytestmark = pytest.mark.slow

COMPARED = ["results/landcover.tif", "results/model/model.txt", "results/model/model.json"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_and_kill(workdir: Path, started, timeout: float = 900) -> None:
    """Run the workflow as `conftest.snakemake` does, SIGKILL its process group once `started()` is true."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    command = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    command += ["--profile", str(REPO / "profiles" / "default"), "--cores", "2"]
    with open(workdir / "killed-run.out", "a") as out:
        run = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not started():
        assert run.poll() is None, (
            f"the run ended before it could be killed: {(workdir / 'killed-run.out').read_text()}"
        )
        assert time.monotonic() < deadline, "timed out waiting for the job to start"
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    while True:  # every job of the run dies with it (they share its process group)
        try:
            os.killpg(run.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "processes of the killed run survived"
        time.sleep(0.1)
    incomplete = workdir / ".snakemake" / "incomplete"
    assert incomplete.is_dir() and any(incomplete.iterdir()), "no job was running when the run was killed"


def unlock(workdir: Path) -> None:
    """`landcover unlock` on a machine without SLURM (the test's SLURM cluster, if any, is not this run's)."""
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=str(bin_dir))
    run = subprocess.run(
        [bin_dir / "landcover", "unlock", "-d", workdir], capture_output=True, text=True, env=env, check=False
    )
    assert run.returncode == 0 and "removed the stale lock" in run.stdout, run.stdout + run.stderr


def test_killed_runs_rerun_to_the_same_map_and_model(completed_run, tmp_path):
    workdir = tmp_path / "run"
    write_config(workdir, tiny_config())

    run_and_kill(workdir, lambda: any((workdir / "logs" / "features").glob("*.log")))  # a per-tile job
    assert any((workdir / ".snakemake" / "locks").iterdir()), "SIGKILL leaves Snakemake's lock behind"
    locked = snakemake(workdir, check=False)
    assert locked.returncode != 0 and "cannot be locked" in locked.stdout + locked.stderr
    unlock(workdir)
    run_and_kill(workdir, lambda: (workdir / "logs" / "train" / "train.log").exists())  # the same command again
    unlock(workdir)
    snakemake(workdir)  # and once more, to the end

    for path in COMPARED:
        assert sha256(workdir / path) == sha256(completed_run / path), path
    results = workdir / "results"
    assert not [p for p in results.rglob(".*") if ".tmp-" in p.name or ".scratch-" in p.name]
    incomplete = workdir / ".snakemake" / "incomplete"
    assert not incomplete.exists() or not any(incomplete.iterdir())
