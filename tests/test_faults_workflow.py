"""Bad tiles in a real run: the failing job names the tile and file, the other tiles finish, nothing half-written.

One run on a copy of the completed 2 x 2 run, with three tiles damaged at once:
- the test tile's raw stack truncated (a download cut short): its jobs fail, naming the file;
- one training tile's cloud masks all cloud (no frame passes the valid-coverage threshold): still predicted, as
  no data, and its features log says why;
- another training tile's reference polygons emptied: no samples, still predicted.
The remaining training tile trains the model (fewer iterations, to keep the run short). The methods are the
defaults, spatial context on: each tile reads its margin from its own source, so a damaged tile stops only its own
chain (`test_a_damaged_tile_stops_only_its_own_chain`).
"""

import json
import re
import shutil
import time

import geopandas as gpd
import pandas as pd
import pytest
import rasterio
from conftest import TINY_TEST_TILE, TINY_TILES, snakemake, tiny_config, write_config

from landcover import stack
from landcover.config import margin_px

pytestmark = pytest.mark.slow

TRUNCATED, CLOUDY, UNLABELLED, HEALTHY = TINY_TEST_TILE, TINY_TILES[1], TINY_TILES[2], TINY_TILES[0]
FAST_MODEL = {"seed": 42, "params": {"num_iterations": 10}}


def temporaries(workdir):
    return sorted(str(p) for p in (workdir / "results").rglob(".*") if ".tmp-" in p.name or ".scratch-" in p.name)


@pytest.fixture(scope="module")
def faulty_run(completed_run, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("faulty") / "run"
    shutil.copytree(completed_run, workdir, symlinks=True)
    results = workdir / "results"
    write_config(workdir, tiny_config(model=FAST_MODEL))

    raw = results / "stacks" / f"{TRUNCATED}.nc"
    raw.write_bytes(raw.read_bytes()[: raw.stat().st_size // 2])

    clouds_path = results / "clouds" / f"{CLOUDY}.nc"
    with stack.open(clouds_path, required=("cloud_mask",)) as ds:
        clouds = ds.load()
    clouds["cloud_mask"][:] = True
    stack.write(clouds, clouds_path)

    polygons = results / "synthetic" / "reference" / f"{UNLABELLED}.gpkg"
    empty = gpd.read_file(polygons).iloc[:0]
    polygons.unlink()
    empty.to_file(polygons, driver="GPKG", layer="reference")

    started = time.time()
    run = snakemake(workdir, check=False)
    return workdir, run, started


def test_the_run_fails_but_names_the_truncated_tile_and_file(faulty_run):
    workdir, run, _ = faulty_run
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "Error in rule cloud_mask" in output and f"tile={TRUNCATED}" in output
    log = (workdir / "logs" / "cloud_mask" / f"{TRUNCATED}.log").read_text()
    assert f"results/stacks/{TRUNCATED}.nc: cannot be read as a tile file" in log and "truncated file" in log


def test_nothing_half_written_remains(faulty_run):
    workdir, _, _ = faulty_run
    results = workdir / "results"
    assert not (results / "clouds" / f"{TRUNCATED}.nc").exists()  # the failed job's outputs are gone
    assert not (results / "reference" / f"{TRUNCATED}.tif").exists()
    assert (results / "landcover.tif").stat().st_mtime < faulty_run[2]  # the merge waits for the missing tile
    assert temporaries(workdir) == []


def test_the_other_tiles_finish(faulty_run):
    workdir, _, started = faulty_run
    for tile in (HEALTHY, CLOUDY, UNLABELLED):
        assert (workdir / "results" / "maps" / f"{tile}.tif").stat().st_mtime > started, tile
    metadata = json.loads((workdir / "results" / "model" / "model.json").read_text())
    assert metadata["lightgbm_params"]["num_iterations"] == 10  # the model was retrained ...
    assert sum(metadata["sample_counts"].values()) == len(
        pd.read_parquet(workdir / "results" / "samples" / f"{HEALTHY}.parquet", columns=["label"])
    )  # ... on the one tile with samples


def test_a_tile_without_a_usable_frame_is_predicted_as_no_data_and_its_log_says_why(faulty_run):
    workdir, _, _ = faulty_run
    log = (workdir / "logs" / "features" / f"{CLOUDY}.log").read_text()
    assert "no frame has valid coverage above 0.8" in log
    grown = (100 + 2 * margin_px(tiny_config())) ** 2  # the tile and its margin
    assert f"{grown} of {grown} pixels have no valid observation" in log
    with rasterio.open(workdir / "results" / "maps" / f"{CLOUDY}.tif") as src:
        assert (src.read(1) == 0).all()
    assert (
        "predicted 0 of 10000 pixels; 10000 without a valid observation"
        in (workdir / "logs" / "predict" / f"{CLOUDY}.log").read_text()
    )


def test_a_tile_without_reference_polygons_has_no_samples_but_is_predicted(faulty_run):
    workdir, _, _ = faulty_run
    samples = pd.read_parquet(workdir / "results" / "samples" / f"{UNLABELLED}.parquet")
    assert samples.empty and "label" in samples.columns
    with rasterio.open(workdir / "results" / "reference" / f"{UNLABELLED}.tif") as src:
        assert (src.read() == 0).all()
    with rasterio.open(workdir / "results" / "maps" / f"{UNLABELLED}.tif") as src:
        assert (src.read(1) > 0).all()


def test_the_coverage_threshold_is_relaxed_per_run(run_copy):
    """`--config valid_coverage_threshold=0.5` reaches the features stage without a code change."""
    tile = HEALTHY
    features = run_copy / "results" / "features" / f"{tile}.nc"
    with stack.open(features) as ds:
        kept_before = len(ds.attrs["kept_dates"].split(","))
    dry = snakemake(run_copy, "-n", "--config", "valid_coverage_threshold=0.5")
    assert dry.stdout.count("rule features:") == len(TINY_TILES) and "Params have changed" in dry.stdout
    snakemake(run_copy, f"results/features/{tile}.nc", "--config", "valid_coverage_threshold=0.5")
    with stack.open(features) as ds:
        assert ds.attrs["valid_coverage_threshold"] == 0.5
        assert len(ds.attrs["kept_dates"].split(",")) > kept_before
    assert "valid coverage > 0.5" in (run_copy / "logs" / "features" / f"{tile}.log").read_text()


BAD_CONFIGS = {
    "unknown key": (lambda c: c["sampling"].update(max_sample=10), "max_sample"),
    "wrong type": (lambda c: c["dates"].update(step_days="sixteen"), "step_days"),
    "dates backwards": (lambda c: c["dates"].update(start="2017-12-31", end="2017-01-01"), "dates.end"),
    "test tile outside the grid": (lambda c: c["split"].update(test_tiles=["x0999_y0999"]), "split.test_tiles"),
}


@pytest.mark.parametrize("case", BAD_CONFIGS)
def test_a_bad_config_stops_before_any_job_naming_the_setting(tmp_path, case):
    edit, setting = BAD_CONFIGS[case]
    config = tiny_config()
    edit(config)
    write_config(tmp_path, config)
    run = snakemake(tmp_path, check=False, timeout=300)
    assert run.returncode != 0
    assert setting in run.stdout + run.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


def test_a_damaged_tile_stops_only_its_own_chain(faulty_run):
    """With spatial context on, the only failed jobs are the truncated tile's, and what is left to do is its chain
    and the whole-area outputs after the merge: every other tile's samples and map are done."""
    workdir, run, _ = faulty_run
    errors = re.findall(r"^Error in rule \w+:\n(?:[ \t]+.*\n)+", run.stdout + run.stderr, re.MULTILINE)
    assert errors and all({tile for tile in TINY_TILES if tile in error} == {TRUNCATED} for error in errors), errors
    left = snakemake(workdir, "-n").stdout
    per_tile = set(re.findall(r"wildcards: tile=(\S+)", left))
    assert per_tile == {TRUNCATED}
    for folder in ("clouds", "features", "samples", "maps"):
        assert f"results/{folder}/{TRUNCATED}" in left, folder
    assert "rule train:" not in left  # the truncated tile is the test tile: the model does not wait for it
