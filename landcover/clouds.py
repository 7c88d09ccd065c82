"""s2cloudless cloud probabilities and masks per frame, computed at a coarse resolution as in eo-learn's example.

eo-learn's land-cover example (eo-learn 0.x AddCloudMaskTask, cm_size 80m, average_over 2, dilation_size 1) ran
s2cloudless on bands that Sentinel Hub delivered at 80 m, so its averaging and dilation acted on 80 m pixels, and
brought the results back to 10 m: probabilities with linear interpolation, the mask with nearest neighbour.
eo-learn 1.5.7's CloudMaskTask no longer resamples. Here the 80 m reflectance is the mean of each block's data
pixels (no-data pixels at a swath edge do not darken a block), and upsampling is pixel-centre aligned.

No-data pixels (``is_data`` False) are never cloud: their mask is False and their probability 0, as eo-learn's
``cloud_proba * valid_data``; coarse blocks without any data pixel get probability 0 before the averaging.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence

import cv2
import numpy as np
import xarray as xr
from s2cloudless import S2PixelCloudDetector
from s2cloudless.utils import MODEL_BANDS

from landcover.stack import L1C_BANDS, REFLECTANCE_SCALE, ROW_CHUNK, StackError, grid_of, load, with_grid

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=8)
def _detector(threshold: float, average_over: int, dilation_size: int) -> S2PixelCloudDetector:
    """One detector per setting, so the LightGBM model is loaded once per process."""
    return S2PixelCloudDetector(
        threshold=threshold, all_bands=False, average_over=average_over or None, dilation_size=dilation_size or None
    )


def _check_settings(threshold: float, average_over: int | None, dilation_size: int | None) -> tuple[float, int, int]:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"cloud threshold must be within 0..1, got {threshold}")
    sizes = {"average_over": average_over or 0, "dilation_size": dilation_size or 0}
    for name, size in sizes.items():
        if size < 0 or int(size) != size:
            raise ValueError(f"cloud {name} must be a non-negative integer (pixels), got {size}")
    return float(threshold), int(sizes["average_over"]), int(sizes["dilation_size"])


def cloud_probability(reflectance: np.ndarray, threads: int | None = None) -> np.ndarray:
    """s2cloudless probabilities (n, h, w) float32 of reflectance in 0..1: all 13 L1C bands (n, h, w, 13), or only
    the ten its model reads (s2cloudless.utils.MODEL_BANDS, its `all_bands=False` input).

    The pixels go to s2cloudless's model in an order that puts similar spectra side by side: each pixel's
    prediction does not depend on the others, and LightGBM walks its 170 trees of 770 leaves about 15 %
    faster when consecutive pixels take the same branches (branch prediction, cache)."""
    options = {"num_threads": threads} if threads else {}
    reflectance = np.asarray(reflectance, dtype=np.float32)
    if reflectance.shape[-1] == len(L1C_BANDS):
        reflectance = reflectance[..., [L1C_BANDS.index(band) for band in MODEL_BANDS]]
    pixels = reflectance.reshape(-1, reflectance.shape[-1])
    order = _similar_first(pixels)
    shuffled = _detector(0.4, 0, 0).get_cloud_probability_maps(pixels[order][None, :, None], **options)
    probability = np.empty(len(pixels), dtype=np.float32)
    probability[order] = shuffled[0, :, 0]
    return probability.reshape(reflectance.shape[:-1])


def _similar_first(pixels: np.ndarray) -> np.ndarray:
    """Pixel order by coarse blue, then SWIR, then NIR reflectance (steps of 0.05): brightness, then type."""
    keys = np.floor(pixels[:, [MODEL_BANDS.index(b) for b in ("B8A", "B11", "B02")]] * 20).astype(np.int32)
    return np.lexsort(keys.T)


def mask_from_probability(
    probability: np.ndarray, threshold: float, average_over: int | None, dilation_size: int | None
) -> np.ndarray:
    """s2cloudless's post-processing (disk average, threshold, disk dilation) at the probabilities' own resolution."""
    threshold, average_over, dilation_size = _check_settings(threshold, average_over, dilation_size)
    detector = _detector(threshold, average_over, dilation_size)
    return detector.get_mask_from_prob(np.asarray(probability, dtype=np.float32)).astype(bool)


def _block_sums(x: np.ndarray, factor_y: int, factor_x: int) -> np.ndarray:
    """uint32 sums over factor_y x factor_x blocks of (n, h, w, ...); edge blocks sum the pixels they have.

    Adds strided slices one at a time (several times faster than a reshape-and-sum over two axes) and sums the
    ragged edge on its own, so the input is never padded (a copy of the whole block)."""
    n, height, width = x.shape[:3]
    full_y, full_x = height - height % factor_y, width - width % factor_x
    rows = x[:, :full_y].reshape(n, full_y // factor_y, factor_y, width, *x.shape[3:])
    partial = rows[:, :, 0].astype(np.uint32)
    for k in range(1, factor_y):
        partial += rows[:, :, k]
    if full_y < height:
        edge = x[:, full_y:].sum(axis=1, dtype=np.uint32, keepdims=True)
        partial = np.concatenate([partial, edge], axis=1)
    cols = partial[:, :, :full_x].reshape(n, partial.shape[1], full_x // factor_x, factor_x, *x.shape[3:])
    sums = cols[:, :, :, 0].copy()
    for k in range(1, factor_x):
        sums += cols[:, :, :, k]
    if full_x < width:
        sums = np.concatenate([sums, partial[:, :, full_x:].sum(axis=2, keepdims=True)], axis=2)
    return sums


def block_mean(bands: np.ndarray, is_data: np.ndarray, factor_y: int, factor_x: int) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance (n, ceil(h/fy), ceil(w/fx), b) float32 averaged over the data pixels of each block, and
    whether a block has any data; uint16 x 10000 in.

    Edge blocks of a tile whose size is not a multiple of the factor average the pixels they have. uint16 sums
    are exact in uint32 (up to 65536 pixels a block)."""
    if not is_data.all():
        bands = bands * is_data[..., None]
    sums = _block_sums(bands, factor_y, factor_x)
    counts = _block_sums(is_data, factor_y, factor_x)
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


def _carried_factors(stack: xr.Dataset, resolution_m: float | None) -> tuple[int, int]:
    """The block sizes of a stack's own coarse cloud bands; they were fetched for `clouds.resolution_m`."""
    factors = tuple(int(f) for f in stack.attrs.get("cloud_pixel_blocks", (0, 0)))
    if min(factors) < 1:
        raise StackError(f"tile {stack.attrs.get('tile_id', '?')}: cloud_bands without a valid cloud_pixel_blocks")
    if factors != _factors(stack, resolution_m):
        log.warning(
            "tile %s: the stack's cloud bands are in %s pixel blocks, not clouds.resolution_m %s; they are used as they are",
            stack.attrs.get("tile_id", "?"),
            factors,
            resolution_m,
        )
    return factors


def _band_order(stack: xr.Dataset, tile: str, dim: str = "band", needed: Sequence[str] = L1C_BANDS) -> np.ndarray:
    names = [str(name) for name in stack[dim].values]
    missing = [band for band in needed if band not in names]
    if missing:
        what = "all 13 L1C bands" if len(needed) == len(L1C_BANDS) else f"the bands {', '.join(needed)}"
        raise StackError(f"tile {tile}: s2cloudless needs {what}, the stack lacks {', '.join(missing)}")
    return np.array([names.index(band) for band in needed])


def cloud_masks(
    stack: xr.Dataset,
    resolution_m: float | None,
    threshold: float,
    average_over: int | None,
    dilation_size: int | None,
    threads: int | None = None,
) -> xr.Dataset:
    """Cloud probability and mask per frame of a raw stack, on the stack's grid, with the config's `clouds:` settings
    (no defaults here: the schema holds them).

    s2cloudless runs on `resolution_m` blocks (None: native pixels) with `threads` LightGBM threads (default: all);
    `average_over` and `dilation_size` are disk radii in those coarse pixels. The stack is read in row blocks (its
    on-disk chunks), so memory holds the outputs, `is_data`, the coarse reflectance and one row block of raw bands.
    """
    threshold, average_over, dilation_size = _check_settings(threshold, average_over, dilation_size)
    grid = grid_of(stack)
    tile = grid.tile_id or "?"
    carried = "cloud_bands" in stack  # the source's own coarse bands (Sentinel Hub delivers them at 80 m)
    factor_y, factor_x = _carried_factors(stack, resolution_m) if carried else _factors(stack, resolution_m)
    n_times, height, width = stack.sizes["time"], grid.height, grid.width
    rows, cols = -(-height // factor_y), -(-width // factor_x)
    settings = f"threshold {threshold}, average_over {average_over}, dilation_size {dilation_size}"
    log.info(
        "tile %s: s2cloudless on %d frames in %d x %d pixel blocks (%s), %s",
        tile,
        n_times,
        factor_y,
        factor_x,
        "the source's coarse bands" if carried else "block means",
        settings,
    )

    is_data = np.zeros((n_times, height, width), dtype=bool)
    coarse_probability = np.zeros((n_times, rows, cols), dtype=np.float32)
    if carried:
        order = _band_order(stack, tile, "cloud_band", MODEL_BANDS)
        has_data = load(stack["cloud_is_data"].transpose("time", "cloud_y", "cloud_x")).astype(bool)
        if has_data.shape != coarse_probability.shape:
            raise StackError(f"tile {tile}: cloud_bands are {has_data.shape[1:]}, expected {(rows, cols)} blocks")
        bands = load(stack["cloud_bands"].transpose("time", "cloud_y", "cloud_x", "cloud_band"))
        reflectance = bands[has_data][None, :, None, order].astype(np.float32) / REFLECTANCE_SCALE
        if has_data.any():
            coarse_probability[has_data] = cloud_probability(reflectance, threads)[0, :, 0]
        is_data[:] = load(stack["is_data"])
    else:
        order = _band_order(stack, tile)
        block_rows = factor_y * -(-ROW_CHUNK // factor_y)
        for start in range(0, height, block_rows):
            block = stack.isel(y=slice(start, start + block_rows))
            block_is_data = is_data[:, start : start + block_rows]
            block_is_data[:] = load(block["is_data"])
            reflectance, has_data = block_mean(load(block["bands"]), block_is_data, factor_y, factor_x)
            coarse = coarse_probability[:, start // factor_y : start // factor_y + reflectance.shape[1]]
            if has_data.all():
                coarse[:] = cloud_probability(reflectance[..., order], threads)
            elif has_data.any():  # only the blocks with data: swath edges leave whole frames empty
                coarse[has_data] = cloud_probability(reflectance[has_data][None, :, None, order], threads)[0, :, 0]

    coarse_mask = mask_from_probability(coarse_probability, threshold, average_over, dilation_size)
    probability = np.empty((n_times, height, width), dtype=np.float32)
    mask = np.empty((n_times, height, width), dtype=bool)
    for t in range(n_times):
        probability[t] = upsample_probability(coarse_probability[t], factor_y, factor_x, (height, width))
        mask[t] = upsample_mask(coarse_mask[t], factor_y, factor_x, (height, width))
    probability *= is_data
    mask &= is_data

    # with_grid deep-copies what it is given: attach the grid before the large arrays
    ds = with_grid(xr.Dataset(coords={"time": stack["time"].values}), grid).assign(
        cloud_probability=(("time", "y", "x"), probability), cloud_mask=(("time", "y", "x"), mask)
    )
    ds.attrs.update(
        cloud_pixel_blocks=np.array([factor_y, factor_x], dtype=np.int32),
        cloud_threshold=threshold,
        cloud_average_over=average_over,
        cloud_dilation_size=dilation_size,
    )
    return ds


def carried_cloud_masks(stack: xr.Dataset) -> xr.Dataset | None:
    """The source's own cloud products (e.g. an EOPatch's CLM/CLP), used instead of s2cloudless; None if absent."""
    if "cloud_mask" not in stack:
        return None
    dims = ("time", "y", "x")
    mask = load(stack["cloud_mask"].transpose(*dims)).astype(bool)
    if "cloud_probability" in stack:
        probability = load(stack["cloud_probability"].transpose(*dims)).astype(np.float32)
    else:
        probability = mask.astype(np.float32)
    mask &= load(stack["is_data"].transpose(*dims)).astype(bool)
    ds = xr.Dataset(
        {"cloud_probability": (dims, probability), "cloud_mask": (dims, mask)}, coords={"time": stack["time"].values}
    )
    return with_grid(ds, grid_of(stack))
