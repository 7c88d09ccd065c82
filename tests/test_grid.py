import time

import geopandas as gpd
import numpy as np
import pytest
import shapely
import xarray as xr
from affine import Affine
from rasterio.crs import CRS

from landcover.grid import crop_to_tile, make_grid, margin_of, read_aoi, tile_grid, tile_window, with_margin, write_grid
from landcover.stack import grid_of, with_grid

SYNTHETIC_BOUNDS = (457500, 5097500, 465000, 5105000)  # config.yaml's 3 x 3 tiles of 2.5 km


@pytest.fixture(scope="module")
def border(real_data):
    return read_aoi(real_data / "slovenia" / "svn_border.geojson")


def brute_force_ids(area: shapely.Geometry, tile_size: float) -> list[str]:
    """Every candidate tile, one by one, kept if its intersection with the area has positive area."""
    minx, miny, maxx, maxy = area.bounds
    ids = []
    for ix in range(int(minx // tile_size) - 1, int(maxx // tile_size) + 2):
        for iy in range(int(miny // tile_size) - 1, int(maxy // tile_size) + 2):
            tile = shapely.box(ix * tile_size, iy * tile_size, (ix + 1) * tile_size, (iy + 1) * tile_size)
            if area.intersection(tile).area > 0:
                ids.append(f"x{ix:04d}_y{iy:04d}")
    return sorted(ids)


@pytest.mark.realdata
@pytest.mark.parametrize("tile_size, expected", [(10000, 262), (5000, 940)])
def test_slovenia_tile_counts(border, tile_size, expected):
    start = time.perf_counter()
    grid = make_grid(border, tile_size, 10)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    assert abs(len(grid) - expected) <= 0.03 * expected
    assert grid.crs.to_epsg() == 32633  # the UTM zone of the centroid (about 14.8 E)
    assert list(grid.tile_id) == sorted(grid.tile_id)
    assert grid.tile_id.is_unique


@pytest.mark.realdata
def test_slovenia_matches_brute_force(border):
    grid = make_grid(border, 10000, 10, crs="EPSG:32633")
    assert list(grid.tile_id) == brute_force_ids(shapely.union_all(border.geometry.values), 10000)


@pytest.mark.realdata
def test_lonlat_aoi_is_reprojected(border, real_data):
    utm = make_grid(border, 10000, 10)
    lonlat = make_grid(border.to_crs("EPSG:4326"), 10000, 10)
    assert lonlat.crs.to_epsg() == 32633
    assert list(lonlat.tile_id) == list(utm.tile_id)
    buffered = make_grid(read_aoi(real_data / "slovenia" / "svn_buffered.geojson"), 10000, 10, crs="EPSG:32633")
    assert set(utm.tile_id) < set(buffered.tile_id)


def test_columns_and_geometry():
    grid = make_grid(shapely.box(*SYNTHETIC_BOUNDS), 2500, 10, crs="EPSG:32633")
    assert list(grid.columns) == [
        "tile_id",
        "ix",
        "iy",
        "minx",
        "miny",
        "maxx",
        "maxy",
        "width",
        "height",
        "resolution_m",
        "geometry",
    ]
    row = grid.set_index("tile_id").loc["x0184_y2040"]
    assert (row.ix, row.iy) == (184, 2040)
    assert (row.minx, row.miny, row.maxx, row.maxy) == (460000, 5100000, 462500, 5102500)
    assert (row.width, row.height, row.resolution_m) == (250, 250, 10)
    assert row.geometry.equals(shapely.box(460000, 5100000, 462500, 5102500))
    assert grid.crs.to_epsg() == 32633


def test_touching_tiles_are_left_out():
    # The synthetic bounds lie on tile edges: their neighbours touch the area but do not overlap it.
    grid = make_grid(shapely.box(*SYNTHETIC_BOUNDS), 2500, 10, crs="EPSG:32633")
    assert list(grid.tile_id) == [f"x{ix:04d}_y{iy:04d}" for ix in (183, 184, 185) for iy in (2039, 2040, 2041)]
    one = make_grid(shapely.box(460000, 5100000, 462500, 5102500), 2500, 10, crs="EPSG:32633")
    assert list(one.tile_id) == ["x0184_y2040"]


def test_ids_are_stable_when_the_area_grows():
    small = make_grid(shapely.box(460100, 5100100, 462000, 5102000), 2500, 10, crs="EPSG:32633")
    large = make_grid(shapely.box(*SYNTHETIC_BOUNDS).buffer(4000), 2500, 10, crs="EPSG:32633")
    assert list(small.tile_id) == ["x0184_y2040"]
    same = large.set_index("tile_id").loc[small.tile_id]
    assert np.array_equal(same.geometry.values, small.geometry.values)


def test_negative_indices_round_trip():
    grid = make_grid(shapely.box(-3000, -3000, -100, -100), 2500, 10, crs="EPSG:3857")
    assert set(grid.tile_id) == {"x-002_y-002", "x-002_y-001", "x-001_y-002", "x-001_y-001"}
    assert tile_grid("x-002_y-001", 2500, 10, "EPSG:3857").bounds == (-5000, -2500, -2500, 0)


def test_restriction_to_listed_tiles():
    box = shapely.box(*SYNTHETIC_BOUNDS)
    grid = make_grid(box, 2500, 10, crs="EPSG:32633", tiles=["x0185_y2041", "x0183_y2039"])
    assert list(grid.tile_id) == ["x0183_y2039", "x0185_y2041"]
    with pytest.raises(ValueError, match="x0999_y0999"):
        make_grid(box, 2500, 10, crs="EPSG:32633", tiles=["x0184_y2040", "x0999_y0999"])
    with pytest.raises(ValueError, match="tile_7"):
        make_grid(box, 2500, 10, crs="EPSG:32633", tiles=["tile_7"])


def test_bad_grid_settings():
    box = shapely.box(*SYNTHETIC_BOUNDS)
    with pytest.raises(ValueError, match="whole number"):
        make_grid(box, 2505, 10, crs="EPSG:32633")
    with pytest.raises(ValueError, match="needs `crs`"):
        make_grid(box, 2500, 10)
    with pytest.raises(ValueError, match="not projected"):
        make_grid(gpd.GeoSeries([shapely.box(14, 46, 15, 47)], crs="EPSG:4326"), 2500, 10, crs="EPSG:4326")


def test_tile_grid_transform():
    grid = tile_grid("x0184_y2040", 2500, 10, "EPSG:32633")
    assert grid.tile_id == "x0184_y2040"
    assert grid.crs == CRS.from_epsg(32633)
    assert grid.transform == Affine(10, 0, 460000, 0, -10, 5102500)
    assert (grid.height, grid.width) == (250, 250)
    assert grid.bounds == (460000, 5100000, 462500, 5102500)
    assert grid.coords()["x"][0] == 460005 and grid.coords()["y"][0] == 5102495
    with pytest.raises(ValueError, match="x184-y2040"):
        tile_grid("x184-y2040", 2500, 10, "EPSG:32633")


def test_a_grown_tile_grid_and_its_crop():
    tile = tile_grid("x0184_y2040", 2500, 10, "EPSG:32633")
    grid = tile_grid("x0184_y2040", 2500, 10, "EPSG:32633", margin_px=9)
    assert grid.tile_id == tile.tile_id and (grid.height, grid.width) == (268, 268)
    assert grid.bounds == (460000 - 90, 5100000 - 90, 462500 + 90, 5102500 + 90)
    x, y = grid.coords()["x"], grid.coords()["y"]
    values = xr.DataArray(np.arange(268 * 268).reshape(268, 268), dims=("y", "x"))
    ds = with_margin(with_grid(xr.Dataset({"v": values}), grid), 9)
    assert margin_of(ds) == 9 and tile_window(ds) == (slice(9, 259), slice(9, 259))
    cropped = crop_to_tile(ds)
    assert grid_of(cropped) == tile and margin_of(cropped) == 0 and margin_of(ds) == 9
    np.testing.assert_array_equal(cropped["x"].values, x[9:259])
    np.testing.assert_array_equal(cropped["y"].values, tile.coords()["y"])
    np.testing.assert_array_equal(cropped["v"].values, values.values[9:259, 9:259])
    assert y[9] == tile.coords()["y"][0]
    assert crop_to_tile(cropped) is cropped  # no margin: nothing to cut
    with pytest.raises(ValueError, match="margin must be >= 0"):
        tile_grid("x0184_y2040", 2500, 10, "EPSG:32633", margin_px=-1)
    with pytest.raises(ValueError, match="a margin of 134 px does not fit"):
        with_margin(ds, 134)
    assert margin_of(ds) == 9  # left as it was


def test_tile_grid_agrees_with_make_grid():
    grid = make_grid(shapely.box(*SYNTHETIC_BOUNDS), 2500, 20, crs="EPSG:32633")
    for row in grid.itertuples():
        tile = tile_grid(row.tile_id, 2500, 20, grid.crs)
        assert tile.bounds == row.geometry.bounds
        assert (tile.height, tile.width) == (row.height, row.width) == (125, 125)


def test_write_grid_round_trip(tmp_path):
    grid = make_grid(shapely.box(*SYNTHETIC_BOUNDS), 2500, 10, crs="EPSG:32633")
    path = tmp_path / "out" / "grid.gpkg"
    write_grid(grid, path)
    back = gpd.read_file(path)
    assert list(back.tile_id) == list(grid.tile_id)
    assert back.crs.to_epsg() == 32633
    assert [p.name for p in path.parent.iterdir()] == ["grid.gpkg"]


def test_read_aoi_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.geojson"):
        read_aoi(tmp_path / "missing.geojson")
    points = tmp_path / "points.gpkg"
    gpd.GeoDataFrame(geometry=[shapely.Point(1, 2)], crs="EPSG:32633").to_file(points)
    with pytest.raises(ValueError, match="points.gpkg: contains no polygons"):
        read_aoi(points)
    no_crs = tmp_path / "no_crs.gpkg"
    with pytest.warns(UserWarning, match="crs"):
        gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)]).to_file(no_crs)
    with pytest.raises(ValueError, match="no_crs.gpkg: has no CRS"):
        read_aoi(no_crs)
    empty = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame({"name": []}, geometry=gpd.GeoSeries([], crs="EPSG:32633")).to_file(empty)
    with pytest.raises(ValueError, match="empty.gpkg: contains no geometry"):
        read_aoi(empty)
    garbage = tmp_path / "garbage.geojson"
    garbage.write_text("not json")
    with pytest.raises(ValueError, match="garbage.geojson: cannot be read"):
        read_aoi(garbage)
