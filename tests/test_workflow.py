"""A real Snakemake run of a 2 x 2 synthetic grid, checking every output."""

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from conftest import TINY_TEST_TILE, TINY_TILES
from rasterio.crs import CRS
from rio_cogeo.cogeo import cog_validate

from landcover import stack

pytestmark = pytest.mark.slow


def test_every_per_tile_output_exists(completed_run):
    results = completed_run / "results"
    for tile in TINY_TILES:
        for path in (
            f"stacks/{tile}.nc",
            f"truth/{tile}.nc",
            f"clouds/{tile}.nc",
            f"features/{tile}.nc",
            f"reference/{tile}.tif",
            f"samples/{tile}.parquet",
            f"maps/{tile}.tif",
            f"maps/{tile}_confidence.tif",
        ):
            assert (results / path).stat().st_size > 0, path
        assert (completed_run / "logs" / "features" / f"{tile}.log").exists()
    assert not list(results.rglob(".*.tmp-*")), "temporary files were left behind"


def test_features_cover_the_date_grid(completed_run):
    ds = stack.open(completed_run / "results" / "features" / f"{TINY_TILES[0]}.nc", ("features", "valid_count"))
    margin = ds.attrs["margin_px"]  # the spatial context's reach, read from the source around the tile
    assert ds.sizes["date"] == 23 and margin == 9 and ds.sizes["y"] == ds.sizes["x"] == 100 + 2 * margin
    assert list(ds.feature.values) == ["B02", "B03", "B04", "B08", "B11", "B12", "NDVI", "NDWI", "NORM"]
    assert ds.features.dtype == np.float32
    log = (completed_run / "logs" / "features" / f"{TINY_TILES[0]}.log").read_text()
    assert "kept" in log.lower() and "dropped" in log.lower()


def test_samples_and_model(completed_run):
    results = completed_run / "results"
    samples = pd.read_parquet(results / "samples" / f"{TINY_TILES[0]}.parquet")
    assert {"tile_id", "row", "col", "label"} <= set(samples.columns) and len(samples) > 0
    meta = json.loads((results / "model" / "model.json").read_text())
    assert TINY_TEST_TILE not in meta["training_tiles"]
    assert sorted(meta["training_tiles"]) == sorted(set(TINY_TILES) - {TINY_TEST_TILE})


def test_report(completed_run):
    report = completed_run / "results" / "report"
    metrics = json.loads((report / "metrics.json").read_text())
    for key in ("overall_accuracy", "f1_weighted", "f1_macro", "kappa"):
        assert 0 <= metrics[key] <= 1, key
    for name in ("confusion_true", "confusion_predicted", "class_frequencies", "roc", "feature_importance"):
        assert (report / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    truth = json.loads((report / "truth_scores.json").read_text())
    assert truth["overall_accuracy"] > 0.5


def test_merged_map(completed_run):
    results = completed_run / "results"
    with rasterio.open(results / "landcover.tif") as src:
        assert src.crs == CRS.from_epsg(32633)
        assert src.bounds == pytest.approx((457000, 5097000, 459000, 5099000))
        assert src.res == (10, 10) and src.dtypes[0] == "uint8" and src.nodata == 0
        colours = src.colormap(1)
        assert colours[2][:3] == (5, 73, 7)  # forest, #054907
        labels = src.read(1)
        assert set(np.unique(labels)) <= {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
    is_valid, errors, _ = cog_validate(str(results / "landcover.tif"))
    assert is_valid, errors
    assert (results / "landcover_preview.png").exists()
    assert (results / "plots" / f"{TINY_TILES[0]}.png").exists()
    assert (results / "grid.gpkg").exists()
