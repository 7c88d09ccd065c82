"""Training samples: a seeded random subset of a tile's labelled pixels with their feature vectors.

The generator is derived from (seed, tile id) alone, so a tile's samples do not change when other
tiles are added to or removed from the run. Features and their spatial context are computed and
gathered block of rows by block of rows (landcover.context.context_blocks), so neither a large
tile's features nor its smoothed copies are ever whole in memory; each sampled value is copied
once, straight into the table's columns.
"""

from __future__ import annotations

import logging
import zlib

import numpy as np
import pandas as pd
import xarray as xr

from landcover.context import context_blocks, context_names
from landcover.grid import tile_window
from landcover.stack import load

log = logging.getLogger(__name__)

ID_COLUMNS = ("tile_id", "row", "col", "label")


def feature_columns(dates, feature_names) -> list[str]:
    """`{feature}_{YYYY-MM-DD}`, date-major: the C-order flattening of (date, feature)."""
    days = np.datetime_as_string(np.asarray(dates, dtype="datetime64[ns]").astype("datetime64[D]"))
    return [f"{feature}_{day}" for day in days for feature in feature_names]


def tile_rng(seed: int, tile_id: str) -> np.random.Generator:
    """A generator that depends on the seed and this tile only (crc32 is stable across runs)."""
    return np.random.default_rng([int(seed), zlib.crc32(str(tile_id).encode("utf-8"))])


def _choose(candidates: np.ndarray, labels: np.ndarray, rng: np.random.Generator, max_samples, fraction, per_class_cap):
    if per_class_cap is not None:
        kept = []
        for value in np.unique(labels):  # ascending class order: a fixed sequence of draws
            members = candidates[labels == value]
            if len(members) > per_class_cap:
                members = rng.choice(members, size=int(per_class_cap), replace=False)
            kept.append(members)
        candidates = np.concatenate(kept) if kept else candidates
    if fraction is not None:
        count = round(fraction * len(candidates))
    elif max_samples is not None:
        count = min(int(max_samples), len(candidates))
    else:
        count = len(candidates)
    if count < len(candidates):
        candidates = rng.choice(candidates, size=count, replace=False)
    return np.sort(candidates)


def sample_pixels(
    labels: np.ndarray,
    features: xr.Dataset,
    tile_id: str,
    seed: int,
    max_samples: int | None = 40000,
    fraction: float | None = None,
    per_class_cap: int | None = None,
    sigmas=(),
) -> pd.DataFrame:
    """Up to `max_samples` (or `fraction`) pixels with a label and a valid observation, sorted by (row, col).

    `labels` are on the tile; `features` cover the tile grown by their margin (landcover.grid). `sigmas`: the
    spatial context's scales (landcover.context), whose columns follow the features'. `per_class_cap` is applied
    first, so a dominant class (forest) cannot crowd out the others."""
    if fraction is not None and not 0 < fraction <= 1:
        raise ValueError(f"tile {tile_id}: sampling fraction must be in (0, 1], got {fraction}")
    for name, value in (("max_samples", max_samples), ("per_class_cap", per_class_cap)):
        if value is not None and value < 0:
            raise ValueError(f"tile {tile_id}: {name} must be >= 0, got {value}")
    missing = [name for name in ("features", "valid_count") if name not in features]
    if missing:
        raise ValueError(f"tile {tile_id}: features dataset lacks {', '.join(missing)}")
    labels = np.asarray(labels)
    rows_in, cols_in = tile_window(features)
    shape = (rows_in.stop - rows_in.start, cols_in.stop - cols_in.start)
    if labels.shape != shape:
        raise ValueError(f"tile {tile_id}: labels have shape {labels.shape}, features have {shape} without margin")

    usable = (labels > 0) & (load(features["valid_count"].transpose("y", "x"))[rows_in, cols_in] > 0)
    candidates = np.flatnonzero(usable)
    chosen = _choose(
        candidates, labels.ravel()[candidates], tile_rng(seed, tile_id), max_samples, fraction, per_class_cap
    )
    rows, cols = np.divmod(chosen, shape[1])

    names = context_names(features["feature"].values, sigmas)
    columns = feature_columns(features["date"].values, names)
    values = _gather(features, sigmas, chosen, shape[1])
    table = {
        "tile_id": pd.Series(str(tile_id), index=pd.RangeIndex(len(chosen)), dtype=str),
        "row": rows.astype(np.int32),
        "col": cols.astype(np.int32),
        "label": labels.ravel()[chosen].astype(np.uint8),
    }
    table.update(zip(columns, (values[date, :, f] for date in range(values.shape[0]) for f in range(values.shape[2]))))
    return pd.DataFrame(table, copy=False)  # one block per column view: nothing is copied again


def _gather(features: xr.Dataset, sigmas, chosen: np.ndarray, width: int) -> np.ndarray:
    """(date, sample, feature) float32 of the sorted flat pixel indices `chosen` on the tile, context included.

    As `chosen` is sorted, a row block's samples are one slice of the output, and each date's take
    writes a contiguous part of it (mode="clip" lets np.take write into `out` unbuffered)."""
    n_names = features.sizes["feature"] * (1 + len(sigmas))
    values = np.empty((features.sizes["date"], len(chosen), n_names), dtype=np.float32)
    if not len(chosen):
        return values
    for rows, _, block in context_blocks(features, sigmas):
        lo, hi = np.searchsorted(chosen, [rows.start * width, rows.stop * width]).tolist()
        if lo == hi:
            continue
        planes = block.reshape(block.shape[0], -1, n_names)  # a view: within a date, the rows are contiguous
        local = chosen[lo:hi] - rows.start * width
        for date in range(block.shape[0]):
            np.take(planes[date], local, axis=0, out=values[date, lo:hi], mode="clip")
    return values
