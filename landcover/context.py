"""Spatial context: each interpolated feature smoothed at a few Gaussian scales, tile edges included.

A pixel's class shows in its neighbourhood too (a field's mean NDVI is steadier than one pixel's, a forest edge has
forest on one side), and a per-pixel classifier loses most of its accuracy on such boundary pixels. The smoothing is a
normalised convolution, sum(w * v) / sum(w) with w = 1 where the pixel has a valid observation, so pixels without
data (and the area's outer edge) neither count as zeros nor leave holes.

A tile is smoothed with a halo: the strips of its neighbours' feature files within the kernel's reach are read
around it first, so a tile computed alone equals the same pixels cut from the whole area computed in one piece, and
tile edges do not show in the merged map. The halo is `halo_pixels(sigmas)`: the kernel radius of the largest scale.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import xarray as xr
from scipy import ndimage

from landcover.stack import TileGrid, grid_of, load, with_grid

log = logging.getLogger(__name__)

TRUNCATE = 3.0  # the Gaussian kernel's radius in sigmas (scipy's default is 4; 3 keeps 99.7 % of the weight)


def context_names(features, sigmas) -> list[str]:
    """The per-date feature names of a context file: the features, then each one smoothed at each scale."""
    features = [str(f) for f in features]
    return features + [f"{f}_g{_scale(s)}" for s in sigmas for f in features]


def _scale(sigma: float) -> str:
    return f"{sigma:g}".replace(".", "p")  # feature names hold no dot: 1.5 -> 1p5


def halo_pixels(sigmas) -> int:
    """How far (pixels) the largest kernel reaches: the halo a tile needs from its neighbours."""
    return max((int(TRUNCATE * float(s) + 0.5) for s in sigmas), default=0)


def smooth(cube: np.ndarray, valid: np.ndarray, sigma: float, out: np.ndarray | None = None, inner=None) -> np.ndarray:
    """(date, y, x, f) float32: each plane smoothed over the valid pixels (y, x) only; NaN where none is in reach.
    With `inner` (row and column slices), only that window of each plane is kept, written into `out` (a view of
    the caller's output is fine): the tile's output is filled plane by plane, without a padded copy of it."""
    rows, cols = inner or (slice(None), slice(None))
    weights = valid.astype(np.float32)
    total = ndimage.gaussian_filter(weights, sigma, mode="constant", truncate=TRUNCATE)[rows, cols]
    total[total <= 1e-6] = np.nan  # no valid pixel within reach
    if out is None:
        out = np.empty((cube.shape[0], *total.shape, cube.shape[3]), dtype=np.float32)
    plane = np.empty(cube.shape[1:3], dtype=np.float32)
    smoothed = np.empty(cube.shape[1:3], dtype=np.float32)
    for d in range(cube.shape[0]):
        for f in range(cube.shape[3]):
            np.multiply(np.nan_to_num(cube[d, :, :, f]), weights, out=plane)
            ndimage.gaussian_filter(plane, sigma, output=smoothed, mode="constant", truncate=TRUNCATE)
            np.divide(smoothed[rows, cols], total, out=out[d, :, :, f])
    return out


def _offset(grid: TileGrid, other: TileGrid) -> tuple[int, int]:
    """(rows, cols) of `other`'s first pixel on `grid`'s pixel grid, checked to be whole pixels."""
    same = (
        grid.crs == other.crs
        and math.isclose(grid.transform.a, other.transform.a, rel_tol=1e-9)
        and math.isclose(grid.transform.e, other.transform.e, rel_tol=1e-9)
    )
    col = (other.transform.c - grid.transform.c) / grid.transform.a
    row = (other.transform.f - grid.transform.f) / grid.transform.e
    if not (same and abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6):
        raise ValueError(f"tile {other.tile_id}: its pixels are not aligned with tile {grid.tile_id}'s")
    return round(row), round(col)


def with_halo(features: xr.Dataset, neighbours: list[xr.Dataset], halo: int) -> tuple[np.ndarray, np.ndarray]:
    """The tile's feature cube (date, y, x, f) and valid pixels padded by `halo` pixels on each side, the padding
    read from the neighbours that reach into it (NaN / invalid where none does). Only those strips are read."""
    grid = grid_of(features)
    dates, names = features["date"].values, [str(f) for f in features["feature"].values]
    height, width = grid.height + 2 * halo, grid.width + 2 * halo
    cube = np.full((len(dates), height, width, len(names)), np.nan, dtype=np.float32)
    valid = np.zeros((height, width), dtype=bool)
    for ds in [features, *neighbours]:
        other = grid_of(ds)
        if not (np.array_equal(ds["date"].values, dates) and [str(f) for f in ds["feature"].values] == names):
            raise ValueError(f"tile {other.tile_id}: its dates or features differ from tile {grid.tile_id}'s")
        row, col = _offset(grid, other)
        row, col = row + halo, col + halo  # on the padded grid
        rows = slice(max(row, 0), min(row + other.height, height))
        cols = slice(max(col, 0), min(col + other.width, width))
        if rows.start >= rows.stop or cols.start >= cols.stop:
            continue
        inside = {"y": slice(rows.start - row, rows.stop - row), "x": slice(cols.start - col, cols.stop - col)}
        cube[:, rows, cols] = load(ds["features"].isel(inside).transpose("date", "y", "x", "feature"))
        valid[rows, cols] = load(ds["valid_count"].isel(inside).transpose("y", "x")) > 0
    return cube, valid


def context_features(features: xr.Dataset, neighbours: list[xr.Dataset], sigmas) -> xr.Dataset:
    """The tile's features and the same smoothed at each of `sigmas` (pixels), as a features dataset (date, y, x,
    feature) with the tile's valid_count: what the samples and the prediction read when spatial context is on."""
    sigmas = [float(s) for s in sigmas]
    if any(s <= 0 for s in sigmas):
        raise ValueError(f"context sigmas must be positive, got {sigmas}")
    grid = grid_of(features)
    halo = halo_pixels(sigmas)
    if halo > min(grid.height, grid.width):
        raise ValueError(
            f"tile {grid.tile_id}: the context's largest sigma reaches {halo} px, beyond the neighbouring tiles "
            f"({grid.height} x {grid.width} px); use smaller features.context_sigmas"
        )
    cube, valid = with_halo(features, neighbours, halo)
    inner = (slice(halo, halo + grid.height), slice(halo, halo + grid.width))
    n = features.sizes["feature"]
    values = np.empty((features.sizes["date"], grid.height, grid.width, n * (1 + len(sigmas))), dtype=np.float32)
    values[..., :n] = cube[:, inner[0], inner[1]]
    for k, sigma in enumerate(sigmas, start=1):
        smooth(cube, valid, sigma, out=values[..., k * n : (k + 1) * n], inner=inner)
    del cube
    values[:, ~valid[inner]] = np.nan  # a pixel without its own observation stays no data
    log.info(
        "tile %s: %d features smoothed at sigma %s px with a %d px halo from %d neighbour(s)",
        grid.tile_id,
        features.sizes["feature"],
        ", ".join(f"{s:g}" for s in sigmas),
        halo,
        len(neighbours),
    )
    names = context_names(features["feature"].values, sigmas)
    ds = with_grid(xr.Dataset(coords={"date": features["date"].values, "feature": names}), grid)
    ds = ds.assign(features=(("date", "y", "x", "feature"), values), valid_count=features["valid_count"].load())
    ds.attrs.update({k: v for k, v in features.attrs.items() if k != "tile_id"})
    ds.attrs["context_sigmas"] = ",".join(f"{s:g}" for s in sigmas)
    return ds


def majority_filter(labels: np.ndarray, radius: int) -> np.ndarray:
    """Post-classification smoothing: each labelled pixel takes the most frequent label within `radius` (a disk),
    no data (0) neither voting nor changing; ties keep the lower class id."""
    if radius < 1:
        return labels.copy()
    dy, dx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disk = (dy * dy + dx * dx <= radius * radius).astype(np.float32)
    ids = [int(c) for c in np.unique(labels) if c != 0]
    if not ids:
        return labels.copy()
    votes = np.stack([ndimage.convolve((labels == c).astype(np.float32), disk, mode="constant") for c in ids])
    out = np.asarray(ids, dtype=labels.dtype)[votes.argmax(axis=0)]
    return np.where(labels > 0, out, labels)


def touching_tiles(bounds: dict[str, tuple[float, float, float, float]], tile: str) -> list[str]:
    """The tiles whose bounds (minx, miny, maxx, maxy) share an edge or a corner with `tile`'s: those a halo
    narrower than a tile reaches into."""
    if tile not in bounds:
        raise ValueError(f"tile {tile}: not in the run's tiles")
    ids = [t for t in bounds if t != tile]
    if not ids:
        return []
    box = np.asarray([bounds[t] for t in ids], dtype=float)
    minx, miny, maxx, maxy = bounds[tile]
    slack = 1e-6 * max(maxx - minx, maxy - miny)
    near = (
        (box[:, 0] <= maxx + slack)
        & (box[:, 2] >= minx - slack)
        & (box[:, 1] <= maxy + slack)
        & (box[:, 3] >= miny - slack)
    )
    return [t for t, n in zip(ids, near) if n]
