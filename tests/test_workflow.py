"""A real Snakemake run of a 2 x 2 synthetic grid of 1 km tiles, checking every output and what it holds."""

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from conftest import TINY_TEST_TILE, TINY_TILES, tiny_config
from rasterio.crs import CRS
from rio_cogeo.cogeo import cog_validate
from sklearn.metrics import accuracy_score

from landcover import stack

# The tiny run's grid, written out rather than computed by the package: 100 x 100 px of 10 m from (457000, 5097000).
TILE_M, PIXEL_M, CRS_32633 = 1000, 10, CRS.from_epsg(32633)
CLASSES = tiny_config()["classes"]  # the schema's ten eo-learn classes: id, name, colour

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
    # the spatial context's reach (9 px) rounded up to whole 80 m cloud blocks, read from the source around the tile
    margin = ds.attrs["margin_px"]
    assert ds.sizes["date"] == 23 and margin == 16 and ds.sizes["y"] == ds.sizes["x"] == 100 + 2 * margin
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


def test_the_truth_score_is_the_test_tiles_accuracy_against_the_generators_land_cover(completed_run):
    """truth_scores.json against scikit-learn on the same pixels (both sides have data). Whether the score lies in
    the band the synthetic area is calibrated for is tests/test_accuracy.py's (the default area, not this tiny one)."""
    results = completed_run / "results"
    truth, predicted = [], []
    for tile in [TINY_TEST_TILE]:
        with stack.open(results / "truth" / f"{tile}.nc", ("land_cover",)) as ds:
            truth.append(stack.load(ds["land_cover"].transpose("y", "x")).ravel())
        with rasterio.open(results / "maps" / f"{tile}.tif") as src:
            predicted.append(src.read(1).ravel())
    truth, predicted = np.concatenate(truth), np.concatenate(predicted)
    scored = (truth != 0) & (predicted != 0)
    scores = json.loads((results / "report" / "truth_scores.json").read_text())
    assert scores["overall_accuracy"] == pytest.approx(accuracy_score(truth[scored], predicted[scored]), abs=1e-12)
    assert scores["no_data_share"] == pytest.approx((predicted == 0).mean(), abs=1e-12)


def _expected_colour_table_and_names(src) -> None:
    """The configured classes' colours (opaque) and names on band 1: the colour table and CLASS_<id> tags."""
    table, tags = src.colormap(1), src.tags(1)
    for c in CLASSES:
        rgb = tuple(int(c["colour"][i : i + 2], 16) for i in (1, 3, 5))
        assert table[c["id"]] == (*rgb, 255), c
        assert tags[f"CLASS_{c['id']}"] == c["name"]


def test_each_tile_map_lies_on_its_tile_and_holds_configured_classes(completed_run):
    class_ids = {c["id"] for c in CLASSES}
    for tile in TINY_TILES:
        ix, iy = int(tile[1:5]), int(tile[7:])
        with rasterio.open(completed_run / "results" / "maps" / f"{tile}.tif") as src:
            assert src.crs == CRS_32633 and (src.width, src.height) == (TILE_M // PIXEL_M, TILE_M // PIXEL_M)
            assert src.transform == rasterio.Affine(PIXEL_M, 0, ix * TILE_M, 0, -PIXEL_M, (iy + 1) * TILE_M)
            _expected_colour_table_and_names(src)
            labels = src.read(1)
        present = set(np.unique(labels).tolist())
        assert present <= class_ids | {0} and len(present - {0}) >= 2, (tile, present)
        assert (labels != 0).mean() > 0.9, tile  # the synthetic area has imagery everywhere


def test_merged_map(completed_run):
    """The merged map is the tile maps side by side on the area's grid, with the configured classes' colours and
    names."""
    results = completed_run / "results"
    with rasterio.open(results / "landcover.tif") as src:
        assert src.crs == CRS_32633
        assert src.bounds == pytest.approx((457000, 5097000, 459000, 5099000))
        assert src.res == (10, 10) and src.dtypes[0] == "uint8" and src.nodata == 0
        _expected_colour_table_and_names(src)
        assert src.descriptions == ("land cover class",)
        labels = src.read(1)
    for tile in TINY_TILES:
        ix, iy = int(tile[1:5]) - 457, int(tile[7:]) - 5097
        rows, cols = slice((1 - iy) * 100, (2 - iy) * 100), slice(ix * 100, (ix + 1) * 100)
        with rasterio.open(results / "maps" / f"{tile}.tif") as src:
            np.testing.assert_array_equal(labels[rows, cols], src.read(1), err_msg=tile)
    is_valid, errors, _ = cog_validate(str(results / "landcover.tif"))
    assert is_valid, errors
    assert (results / "landcover_preview.png").exists()
    assert (results / "plots" / f"{TINY_TILES[0]}.png").exists()
    assert (results / "grid.gpkg").exists()
