"""s2cloudless cloud probabilities and masks per frame, computed at a coarse resolution as in eo-learn's example.

eo-learn's land-cover example (AddCloudMaskTask, eo-learn 0.x) ran s2cloudless on all 13 L1C bands at 80 m and
brought the results back to 10 m: probabilities with linear interpolation, the mask (thresholded, averaged and
dilated at 80 m) with nearest neighbour. eo-learn 1.5.7's CloudMaskTask no longer resamples, so this module follows
the 0.x example, with two deliberate differences: the 80 m reflectance is the block mean of the data pixels (not a
smoothed zoom, so no-data pixels at a swath edge do not darken the block), and the upsampling is pixel-centre
aligned (cv2 half-pixel convention) rather than scipy's corner-aligned zoom.

No-data pixels (``is_data`` False) are never cloud: their mask is False and their probability 0, as eo-learn's
``cloud_proba * valid_data``. Low-resolution blocks without any data pixel get probability 0 before the averaging.
"""

from __future__ import annotations

import functools
import logging

import cv2
import numpy as np
import xarray as xr
from s2cloudless import S2PixelCloudDetector

from landcover.stack import L1C_BANDS, REFLECTANCE_SCALE, ROW_CHUNK, StackError, grid_of, with_grid

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=8)
def _detector(threshold: float, average_over: int, dilation_size: int) -> S2PixelCloudDetector:
    """One detector per setting, so the LightGBM model is loaded once per process."""
    return S2PixelCloudDetector(
        threshold=threshold, all_bands=True, average_over=average_over or None, dilation_size=dilation_size or None
    )


def _check_settings(threshold: float, average_over: int | None, dilation_size: int | None) -> tuple[float, int, int]:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"cloud threshold must be within 0..1, got {threshold}")
    sizes = {"average_over": average_over or 0, "dilation_size": dilation_size or 0}
    for name, size in sizes.items():
        if size < 0 or int(size) != size:
            raise ValueError(f"cloud {name} must be a non-negative integer (pixels), got {size}")
    return float(threshold), int(sizes["average_over"]), int(sizes["dilation_size"])


def cloud_probability(reflectance: np.ndarray) -> np.ndarray:
    """s2cloudless probabilities (n, h, w) float32 of all-13-band reflectance (n, h, w, 13) in 0..1."""
    return _detector(0.4, 0, 0).get_cloud_probability_maps(np.asarray(reflectance, dtype=np.float32))


def mask_from_probability(
    probability: np.ndarray, threshold: float = 0.4, average_over: int | None = 2, dilation_size: int | None = 1
) -> np.ndarray:
    """s2cloudless's post-processing (disk average, threshold, disk dilation) at the probabilities' own resolution."""
    threshold, average_over, dilation_size = _check_settings(threshold, average_over, dilation_size)
    detector = _detector(threshold, average_over, dilation_size)
    return detector.get_mask_from_prob(np.asarray(probability, dtype=np.float32)).astype(bool)


def detect(
    reflectance: np.ndarray, threshold: float = 0.4, average_over: int | None = 2, dilation_size: int | None = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and masks of reflectance (n, h, w, 13) at its native resolution (the golden-test path)."""
    probability = cloud_probability(reflectance)
    return probability, mask_from_probability(probability, threshold, average_over, dilation_size)


def block_mean(bands: np.ndarray, is_data: np.ndarray, factor_y: int, factor_x: int) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance (n, ceil(h/fy), ceil(w/fx), b) float32 averaged over the data pixels of each block, and
    whether a block has any data; uint16 x 10000 in.

    Edge blocks of a tile whose size is not a multiple of the factor average the pixels they have."""
    n, height, width, n_bands = bands.shape
    rows, cols = -(-height // factor_y), -(-width // factor_x)
    pad = ((0, 0), (0, rows * factor_y - height), (0, cols * factor_x - width))
    data = np.pad(is_data, pad)
    masked = np.pad(np.where(is_data[..., None], bands, 0).astype(np.uint16, copy=False), (*pad, (0, 0)))
    # uint16 sums of at most 65535 values are exact in uint32 for factors up to 256
    sums = masked.reshape(n, rows, factor_y, cols, factor_x, n_bands).sum(axis=(2, 4), dtype=np.uint32)
    counts = data.reshape(n, rows, factor_y, cols, factor_x).sum(axis=(2, 4), dtype=np.uint32)
    mean = sums / (np.maximum(counts, 1)[..., None] * REFLECTANCE_SCALE)
    return mean.astype(np.float32), counts > 0


def upsample_probability(probability: np.ndarray, factor_y: int, factor_x: int, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear, pixel-centre aligned, edge-clamped upsampling of one frame (h, w) onto `shape`."""
    if factor_y == factor_x == 1:
        return probability[: shape[0], : shape[1]]
    rows, cols = probability.shape
    size = (cols * factor_x, rows * factor_y)
    return cv2.resize(probability, size, interpolation=cv2.INTER_LINEAR)[: shape[0], : shape[1]]


def upsample_mask(mask: np.ndarray, factor_y: int, factor_x: int, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour upsampling: every fine pixel takes the block it lies in."""
    return np.repeat(np.repeat(mask, factor_y, axis=0), factor_x, axis=1)[: shape[0], : shape[1]]


def _factors(stack: xr.Dataset, resolution_m: float | None) -> tuple[int, int]:
    """Integer block sizes; a grid of 9.9948 m pixels at 80 m gives 8, like a 10 m one."""
    if resolution_m is None:
        return 1, 1
    if resolution_m <= 0:
        raise ValueError(f"cloud resolution_m must be positive, got {resolution_m}")
    transform = grid_of(stack).transform
    return tuple(max(1, round(resolution_m / abs(size))) for size in (transform.e, transform.a))


def _band_order(stack: xr.Dataset, tile: str) -> np.ndarray:
    names = [str(name) for name in stack["band"].values]
    missing = [band for band in L1C_BANDS if band not in names]
    if missing:
        raise StackError(f"tile {tile}: s2cloudless needs all 13 L1C bands, the stack lacks {', '.join(missing)}")
    return np.array([names.index(band) for band in L1C_BANDS])


def cloud_masks(
    stack: xr.Dataset,
    resolution_m: float | None = 80,
    threshold: float = 0.4,
    average_over: int | None = 2,
    dilation_size: int | None = 1,
) -> xr.Dataset:
    """Cloud probability and mask per frame of a raw stack, on the stack's grid.

    s2cloudless runs on `resolution_m` blocks (None: native pixels); `average_over` and `dilation_size` are disk
    radii in those coarse pixels. The stack is read in row blocks (its on-disk chunks), so memory holds the outputs,
    `is_data`, the coarse reflectance and one row block of raw bands.
    """
    threshold, average_over, dilation_size = _check_settings(threshold, average_over, dilation_size)
    grid = grid_of(stack)
    tile = grid.tile_id or "?"
    order = _band_order(stack, tile)
    factor_y, factor_x = _factors(stack, resolution_m)
    n_times, height, width = stack.sizes["time"], grid.height, grid.width
    rows, cols = -(-height // factor_y), -(-width // factor_x)
    log.info(
        "tile %s: s2cloudless on %d frames at %d x %d pixel blocks (%d x %d), threshold %s, average_over %d, "
        "dilation_size %d", tile, n_times, factor_y, factor_x, rows, cols, threshold, average_over, dilation_size,
    )

    is_data = np.zeros((n_times, height, width), dtype=bool)
    coarse_probability = np.zeros((n_times, rows, cols), dtype=np.float32)
    block_rows = factor_y * -(-ROW_CHUNK // factor_y)
    for start in range(0, height, block_rows):
        stop = min(start + block_rows, height)
        block = stack.isel(y=slice(start, stop))
        is_data[:, start:stop] = block["is_data"].values
        bands = block["bands"].values[..., order]
        reflectance, has_data = block_mean(bands, is_data[:, start:stop], factor_y, factor_x)
        coarse = slice(start // factor_y, start // factor_y + reflectance.shape[1])
        coarse_probability[:, coarse] = np.where(has_data, cloud_probability(reflectance), 0.0)

    probability = np.empty((n_times, height, width), dtype=np.float32)
    mask = np.empty((n_times, height, width), dtype=bool)
    for t in range(n_times):
        coarse_mask = mask_from_probability(coarse_probability[t : t + 1], threshold, average_over, dilation_size)[0]
        probability[t] = upsample_probability(coarse_probability[t], factor_y, factor_x, (height, width))
        mask[t] = upsample_mask(coarse_mask, factor_y, factor_x, (height, width))
    probability *= is_data
    mask &= is_data

    ds = xr.Dataset(
        {"cloud_probability": (("time", "y", "x"), probability), "cloud_mask": (("time", "y", "x"), mask)},
        coords={"time": stack["time"].values},
    )
    ds = with_grid(ds, grid)
    ds.attrs.update(
        cloud_pixel_blocks=np.array([factor_y, factor_x], dtype=np.int32),
        cloud_threshold=threshold,
        cloud_average_over=average_over,
        cloud_dilation_size=dilation_size,
    )
    return ds
