"""A throw-away single-node SLURM cluster on this machine, for the `slurm` tests.

`LocalSlurm` writes a `slurm.conf` into a temporary folder (this host as controller and the
only compute node, no accounting) and starts its own `munged`, `slurmctld` and `slurmd` in the
foreground as child processes, so that stopping them means signalling exactly those process
ids. It touches no system-wide state except installing the packages (`.ci/install-slurm.sh`,
which also creates `/etc/munge/munge.key` when missing): the MUNGE socket, the state, spool,
log and pid files all live in the temporary folder, and the daemons listen on free ports.

The pytest fixture `slurm_cluster` (session scope) yields the started cluster and skips, with
the reason, where it cannot run one (not root, no apt-get, install failed, node not idle in
time). Use it in a test module with `from slurm_cluster import slurm_cluster_fixture`.

By hand (root), for debugging:  python tests/slurm_cluster.py   (Ctrl-C stops it)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INSTALL_SCRIPT = REPO / ".ci" / "install-slurm.sh"
PARTITION = "debug"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scancel", "srun", "scontrol", "sacct")


class ClusterUnavailable(RuntimeError):
    """The cluster cannot be started here; the message says why."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mem_total_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ClusterUnavailable("no MemTotal in /proc/meminfo")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(missing)"


def ensure_installed(timeout: float = 900) -> None:
    """Install slurm-wlm and munge with `.ci/install-slurm.sh` unless already there."""
    missing = [c for c in DAEMONS + CLIENTS if shutil.which(c) is None]
    if not missing and Path("/etc/munge/munge.key").exists():
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable(f"SLURM is not installed ({', '.join(missing)} missing) and not root")
    if shutil.which("apt-get") is None:
        raise ClusterUnavailable(f"SLURM is not installed ({', '.join(missing)} missing) and no apt-get")
    try:
        proc = subprocess.run(
            ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise ClusterUnavailable(f"{INSTALL_SCRIPT.name} ran over {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise ClusterUnavailable(
            f"{INSTALL_SCRIPT.name} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}"
        )


@dataclass
class LocalSlurm:
    """One controller + one node; `start()` then `stop()` (or use it as a context manager)."""

    root: Path
    partition: str = PARTITION
    node: str = field(default_factory=lambda: socket.gethostname().split(".")[0])
    cpus: int = field(default_factory=lambda: len(os.sched_getaffinity(0)))
    mem_mb: int = 0  # RealMemory of the node; 0: MemTotal minus a margin
    env: dict[str, str] = field(default_factory=dict)
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    # ----------------------------------------------------------------------------- setup
    def write_conf(self) -> Path:
        root = self.root
        for sub in ("state", "spool", "log", "run", "munge"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        (root / "munge").chmod(0o755)
        if not self.mem_mb:
            total = _mem_total_mb()
            self.mem_mb = max(256, total - max(512, total // 10))
        sock = root / "munge" / "munge.socket"
        if len(str(sock)) > 100:  # AF_UNIX path limit
            raise ClusterUnavailable(f"temporary folder path too long for a socket: {sock}")
        conf = f"""\
# Written by tests/slurm_cluster.py: a one-node test cluster, no accounting.
ClusterName=landcover-test
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock}
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# Finished jobs stay visible to `squeue --states=all` (the status command without accounting)
# for this long (the plugin wants at least 3 x its status-check delay; the tests list the jobs
# of a whole run at its end).
MinJobAge=3600
MailProg=/bin/true
KillWait=5
InactiveLimit=0
Waittime=0
SlurmctldTimeout=30
SlurmdTimeout=60
DefMemPerCPU=512
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.mem_mb} State=UNKNOWN
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
"""
        self.conf.write_text(conf)
        # Client commands find the configuration through SLURM_CONF. Snakemake's job step
        # (snakemake-executor-plugin-slurm-jobstep) drops every SLURM_* variable but the job ids
        # before it calls `srun` inside the job, so that `srun` would look for
        # /etc/slurm/slurm.conf; a shim first on PATH puts SLURM_CONF back for the client
        # commands, without writing anything outside our folder.
        bindir = root / "bin"
        bindir.mkdir(exist_ok=True)
        for name in CLIENTS:
            shim = bindir / name
            shim.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf}\nexport SLURM_CONF\nexec {shutil.which(name)} "$@"\n')
            shim.chmod(0o755)
        path = os.pathsep.join(p for p in (str(bindir), os.environ.get("PATH")) if p)
        self.env = {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}
        return self.conf

    def _spawn(self, name: str, argv: list[str]) -> None:
        with open(self.log_dir / f"{name}.out", "ab") as out:
            self._procs[name] = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,  # a Ctrl-C in the test session does not hit the daemons first
            )

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise ClusterUnavailable(f"{name} exited with {proc.returncode}\n{self.logs()}")

    def start(self, timeout: float = 60) -> LocalSlurm:
        ensure_installed()
        self.write_conf()
        t0 = time.monotonic()
        sock = self.root / "munge" / "munge.socket"
        # A private munged (as root, hence --force) on a socket in our folder; same key as the
        # system one, so nothing else on the machine is affected.
        self._spawn(
            "munged",
            [
                shutil.which("munged") or "munged",
                "--foreground",
                "--force",
                f"--socket={sock}",
                f"--pid-file={self.root}/run/munged.pid",
                f"--log-file={self.log_dir}/munged.log",
                f"--seed-file={self.root}/munge/munged.seed",
            ],
        )
        while not sock.exists():
            self._check_alive()
            if time.monotonic() - t0 > timeout:
                raise ClusterUnavailable(f"munged socket did not appear\n{self.logs()}")
            time.sleep(0.1)
        self._spawn("slurmctld", [shutil.which("slurmctld") or "slurmctld", "-D", "-c", "-f", str(self.conf)])
        self._spawn("slurmd", [shutil.which("slurmd") or "slurmd", "-D", "-N", self.node, "-f", str(self.conf)])
        state = ""
        while True:
            self._check_alive()
            proc = subprocess.run(
                ["sinfo", "-h", "-N", "-n", self.node, "-o", "%t"],
                capture_output=True,
                text=True,
                env=self.env,
                check=False,
            )
            state = proc.stdout.strip()
            if proc.returncode == 0 and state == "idle":
                break
            if time.monotonic() - t0 > timeout:
                raise ClusterUnavailable(
                    f"node {self.node} not idle after {timeout:.0f} s (state {state!r}, "
                    f"sinfo: {proc.stderr.strip()!r})\n{self.logs()}"
                )
            time.sleep(0.5)
        self.start_seconds = time.monotonic() - t0
        return self

    # ----------------------------------------------------------------------------- helpers
    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a SLURM client command (sinfo, squeue, ...) against this cluster."""
        return subprocess.run(list(argv), capture_output=True, text=True, env=self.env, check=check)

    def jobs(self) -> list[dict[str, str]]:
        """Every job the controller still knows (finished ones for MinJobAge seconds)."""
        out = self.run("squeue", "--states=all", "-h", "-o", "%i|%j|%T|%k").stdout
        keys = ("id", "name", "state", "comment")
        return [dict(zip(keys, line.split("|", 3))) for line in out.splitlines() if line.strip()]

    def logs(self, lines: int = 30) -> str:
        parts = []
        for name in ("munged.out", "slurmctld.log", "slurmctld.out", "slurmd.log", "slurmd.out"):
            parts.append(f"--- {name} (last {lines} lines)\n{_tail(self.log_dir / name, lines)}")
        return "\n".join(parts)

    # ----------------------------------------------------------------------------- teardown
    def stop(self) -> None:
        """Cancel this cluster's jobs, then stop the daemons this object started (by pid)."""
        if "slurmctld" in self._procs and self._procs["slurmctld"].poll() is None:
            subprocess.run(
                ["scancel", "--partition", self.partition], env=self.env, capture_output=True, timeout=30, check=False
            )
        # slurmd first (it may still talk to the controller), munged last (both use it).
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def __enter__(self) -> LocalSlurm:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture(scope="session", name="slurm_cluster")
def slurm_cluster_fixture(tmp_path_factory):
    """A running one-node SLURM cluster: `.env` (with SLURM_CONF), `.partition`, `.cpus`, `.mem_mb`."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the test SLURM cluster needs Linux")
    if os.geteuid() != 0:
        pytest.skip("the test SLURM cluster runs its daemons as root; not root here")
    root = tmp_path_factory.mktemp("slurm")
    if len(str(root)) > 60:  # keep the MUNGE socket path short
        root = Path(tempfile.mkdtemp(prefix="lc-slurm-"))
    cluster = LocalSlurm(root=root)
    try:
        cluster.start()
    except ClusterUnavailable as err:
        cluster.stop()
        pytest.skip(f"no local SLURM cluster: {err}")
    try:
        yield cluster
    finally:
        cluster.stop()


if __name__ == "__main__":
    with LocalSlurm(root=Path(tempfile.mkdtemp(prefix="lc-slurm-"))) as c:
        print(f"started in {c.start_seconds:.1f} s\nexport SLURM_CONF={c.conf}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
