"""Valid data, the scene filter and the interpolated per-pixel features of one tile.

Follows eo-learn's land-cover example: valid = IS_DATA & ~CLM; frames whose valid fraction is not above the
threshold are dropped (eo-learn's ValidDataFractionPredicate keeps ``coverage > threshold``); features are the
configured bands as reflectance, NDVI, NDWI and the Euclidean norm of the bands, linearly interpolated in time
(landcover.interpolate) onto a regular date grid.

An index that is 0/0 (both bands zero) is NaN in compute_features, and tile_features treats an observation with any
NaN feature as invalid for that pixel, so undefined values never reach the interpolation.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import xarray as xr

from landcover.interpolate import date_grid, interpolate
from landcover.stack import REFLECTANCE_SCALE, ROW_CHUNK, StackError, grid_of, load, with_grid

log = logging.getLogger(__name__)

# normalised differences (a - b) / (a + b)
INDICES: dict[str, tuple[str, str]] = {"NDVI": ("B08", "B04"), "NDWI": ("B03", "B08")}
NORM = "NORM"


def valid_mask(is_data: np.ndarray, cloud_mask: np.ndarray) -> np.ndarray:
    return np.asarray(is_data, dtype=bool) & ~np.asarray(cloud_mask, dtype=bool)


def valid_coverage(valid: np.ndarray) -> np.ndarray:
    """Fraction of each frame's pixels (t, y, x) that are valid."""
    return valid.reshape(valid.shape[0], -1).mean(axis=1)


def filter_scenes(valid: np.ndarray, threshold: float) -> np.ndarray:
    """Frames to keep: those with valid coverage above `threshold`, as eo-learn's ValidDataFractionPredicate."""
    return _keep(valid_coverage(valid), threshold)


def _keep(coverage: np.ndarray, threshold: float) -> np.ndarray:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"valid_coverage_threshold must be within 0..1, got {threshold}")
    return coverage > threshold


def _check_features(band_names, bands, indices) -> None:
    unknown = [name for name in indices if name not in INDICES and name != NORM]
    if unknown:
        raise ValueError(f"unknown index(es) {', '.join(unknown)}; supported: {', '.join([*INDICES, NORM])}")
    needed = set(bands) | {band for name in indices if name in INDICES for band in INDICES[name]}
    missing = sorted(needed - set(band_names))
    if missing:
        raise ValueError(
            f"bands {', '.join(missing)} are needed for the features but missing (have {list(band_names)})"
        )
    if NORM in indices and not bands:
        raise ValueError("NORM is the norm of the configured bands, but no bands are configured")


def compute_features(bands_uint16: np.ndarray, band_names, bands, indices) -> tuple[np.ndarray, list[str]]:
    """Reflectance (float32, 0..1) of `bands` then `indices` from raw bands (t, y, x, b) uint16 x 10000.

    Returns values (t, y, x, f) float32 and the feature names; an undefined index (0/0) is NaN."""
    band_names = [str(name) for name in band_names]
    bands, indices = list(bands), list(indices)
    _check_features(band_names, bands, indices)

    def reflectance(name: str) -> np.ndarray:
        return bands_uint16[..., band_names.index(name)].astype(np.float32) / np.float32(REFLECTANCE_SCALE)

    values = np.empty((*bands_uint16.shape[:-1], len(bands) + len(indices)), dtype=np.float32)
    for i, name in enumerate(bands):
        values[..., i] = reflectance(name)
    for i, name in enumerate(indices, start=len(bands)):
        if name == NORM:
            np.sqrt(np.sum(values[..., : len(bands)] ** 2, axis=-1), out=values[..., i])
            continue
        a, b = (reflectance(band) for band in INDICES[name])
        with np.errstate(invalid="ignore", divide="ignore"):
            values[..., i] = (a - b) / (a + b)
    return values, bands + indices


def _block_features(stack, rows, frames, band_names, bands, indices, precomputed) -> np.ndarray:
    """Features of one row block in the configured order, precomputed indices read from the stack."""
    computed = [name for name in indices if name not in precomputed]
    values, names = compute_features(load(stack["bands"].isel(y=rows))[frames], band_names, bands, computed)
    if not precomputed:
        return values
    # all indices read, then selected: h5py reads an index list slower than a slice
    positions = [[str(name) for name in stack["index"].values].index(name) for name in precomputed]
    carried = load(stack["indices"].isel(y=rows))[frames][..., positions].astype(np.float32)
    columns = {**dict(zip(names, np.moveaxis(values, -1, 0))), **dict(zip(precomputed, np.moveaxis(carried, -1, 0)))}
    return np.stack([columns[name] for name in [*bands, *indices]], axis=-1)


def dates_attr(ds: xr.Dataset, name: str) -> list[str]:
    """The ISO timestamps stored comma-joined in attrs `kept_dates` / `dropped_dates`."""
    value = str(ds.attrs.get(name, ""))
    return value.split(",") if value else []


def _iso(times: np.ndarray) -> list[str]:
    return [str(t) for t in np.datetime_as_string(np.asarray(times, dtype="datetime64[s]"), unit="s")]


def tile_features(
    stack: xr.Dataset,
    clouds: xr.Dataset,
    bands,
    indices,
    dates: Mapping | np.ndarray,
    valid_coverage_threshold: float,
    block_rows: int = ROW_CHUNK,
    workers: int | None = None,
    time_of_day: str = "acquisitions",
    coverage_window: tuple[slice, slice] | None = None,
) -> xr.Dataset:
    """Interpolated features (date, y, x, feature) float32 and valid_count (y, x) uint16 of one tile.

    `bands`, `indices`, `dates` and `valid_coverage_threshold` are the config's (no defaults here: the schema holds
    them). `dates`: the target dates, or {start, end, step_days[, time_of_day]} (config `dates:`), each evaluated at
    `time_of_day` (landcover.interpolate.evaluation_times). Reads the
    stack and clouds in row blocks (their on-disk chunks), so beside the output only one block of raw bands and
    features is in memory; `workers` threads interpolate each block. `coverage_window` (rows, cols): where the
    scene filter judges a frame's valid coverage, the tile inside its margin (landcover.grid); default everywhere."""
    grid = grid_of(stack)
    tile = grid.tile_id or "?"
    if isinstance(dates, Mapping):
        time_of_day = dates.get("time_of_day", time_of_day)
        dates = date_grid(dates["start"], dates["end"], dates["step_days"])
    dates = np.asarray(dates, dtype="datetime64[D]")
    if block_rows < 1:
        raise ValueError(f"block_rows must be positive, got {block_rows}")
    times = stack["time"].values
    if clouds.sizes.get("time") != len(times) or not np.array_equal(clouds["time"].values, times):
        raise StackError(f"tile {tile}: cloud masks and stack have different acquisition times")
    if (clouds.sizes.get("y"), clouds.sizes.get("x")) != (grid.height, grid.width):
        raise StackError(
            f"tile {tile}: cloud masks are {clouds.sizes.get('y')} x {clouds.sizes.get('x')}, "
            f"the stack {grid.height} x {grid.width}"
        )
    band_names = [str(name) for name in stack["band"].values]
    # indices the source delivers precomputed (e.g. an EOPatch's data/NDVI) are read, not computed
    precomputed = [str(i) for i in stack["index"].values if str(i) in indices] if "indices" in stack else []
    computed = [name for name in indices if name not in precomputed]
    if precomputed:
        log.info(f"tile {tile}: precomputed {', '.join(precomputed)} taken from the stack")
    try:
        _check_features(band_names, bands, computed)
    except ValueError as err:
        raise StackError(f"tile {tile}: {err}") from None
    names = list(bands) + list(indices)

    # pass 1: valid data of every frame, read once (bool, an eighth of the raw bands' size)
    starts = range(0, grid.height, block_rows)
    valid_blocks = [
        valid_mask(load(stack["is_data"].isel(y=rows)), load(clouds["cloud_mask"].isel(y=rows)))
        for rows in (slice(start, start + block_rows) for start in starts)
    ]
    judged_rows, judged_cols = coverage_window or (slice(0, grid.height), slice(0, grid.width))
    judged = np.zeros((grid.height, grid.width), dtype=bool)
    judged[judged_rows, judged_cols] = True
    coverage = (
        sum((block & judged[start : start + block_rows]).sum(axis=(1, 2)) for start, block in zip(starts, valid_blocks))
        / judged.sum()
    )
    threshold = valid_coverage_threshold
    kept = _keep(coverage, threshold)
    kept_dates, dropped_dates = _iso(times[kept]), _iso(times[~kept])
    kept_list = ", ".join(kept_dates) or "none"
    dropped_list = ", ".join(f"{d} ({c:.2f})" for d, c in zip(dropped_dates, coverage[~kept])) or "none"
    log.info(f"tile {tile}: kept {kept.sum()} of {len(times)} frames (valid coverage > {threshold}): {kept_list}")
    log.info(f"tile {tile}: dropped {(~kept).sum()} frames (their valid coverage): {dropped_list}")
    if not kept.any():
        best = coverage.max(initial=0.0)
        log.warning(f"tile {tile}: no frame has valid coverage above {threshold} (best {best:.2f}): all features NaN")

    # pass 2: features of the kept frames, interpolated block by block
    features = np.full((len(dates), grid.height, grid.width, len(names)), np.nan, dtype=np.float32)
    valid_count = np.zeros((grid.height, grid.width), dtype=np.uint16)
    if kept.any():
        frames = np.flatnonzero(kept)
        for start, block in zip(starts, valid_blocks):
            rows = slice(start, start + block_rows)
            values = _block_features(stack, rows, frames, band_names, bands, indices, precomputed)
            valid = block[frames] & np.isfinite(values).all(axis=-1)
            features[:, rows] = interpolate(
                values, valid, times[frames], dates, workers=workers, time_of_day=time_of_day
            )
            valid_count[rows] = valid.sum(axis=0)
    empty = int((valid_count == 0).sum())
    if empty:
        log.warning(
            f"tile {tile}: {empty} of {valid_count.size} pixels have no valid observation in the kept frames: "
            "their features are NaN and the map leaves them as no data"
        )

    # with_grid deep-copies what it is given: attach the grid before the large arrays
    ds = with_grid(xr.Dataset(coords={"date": dates.astype("datetime64[ns]"), "feature": names}), grid).assign(
        features=(("date", "y", "x", "feature"), features), valid_count=(("y", "x"), valid_count)
    )
    ds.attrs.update(
        kept_dates=",".join(kept_dates),
        dropped_dates=",".join(dropped_dates),
        valid_coverage_threshold=float(threshold),
    )
    return ds


TEMPORAL_STATS = ("max", "min", "mean", "std", "argmax")


def temporal_names(features, dates) -> list[str]:
    """Columns of `temporal_features`: per feature its statistics over the year, then its first differences
    (`{feature}_diff{i}`: date i+1 minus date i)."""
    features = [str(f) for f in features]
    stats = [f"{f}_{stat}" for f in features for stat in TEMPORAL_STATS]
    return stats + [f"{f}_diff{i:02d}" for i in range(len(dates) - 1) for f in features]


def temporal_features(series: np.ndarray) -> np.ndarray:
    """(n, k) float32 from interpolated series (n, date, feature): per feature max, min, mean, std over the year
    and the date index of its maximum (a phenology date), then the first differences, date-major.

    The model sees the shape of the year directly rather than having to learn it from single dates."""
    n, n_dates, n_features = series.shape
    out = np.empty((n, len(TEMPORAL_STATS) * n_features + (n_dates - 1) * n_features), dtype=np.float32)
    stats = out[:, : len(TEMPORAL_STATS) * n_features].reshape(n, n_features, len(TEMPORAL_STATS))
    with np.errstate(invalid="ignore"):
        stats[..., 0] = series.max(axis=1)
        stats[..., 1] = series.min(axis=1)
        stats[..., 2] = series.mean(axis=1)
        stats[..., 3] = series.std(axis=1)
    stats[..., 4] = np.where(np.isnan(stats[..., 0]), np.nan, np.nan_to_num(series, nan=-np.inf).argmax(axis=1))
    differences = out[:, len(TEMPORAL_STATS) * n_features :].reshape(n, n_dates - 1, n_features)
    np.subtract(series[:, 1:], series[:, :-1], out=differences)
    return out
