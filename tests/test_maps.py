"""Tile GeoTIFFs, the merged Cloud-Optimised GeoTIFF and the pictures."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rio_cogeo.cogeo import cog_validate

from landcover import stack
from landcover.classes import EOLEARN_CLASSES
from landcover.maps import (
    clearest_frame,
    merge_tiles,
    plot_tile,
    preview_png,
    write_class_geotiff,
    write_confidence_geotiff,
)
from landcover.stack import TileGrid

UTM33 = CRS.from_epsg(32633)
PNG = b"\x89PNG\r\n\x1a\n"


def tile_grid(ix: int, iy: int, size: int = 150, crs=UTM33) -> TileGrid:
    return TileGrid(
        f"x{ix:04d}_y{iy:04d}", crs, Affine(10, 0, ix * 10 * size, 0, -10, (iy + 1) * 10 * size), size, size
    )


def random_labels(grid: TileGrid, seed: int) -> np.ndarray:
    labels = np.random.default_rng(seed).choice([0, 1, 2, 5, 8], size=(grid.height, grid.width)).astype(np.uint8)
    labels[:10] = 0
    return labels


def test_class_geotiff_carries_grid_colours_names_overviews_and_tiling(tmp_path):
    grid = tile_grid(300, 5000, size=250)
    labels = random_labels(grid, 0)
    write_class_geotiff(tmp_path / "map.tif", labels, grid, EOLEARN_CLASSES)
    with rasterio.open(tmp_path / "map.tif") as src:
        np.testing.assert_array_equal(src.read(1), labels)
        assert src.crs == UTM33 and src.transform == grid.transform and src.dtypes == ("uint8",)
        assert src.nodata == 0
        assert src.block_shapes == [(256, 256)] and src.profile["tiled"]
        assert src.compression.name == "deflate"
        assert src.overviews(1) == [2]
        assert src.colormap(1)[2][:3] == (5, 73, 7) and src.colormap(1)[10][:3] == (0, 0, 0)
        assert src.tags(1)["CLASS_8"] == "artificial surface" and src.tags(1)["CLASS_0"] == "no data"
        assert src.descriptions == ("land cover class",)
        overview = src.read(1, out_shape=(125, 125))
    assert set(np.unique(overview)) <= {0, 1, 2, 5, 8}  # nearest: no invented classes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.tif"]  # no .aux.xml, no temporary

    write_class_geotiff(tmp_path / "again.tif", labels, grid, EOLEARN_CLASSES)
    assert (tmp_path / "again.tif").read_bytes() == (tmp_path / "map.tif").read_bytes()


def test_class_geotiff_refuses_unknown_classes_and_wrong_shapes(tmp_path):
    grid = tile_grid(1, 1, size=20)
    with pytest.raises(ValueError, match=r"x0001_y0001: labels \[42\]"):
        write_class_geotiff(tmp_path / "map.tif", np.full((20, 20), 42, np.uint8), grid, EOLEARN_CLASSES)
    with pytest.raises(ValueError, match="x0001_y0001: raster has shape"):
        write_class_geotiff(tmp_path / "map.tif", np.ones((20, 21), np.uint8), grid, EOLEARN_CLASSES)
    assert not list(tmp_path.iterdir())


def test_confidence_geotiff(tmp_path):
    grid = tile_grid(2, 2, size=130)
    confidence = np.random.default_rng(1).integers(0, 101, (130, 130)).astype(np.uint8)
    write_confidence_geotiff(tmp_path / "confidence.tif", confidence, grid)
    with rasterio.open(tmp_path / "confidence.tif") as src:
        np.testing.assert_array_equal(src.read(1), confidence)
        assert src.crs == UTM33 and src.transform == grid.transform and src.nodata == 0
        assert src.overviews(1) == [2] and src.block_shapes == [(256, 256)]


def test_merged_cog_validates_and_covers_the_union_of_the_tiles(tmp_path):
    grids = [
        tile_grid(10, 20, 300),
        tile_grid(11, 20, 300),
        tile_grid(10, 21, 300),
    ]  # an L: the union has an empty corner
    paths = []
    for index, grid in enumerate(grids):
        paths.append(tmp_path / f"{grid.tile_id}.tif")
        write_class_geotiff(paths[-1], random_labels(grid, index), grid, EOLEARN_CLASSES)
    out = tmp_path / "out" / "landcover.tif"
    merge_tiles(paths, out, EOLEARN_CLASSES)

    assert cog_validate(str(out)) == (True, [], [])
    with rasterio.open(out) as src:
        assert src.crs == UTM33 and src.res == (10, 10) and src.nodata == 0
        assert tuple(src.bounds) == (30000, 60000, 36000, 66000)  # the union of the tiles
        assert src.colormap(1)[5][:3] == (6, 154, 243)
        assert src.tags(1)["CLASS_5"] == "water"
        assert src.overviews(1) == [2]
        merged = src.read(1)
    np.testing.assert_array_equal(merged[300:, :300], random_labels(grids[0], 0))
    np.testing.assert_array_equal(merged[300:, 300:], random_labels(grids[1], 1))
    np.testing.assert_array_equal(merged[:300, :300], random_labels(grids[2], 2))
    assert (merged[:300, 300:] == 0).all()
    assert sorted(p.name for p in out.parent.iterdir()) == ["landcover.tif"]

    merge_tiles(paths, tmp_path / "again.tif", EOLEARN_CLASSES)
    assert (tmp_path / "again.tif").read_bytes() == out.read_bytes()

    preview_png(out, tmp_path / "preview.png", EOLEARN_CLASSES, max_pixels=100)
    assert (tmp_path / "preview.png").read_bytes()[:8] == PNG


def test_merge_equals_the_tiles_pasted_by_hand_with_every_class_colour_and_name(tmp_path):
    """The merge through GDAL's VRT against the tiles pasted into a numpy mosaic (what merge_tiles did by hand
    before), on an EOPatch-like grid of not quite square pixels, tiles given in any order."""
    res_y, size = 9.9974, 60
    grids = {
        (col, row): TileGrid(
            f"t{col}{row}",
            UTM33,
            Affine(10, 0, 500000 + col * 600, 0, -res_y, 5100000 - row * size * res_y),
            size,
            size,
        )
        for col, row in ((1, 0), (0, 1), (2, 1), (0, 0))
    }
    expected = np.zeros((2 * size, 3 * size), np.uint8)
    paths = []
    for seed, ((col, row), grid) in enumerate(grids.items()):
        labels = random_labels(grid, seed)
        expected[row * size : (row + 1) * size, col * size : (col + 1) * size] = labels
        paths.append(tmp_path / f"{grid.tile_id}.tif")
        write_class_geotiff(paths[-1], labels, grid, EOLEARN_CLASSES)
    merge_tiles(paths, tmp_path / "merged.tif", EOLEARN_CLASSES)
    with rasterio.open(tmp_path / "merged.tif") as src:
        np.testing.assert_array_equal(src.read(1), expected)
        assert src.transform == Affine(10, 0, 500000, 0, -res_y, 5100000)
        assert src.descriptions == ("land cover class",) and src.nodata == 0
        for c in EOLEARN_CLASSES:
            assert src.colormap(1)[c.id] == (*c.rgb, 0 if c.id == 0 else 255)
            assert src.tags(1)[f"CLASS_{c.id}"] == c.name


def test_merge_refuses_tiles_in_another_crs_or_off_the_pixel_grid(tmp_path):
    shifted = TileGrid("shifted", UTM33, Affine(10, 0, 205, 0, -10, 200), 20, 20)
    grids = {"a": tile_grid(0, 0, 20), "other_crs": tile_grid(1, 0, 20, crs=CRS.from_epsg(32632)), "shifted": shifted}
    for name, grid in grids.items():
        write_class_geotiff(tmp_path / f"{name}.tif", random_labels(grid, 0), grid, EOLEARN_CLASSES)
    with pytest.raises(ValueError, match="other_crs.tif: CRS"):
        merge_tiles([tmp_path / "a.tif", tmp_path / "other_crs.tif"], tmp_path / "m.tif", EOLEARN_CLASSES)
    with pytest.raises(ValueError, match="shifted.tif: tile is not on the pixel grid"):
        merge_tiles([tmp_path / "a.tif", tmp_path / "shifted.tif"], tmp_path / "m.tif", EOLEARN_CLASSES)
    assert not (tmp_path / "m.tif").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def stack_file(path, grid: TileGrid) -> None:
    """Five acquisitions: partial swath, cloudy, clear April, clear August, slightly cloudy June."""
    times = np.array(["2017-07-10", "2017-07-20", "2017-04-01", "2017-08-20", "2017-06-30"], dtype="datetime64[ns]")
    rng = np.random.default_rng(5)
    bands = rng.integers(300, 1500, (len(times), grid.height, grid.width, 4)).astype(np.uint16)
    is_data = np.ones((len(times), grid.height, grid.width), dtype=bool)
    is_data[0, :, : grid.width // 2] = False
    bands[1, : grid.height // 2] = 4000  # a cloud over half the tile
    bands[4, : grid.height // 10] = 3000  # a small cloud
    stack.write(stack.new_stack(bands, is_data, times, ["B02", "B03", "B04", "B08"], grid), path)


def test_clearest_frame_prefers_full_clear_acquisitions_near_midsummer(tmp_path):
    grid = tile_grid(7, 8, size=70)
    stack_file(tmp_path / "stack.nc", grid)
    with stack.open(tmp_path / "stack.nc") as ds:
        assert clearest_frame(ds) == 3


def test_plot_tile_writes_a_png_and_checks_grids(tmp_path):
    grid = tile_grid(7, 8, size=70)
    stack_file(tmp_path / "stack.nc", grid)
    reference = random_labels(grid, 3)
    profile = {"driver": "GTiff", "width": 70, "height": 70, "count": 2, "dtype": "uint8"}
    with rasterio.open(tmp_path / "reference.tif", "w", crs=grid.crs, transform=grid.transform, **profile) as dst:
        dst.write(np.stack([reference, reference]))
    write_class_geotiff(tmp_path / "map.tif", random_labels(grid, 4), grid, EOLEARN_CLASSES)
    with stack.open(tmp_path / "stack.nc") as ds:
        plot_tile(ds, tmp_path / "reference.tif", tmp_path / "map.tif", EOLEARN_CLASSES, tmp_path / "plot.png", dpi=40)
        assert (tmp_path / "plot.png").read_bytes()[:8] == PNG
        small = tile_grid(7, 8, size=20)
        write_class_geotiff(tmp_path / "small.tif", random_labels(small, 4), small, EOLEARN_CLASSES)
        with pytest.raises(ValueError, match="small.tif: land-cover map has shape"):
            plot_tile(ds, tmp_path / "reference.tif", tmp_path / "small.tif", EOLEARN_CLASSES, tmp_path / "p.png", 40)
        with pytest.raises(ValueError, match="x0007_y0008: stack lacks band"):
            plot_tile(
                ds.sel(band=["B02", "B08"]),
                tmp_path / "reference.tif",
                tmp_path / "map.tif",
                EOLEARN_CLASSES,
                tmp_path / "p.png",
                40,
            )
