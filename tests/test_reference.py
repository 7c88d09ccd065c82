import json
import logging
import time

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from conftest import load_npy
from rasterio.crs import CRS

from landcover.grid import tile_grid
from landcover.reference import erode, rasterize_reference, read_labels, read_reference, write_labels
from landcover.stack import TileGrid

CLASS_IDS = list(range(1, 11))
# 20 x 20 pixels of 10 m; lower-left corner at (460000, 5100000) in EPSG:32633.
GRID = tile_grid("x2300_y25500", 200, 10, "EPSG:32633")
X0, Y0 = 460000, 5100000


def centres(grid: TileGrid) -> tuple[np.ndarray, np.ndarray]:
    coords = grid.coords()
    return np.meshgrid(coords["x"], coords["y"])


def polygons(geoms, ids, crs="EPSG:32633", attribute="lulc_id") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({attribute: ids}, geometry=list(geoms), crs=crs)


def square(x0, y0, x1, y1):
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


# --- rasterisation ---------------------------------------------------------------------------


@pytest.mark.realdata
@pytest.mark.parametrize("crs", ["EPSG:32633", "EPSG:4326"])
def test_matches_eolearn_reference_raster(real_data, crs):
    """eo-learn rasterised these polygons into mask_timeless/LULC.npy; ours must agree pixel for pixel."""
    patch = real_data / "eolearn-testeopatch" / "TestEOPatch"
    expected = load_npy(patch / "mask_timeless" / "LULC.npy")[..., 0]
    minx, miny, maxx, maxy = shapely.geometry.shape(json.loads((patch / "bbox.geojson").read_text())).bounds
    height, width = expected.shape
    transform = Affine((maxx - minx) / width, 0, minx, 0, -(maxy - miny) / height, maxy)
    grid = TileGrid("testeopatch", CRS.from_epsg(32633), transform, height, width)
    reference = read_reference(patch / "vector_timeless" / "LULC.gpkg", "LULC_ID", grid).to_crs(crs)
    labels = rasterize_reference(reference, grid, "LULC_ID", CLASS_IDS)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, expected)


def test_reprojected_polygons_land_on_pixel_centres():
    utm = polygons([square(21, 31, 69, 119), square(141, -30, 260, 52)], [3, 5])
    labels = rasterize_reference(utm.to_crs("EPSG:4326"), GRID, "lulc_id", CLASS_IDS)
    x, y = centres(GRID)
    expected = np.zeros((20, 20), np.uint8)
    for geom, value in zip(utm.geometry, utm.lulc_id):
        expected[shapely.contains_xy(geom, x, y)] = value
    np.testing.assert_array_equal(labels, expected)
    assert (labels == 3).sum() == 5 * 9 and (labels == 5).sum() == 6 * 5  # clipped at the tile edge


def test_bow_tie_is_repaired(caplog):
    bow_tie = shapely.Polygon([(X0 + 1, Y0), (X0 + 201, Y0 + 200), (X0 + 201, Y0), (X0 + 1, Y0 + 200)])
    assert not bow_tie.is_valid
    with caplog.at_level(logging.INFO, logger="landcover"):
        labels = rasterize_reference(polygons([bow_tie], [2]), GRID, "lulc_id", CLASS_IDS)
    assert "repaired 1 invalid polygon" in caplog.text
    triangles = shapely.MultiPolygon(
        [
            shapely.Polygon([(X0 + 1, Y0), (X0 + 101, Y0 + 100), (X0 + 1, Y0 + 200)]),
            shapely.Polygon([(X0 + 201, Y0), (X0 + 101, Y0 + 100), (X0 + 201, Y0 + 200)]),
        ]
    )
    x, y = centres(GRID)
    np.testing.assert_array_equal(labels, np.where(shapely.contains_xy(triangles, x, y), 2, 0))


def test_later_polygon_wins_where_they_overlap():
    first, second = square(0, 0, 120, 200), square(80, 0, 200, 200)
    labels = rasterize_reference(polygons([first, second], [1, 2]), GRID, "lulc_id", CLASS_IDS)
    assert (labels[:, :8] == 1).all() and (labels[:, 8:] == 2).all()
    labels = rasterize_reference(polygons([second, first], [2, 1]), GRID, "lulc_id", CLASS_IDS)
    assert (labels[:, :12] == 1).all() and (labels[:, 12:] == 2).all()


def test_id_zero_burns_no_data():
    labels = rasterize_reference(
        polygons([square(0, 0, 200, 200), square(0, 0, 100, 200)], [4, 0]), GRID, "lulc_id", CLASS_IDS
    )
    assert (labels[:, :10] == 0).all() and (labels[:, 10:] == 4).all()


def test_ids_outside_the_classes_are_an_error():
    with pytest.raises(ValueError, match=r"'lulc_id' has class id\(s\) \[11, 42\]"):
        rasterize_reference(polygons([square(0, 0, 50, 50)] * 3, [42, 1, 11]), GRID, "lulc_id", CLASS_IDS)
    # Far from the tile too: a wrong id is never silently dropped.
    far = shapely.box(0, 0, 10, 10)
    with pytest.raises(ValueError, match=r"\[12\]"):
        rasterize_reference(polygons([far], [12]), GRID, "lulc_id", CLASS_IDS)
    with pytest.raises(ValueError, match="non-integer"):
        rasterize_reference(polygons([far, far], [1.5, 2.0]), GRID, "lulc_id", CLASS_IDS)
    with pytest.raises(ValueError, match="non-integer"):
        rasterize_reference(polygons([far, far], [None, 2]), GRID, "lulc_id", CLASS_IDS)


def test_non_polygons_are_an_error():
    with pytest.raises(ValueError, match="not polygons.*LineString"):
        rasterize_reference(
            polygons([shapely.LineString([(X0, Y0), (X0 + 100, Y0 + 100)])], [1]), GRID, "lulc_id", CLASS_IDS
        )


def test_tile_without_polygons_is_no_data():
    labels = rasterize_reference(polygons([shapely.box(0, 0, 10, 10)], [1]), GRID, "lulc_id", CLASS_IDS)
    assert labels.shape == (20, 20) and labels.dtype == np.uint8 and not labels.any()


def test_read_reference(tmp_path):
    path = tmp_path / "reference.gpkg"
    source = polygons([square(0, 0, 50, 50), shapely.box(0, 0, 10, 10)], [1, 2], attribute="LULC_ID")
    source["LULC_NAME"] = ["cultivated land", "forest"]
    source.to_file(path)
    every = read_reference(path, "LULC_ID")
    assert list(every.columns) == ["LULC_ID", "geometry"] and len(every) == 2
    near = read_reference(path, "LULC_ID", GRID)
    assert list(near.LULC_ID) == [1]
    assert str(path) in near.attrs["source"]
    with pytest.raises(ValueError, match=r"reference.gpkg: no attribute 'lulc_id' \(attributes: LULC_ID, LULC_NAME\)"):
        read_reference(path, "lulc_id")
    with pytest.raises(FileNotFoundError, match="missing.gpkg"):
        read_reference(tmp_path / "missing.gpkg", "LULC_ID")
    no_crs = tmp_path / "no_crs.gpkg"
    with pytest.warns(UserWarning, match="crs"):
        gpd.GeoDataFrame({"LULC_ID": [1]}, geometry=[square(0, 0, 50, 50)]).to_file(no_crs)
    with pytest.raises(ValueError, match="no_crs.gpkg: has no CRS"):
        read_reference(no_crs, "LULC_ID")


def test_empty_reference_file_gives_no_data(tmp_path):
    path = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame({"lulc_id": pd.Series([], dtype="int64")}, geometry=gpd.GeoSeries([], crs="EPSG:32633")).to_file(
        path
    )
    reference = read_reference(path, "lulc_id", GRID)
    assert reference.empty
    assert not rasterize_reference(reference, GRID, "lulc_id", CLASS_IDS).any()


def test_label_raster_round_trip(tmp_path):
    labels = np.random.default_rng(0).integers(0, 4, (20, 20)).astype(np.uint8)
    path = tmp_path / "reference" / "tile.tif"
    write_labels(path, GRID, labels, erode(labels, 1))
    with rasterio.open(path) as src:
        assert src.count == 2 and src.dtypes == ("uint8", "uint8")
        assert src.descriptions == ("reference", "eroded")
        assert src.nodata == 0 and src.crs == GRID.crs and src.transform == GRID.transform
        assert src.compression.value == "DEFLATE"
        np.testing.assert_array_equal(src.read(1), labels)
    np.testing.assert_array_equal(read_labels(path, GRID), erode(labels, 1))
    np.testing.assert_array_equal(read_labels(path, GRID, band=1), labels)
    assert [p.name for p in path.parent.iterdir()] == ["tile.tif"]
    with pytest.raises(ValueError, match="tile.tif: grid .* differs from tile x2301_y25500"):
        read_labels(path, tile_grid("x2301_y25500", 200, 10, "EPSG:32633"))


# --- erosion ---------------------------------------------------------------------------------


def brute_force_erode(labels: np.ndarray, radius: int) -> np.ndarray:
    """Pixel by pixel: keep a label if every in-tile pixel with dy^2 + dx^2 <= r^2 shares it."""
    out = np.zeros_like(labels)
    height, width = labels.shape
    for row in range(height):
        for col in range(width):
            value = labels[row, col]
            if value == 0:
                continue
            window = [
                labels[row + dy, col + dx]
                for dy in range(-radius, radius + 1)
                for dx in range(-radius, radius + 1)
                if dy * dy + dx * dx <= radius * radius and 0 <= row + dy < height and 0 <= col + dx < width
            ]
            if all(v == value for v in window):
                out[row, col] = value
    return out


def test_radius_one_removes_boundary_pixels():
    # eo-learn >= 1.5's ErosionTask(disk_radius=1) removes none of these; the negative buffer must.
    labels = np.array(
        [
            [1, 1, 1, 2, 2, 2],
            [1, 1, 1, 2, 2, 2],
            [1, 1, 1, 2, 2, 2],
            [1, 1, 1, 2, 2, 2],
            [3, 3, 3, 3, 3, 3],
            [3, 3, 3, 3, 3, 0],
        ],
        dtype=np.uint8,
    )
    expected = np.array(
        [
            [1, 1, 0, 0, 2, 2],
            [1, 1, 0, 0, 2, 2],
            [1, 1, 0, 0, 2, 2],
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
            [3, 3, 3, 3, 0, 0],
        ],
        dtype=np.uint8,
    )
    np.testing.assert_array_equal(erode(labels, 1), expected)


def test_disk_shapes():
    field = np.ones((9, 9), np.uint8)
    field[4, 4] = 0  # one no-data pixel
    cross = np.ones((9, 9), np.uint8)
    cross[3:6, 4] = cross[4, 3:6] = 0  # radius 1: the 4-neighbours go, the diagonals stay
    np.testing.assert_array_equal(erode(field, 1), cross)
    dy, dx = np.mgrid[-4:5, -4:5]
    np.testing.assert_array_equal(erode(field, 2), np.where(dy**2 + dx**2 <= 4, 0, 1))  # 13 pixels
    np.testing.assert_array_equal(erode(field, 0), field)
    assert erode(np.full((5, 5), 7, np.uint8), 3).tolist() == np.full((5, 5), 7).tolist()  # tile edge: no erosion


@pytest.mark.parametrize("radius", [0, 1, 2, 3])
def test_matches_brute_force(radius):
    rng = np.random.default_rng(radius)
    for shape in [(23, 31), (8, 40), (1, 12)]:
        blocks = rng.integers(0, 4, (shape[0] // 3 + 1, shape[1] // 3 + 1))
        labels = np.kron(blocks, np.ones((3, 3), int))[: shape[0], : shape[1]].astype(np.uint8)
        labels[rng.random(shape) < 0.03] = rng.integers(0, 4)  # speckle
        np.testing.assert_array_equal(erode(labels, radius), brute_force_erode(labels, radius))


def test_erode_keeps_dtype_beyond_cv2_types():
    labels = np.kron(np.random.default_rng(2).integers(0, 4, (6, 7)), np.ones((3, 3), int)).astype(np.uint8)
    expected = brute_force_erode(labels, 1)
    for dtype in (np.int64, np.int32, np.uint16):
        eroded = erode(labels.astype(dtype)[:, ::-1], 1)  # not contiguous either
        assert eroded.dtype == dtype
        np.testing.assert_array_equal(eroded, expected[:, ::-1])
    assert erode(np.zeros((0, 4), np.uint8), 1).shape == (0, 4)


def test_erode_is_fast_and_checks_input():
    labels = np.kron(np.random.default_rng(1).integers(0, 11, (50, 50)), np.ones((10, 10), int)).astype(np.uint8)
    erode(labels, 1)
    start = time.perf_counter()
    eroded = erode(labels, 1)
    assert time.perf_counter() - start < 0.05  # a few ms on a laptop
    assert eroded.dtype == np.uint8 and eroded.shape == (500, 500)
    with pytest.raises(ValueError, match="radius"):
        erode(labels, -1)
    with pytest.raises(ValueError, match="2-D"):
        erode(labels[None], 1)
