"""Spatial context: each interpolated feature smoothed at a few Gaussian scales, tile edges included.

A pixel's class shows in its neighbourhood too (a field's mean NDVI is steadier than one pixel's, a forest edge has
forest on one side), and a per-pixel classifier loses most of its accuracy on such boundary pixels. The smoothing is a
normalised convolution, sum(w * v) / sum(w) with w = 1 where the pixel has a valid observation, so pixels without
data (and the area's outer edge) neither count as zeros nor leave holes.

Nothing of it is stored: `context_blocks` computes it block of rows by block of rows where it is used (at the sampled
pixels in `sample`, block by block in `predict`), each block from its rows and the `halo_pixels(sigmas)` rows
(the kernel radius of the largest scale) around them. A tile's features file covers the tile grown by a margin of
that many pixels, read from the source itself (landcover.grid), so no tile reads another tile's files, and a tile
computed alone equals the same pixels cut from the whole area computed in one piece: tile edges do not show in the
merged map. At the area's outer edge the margin holds what the source has beyond the area (real sources and the
synthetic generator have data there; an EOPatch folder without a neighbouring patch has none, and the normalised
convolution then uses the pixels inside only).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import xarray as xr
from scipy import ndimage

from landcover.grid import margin_of, tile_window
from landcover.stack import ROW_CHUNK, load

TRUNCATE = 3.0  # the Gaussian kernel's radius in sigmas (scipy's default is 4; 3 keeps 99.7 % of the weight)
# rows of context computed at a time: two on-disk row chunks, so the halo rows read around them add at most one
# chunk's decompression per block; about 320 MB of context at 1,000 px wide and 621 columns (sigmas [1, 3])
CONTEXT_ROWS = 2 * ROW_CHUNK


def context_names(features, sigmas) -> list[str]:
    """The per-date feature names of a context file: the features, then each one smoothed at each scale."""
    features = [str(f) for f in features]
    return features + [f"{f}_g{_scale(s)}" for s in sigmas for f in features]


def _scale(sigma: float) -> str:
    return f"{sigma:g}".replace(".", "p")  # feature names hold no dot: 1.5 -> 1p5


def halo_pixels(sigmas) -> int:
    """How far (pixels) the largest kernel reaches: the margin a tile reads from its source around itself."""
    return max((int(TRUNCATE * float(s) + 0.5) for s in sigmas), default=0)


def _checked_sigmas(sigmas) -> list[float]:
    sigmas = [float(s) for s in sigmas]
    if any(s <= 0 for s in sigmas):
        raise ValueError(f"context sigmas must be positive, got {sigmas}")
    return sigmas


def context_blocks(
    features: xr.Dataset, sigmas, block_rows: int = CONTEXT_ROWS
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """The tile's features and their context, `block_rows` rows of the tile at a time: (the block's rows on the
    tile, its pixels with an observation (rows, x) bool, values (date, rows, x, feature) float32 in `context_names`
    order, NaN where a pixel has no observation of its own). Blocks without any observation are skipped.

    `features` covers the tile grown by its margin (attrs["margin_px"], at least the context's reach); each block is
    smoothed from its rows and the halo rows around them only, so the result equals the whole tile's smoothing and
    only one block's context is ever in memory. Without sigmas the values are the features cut to the tile."""
    sigmas = _checked_sigmas(sigmas)
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1, got {block_rows}")
    tile = features.attrs.get("tile_id", "?")
    halo, margin = halo_pixels(sigmas), margin_of(features)
    if halo > margin:
        raise ValueError(
            f"tile {tile}: the context's largest sigma reaches {halo} px, the features cover a margin of only "
            f"{margin} px around the tile; rerun its chain from the source (the margin follows "
            "features.context_sigmas)"
        )
    rows, cols = tile_window(features)
    cube = features["features"].transpose("date", "y", "x", "feature")
    valid = load(features["valid_count"].transpose("y", "x")) > 0  # (y, x) of the grown grid: small
    n = features.sizes["feature"]
    for start in range(rows.start, rows.stop, block_rows):
        stop = min(start + block_rows, rows.stop)
        if not valid[start:stop, cols].any():
            continue
        around = slice(start - halo, stop + halo)  # inside the grown grid: halo <= margin
        block = load(cube.isel(y=around)).astype(np.float32, copy=False)
        block_valid = valid[around]
        inner = (slice(halo, halo + stop - start), cols)
        values = np.empty((block.shape[0], stop - start, cols.stop - cols.start, n * (1 + len(sigmas))), np.float32)
        values[..., :n] = block[:, inner[0], inner[1]]
        for k, sigma in enumerate(sigmas, start=1):
            smooth(block, block_valid, sigma, out=values[..., k * n : (k + 1) * n], inner=inner)
        del block
        own = block_valid[inner]
        values[:, ~own] = np.nan  # a pixel without its own observation stays no data
        yield slice(start - rows.start, stop - rows.start), own, values


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
