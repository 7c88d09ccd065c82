"""Spatial context: normalised Gaussian smoothing with a halo from neighbouring tiles (no seam), and temporal
statistics of the interpolated series."""

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from scipy import ndimage

from landcover.context import context_features, context_names, halo_pixels, majority_filter, smooth, touching_tiles
from landcover.features import temporal_features, temporal_names
from landcover.stack import TileGrid, with_grid

SIZE = 30
DATES = np.array(["2017-01-01", "2017-01-17", "2017-02-02"], dtype="datetime64[ns]")


def features_ds(tile: str, values: np.ndarray, origin: tuple[float, float]) -> xr.Dataset:
    """A features dataset (date, y, x, feature) on 10 m pixels with its top-left corner at `origin`."""
    grid = TileGrid(tile, CRS.from_epsg(32633), Affine(10, 0, origin[0], 0, -10, origin[1]), *values.shape[1:3])
    ds = with_grid(xr.Dataset(coords={"date": DATES, "feature": ["NDVI", "NDWI"]}), grid)
    valid = np.isfinite(values).all(axis=(0, 3))
    return ds.assign(
        features=(("date", "y", "x", "feature"), values), valid_count=(("y", "x"), valid.astype(np.uint16) * 3)
    )


@pytest.fixture(scope="module")
def area() -> np.ndarray:
    """A 2 x 2 grid of tiles' worth of features with some pixels that have no observation."""
    rng = np.random.default_rng(5)
    values = ndimage.gaussian_filter(rng.normal(size=(3, 2 * SIZE, 2 * SIZE, 2)), (0, 2, 2, 0)).astype(np.float32)
    values[:, rng.random((2 * SIZE, 2 * SIZE)) < 0.05] = np.nan
    return values


def tiles_of(area: np.ndarray) -> dict[str, xr.Dataset]:
    return {
        f"r{i}_c{j}": features_ds(
            f"r{i}_c{j}", area[:, i * SIZE : (i + 1) * SIZE, j * SIZE : (j + 1) * SIZE], (j * 10 * SIZE, -i * 10 * SIZE)
        )
        for i in range(2)
        for j in range(2)
    }


@pytest.mark.parametrize("tile", ["r0_c0", "r1_c1", "r0_c1"])
def test_a_tile_with_its_halo_equals_the_same_pixels_of_the_whole_area(area, tile):
    sigmas = [1.0, 3.0]
    tiles = tiles_of(area)
    alone = context_features(tiles[tile], [ds for name, ds in tiles.items() if name != tile], sigmas)
    whole = context_features(features_ds("whole", area, (0, 0)), [], sigmas)
    i, j = int(tile[1]), int(tile[4])
    cut = whole["features"].values[:, i * SIZE : (i + 1) * SIZE, j * SIZE : (j + 1) * SIZE]
    np.testing.assert_allclose(alone["features"].values, cut, rtol=1e-6, atol=1e-7, equal_nan=True)
    assert list(alone["feature"].values) == context_names(["NDVI", "NDWI"], sigmas)
    # without the halo the tile edge differs: the test can fail
    bare = context_features(tiles[tile], [], sigmas)["features"].values
    assert not np.allclose(bare, cut, equal_nan=True)


def test_smoothing_ignores_pixels_without_observation():
    cube = np.full((1, 9, 9, 1), 2.0, dtype=np.float32)
    valid = np.ones((9, 9), dtype=bool)
    cube[0, 4, 4, 0], valid[4, 4] = 1000.0, False  # an invalid value never leaks in
    smoothed = smooth(cube, valid, 1.0)
    np.testing.assert_allclose(smoothed, 2.0, rtol=1e-6)
    reference = ndimage.gaussian_filter(np.where(valid, cube[0, ..., 0], 0), 1.0, mode="constant", truncate=3.0)
    weight = ndimage.gaussian_filter(valid.astype(float), 1.0, mode="constant", truncate=3.0)
    np.testing.assert_allclose(smoothed[0, ..., 0], reference / weight, rtol=1e-5)


def test_halo_and_neighbours():
    assert halo_pixels([1, 3]) == 9 and halo_pixels([]) == 0
    bounds = {"a": (0, 0, 10, 10), "b": (10, 0, 20, 10), "c": (20, 20, 30, 30), "d": (10, 10, 20, 20)}
    assert touching_tiles(bounds, "a") == ["b", "d"]
    assert touching_tiles(bounds, "c") == ["d"]


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
