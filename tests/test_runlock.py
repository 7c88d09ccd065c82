"""The stale-lock cleaner: removes a killed run's Snakemake locks, never a live run's.

Each claim runs in its own process, as each Snakemake run does (a process keeps its hold until it ends)."""

import subprocess
import sys

CLAIM = "import sys; from landcover import runlock; sys.exit(0 if runlock.claim(sys.argv[1]) else 3)"
HOLD = "import sys, time; from landcover import runlock; runlock.claim(sys.argv[1]); print('holding', flush=True); time.sleep(60)"


def claim_removed_locks(snakemake_dir) -> bool:
    return subprocess.run([sys.executable, "-c", CLAIM, str(snakemake_dir)], check=False).returncode == 0


def write_locks(snakemake_dir):
    locks = snakemake_dir / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("results/stacks/x0457_y5097.nc\n")
    (locks / "0.output.lock").write_text("results/landcover.tif\n")
    return locks


def test_locks_without_a_live_run_are_removed(tmp_path):
    locks = write_locks(tmp_path / ".snakemake")
    assert claim_removed_locks(tmp_path / ".snakemake")
    assert not locks.exists()


def test_locks_of_a_live_run_stay_until_it_dies(tmp_path):
    snakemake_dir = tmp_path / ".snakemake"
    live = subprocess.Popen([sys.executable, "-c", HOLD, str(snakemake_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert live.stdout.readline().strip() == "holding"
        locks = write_locks(snakemake_dir)  # the live run's own locks
        assert not claim_removed_locks(snakemake_dir)
        assert sorted(p.name for p in locks.iterdir()) == ["0.input.lock", "0.output.lock"]
    finally:
        live.kill()  # dies like a SIGKILLed run, without cleaning up
        live.wait()
    assert claim_removed_locks(snakemake_dir)
    assert not locks.exists()


def test_without_locks_nothing_is_removed(tmp_path):
    assert not claim_removed_locks(tmp_path / ".snakemake")
    assert (tmp_path / ".snakemake").is_dir()


def test_a_file_system_without_flock_leaves_the_locks_alone(tmp_path, monkeypatch):
    import errno
    import fcntl

    from landcover import runlock

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    locks = write_locks(tmp_path / ".snakemake")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    assert runlock.claim(tmp_path / ".snakemake") is False
    assert sorted(p.name for p in locks.iterdir()) == ["0.input.lock", "0.output.lock"]
