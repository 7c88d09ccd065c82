"""The tile grid: square tiles snapped to absolute multiples of the tile size in one projected CRS.

Tile ids are absolute grid indices (``x{ix:04d}_y{iy:04d}``, ``ix = floor(minx / tile_size)``), so
a tile keeps its id, and its outputs stay valid, when the area of interest grows or shrinks.
`make_grid` runs while Snakemake parses the workflow, so it is vectorised (no per-tile loop).

A tile's stack, cloud masks and features cover the tile grown by a margin on each side, read from the source
itself (`tile_grid(..., margin_px=)`), so that the spatial context of the tile's edge pixels needs no other tile's
files; they say so in ``attrs["margin_px"]``. Every stage that works on the tile exactly (reference, samples, maps,
figures) crops with `tile_window` / `crop_to_tile`.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
import xarray as xr
from affine import Affine
from pyproj import CRS as ProjCRS
from rasterio.crs import CRS

from landcover.atomic import atomic_path
from landcover.stack import TileGrid, grid_of

__all__ = [
    "TileGrid",
    "crop_to_tile",
    "grown",
    "make_grid",
    "margin_of",
    "read_aoi",
    "tile_grid",
    "tile_id",
    "tile_window",
    "utm_crs",
    "with_margin",
    "write_grid",
]

MARGIN_ATTR = "margin_px"

_TILE_ID = re.compile(r"^x(-?\d+)_y(-?\d+)$")
_POLYGONAL = ("Polygon", "MultiPolygon")


def read_aoi(path: str | os.PathLike) -> gpd.GeoDataFrame:
    """The area of interest's polygons, in their own CRS."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"area of interest {path}: file does not exist")
    try:
        aoi = gpd.read_file(path)
    except Exception as err:  # pyogrio raises DataSourceError and friends
        raise ValueError(f"area of interest {path}: cannot be read ({err})") from err
    aoi = aoi[aoi.geometry.notna() & ~aoi.geometry.is_empty]
    if aoi.empty:
        raise ValueError(f"area of interest {path}: contains no geometry")
    if aoi.crs is None:
        raise ValueError(f"area of interest {path}: has no CRS")
    aoi = aoi[aoi.geom_type.isin(_POLYGONAL)]
    if aoi.empty:
        raise ValueError(f"area of interest {path}: contains no polygons")
    return aoi


def utm_crs(lon: float, lat: float) -> ProjCRS:
    """The WGS 84 UTM zone of a point (the regular 6-degree zones, without the Norway exceptions)."""
    zone = min(math.floor((lon + 180.0) / 6.0) + 1, 60)
    return ProjCRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def tile_id(ix: int, iy: int) -> str:
    return f"x{ix:04d}_y{iy:04d}"


def _parse_id(tile: str) -> tuple[int, int]:
    match = _TILE_ID.match(str(tile))
    if match is None:
        raise ValueError(f"invalid tile id {tile!r}: expected x<ix>_y<iy> such as x0184_y2040")
    return int(match.group(1)), int(match.group(2))


def _pixels(tile_size_m: float, resolution_m: float) -> int:
    if not (tile_size_m > 0 and resolution_m > 0):
        raise ValueError(f"tile size ({tile_size_m} m) and resolution ({resolution_m} m) must be positive")
    pixels = round(tile_size_m / resolution_m)
    if pixels < 1 or not math.isclose(pixels * resolution_m, tile_size_m, rel_tol=1e-9):
        raise ValueError(f"tile size {tile_size_m} m is not a whole number of {resolution_m} m pixels")
    return pixels


def _target_crs(aoi_lonlat: shapely.Geometry, crs) -> ProjCRS:
    if crs is not None:
        target = ProjCRS.from_user_input(crs)
    else:
        centre = aoi_lonlat.centroid
        target = utm_crs(centre.x, centre.y)
    if not target.is_projected:
        raise ValueError(f"grid CRS {target} is not projected: tiles are sized in metres")
    return target


def make_grid(
    aoi: gpd.GeoDataFrame | gpd.GeoSeries | shapely.Geometry,
    tile_size_m: float,
    resolution_m: float,
    crs=None,
    tiles: list[str] | None = None,
) -> gpd.GeoDataFrame:
    """The tiles whose area overlaps the AOI (touching is not enough), sorted by tile id.

    A GeoDataFrame/GeoSeries AOI is reprojected to `crs` (default: the UTM zone of its centroid);
    a bare shapely geometry is taken to be in `crs`, which is then required."""
    pixels = _pixels(tile_size_m, resolution_m)
    if isinstance(aoi, shapely.Geometry):
        if crs is None:
            raise ValueError("make_grid: a bare geometry AOI needs `crs` (the CRS it is given in)")
        aoi = gpd.GeoSeries([aoi], crs=crs)
    if aoi.crs is None:
        raise ValueError("make_grid: the area of interest has no CRS")
    geoms = aoi.geometry[aoi.geometry.notna()]
    geoms = geoms[geoms.geom_type.isin(_POLYGONAL)]
    if geoms.empty:
        raise ValueError("make_grid: the area of interest contains no polygons")
    target = _target_crs(shapely.union_all(shapely.make_valid(geoms.to_crs("EPSG:4326").values)), crs)
    area = shapely.union_all(shapely.make_valid(geoms.to_crs(target).values))

    minx, miny, maxx, maxy = area.bounds
    ixs = np.arange(math.floor(minx / tile_size_m), math.ceil(maxx / tile_size_m))
    iys = np.arange(math.floor(miny / tile_size_m), math.ceil(maxy / tile_size_m))
    ix, iy = (a.ravel() for a in np.meshgrid(ixs, iys))
    boxes = shapely.box(ix * tile_size_m, iy * tile_size_m, (ix + 1) * tile_size_m, (iy + 1) * tile_size_m)
    shapely.prepare(area)
    # Interiors intersect: the overlap has positive area (a shared edge or corner does not count).
    keep = shapely.relate_pattern(area, boxes, "T********")
    ix, iy, boxes = ix[keep], iy[keep], boxes[keep]
    ids = np.array([tile_id(i, j) for i, j in zip(ix.tolist(), iy.tolist())], dtype=object)

    if tiles:
        wanted = [str(t) for t in tiles]
        for t in wanted:
            _parse_id(t)
        unknown = sorted(set(wanted) - set(ids))
        if unknown:
            raise ValueError(f"tile(s) {', '.join(unknown)} are not in the grid of the area of interest")
        chosen = np.isin(ids, wanted)
        ix, iy, boxes, ids = ix[chosen], iy[chosen], boxes[chosen], ids[chosen]

    grid = gpd.GeoDataFrame(
        {
            "tile_id": ids,
            "ix": ix.astype(np.int64),
            "iy": iy.astype(np.int64),
            "minx": ix * float(tile_size_m),
            "miny": iy * float(tile_size_m),
            "maxx": (ix + 1) * float(tile_size_m),
            "maxy": (iy + 1) * float(tile_size_m),
            "width": np.full(len(ids), pixels, dtype=np.int64),
            "height": np.full(len(ids), pixels, dtype=np.int64),
            "resolution_m": np.full(len(ids), float(resolution_m)),
        },
        geometry=boxes,
        crs=target,
    )
    return grid.sort_values("tile_id", kind="stable").reset_index(drop=True)


def tile_grid(tile_id: str, tile_size_m: float, resolution_m: float, crs, margin_px: int = 0) -> TileGrid:
    """The pixel grid of one tile, from its id alone (no grid file needed), grown by `margin_px` on each side."""
    ix, iy = _parse_id(tile_id)
    pixels = _pixels(tile_size_m, resolution_m)
    transform = Affine(resolution_m, 0.0, ix * tile_size_m, 0.0, -resolution_m, (iy + 1) * tile_size_m)
    tile = TileGrid(
        tile_id=str(tile_id), crs=CRS.from_user_input(crs), transform=transform, height=pixels, width=pixels
    )
    return grown(tile, margin_px)


def grown(grid: TileGrid, margin_px: int) -> TileGrid:
    """`grid` grown by `margin_px` pixels on each side, still named after its tile."""
    margin = int(margin_px)
    if margin < 0:
        raise ValueError(f"tile {grid.tile_id}: the margin must be >= 0 pixels, got {margin_px}")
    return TileGrid(
        tile_id=grid.tile_id,
        crs=grid.crs,
        transform=grid.transform @ Affine.translation(-margin, -margin),
        height=grid.height + 2 * margin,
        width=grid.width + 2 * margin,
    )


def with_margin(ds: xr.Dataset, margin_px: int) -> xr.Dataset:
    """Mark `ds` (on a grid grown by `margin_px`) as holding its tile and that margin."""
    ds.attrs[MARGIN_ATTR] = _checked_margin(ds, int(margin_px))
    return ds


def margin_of(ds: xr.Dataset) -> int:
    """The margin (pixels on each side) around the tile of a stack, clouds or features dataset; 0 if it has none."""
    return _checked_margin(ds, int(ds.attrs.get(MARGIN_ATTR, 0)))


def _checked_margin(ds: xr.Dataset, margin: int) -> int:
    if margin < 0 or 2 * margin >= min(ds.sizes["y"], ds.sizes["x"]):
        raise ValueError(
            f"tile {ds.attrs.get('tile_id', '?')}: a margin of {margin} px does not fit its "
            f"{ds.sizes['y']} x {ds.sizes['x']} px"
        )
    return margin


def tile_window(ds: xr.Dataset) -> tuple[slice, slice]:
    """Row and column slices of the tile itself inside a dataset grown by its margin."""
    margin = margin_of(ds)
    return slice(margin, ds.sizes["y"] - margin), slice(margin, ds.sizes["x"] - margin)


def crop_to_tile(ds: xr.Dataset) -> xr.Dataset:
    """The tile itself, its margin cut off (lazily: a dataset opened from a file stays unread)."""
    margin = margin_of(ds)
    if not margin:
        return ds
    rows, cols = tile_window(ds)
    transform = grid_of(ds).transform @ Affine.translation(margin, margin)
    cropped = ds.isel(y=rows, x=cols).rio.write_transform(transform)
    cropped.attrs[MARGIN_ATTR] = 0
    return cropped


def write_grid(grid: gpd.GeoDataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        grid.to_file(tmp, driver="GPKG", layer="grid")
