"""The one LightGBM land-cover model: training on the samples tables, saving, and tile prediction.

LightGBM sees contiguous class indices 0..K-1; the model's metadata (model.json) maps them back to
class ids and records the feature layout, so a tile whose features differ from the training
samples is refused instead of silently mis-read.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import xarray as xr

from landcover.atomic import atomic_path
from landcover.classes import NO_DATA, LandCoverClass
from landcover.sampling import ID_COLUMNS
from landcover.stack import load

log = logging.getLogger(__name__)


def load_samples(paths, columns: list[str] | None = None) -> pd.DataFrame:
    """All tiles' samples (or their `columns`) in one table; empty tables (tiles without reference) add nothing."""
    frames = [frame for _, frame in _sample_tables(paths, columns)]
    if not frames:
        return pd.DataFrame({name: [] for name in ID_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def _sample_tables(paths, columns: list[str] | None = None):
    """(path, table) of each non-empty samples table, one at a time, checked to share their columns."""
    first = None
    for path in paths:
        try:
            frame = pd.read_parquet(path, columns=columns)
        except Exception as err:  # pyarrow raises several types on damage
            raise ValueError(f"{path}: cannot be read as a samples table ({err})") from err
        missing = [name for name in ID_COLUMNS if name not in frame.columns]
        if missing:
            raise ValueError(f"{path}: samples table lacks column(s) {', '.join(missing)}")
        if frame.empty:
            log.info("%s: no samples", path)
            continue
        if first is None:
            first = (path, list(frame.columns))
        elif list(frame.columns) != first[1]:
            raise ValueError(f"{path}: feature columns differ from those of {first[0]}")
        yield path, frame


@dataclass(frozen=True)
class TrainingSet:
    """Training samples as LightGBM takes them: one float32 matrix (samples, feature columns) and labels.

    A country's samples are millions of rows; as a table, concatenated and converted, they needed about
    four times the matrix's memory."""

    features: np.ndarray
    labels: np.ndarray
    tile_ids: np.ndarray
    names: list[str]

    @classmethod
    def from_table(cls, samples: pd.DataFrame) -> TrainingSet:
        names = feature_layout(samples.columns)[0] if len(samples.columns) > len(ID_COLUMNS) else []
        return cls(
            samples[names].to_numpy(dtype=np.float32),
            samples["label"].to_numpy(),
            samples["tile_id"].to_numpy(),
            names,
        )


def read_training_set(paths) -> TrainingSet:
    """All tiles' samples, each table copied into its rows of one preallocated matrix as it is read."""
    sizes = []
    for path in paths:
        try:
            sizes.append(pq.read_metadata(path).num_rows)
        except Exception as err:
            raise ValueError(f"{path}: cannot be read as a samples table ({err})") from err
    features = labels = tile_ids = None
    names: list[str] = []
    start = 0
    for path, frame in _sample_tables(paths):
        if features is None:
            names = feature_layout(frame.columns)[0]
            features = np.empty((sum(sizes), len(names)), dtype=np.float32)
            labels = np.empty(sum(sizes), dtype=frame["label"].dtype)
            tile_ids = np.empty(sum(sizes), dtype=object)
        end = start + len(frame)
        features[start:end] = frame[names].to_numpy(dtype=np.float32)
        labels[start:end] = frame["label"].to_numpy()
        tile_ids[start:end] = frame["tile_id"].to_numpy()
        start = end
    if features is None:
        return TrainingSet(np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0, object), [])
    return TrainingSet(features[:start], labels[:start], tile_ids[:start], names)


def feature_layout(columns) -> tuple[list[str], list[str], list[str]]:
    """(flattened names, dates, features) of a samples table's columns (or the table), checked to be the full
    date-major grid."""
    names = [str(c) for c in columns if c not in ID_COLUMNS]
    dates: list[str] = []
    features: list[str] = []
    for name in names:
        feature, _, date = name.rpartition("_")
        if date not in dates:
            dates.append(date)
        if feature not in features:
            features.append(feature)
    if not names or names != [f"{feature}_{date}" for date in dates for feature in features]:
        raise ValueError(
            f"samples feature columns are not a date-major {{feature}}_{{YYYY-MM-DD}} grid: {names[:4]}..."
        )
    return names, dates, features


def train_model(
    samples: pd.DataFrame | TrainingSet,
    classes: tuple[LandCoverClass, ...],
    seed: int,
    params: dict,
    threads: int,
    training_tiles: list[str] | None = None,
) -> tuple[lgb.Booster, dict]:
    """One multiclass LightGBM model (LightGBM's defaults plus `params`), reproducible for a given seed."""
    training = samples if isinstance(samples, TrainingSet) else TrainingSet.from_table(samples)
    labels = training.labels
    by_id = {c.id: c for c in classes if c.id != NO_DATA}
    unknown = sorted(int(v) for v in set(np.unique(labels)) - set(by_id))
    if unknown:
        raise ValueError(f"training labels {unknown} are not configured classes")
    ids = np.unique(labels)
    if len(ids) < 2:
        tiles = ", ".join(training_tiles if training_tiles is not None else np.unique(training.tile_ids)) or "none"
        raise ValueError(
            f"the training samples hold {len(ids)} class(es) {ids.tolist()}: a classifier needs at least two "
            f"(training tiles: {tiles}; widen the reference (reference.path, reference.class_attribute) or train on "
            "more tiles (split.test_tiles, split.test_fraction))"
        )
    names, dates, features = feature_layout(training.names)
    lgb_params = {
        "objective": "multiclass",
        **params,
        "num_class": len(ids),
        "seed": int(seed),
        "deterministic": True,
        "force_col_wise": True,  # else LightGBM picks row/col-wise by timing
        "verbosity": -1,
    }
    dataset = lgb.Dataset(training.features, label=np.searchsorted(ids, labels), feature_name=names)
    counts = {int(c): int((labels == c).sum()) for c in ids}
    log.info("training on %d samples, %d features, class counts %s", len(labels), len(names), counts)
    booster = lgb.train({**lgb_params, "num_threads": int(threads)}, dataset, keep_training_booster=True)
    # Deterministic trees do not depend on the thread count; reset it so model.txt does not either.
    booster.reset_parameter({"num_threads": 0})
    metadata = {
        "feature_names": names,
        "dates": dates,
        "features": features,
        "classes": [{"id": int(c), "name": by_id[c].name, "colour": by_id[c].colour} for c in ids],
        "training_tiles": sorted(training_tiles if training_tiles is not None else np.unique(training.tile_ids)),
        "sample_counts": {str(c): n for c, n in counts.items()},
        "seed": int(seed),
        "lightgbm_params": lgb_params,
        "lightgbm_version": lgb.__version__,
    }
    return booster, metadata


def save_model(booster: lgb.Booster, metadata: dict, model_path, meta_path) -> None:
    with atomic_path(model_path) as tmp:
        tmp.write_text(booster.model_to_string())
    with atomic_path(meta_path) as tmp:
        tmp.write_text(json.dumps(metadata, indent=2) + "\n")


def load_model(model_path, meta_path) -> tuple[lgb.Booster, dict]:
    """The booster and its metadata, checked to belong together."""
    if not os.path.exists(model_path):
        raise ValueError(f"{model_path}: model file does not exist")
    try:
        booster = lgb.Booster(model_file=str(model_path))
    except lgb.basic.LightGBMError as err:
        raise ValueError(f"{model_path}: cannot be read as a LightGBM model ({err})") from err
    try:
        metadata = json.loads(Path(meta_path).read_text())
        names, n_classes = metadata["feature_names"], len(metadata["classes"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{meta_path}: cannot be read as model metadata ({err})") from err
    if booster.feature_name() != names or booster.num_model_per_iteration() != n_classes:
        raise ValueError(f"{meta_path}: metadata does not describe the model in {model_path}")
    return booster, metadata


def class_ids(metadata: dict) -> np.ndarray:
    """Class id of each model output column."""
    return np.array([c["id"] for c in metadata["classes"]], dtype=np.uint8)


def predict_proba(booster: lgb.Booster, metadata: dict, samples: pd.DataFrame, threads: int = 1) -> np.ndarray:
    """Class probabilities (n, K) of a samples table, columns in `class_ids` order."""
    if samples.empty:
        return np.zeros((0, len(metadata["classes"])))
    missing = [name for name in metadata["feature_names"] if name not in samples.columns]
    if missing:
        raise ValueError(f"samples lack the model's feature column(s) {missing[:4]}")
    table = samples[metadata["feature_names"]].to_numpy(dtype=np.float32)
    return booster.predict(table, num_threads=threads).reshape(len(table), -1)


def predict_tile(
    booster: lgb.Booster, metadata: dict, features_ds: xr.Dataset, block_rows: int = 128, threads: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, confidence) uint8 (y, x): class ids and round(100 * max probability), 0 where no observation.

    Rows are read and predicted `block_rows` at a time, so a tile's float table is never whole in memory."""
    tile = features_ds.attrs.get("tile_id", "?")
    dates = [str(d) for d in np.datetime_as_string(features_ds["date"].values, unit="D")]
    features = [str(f) for f in features_ds["feature"].values]
    if dates != metadata["dates"] or features != metadata["features"]:
        raise ValueError(
            f"tile {tile}: features (dates {dates[:1]}..{dates[-1:]} x{len(dates)}, {features}) do not match "
            f"the model's (dates {metadata['dates'][:1]}..{metadata['dates'][-1:]} x{len(metadata['dates'])}, "
            f"{metadata['features']})"
        )
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    ids = class_ids(metadata)
    height, width = features_ds.sizes["y"], features_ds.sizes["x"]
    labels = np.zeros((height, width), dtype=np.uint8)
    confidence = np.zeros((height, width), dtype=np.uint8)
    for start in range(0, height, block_rows):
        rows = slice(start, start + block_rows)
        valid = load(features_ds["valid_count"].isel(y=rows).transpose("y", "x")).ravel() > 0
        if not valid.any():
            continue
        block = load(features_ds["features"].isel(y=rows).transpose("y", "x", "date", "feature"))
        proba = booster.predict(block.reshape(valid.size, -1)[valid], num_threads=threads).reshape(valid.sum(), -1)
        labels[rows].reshape(-1)[valid] = ids[proba.argmax(axis=1)]  # views: the rows are contiguous
        confidence[rows].reshape(-1)[valid] = np.rint(100 * proba.max(axis=1))
    predicted = int((labels > 0).sum())
    log.info(
        "tile %s: predicted %d of %d pixels; %d without a valid observation all year are no data",
        tile,
        predicted,
        labels.size,
        labels.size - predicted,
    )
    return labels, confidence
