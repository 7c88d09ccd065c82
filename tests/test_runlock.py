"""Snakemake's lock is kept by every run; `landcover unlock` removes a killed run's lock, never a live one's.

Live runs are separate processes that hold the run lock, as each Snakemake run does; the scheduler is a
stand-in `squeue` on PATH that prints what a SLURM controller would (or fails, like one that is down)."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, snakemake, tiny_config, write_config

HOLD = "import sys, time; from landcover import runlock; runlock.hold(sys.argv[1]); print('holding', flush=True); time.sleep(60)"
LANDCOVER = str(Path(sys.executable).parent / "landcover")


def write_locks(workdir: Path) -> Path:
    locks = workdir / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("results/stacks/x0457_y5097.nc\n")  # as Snakemake writes them
    (locks / "0.output.lock").write_text("results/landcover.tif\n")
    return locks


def unlock(workdir: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=path if path is not None else os.environ["PATH"])
    command = [LANDCOVER, "unlock", "-d", str(workdir), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


def fake_squeue(folder: Path, output: str, code: int = 0) -> str:
    """A PATH with only a `squeue` that prints `output` (its --format: id|name|state|workdir|comment)."""
    folder.mkdir()
    script = folder / "squeue"
    lines = "".join(f"echo '{line}'\n" for line in output.splitlines())  # echo: a shell builtin, PATH-free
    script.write_text(f"#!/bin/sh\n{lines}exit {code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(folder)


def test_a_stale_lock_is_removed_when_no_run_is_alive(tmp_path):
    locks = write_locks(tmp_path)
    run = unlock(tmp_path, path=fake_squeue(tmp_path / "bin", ""))
    assert run.returncode == 0 and "removed the stale lock" in run.stdout, run.stderr
    assert not locks.exists()


def test_a_live_local_run_keeps_its_lock(tmp_path):
    live = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / ".snakemake")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert live.stdout.readline().strip() == "holding"
        locks = write_locks(tmp_path)  # the live run's own locks
        run = unlock(tmp_path)
        assert run.returncode == 1 and "still running" in run.stderr
        assert sorted(p.name for p in locks.iterdir()) == ["0.input.lock", "0.output.lock"]
    finally:
        live.kill()  # dies like a SIGKILLed run, without cleaning up
        live.wait()
    assert unlock(tmp_path, path=fake_squeue(tmp_path / "bin", "")).returncode == 0
    assert not locks.exists()


def test_slurm_jobs_of_the_killed_run_keep_the_lock(tmp_path):
    """The main process died (the flock is free) but its jobs still run on the nodes."""
    locks = write_locks(tmp_path)
    queue = f"101|run-uuid|RUNNING|{tmp_path}|rule_features_wildcards_x0457_y5097\n102|other|PENDING|/elsewhere|rule_x"
    run = unlock(tmp_path, path=fake_squeue(tmp_path / "bin", queue))
    assert run.returncode == 1
    assert "101 (RUNNING, rule_features_wildcards_x0457_y5097)" in run.stderr and "102" not in run.stderr
    assert "scancel --name run-uuid" in run.stderr
    assert locks.exists()
    other = unlock(tmp_path, path=fake_squeue(tmp_path / "bin2", "102|other|PENDING|/elsewhere|rule_x"))
    assert other.returncode == 0 and not locks.exists()


def test_a_scheduler_that_does_not_answer_keeps_the_lock_unless_forced(tmp_path):
    locks = write_locks(tmp_path)
    down = fake_squeue(tmp_path / "bin", "slurm_load_jobs error: Unable to contact slurm controller", code=1)
    run = unlock(tmp_path, path=down)
    assert run.returncode == 1 and "squeue could not list your jobs" in run.stderr and locks.exists()
    assert unlock(tmp_path, "--force", path=down).returncode == 0 and not locks.exists()


def test_without_a_lock_nothing_happens(tmp_path):
    run = unlock(tmp_path, path=fake_squeue(tmp_path / "bin", ""))
    assert run.returncode == 0 and "was not locked" in run.stdout


@pytest.mark.slow
def test_no_snakemake_command_removes_the_lock_by_itself(tmp_path):
    """Dry runs, --lint, --report-less runs: the lock stays, and a real run stops before any job."""
    write_config(tmp_path, tiny_config())
    locks = write_locks(tmp_path)
    snakemake(tmp_path, "-n")
    snakemake(tmp_path, "--lint", check=False)
    run = snakemake(tmp_path, "--until", "grid", check=False, timeout=300)
    assert run.returncode != 0 and "cannot be locked" in run.stdout + run.stderr
    assert sorted(p.name for p in locks.iterdir()) == ["0.input.lock", "0.output.lock"]
    assert not (tmp_path / "results").exists()
    assert unlock(tmp_path, path=fake_squeue(tmp_path / "bin", "")).returncode == 0
    assert "cannot be locked" not in snakemake(tmp_path, "-n").stdout


def test_landcover_run_without_a_checkout_says_what_it_needs(tmp_path):
    from landcover import cli

    with pytest.raises(SystemExit, match="no workflow checkout"):
        cli.find_workflow(str(tmp_path))
    assert cli.find_workflow(None) == REPO


@pytest.mark.slow
def test_only_a_run_that_executes_jobs_takes_the_run_lock(tmp_path):
    """Parsing writes nothing: -n and --lint leave no run lock; a run that executes jobs takes it (onstart)."""
    from landcover.runlock import FLOCK

    write_config(tmp_path, tiny_config())
    snakemake(tmp_path, "-n")
    snakemake(tmp_path, "--lint", check=False)
    assert not (tmp_path / ".snakemake" / FLOCK).exists()
    snakemake(tmp_path, "--until", "grid", timeout=300)
    assert (tmp_path / ".snakemake" / FLOCK).exists() and (tmp_path / "results" / "grid.gpkg").exists()
