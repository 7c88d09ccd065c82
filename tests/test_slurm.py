"""The workflow on a real (single-node) SLURM cluster, through `--profile profiles/slurm`.

Starts slurmctld + slurmd on this machine (tests/slurm_cluster.py; installs slurm-wlm with
.ci/install-slurm.sh when missing, so it needs root and apt-get, else it skips) and runs the
repository's Snakefile on a 2 x 2 grid of 1 km synthetic tiles: each tile's stages as three sbatch jobs
(the profile's job groups), each whole-area rule as one.

    .venv/bin/pytest -m slurm -v
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import TINY_TILES, tiny_config, write_config
from slurm_cluster import slurm_cluster_fixture  # noqa: F401  (provides `slurm_cluster`)

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# Short polling for a test (the profile keeps Snakemake's defaults, 10 s then 40 s), no retries
# (a failure should fail the test at once) and no wait for a lagging shared file system.
TEST_OVERRIDES = [
    "--seconds-between-status-checks",
    "1",
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--retries",
    "0",
    "--latency-wait",
    "5",
]

# tiny_config(): 2 x 2 tiles of 1 km (100 x 100 px) from (457000, 5097000), as in test_workflow.py.
BOUNDS = (457000.0, 5097000.0, 459000.0, 5099000.0)


def fit_profile_to_node(profile: Path, cpus: int, mem_mb: int) -> list[str]:
    """Command-line overrides that shrink the profile's per-rule requests to fit the test node.

    Empty when everything fits, so the profile is used exactly as shipped. A command-line
    `--set-resources` replaces the profile's whole key, hence every entry is repeated.
    """
    prof = yaml.safe_load((profile / "config.yaml").read_text())
    args: list[str] = []
    set_resources = prof.get("set-resources") or {}
    cap = mem_mb // 2  # leave room for a second job beside it
    if any(int(r.get("mem_mb", 0)) > cap for r in set_resources.values()):
        args.append("--set-resources")
        for rule, res in set_resources.items():
            for key, val in res.items():
                if key == "mem_mb":
                    val = min(int(val), cap)
                args.append(f"{rule}:{key}={val}")
    set_threads = prof.get("set-threads") or {}
    if any(int(n) > cpus for n in set_threads.values()):
        args += ["--set-threads", *(f"{rule}={min(int(n), cpus)}" for rule, n in set_threads.items())]
    return args


def job_env(cluster) -> dict[str, str]:
    """The cluster's environment with this interpreter's bin folder on PATH.

    sbatch exports the submitting environment (`--export=ALL`), so the jobs run the same virtual
    environment; the SLURM client shims stay first on PATH.
    """
    env = dict(cluster.env)
    shims, _, rest = env["PATH"].partition(os.pathsep)
    env["PATH"] = os.pathsep.join(p for p in (shims, str(Path(sys.executable).parent), rest) if p)
    env.pop("SLURM_JOB_ID", None)  # not inside a job, even if pytest itself runs in one
    return env


def test_cluster_runs_a_batch_job(slurm_cluster):
    """The fixture's cluster accepts sbatch and runs the job on its node (a fast sanity check)."""
    out = slurm_cluster.run(
        "sbatch", "--parsable", "--wait", "--mem", "100", "-t", "1", "-o", "/dev/null", "--wrap", "true"
    )
    job_id = out.stdout.strip().split(";")[0]
    states = {j["id"]: j["state"] for j in slurm_cluster.jobs()}
    assert states.get(job_id) == "COMPLETED", (states, slurm_cluster.logs())


def test_workflow_on_slurm(slurm_cluster, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    pytest.importorskip("snakemake_executor_plugin_slurm")

    # One thread per tile job on the test node's few CPUs, so that two tile groups run side by side there
    # (a group asks for the most threads of its rules; the config, not the profile, sets them).
    threads = {rule: max(1, min(n, slurm_cluster.cpus // 2)) for rule, n in tiny_config()["threads"].items()}
    configfile = write_config(tmp_path, tiny_config(threads=threads))

    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--configfile",
        str(configfile),
        "--profile",
        str(PROFILE),
        *TEST_OVERRIDES,
        *fit_profile_to_node(PROFILE, slurm_cluster.cpus, slurm_cluster.mem_mb),
    ]
    t0 = time.monotonic()
    proc = subprocess.run(
        cmd, check=False, cwd=tmp_path, env=job_env(slurm_cluster), capture_output=True, text=True, timeout=1500
    )
    seconds = time.monotonic() - t0
    print(f"workflow on SLURM: {seconds:.0f} s")
    assert proc.returncode == 0, (
        f"snakemake exited {proc.returncode} after {seconds:.0f} s\n{proc.stderr[-8000:]}\n{slurm_cluster.logs()}"
    )

    # The map covers the 2 km x 2 km area in the configured CRS.
    tif = tmp_path / "results" / "landcover.tif"
    assert tif.exists()
    with rasterio.open(tif) as src:
        assert src.crs.to_epsg() == 32633
        assert tuple(src.bounds) == pytest.approx(BOUNDS)
        assert (src.width, src.height) == (200, 200)
    assert (tmp_path / "results" / "plots" / f"{TINY_TILES[0]}.png").exists()

    # The rules ran as sbatch jobs of this run: the plugin names each job after the run id and
    # comments it with the rule or, for the profile's job groups, the group (`rule_<name>...`).
    # Per tile: stack, clouds and features one job (`tile_prep`), reference and samples another
    # (`tile_samples`), prediction and picture a third (`tile_map`).
    run_id = re.search(r"SLURM run ID: (\S+)", proc.stderr)
    assert run_id, "snakemake did not use the SLURM executor"
    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", proc.stderr))
    jobs = [j for j in slurm_cluster.jobs() if j["name"] == run_id.group(1)]
    assert {j["id"] for j in jobs} == submitted, (submitted, jobs)
    assert all(j["state"] == "COMPLETED" for j in jobs), jobs
    comments = sorted(j["comment"] for j in jobs)
    for group in ("tile_prep", "tile_samples", "tile_map"):
        assert sum(group in c for c in comments) == len(TINY_TILES), (group, comments)
    for rule in ("train", "merge", "report"):
        assert sum(c.startswith(f"rule_{rule}") for c in comments) == 1, (rule, comments)
    tile_rules = ("cloud_mask", "features", "reference", "sample", "predict")
    # a rule's own job is commented `rule_<name>` or `rule_<name>_wildcards_<...>` (not another rule's prefix)
    alone = [
        c for c in comments if any(c == f"rule_{rule}" or c.startswith(f"rule_{rule}_wildcards") for rule in tile_rules)
    ]
    assert not alone, f"tile rules submitted one by one: {alone}"
    # SLURM's own log of every job (.snakemake/slurm_logs/rule_<rule>/<tile>/<jobid>.log), kept
    # by the profile's slurm-keep-successful-logs.
    slurm_logs = tmp_path / ".snakemake" / "slurm_logs"
    assert {p.stem for p in slurm_logs.rglob("*.log")} == submitted
