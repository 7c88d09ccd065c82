"""Features stored as scaled int16 (landcover.stack.COMPACT) give the map float32 features give.

The chain the rules run, in process (features -> samples -> train -> predict, the schema's default model and
features), once on the float32 features and once on the same features written and read back, with the same seed:
on the synthetic truth and on the real patch.

The model's own map changes on fewer than 0.1 % of the pixels when it reads the stored features. A model trained on
the stored features is another model: LightGBM bins each feature by the counts of its distinct sampled values, which
the rounding merges, so its trees split elsewhere and a few percent of the labels differ, as with any other change
to the samples; its accuracy is not worse (within the 0.3 points the issue allows the map)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr
from affine import Affine
from conftest import default_config
from rasterio.crs import CRS
from sklearn.metrics import accuracy_score

from landcover import stack
from landcover.classes import EOLEARN_CLASSES, NO_DATA
from landcover.clouds import carried_cloud_masks
from landcover.features import tile_features
from landcover.ingest.eopatch import read_eopatch, read_eopatch_reference
from landcover.model import predict_tile, train_model
from landcover.reference import erode
from landcover.sampling import sample_pixels
from landcover.stack import TileGrid
from landcover.synthetic import synthesize_tile

SEED = 42
CLASSES = tuple(c for c in EOLEARN_CLASSES if c.id != NO_DATA)
PATCH = Path(__file__).resolve().parents[1] / "data" / "eolearn-testeopatch" / "TestEOPatch"


DEFAULTS = default_config()  # the schema's settings, as the workflow runs them
INTERPOLATION = {"dates": DEFAULTS["dates"], "valid_coverage_threshold": DEFAULTS["valid_coverage_threshold"]}


def round_trip(features: xr.Dataset, path: Path) -> xr.Dataset:
    stack.write(features, path)
    with stack.open(path) as ds:
        return ds.load()


def model(train: xr.Dataset, train_labels: np.ndarray, tile: str):
    """The schema's default model (temporal statistics, sqrt class weights, 60 rounds) on a tile's samples."""
    samples = sample_pixels(erode(train_labels, 1), train, tile, seed=SEED, max_samples=40000)
    return train_model(
        samples, CLASSES, seed=SEED, params={}, threads=1, temporal_stats=True, class_weight="sqrt", rounds=60
    )


def assert_same_map(train, train_compact, train_labels, tile, test, test_compact, truth):
    float32_model = model(train, train_labels, tile)
    float32 = predict_tile(*float32_model, test, threads=1)[0]
    read_back = predict_tile(*float32_model, test_compact, threads=1)[0]
    changed = float(np.mean(read_back != float32))
    print(f"{changed:.3%} of the labels change when the model reads the stored features")
    assert changed < 0.001, f"{changed:.3%} of the pixels changed label"

    compact = predict_tile(*model(train_compact, train_labels, tile), test_compact, threads=1)[0]
    labelled = truth != NO_DATA
    accuracy = {
        name: accuracy_score(truth[labelled], map_[labelled])
        for name, map_ in (("float32", float32), ("compact", compact))
    }
    print(
        f"trained on the stored features: {np.mean(compact != float32):.3%} of the labels differ, accuracy {accuracy}"
    )
    assert accuracy["compact"] >= accuracy["float32"] - 0.003, accuracy


def test_compact_features_give_the_same_map_on_the_synthetic_truth(tmp_path):
    halves = []
    for i, minx in enumerate((457900.0, 459100.0)):
        grid = TileGrid(f"t{i}", CRS.from_epsg(32633), Affine(10.0, 0.0, minx, 0.0, -10.0, 5101500.0), 120, 120)
        raw, truth = synthesize_tile(grid, 2017)
        clouds = xr.Dataset({"cloud_mask": truth["cloud"] | truth["shadow"]})  # the true masks: not under test
        features = tile_features(
            raw, clouds, DEFAULTS["features"]["bands"], DEFAULTS["features"]["indices"], **INTERPOLATION
        )
        halves.append((features, round_trip(features, tmp_path / f"t{i}.nc"), truth["land_cover"].values))
    (train, train_compact, train_truth), (test, test_compact, test_truth) = halves
    assert train_compact["features"].dtype == np.float32
    assert_same_map(train, train_compact, train_truth, "t0", test, test_compact, test_truth)


def test_compact_features_give_the_same_map_on_the_real_patch(real_data, tmp_path):
    """The eo-learn test patch cut in halves as tools/accuracy.py does: train on the left, map the right."""
    halves = []
    for col in (0, 1):
        tile = f"TestEOPatch_r0_c{col}"
        ds = read_eopatch(PATCH, tile, subtile=(0, col, 1, 2), index_features=["NDVI"])
        features = tile_features(ds, carried_cloud_masks(ds), bands=[], indices=["NDVI"], **INTERPOLATION)
        labels = read_eopatch_reference(PATCH, stack.grid_of(ds))
        halves.append((features, round_trip(features, tmp_path / f"{tile}.nc"), labels))
    (train, train_compact, train_labels), (test, test_compact, test_labels) = halves
    assert_same_map(train, train_compact, train_labels, "TestEOPatch_r0_c0", test, test_compact, test_labels)
