"""Shared fixtures: the real Sentinel-2 data beside the checkout, and small tile grids."""

from __future__ import annotations

import copy
import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = REPO / "data"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real Sentinel-2 data the repository carries (`data/README.md`): a missing file fails, never skips."""
    missing = [line.split()[1] for line in (REAL_DATA / "SHA256SUMS").read_text().splitlines()]
    missing = [name for name in missing if not (REAL_DATA / name).exists()]
    if missing:
        pytest.fail(f"{REAL_DATA}: missing {', '.join(missing)}; restore them with `git checkout -- data/`")
    return REAL_DATA


def load_npy(path: Path) -> np.ndarray:
    """An EOPatch feature stored as `.npy` or gzip-compressed `.npy.gz`."""
    path = Path(path)
    if not path.exists() and path.with_suffix(".npy.gz").exists():
        path = path.with_suffix(".npy.gz")
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as handle:
            return np.load(handle)
    return np.load(path)


SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

# A 2 x 2 grid of 1 km tiles (100 x 100 px) of the synthetic area: every stage (wall times: tests/README.md).
TINY_TILES = ["x0457_y5097", "x0457_y5098", "x0458_y5097", "x0458_y5098"]
TINY_TEST_TILE = "x0458_y5098"


def default_config() -> dict:
    """The demo config (config/config.yaml) with the schema's defaults filled in, as the workflow sees it."""
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return copy.deepcopy(config)  # the defaults are the schema's own objects


def example_config(name: str) -> dict:
    """config/<name>.yaml as the workflow reads it with --configfile: over the schema's defaults."""
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    return copy.deepcopy(config)


def tiny_config(**overrides) -> dict:
    """The default config shrunk to a 2 x 2 grid of 1 km tiles, with spatial context on (so the runs exercise each
    tile's margin, which the default methods, context off, do not read); `overrides` are merged section-wise."""
    config = default_config()
    config["features"]["context_sigmas"] = [1, 3]
    config["area"]["tile_size_m"] = 1000
    config["synthetic"].update(origin=[457000, 5097000], tiles_x=2, tiles_y=2)
    config["split"]["test_tiles"] = [TINY_TEST_TILE]
    config["report"].update(plot_tiles=[TINY_TILES[0]], dpi=50)
    config["sampling"]["max_samples"] = 2000
    config["keep_intermediates"] = True  # tests inspect and change every stage's files
    for key, value in overrides.items():
        if isinstance(value, dict):
            config[key] = {**config[key], **copy.deepcopy(value)}
        else:
            config[key] = copy.deepcopy(value)
    return config


def write_config(workdir: Path, config: dict) -> Path:
    """Snakemake reads `config/config.yaml` relative to its working directory."""
    path = Path(workdir) / "config" / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: int = 1200) -> subprocess.CompletedProcess:
    """Run the repository's workflow in `workdir` with the laptop profile."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    command = [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    command += ["--profile", str(REPO / "profiles" / "default"), "--cores", "2", *args]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    if check and run.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    return run


@pytest.fixture(scope="session")
def completed_run(tmp_path_factory) -> Path:
    """One complete run of the tiny synthetic workflow; tests that change it work on a copy."""
    workdir = tmp_path_factory.mktemp("tiny-run")
    write_config(workdir, tiny_config())
    snakemake(workdir)
    return workdir


@pytest.fixture
def run_copy(completed_run, tmp_path) -> Path:
    """A copy of the completed run (timestamps kept) that a test may modify."""
    copy_dir = tmp_path / "run"
    shutil.copytree(completed_run, copy_dir, symlinks=True)
    return copy_dir
