"""Training, saving and tile prediction with the LightGBM model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from affine import Affine
from rasterio.crs import CRS

from landcover import stack
from landcover.classes import EOLEARN_CLASSES
from landcover.model import (
    TrainingSet,
    class_weights,
    feature_layout,
    load_model,
    load_samples,
    model_inputs,
    predict_proba,
    predict_tile,
    read_training_set,
    save_model,
    spatial_folds,
    train_model,
)
from landcover.sampling import feature_columns
from landcover.stack import TileGrid

DATES = np.array(["2017-01-01", "2017-01-17", "2017-02-02", "2017-02-18"], dtype="datetime64[D]")
FEATURES = ["B02", "B08", "NDVI"]
CLASS_IDS = [1, 2, 5, 8]


def synthetic_samples(n: int, class_ids, seed: int, tile: str = "x0001_y0001") -> pd.DataFrame:
    """Labelled pixels whose features drift with the class, plus noise and a few missing values."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(np.asarray(class_ids, dtype=np.uint8), size=n)
    values = (labels[:, None] * 0.1 + rng.normal(0, 0.15, (n, len(DATES) * len(FEATURES)))).astype(np.float32)
    values[rng.random(values.shape) < 0.05] = np.nan
    ids = pd.DataFrame({"tile_id": [tile] * n, "row": np.arange(n, dtype=np.int32), "col": 0, "label": labels})
    return pd.concat([ids, pd.DataFrame(values, columns=feature_columns(DATES, FEATURES))], axis=1)


def train(samples, threads=1, params=None):
    return train_model(samples, EOLEARN_CLASSES, seed=42, params=params or {"num_iterations": 20}, threads=threads)


@pytest.fixture(scope="module")
def trained():
    samples = synthetic_samples(600, CLASS_IDS, seed=1)
    booster, metadata = train(samples)
    return booster, metadata, samples


def test_training_is_byte_reproducible_whatever_the_thread_count(tmp_path):
    samples = synthetic_samples(800, CLASS_IDS, seed=2)
    outputs = []
    for run, threads in enumerate((1, 2, 2)):
        booster, metadata = train(samples, threads=threads)
        save_model(booster, metadata, tmp_path / f"{run}.txt", tmp_path / f"{run}.json")
        outputs.append(((tmp_path / f"{run}.txt").read_bytes(), (tmp_path / f"{run}.json").read_bytes()))
    assert outputs[0] == outputs[1] == outputs[2]


def test_model_metadata_describes_classes_features_and_training(trained, tmp_path):
    booster, metadata, samples = trained
    save_model(booster, metadata, tmp_path / "model.txt", tmp_path / "model.json")
    loaded, meta = load_model(tmp_path / "model.txt", tmp_path / "model.json")
    assert meta == json.loads(json.dumps(metadata))
    assert [c["id"] for c in meta["classes"]] == CLASS_IDS
    assert [c["name"] for c in meta["classes"]] == ["cultivated land", "forest", "water", "artificial surface"]
    assert meta["classes"][1]["colour"] == "#054907"
    assert meta["dates"] == [str(d) for d in DATES] and meta["features"] == FEATURES
    assert meta["feature_names"][:4] == ["B02_2017-01-01", "B08_2017-01-01", "NDVI_2017-01-01", "B02_2017-01-17"]
    assert meta["sample_counts"] == {str(c): int((samples["label"] == c).sum()) for c in CLASS_IDS}
    assert meta["training_tiles"] == ["x0001_y0001"] and meta["seed"] == 42
    assert meta["lightgbm_params"]["objective"] == "multiclass" and meta["lightgbm_params"]["num_class"] == 4
    np.testing.assert_array_equal(predict_proba(loaded, meta, samples), predict_proba(booster, metadata, samples))


def test_fewer_than_two_classes_is_refused():
    with pytest.raises(ValueError, match="at least two"):
        train(synthetic_samples(50, [3], seed=3))
    with pytest.raises(ValueError, match="at least two"):
        train(load_samples([]))


def test_labels_outside_the_configured_classes_are_refused():
    samples = synthetic_samples(50, [1, 2], seed=3)
    samples.loc[0, "label"] = 42
    with pytest.raises(ValueError, match=r"\[42\] are not configured"):
        train(samples)


def test_feature_columns_must_be_the_date_major_grid():
    samples = synthetic_samples(20, [1, 2], seed=3)
    assert feature_layout(samples)[1:] == ([str(d) for d in DATES], FEATURES)
    with pytest.raises(ValueError, match="date-major"):
        feature_layout(samples.drop(columns=["NDVI_2017-01-17"]))


@pytest.fixture
def sample_tables(tmp_path):
    """Two tiles' samples tables with an empty one between them, and the tables themselves."""
    first, second = synthetic_samples(300, CLASS_IDS, 4, "a"), synthetic_samples(200, [2, 5], 5, "b")
    for name, frame in (("a", first), ("b", second), ("empty", first.iloc[:0])):
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
    return [tmp_path / "a.parquet", tmp_path / "empty.parquet", tmp_path / "b.parquet"], first, second


def test_load_samples_concatenates_and_skips_empty_tables(sample_tables):
    paths, first, second = sample_tables
    pd.testing.assert_frame_equal(load_samples(paths), pd.concat([first, second], ignore_index=True))


@pytest.mark.parametrize("read", [load_samples, read_training_set])
def test_reading_samples_names_bad_files(read, sample_tables, tmp_path):
    paths, _, second = sample_tables
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ValueError, match="bad.parquet"):
        read([paths[0], tmp_path / "bad.parquet"])
    second.drop(columns=["B02_2017-01-01"]).to_parquet(tmp_path / "other.parquet", index=False)
    with pytest.raises(ValueError, match="other.parquet.*differ"):
        read([paths[0], tmp_path / "other.parquet"])


@pytest.mark.parametrize("temporal_stats", [False, True])
@pytest.mark.parametrize("binning_sample", [None, 150])  # 150 of the 500 rows: LightGBM bins from a sample of rows
def test_the_training_set_read_file_by_file_trains_the_same_model_as_the_table(
    sample_tables, tmp_path, temporal_stats, binning_sample
):
    paths = sample_tables[0]
    training = read_training_set(paths, temporal_stats=temporal_stats)
    table = load_samples(paths)
    grid = table[training.names].to_numpy(np.float32)
    _, dates, features = feature_layout(training.names)
    inputs = np.concatenate([part[0 : len(part)] for part in training.features])  # as LightGBM takes them in batches
    np.testing.assert_array_equal(inputs, model_inputs(grid, len(dates), len(features), temporal_stats))
    sampled = training.features[-1][len(training.features[-1]) - 1]  # a row of the binning sample: float64
    np.testing.assert_array_equal(sampled, inputs[-1].astype(np.float64))
    np.testing.assert_array_equal(training.labels, table["label"].to_numpy())
    assert inputs.dtype == np.float32 and list(training.tile_ids[[0, -1]]) == ["a", "b"]
    for run, samples in enumerate((training, table)):
        params = {"num_iterations": 20, **({"bin_construct_sample_cnt": binning_sample} if binning_sample else {})}
        booster, metadata = train_model(
            samples, EOLEARN_CLASSES, seed=42, params=params, threads=1, temporal_stats=temporal_stats
        )
        save_model(booster, metadata, tmp_path / f"{run}.txt", tmp_path / f"{run}.json")
    assert (tmp_path / "0.txt").read_bytes() == (tmp_path / "1.txt").read_bytes()
    assert (tmp_path / "0.json").read_bytes() == (tmp_path / "1.json").read_bytes()
    # LightGBM binned the matrix: train_model let it go, and says so if the set is used again
    assert training.features is None
    with pytest.raises(ValueError, match="released"):
        train(training)
    with pytest.raises(ValueError, match="at least two"):
        train(read_training_set([paths[1]]))


def test_load_model_names_a_corrupt_file(trained, tmp_path):
    booster, metadata, _ = trained
    save_model(booster, metadata, tmp_path / "model.txt", tmp_path / "model.json")
    (tmp_path / "broken.txt").write_text("tree\nnot a model")
    with pytest.raises(ValueError, match="broken.txt"):
        load_model(tmp_path / "broken.txt", tmp_path / "model.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json"):
        load_model(tmp_path / "model.txt", tmp_path / "broken.json")


def features_file(path, rng, dates=DATES) -> np.ndarray:
    """A features.nc of 23 x 17 pixels; returns the cube, NaN where valid_count is 0."""
    grid = TileGrid("x0050_y0500", CRS.from_epsg(32633), Affine(10, 0, 500000, 0, -10, 5000000), 23, 17)
    labels = rng.choice(CLASS_IDS, size=(grid.height, grid.width))
    cube = (labels[None, :, :, None] * 0.1 + rng.normal(0, 0.15, (len(dates), 23, 17, len(FEATURES)))).astype(
        np.float32
    )
    no_data = rng.random((23, 17)) < 0.2
    no_data[:5] = True  # a whole block without observations
    cube[:, no_data, :] = np.nan
    ds = xr.Dataset(
        {
            "features": (("date", "y", "x", "feature"), cube),
            "valid_count": (("y", "x"), np.where(no_data, 0, 7).astype(np.uint16)),
        },
        coords={"date": dates.astype("datetime64[ns]"), "feature": FEATURES},
    )
    stack.write(stack.with_grid(ds, grid), path)
    return cube


def test_predict_tile_equals_lightgbm_on_the_flattened_table(trained, tmp_path):
    booster, metadata, _ = trained
    cube = features_file(tmp_path / "features.nc", np.random.default_rng(6))
    with stack.open(tmp_path / "features.nc") as ds:
        labels, confidence = predict_tile(booster, metadata, ds, block_rows=5, threads=2)

    table = cube.transpose(1, 2, 0, 3).reshape(23 * 17, -1)  # date-major, as the samples' columns
    proba = booster.predict(table)
    no_data = np.isnan(table).all(axis=1)
    expected_labels = np.where(no_data, 0, np.array(CLASS_IDS)[proba.argmax(axis=1)]).reshape(23, 17)
    expected_confidence = np.where(no_data, 0, np.rint(100 * proba.max(axis=1))).reshape(23, 17)
    assert labels.dtype == confidence.dtype == np.uint8
    np.testing.assert_array_equal(labels, expected_labels)
    np.testing.assert_array_equal(confidence, expected_confidence)
    assert (labels[:5] == 0).all() and (confidence[~no_data.reshape(23, 17)] >= 25).all()
    assert set(np.unique(labels)) <= {0, *CLASS_IDS}


def test_predict_tile_refuses_features_unlike_the_training_samples(trained, tmp_path):
    booster, metadata, _ = trained
    features_file(tmp_path / "features.nc", np.random.default_rng(7), dates=DATES + 1)
    with stack.open(tmp_path / "features.nc") as ds, pytest.raises(ValueError, match="x0050_y0500.*do not match"):
        predict_tile(booster, metadata, ds)


def test_a_model_with_temporal_statistics_predicts_a_tile_as_its_samples(tmp_path):
    """Training (samples table), the report (predict_proba) and the map (predict_tile) build the same inputs."""
    samples = synthetic_samples(600, CLASS_IDS, seed=3)
    booster, metadata = train_model(
        samples, EOLEARN_CLASSES, seed=42, params={"num_iterations": 10}, threads=1, temporal_stats=True
    )
    assert metadata["feature_names"][-1] == "NDVI_diff02" and "B08_argmax" in metadata["feature_names"]
    cube = features_file(tmp_path / "features.nc", np.random.default_rng(8))
    with stack.open(tmp_path / "features.nc") as ds:
        labels, _ = predict_tile(booster, metadata, ds, block_rows=5)
    valid = ~np.isnan(cube).all(axis=(0, 3))
    rows, cols = np.nonzero(valid)
    table = pd.DataFrame(
        cube[:, rows, cols].transpose(1, 0, 2).reshape(len(rows), -1),
        columns=metadata["feature_names"][: len(DATES) * len(FEATURES)],
    )
    proba = predict_proba(booster, metadata, table)
    np.testing.assert_array_equal(labels[rows, cols], np.array(CLASS_IDS)[proba.argmax(axis=1)])


def test_class_weights_lift_rare_classes():
    labels = np.array([1] * 90 + [2] * 10)
    balanced, sqrt = class_weights(labels, "balanced"), class_weights(labels, "sqrt")
    assert balanced[-1] / balanced[0] == pytest.approx(9.0) and sqrt[-1] / sqrt[0] == pytest.approx(3.0)
    assert balanced.sum() == pytest.approx(len(labels)) and class_weights(labels, None) is None


def test_spatial_cross_validation_keeps_blocks_whole_and_stays_inside_the_training_samples():
    samples = synthetic_samples(400, CLASS_IDS, seed=4)
    samples["row"], samples["col"] = np.divmod(np.arange(400), 20)
    training = TrainingSet.from_table(samples)
    folds = spatial_folds(training, folds=4, block_px=5, seed=1)
    block = (samples["row"] // 5).astype(str) + ":" + (samples["col"] // 5).astype(str)
    for fit, held in folds:
        assert not set(block.iloc[fit]) & set(block.iloc[held])
    assert sorted(np.concatenate([held for _, held in folds])) == list(range(400))
    tuning = {"folds": 4, "block_px": 5, "max_rounds": 15, "early_stopping_rounds": 3, "num_leaves": [4, 8]}
    booster, metadata = train_model(samples, EOLEARN_CLASSES, seed=42, params={}, threads=1, tuning=tuning)
    chosen = metadata["lightgbm_params"]
    assert chosen["num_leaves"] in (4, 8) and booster.current_iteration() == chosen["num_iterations"] <= 15
    assert set(metadata["spatial_cv"]) == {4, 8}
