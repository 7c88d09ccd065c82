"""Spatial context: normalised Gaussian smoothing computed block by block over a tile grown by its margin (no
seam, no other tile's file), and temporal statistics of the interpolated series.

What a tile alone equals: the same pixels cut from the whole area computed in one piece, when both cover the
same margin around them (the area's outer edge included: there the margin holds what the source has beyond the
area, no data where it has none, and the normalised convolution uses the pixels that have data). What it does not
equal, and this test does not claim: the cloud masks and the frame filter are computed per tile, over the tile and
its margin. s2cloudless's averaging and dilation windows are cut at the margin's outer edge, so a cloud mask there
may differ from a whole-area run's; inside the tile it is the same once the margin (9 px at sigma 3) exceeds those
windows' reach. Features of the margin are those of the tile's own kept frames, which may differ from the
neighbour's own (its frame filter judges its own pixels): the context of the tile's edge pixels then sees the
neighbour's pixels through this tile's frames.
"""

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from scipy import ndimage

from landcover.context import TRUNCATE, context_blocks, context_names, halo_pixels, majority_filter, smooth
from landcover.features import temporal_features, temporal_names
from landcover.grid import crop_to_tile, with_margin
from landcover.stack import TileGrid, with_grid

SIZE = 30
SIGMAS = [1.0, 3.0]
MARGIN = halo_pixels(SIGMAS)  # the kernel's reach: 9 px
DATES = np.array(["2017-01-01", "2017-01-17", "2017-02-02"], dtype="datetime64[ns]")


def features_ds(tile: str, values: np.ndarray, origin: tuple[float, float], margin: int = 0) -> xr.Dataset:
    """A features dataset (date, y, x, feature) on 10 m pixels with its top-left corner at `origin`."""
    grid = TileGrid(tile, CRS.from_epsg(32633), Affine(10, 0, origin[0], 0, -10, origin[1]), *values.shape[1:3])
    ds = with_grid(xr.Dataset(coords={"date": DATES, "feature": ["NDVI", "NDWI"]}), grid)
    valid = np.isfinite(values).all(axis=(0, 3))
    ds = ds.assign(
        features=(("date", "y", "x", "feature"), values), valid_count=(("y", "x"), valid.astype(np.uint16) * 3)
    )
    return with_margin(ds, margin)


@pytest.fixture(scope="module")
def area() -> np.ndarray:
    """A 2 x 2 grid of tiles' worth of features grown by the margin, with some pixels without an observation."""
    rng = np.random.default_rng(5)
    side = 2 * SIZE + 2 * MARGIN
    values = ndimage.gaussian_filter(rng.normal(size=(3, side, side, 2)), (0, 2, 2, 0)).astype(np.float32)
    values[:, rng.random((side, side)) < 0.05] = np.nan
    return values


def whole_tile_context(features: xr.Dataset, sigmas) -> xr.Dataset:
    """The straightforward reference: the whole dataset's features and their normalised convolution
    (scipy's Gaussian of the valid values over scipy's Gaussian of the valid mask), all at once, NaN where a pixel
    has no observation of its own. Cut it to the tile to compare."""
    values = features["features"].transpose("date", "y", "x", "feature").values.astype(np.float64)
    valid = features["valid_count"].values > 0
    weight = {s: ndimage.gaussian_filter(valid.astype(float), s, mode="constant", truncate=TRUNCATE) for s in sigmas}
    planes = [values]
    for sigma in sigmas:
        smoothed = np.empty_like(values)
        for d in range(values.shape[0]):
            for f in range(values.shape[3]):
                plane = np.where(valid, np.nan_to_num(values[d, :, :, f]), 0.0)
                num = ndimage.gaussian_filter(plane, sigma, mode="constant", truncate=TRUNCATE)
                smoothed[d, :, :, f] = num / weight[sigma]
        planes.append(smoothed)
    out = np.concatenate(planes, axis=-1)
    out[:, ~valid] = np.nan
    names = context_names(features["feature"].values, sigmas)
    return (
        features.drop_vars("features")
        .assign_coords(feature=names)
        .assign(features=(("date", "y", "x", "feature"), out.astype(np.float32)))
    )


def tile_alone(area: np.ndarray, i: int, j: int, margin: int = MARGIN) -> xr.Dataset:
    """Tile (i, j) as its features job writes it: the tile and `margin` px around it, read from the source."""
    lo = MARGIN - margin
    cut = area[:, lo + i * SIZE : lo + (i + 1) * SIZE + 2 * margin, lo + j * SIZE : lo + (j + 1) * SIZE + 2 * margin]
    return features_ds(f"r{i}_c{j}", cut, ((j * SIZE - margin) * 10, -(i * SIZE - margin) * 10), margin)


def blockwise(features: xr.Dataset, sigmas, block_rows: int) -> np.ndarray:
    """The tile's context assembled from `context_blocks`, NaN where a block was skipped."""
    n = features.sizes["feature"] * (1 + len(sigmas))
    size = crop_to_tile(features).sizes
    out = np.full((features.sizes["date"], size["y"], size["x"], n), np.nan, dtype=np.float32)
    for rows, own, values in context_blocks(features, sigmas, block_rows):
        assert own.shape == values.shape[1:3]
        out[:, rows] = values
    return out


@pytest.mark.parametrize("i, j", [(0, 0), (1, 1), (0, 1)])
def test_a_tile_with_its_margin_equals_the_same_pixels_of_the_whole_area(area, i, j):
    whole = whole_tile_context(features_ds("whole", area, (-MARGIN * 10, MARGIN * 10)), SIGMAS)["features"].values
    rows = slice(MARGIN + i * SIZE, MARGIN + (i + 1) * SIZE)
    cols = slice(MARGIN + j * SIZE, MARGIN + (j + 1) * SIZE)
    alone = blockwise(tile_alone(area, i, j), SIGMAS, block_rows=7)
    np.testing.assert_allclose(alone, whole[:, rows, cols], rtol=1e-6, atol=1e-7, equal_nan=True)
    # a margin short of the kernel's reach is refused; smoothing without one differs at the tile's edge
    with pytest.raises(ValueError, match="margin of only 8 px"):
        blockwise(tile_alone(area, i, j, margin=MARGIN - 1), SIGMAS, block_rows=7)
    bare = blockwise(tile_alone(area, i, j, margin=0), [], block_rows=7)
    bare = whole_tile_context(features_ds("bare", bare[..., :2], (0, 0)), SIGMAS)["features"].values
    assert not np.allclose(bare, whole[:, rows, cols], equal_nan=True)


@pytest.mark.parametrize("block_rows", [1, 7, 30, 128])
def test_blocks_equal_the_whole_tile_computation(area, block_rows):
    """context_blocks against the whole-tile reference, on the same grown tile."""
    tile = tile_alone(area, 1, 0)
    tile["valid_count"][:4] = 0  # a block without any observation is skipped: its pixels stay no data
    tile["features"][:, :4] = np.nan
    reference = whole_tile_context(tile, SIGMAS)["features"].values[:, MARGIN:-MARGIN, MARGIN:-MARGIN]
    alone = blockwise(tile, SIGMAS, block_rows)
    np.testing.assert_allclose(alone, reference, rtol=1e-6, atol=1e-7, equal_nan=True)
    names = context_names(["NDVI", "NDWI"], SIGMAS)
    assert names == ["NDVI", "NDWI", "NDVI_g1", "NDWI_g1", "NDVI_g3", "NDWI_g3"]
    # without sigmas: the features cut to the tile
    np.testing.assert_array_equal(blockwise(tile, [], block_rows), crop_to_tile(tile)["features"].values)


def test_smoothing_ignores_pixels_without_observation():
    cube = np.full((1, 9, 9, 1), 2.0, dtype=np.float32)
    valid = np.ones((9, 9), dtype=bool)
    cube[0, 4, 4, 0], valid[4, 4] = 1000.0, False  # an invalid value never leaks in
    smoothed = smooth(cube, valid, 1.0)
    np.testing.assert_allclose(smoothed, 2.0, rtol=1e-6)
    reference = ndimage.gaussian_filter(np.where(valid, cube[0, ..., 0], 0), 1.0, mode="constant", truncate=3.0)
    weight = ndimage.gaussian_filter(valid.astype(float), 1.0, mode="constant", truncate=3.0)
    np.testing.assert_allclose(smoothed[0, ..., 0], reference / weight, rtol=1e-5)


def test_halo_is_the_largest_kernel_radius():
    assert halo_pixels([1, 3]) == 9 and halo_pixels([]) == 0 and halo_pixels([1.5]) == 5
    # scipy's own radius for these kernels: int(truncate * sigma + 0.5)
    kernel = ndimage.gaussian_filter(np.eye(1, 41, 20).reshape(41), 3.0, mode="constant", truncate=3.0)
    assert np.ptp(np.flatnonzero(kernel)) // 2 == halo_pixels([3.0])


def test_majority_filter_keeps_no_data_and_removes_specks():
    labels = np.full((7, 7), 2, dtype=np.uint8)
    labels[3, 3] = 1
    labels[0, 0] = 0
    out = majority_filter(labels, 1)
    assert out[3, 3] == 2 and out[0, 0] == 0 and (out[labels > 0] == 2).all()


def test_temporal_features_match_numpy():
    rng = np.random.default_rng(1)
    series = rng.normal(size=(50, 4, 2)).astype(np.float32)
    out = temporal_features(series)
    names = temporal_names(["NDVI", "NDWI"], list(range(4)))
    assert out.shape == (50, len(names))
    column = dict(zip(names, out.T))
    np.testing.assert_allclose(column["NDWI_max"], series[:, :, 1].max(axis=1))
    np.testing.assert_allclose(column["NDVI_std"], np.std(series[:, :, 0], axis=1), rtol=1e-5)
    np.testing.assert_array_equal(column["NDVI_argmax"], series[:, :, 0].argmax(axis=1))
    np.testing.assert_allclose(column["NDWI_diff02"], series[:, 3, 1] - series[:, 2, 1])


def test_prediction_with_blockwise_context_equals_the_whole_tile_context(area):
    """predict_tile computing the context block by block against a straightforward reference: the whole tile's
    context (whole_tile_context), flattened and predicted by LightGBM in one piece."""
    import lightgbm as lgb

    from landcover.model import predict_tile

    tile = tile_alone(area, 0, 1)
    names = context_names(["NDVI", "NDWI"], SIGMAS)
    reference = whole_tile_context(tile, SIGMAS)["features"].values[:, MARGIN:-MARGIN, MARGIN:-MARGIN]
    table = reference.transpose(1, 2, 0, 3).reshape(SIZE * SIZE, -1)  # pixels x date-major columns
    rng = np.random.default_rng(0)
    rows = np.flatnonzero(np.isfinite(table).all(axis=1))
    labels = (table[rows, 2] + 0.5 * table[rows, 5] > 0).astype(int) + (table[rows, 10] > 0.3)
    columns = [f"{n}_{d}" for d in np.datetime_as_string(DATES, unit="D") for n in names]
    booster = lgb.train(
        {"objective": "multiclass", "num_class": 3, "verbose": -1, "seed": 1, "num_threads": 1},
        lgb.Dataset(table[rows] + rng.normal(0, 0.01, table[rows].shape), labels, feature_name=columns),
        num_boost_round=5,
    )
    classes = [{"id": i, "name": f"c{i}", "colour": "#000000"} for i in (1, 2, 3)]
    metadata = {"dates": list(np.datetime_as_string(DATES, unit="D")), "features": names, "classes": classes}
    labels_map, confidence = predict_tile(booster, metadata, tile, block_rows=4, sigmas=SIGMAS)
    valid = tile["valid_count"].values[MARGIN:-MARGIN, MARGIN:-MARGIN].ravel() > 0
    proba = booster.predict(table[valid])
    np.testing.assert_array_equal(labels_map.ravel()[valid], np.array([1, 2, 3])[proba.argmax(axis=1)])
    np.testing.assert_array_equal(confidence.ravel()[valid], np.rint(100 * proba.max(axis=1)))
    assert (labels_map.ravel()[~valid] == 0).all() and len(np.unique(labels_map[labels_map > 0])) > 1
    # the model's columns must be what training saw: other sigmas are refused
    with pytest.raises(ValueError, match="do not match the model's"):
        predict_tile(booster, metadata, tile, sigmas=[1.0])
