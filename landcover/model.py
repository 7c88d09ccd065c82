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
from typing import TYPE_CHECKING

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import xarray as xr

from landcover.atomic import atomic_path
from landcover.classes import NO_DATA, LandCoverClass
from landcover.context import CONTEXT_ROWS, context_blocks, context_names
from landcover.features import temporal_features, temporal_names
from landcover.grid import tile_window
from landcover.sampling import ID_COLUMNS, feature_columns

if TYPE_CHECKING:
    from landcover.trees import CompiledModel

log = logging.getLogger(__name__)


def load_samples(paths, columns: list[str] | None = None) -> pd.DataFrame:
    """All tiles' samples (or their `columns`) in one table; empty tables (tiles without reference) add nothing."""
    frames = [frame for _, frame, _ in _sample_tables(paths, columns)]
    if not frames:
        return pd.DataFrame({name: [] for name in ID_COLUMNS})
    return pd.concat(frames, ignore_index=True)


def _sample_tables(paths, columns: list[str] | None = None):
    """(path, table, its columns) of each non-empty samples table, one at a time (only `columns` of it read),
    checked to share their columns."""
    first = None
    for path in paths:
        try:
            names = [name for name in pq.read_schema(path).names if not name.startswith("__index_level_")]
            missing = [name for name in ID_COLUMNS if name not in names]
            frame = None if missing else pd.read_parquet(path, columns=columns)
        except Exception as err:  # pyarrow raises several types on damage
            raise ValueError(f"{path}: cannot be read as a samples table ({err})") from err
        if missing:
            raise ValueError(f"{path}: samples table lacks column(s) {', '.join(missing)}")
        if frame.empty:
            log.info("%s: no samples", path)
            continue
        if first is None:
            first = (path, names)
        elif names != first[1]:
            raise ValueError(f"{path}: feature columns differ from those of {first[0]}")
        yield path, frame, names


@dataclass
class TrainingSet:
    """Training samples as LightGBM takes them: float32 model inputs (samples, columns) and labels.

    The inputs are the per-date features (`names`), then their temporal statistics when `temporal_stats`: one
    matrix, or read from the samples tables as LightGBM bins them (`read_training_set`). `train_model` drops them
    (sets `features` to None) once binned: a country's samples are millions of rows."""

    features: np.ndarray | list[lgb.Sequence] | None
    labels: np.ndarray
    tile_ids: np.ndarray
    names: list[str]
    rows: np.ndarray | None = None  # pixel positions, for spatial cross-validation
    cols: np.ndarray | None = None
    temporal_stats: bool = False

    @classmethod
    def from_table(cls, samples: pd.DataFrame, temporal_stats: bool = False) -> TrainingSet:
        names = feature_layout(samples.columns)[0] if len(samples.columns) > len(ID_COLUMNS) else []
        grid = samples[names].to_numpy(dtype=np.float32)
        return cls(
            _with_statistics(grid, names) if temporal_stats and names else grid,
            samples["label"].to_numpy(),
            samples["tile_id"].to_numpy(),
            names,
            samples["row"].to_numpy() if "row" in samples else None,
            samples["col"].to_numpy() if "col" in samples else None,
            temporal_stats and bool(names),
        )


def _with_statistics(grid: np.ndarray, names: list[str]) -> np.ndarray:
    _, dates, features = feature_layout(names)
    return model_inputs(grid, len(dates), len(features), True)


class TableInputs(lgb.Sequence):
    """One samples table's model inputs (float32), read when LightGBM asks for its rows: it takes its binning sample
    of rows, then all rows in batches, both in table order, so only one table is in memory at a time (`loaded`,
    shared by a training set's tables) and never the country's matrix."""

    batch_size = 8192

    def __init__(self, path, names: list[str], rows: int, temporal_stats: bool, loaded: dict):
        self.path, self.names, self.rows, self.temporal_stats, self.loaded = path, names, rows, temporal_stats, loaded

    def __len__(self) -> int:
        return self.rows

    def inputs(self) -> np.ndarray:
        if self.loaded.get("path") != self.path:
            self.loaded.clear()  # the previous table goes before this one comes
            try:
                grid = pd.read_parquet(self.path, columns=self.names).to_numpy(dtype=np.float32)
            except Exception as err:
                raise ValueError(f"{self.path}: cannot be read as a samples table ({err})") from err
            if len(grid) != self.rows:
                raise ValueError(f"{self.path}: holds {len(grid)} samples, {self.rows} when the training began")
            inputs = _with_statistics(grid, self.names) if self.temporal_stats else grid
            self.loaded.update(path=self.path, inputs=inputs)
        return self.loaded["inputs"]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.inputs()[index]
        return self.inputs()[index].astype(np.float64)  # the binning sample: rows of float64, each its own copy


def read_training_set(paths, temporal_stats: bool = False) -> TrainingSet:
    """All tiles' samples: labels and positions read now, the model inputs (with their temporal statistics when
    `temporal_stats`) one `TableInputs` per table, read as LightGBM bins them."""
    tables, labels, tile_ids, rows, cols = [], [], [], [], []
    names: list[str] = []
    loaded: dict = {}
    for path, frame, columns in _sample_tables(paths, list(ID_COLUMNS)):
        names = feature_layout(columns)[0]
        tables.append(TableInputs(path, names, len(frame), temporal_stats, loaded))
        labels.append(frame["label"].to_numpy())
        tile_ids.append(frame["tile_id"].to_numpy(dtype=object))
        rows.append(frame["row"].to_numpy(dtype=np.int32))
        cols.append(frame["col"].to_numpy(dtype=np.int32))
    if not tables:
        return TrainingSet(np.zeros((0, 0), np.float32), np.zeros(0, np.int64), np.zeros(0, object), [])
    return TrainingSet(
        tables,
        *(np.concatenate(a) for a in (labels, tile_ids)),
        names,
        *map(np.concatenate, (rows, cols)),
        temporal_stats,
    )


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


ROUNDS = {
    "num_iterations",
    "num_iteration",
    "n_iter",
    "num_tree",
    "num_trees",
    "num_round",
    "num_rounds",
    "nrounds",
    "num_boost_round",
    "n_estimators",
    "max_iter",
}  # LightGBM's names for it


def model_inputs(grid: np.ndarray, n_dates: int, n_features: int, temporal_stats: bool) -> np.ndarray:
    """The model's input matrix from per-date features (n, date * feature, date-major): the same with the temporal
    statistics appended when the model uses them (landcover.features.temporal_features)."""
    if not temporal_stats:
        return grid
    series = grid.reshape(len(grid), n_dates, n_features)
    return np.concatenate([grid, temporal_features(series)], axis=1)


def class_weights(labels: np.ndarray, scheme: str | None) -> np.ndarray | None:
    """Per-sample weights that lift rare classes: `balanced` n / (K n_c), `sqrt` its square root, None: none."""
    if scheme in (None, "none"):
        return None
    ids, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    weight = len(labels) / (len(ids) * counts)
    if scheme == "sqrt":
        weight = np.sqrt(weight)
    elif scheme != "balanced":
        raise ValueError(f"model.class_weight must be none, balanced or sqrt, got {scheme!r}")
    return weight[inverse].astype(np.float32)


def spatial_folds(training: TrainingSet, folds: int, block_px: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cross-validation folds of whole square blocks of `block_px` pixels of the training tiles: neighbouring
    pixels, nearly copies of each other, never sit on both sides of a fold."""
    if training.rows is None:
        raise ValueError("spatial cross-validation needs the samples' row and col")
    blocks = pd.factorize(
        pd.Series(training.tile_ids.astype(str))
        + ":"
        + (training.rows // block_px).astype(str)
        + ":"
        + (training.cols // block_px).astype(str)
    )[0]
    n_blocks = blocks.max() + 1
    if n_blocks < folds:
        raise ValueError(f"spatial cross-validation: {n_blocks} blocks of {block_px} px cannot make {folds} folds")
    fold_of_block = np.random.default_rng(seed).permutation(n_blocks) % folds
    fold = fold_of_block[blocks]
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(folds)]


def tune(dataset: lgb.Dataset, params: dict, folds, tuning: dict) -> tuple[dict, int, dict]:
    """(params, rounds, scores): the `tuning["num_leaves"]` candidate and number of rounds (early stopping, at most
    `tuning["max_rounds"]`) with the lowest cross-validated multi_logloss on the training tiles' folds."""
    best = None
    scores = {}
    for leaves in tuning.get("num_leaves") or [params.get("num_leaves", 31)]:
        trial = {**params, "num_leaves": int(leaves)}
        history = lgb.cv(
            trial,
            dataset,
            num_boost_round=int(tuning["max_rounds"]),
            folds=folds,
            callbacks=[lgb.early_stopping(int(tuning["early_stopping_rounds"]), verbose=False)],
        )
        losses = history["valid multi_logloss-mean"]
        scores[int(leaves)] = {"rounds": len(losses), "multi_logloss": float(losses[-1])}
        if best is None or losses[-1] < best[2]:
            best = (trial, len(losses), losses[-1])
    log.info("spatial cross-validation (num_leaves: rounds, logloss): %s", scores)
    return best[0], best[1], scores


def train_model(
    samples: pd.DataFrame | TrainingSet,
    classes: tuple[LandCoverClass, ...],
    seed: int,
    params: dict,
    threads: int,
    training_tiles: list[str] | None = None,
    temporal_stats: bool = False,
    class_weight: str | None = None,
    tuning: dict | None = None,
    rounds: int | None = None,
) -> tuple[lgb.Booster, dict]:
    """One multiclass LightGBM model (LightGBM's defaults plus `params`), reproducible for a given seed.

    `temporal_stats` adds the series' statistics to the inputs, `class_weight` lifts rare classes, `tuning`
    ({folds, block_px, max_rounds, early_stopping_rounds, num_leaves}) picks the number of trees and leaves by
    spatial cross-validation inside the training tiles; `rounds` (trees per class) applies unless `params` sets it."""
    training = samples if isinstance(samples, TrainingSet) else TrainingSet.from_table(samples, temporal_stats)
    if training.features is None:
        raise ValueError("the training set's features were released by an earlier train_model: read it again")
    if training.temporal_stats != (temporal_stats and bool(training.names)):
        raise ValueError(
            f"the training set was read with temporal_stats={training.temporal_stats}, the model is trained with "
            f"temporal_stats={temporal_stats}"
        )
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
    grid_names, dates, features = feature_layout(training.names)
    names = grid_names + (temporal_names(features, dates) if temporal_stats else [])
    lgb_params = {
        "objective": "multiclass",
        **params,
        "num_class": len(ids),
        "seed": int(seed),
        # the binning sample's seed: LightGBM derives it from `seed` when it builds the Dataset from a matrix, but
        # not from the samples tables read as Sequences (read_training_set); set, both bin from the same rows
        "data_random_seed": int(params.get("data_random_seed", seed)),
        "deterministic": True,
        "force_col_wise": True,  # else LightGBM picks row/col-wise by timing
        "verbosity": -1,
        "num_threads": int(threads),
    }
    if rounds and not ROUNDS.intersection(params):
        lgb_params["num_iterations"] = int(rounds)
    weights = class_weights(labels, class_weight)
    # binned now, with the training's parameters, so that the float matrix can go before the trees grow
    dataset = lgb.Dataset(
        training.features,
        label=np.searchsorted(ids, labels),
        weight=weights,
        feature_name=names,
        params=lgb_params,
        free_raw_data=True,
    ).construct()
    training.features = None
    counts = {int(c): int((labels == c).sum()) for c in ids}
    log.info("training on %d samples, %d features, class counts %s", len(labels), len(names), counts)
    cv_scores = None
    if tuning and ROUNDS.intersection(params):
        log.info("model.params sets the number of rounds: no spatial cross-validation")
    elif tuning:
        folds = spatial_folds(training, int(tuning["folds"]), int(tuning["block_px"]), int(seed))
        lgb_params, rounds, cv_scores = tune(dataset, lgb_params, folds, tuning)
        lgb_params["num_iterations"] = rounds
    booster = lgb.train(lgb_params, dataset, keep_training_booster=True)
    # Deterministic trees do not depend on the thread count; reset it so model.txt does not either.
    booster.reset_parameter({"num_threads": 0})
    lgb_params.pop("num_threads")
    metadata = {
        "feature_names": names,
        "dates": dates,
        "features": features,
        "temporal_stats": bool(temporal_stats),
        "class_weight": class_weight,
        "spatial_cv": cv_scores,
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
    columns = feature_columns(np.asarray(metadata["dates"], dtype="datetime64[D]"), metadata["features"])
    missing = [name for name in columns if name not in samples.columns]
    if missing:
        raise ValueError(f"samples lack the model's feature column(s) {missing[:4]}")
    table = _inputs(samples[columns].to_numpy(dtype=np.float32), metadata)
    return booster.predict(table, num_threads=threads).reshape(len(table), -1)


def _inputs(grid: np.ndarray, metadata: dict) -> np.ndarray:
    return model_inputs(grid, len(metadata["dates"]), len(metadata["features"]), metadata.get("temporal_stats", False))


def predict_tile(
    booster: lgb.Booster | CompiledModel,
    metadata: dict,
    features_ds: xr.Dataset,
    block_rows: int = 32,
    threads: int = 1,
    sigmas=(),
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, confidence) uint8 (y, x) on the tile (its margin cut off): class ids and round(100 * max
    probability), 0 where no observation. `booster` is LightGBM's or the same trees compiled (landcover.trees).

    The spatial context of `sigmas` (landcover.context) is computed a block of rows at a time and predicted
    `block_rows` rows at a time, so neither the tile's context nor its float table is ever whole in memory."""
    tile = features_ds.attrs.get("tile_id", "?")
    dates = [str(d) for d in np.datetime_as_string(features_ds["date"].values, unit="D")]
    features = context_names(features_ds["feature"].values, sigmas)
    if dates != metadata["dates"] or features != metadata["features"]:
        raise ValueError(
            f"tile {tile}: features (dates {dates[:1]}..{dates[-1:]} x{len(dates)}, {features}) do not match "
            f"the model's (dates {metadata['dates'][:1]}..{metadata['dates'][-1:]} x{len(metadata['dates'])}, "
            f"{metadata['features']})"
        )
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    ids = class_ids(metadata)
    rows_in, cols_in = tile_window(features_ds)
    height, width = rows_in.stop - rows_in.start, cols_in.stop - cols_in.start
    labels = np.zeros((height, width), dtype=np.uint8)
    confidence = np.zeros((height, width), dtype=np.uint8)
    for rows, own, values in context_blocks(features_ds, sigmas, max(block_rows, CONTEXT_ROWS)):
        for start in range(0, rows.stop - rows.start, block_rows):
            part = slice(start, start + block_rows)
            valid = own[part].ravel()
            if not valid.any():
                continue
            block = values[:, part].transpose(1, 2, 0, 3).reshape(valid.size, -1)[valid]  # pixels x date-major
            table = _inputs(block, metadata)
            proba = booster.predict(table, num_threads=threads).reshape(valid.sum(), -1)
            out = slice(rows.start + start, rows.start + start + block_rows)
            labels[out].reshape(-1)[valid] = ids[proba.argmax(axis=1)]  # views: the rows are contiguous
            confidence[out].reshape(-1)[valid] = np.rint(100 * proba.max(axis=1))
    predicted = int((labels > 0).sum())
    log.info(
        "tile %s: predicted %d of %d pixels; %d without a valid observation all year are no data",
        tile,
        predicted,
        labels.size,
        labels.size - predicted,
    )
    return labels, confidence
