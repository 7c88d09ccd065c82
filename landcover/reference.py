"""Reference labels per tile: polygons rasterised onto the tile grid, then a negative buffer.

The negative buffer (erosion) drops pixels near class boundaries, where a 10 m pixel mixes two
classes or the polygons are slightly misregistered, so the classifier trains on pure pixels.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import rasterio.features
import shapely
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from landcover.atomic import atomic_path
from landcover.classes import NO_DATA
from landcover.raster_io import check_readable, uint8_profile
from landcover.stack import TileGrid

log = logging.getLogger(__name__)

_POLYGONAL = ("Polygon", "MultiPolygon")
BAND_NAMES = ("reference", "eroded")
_CV2_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def read_reference(path: str | os.PathLike, class_attribute: str, grid: TileGrid | None = None) -> gpd.GeoDataFrame:
    """The reference polygons and their class attribute; with `grid`, only those near the tile.

    Reading by the tile's bounds keeps a per-tile job cheap on a country-wide reference file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"reference polygons {path}: file does not exist")
    try:
        info = pyogrio.read_info(path)
        if info["crs"] is None:
            raise ValueError(f"reference polygons {path}: has no CRS")
        bbox = None
        if grid is not None:
            bbox = transform_bounds(grid.crs, CRS.from_user_input(info["crs"]), *grid.bounds, densify_pts=21)
        polygons = gpd.read_file(path, bbox=bbox)
    except pyogrio.errors.DataSourceError as err:
        raise ValueError(f"reference polygons {path}: cannot be read ({err})") from err
    if class_attribute not in polygons.columns:
        columns = ", ".join(c for c in polygons.columns if c != polygons.geometry.name)
        raise ValueError(f"reference polygons {path}: no attribute {class_attribute!r} (attributes: {columns})")
    polygons = polygons[[class_attribute, polygons.geometry.name]]
    polygons.attrs["source"] = str(path)
    return polygons


def _class_values(polygons: gpd.GeoDataFrame, class_attribute: str, class_ids: list[int], where: str) -> np.ndarray:
    values = pd.to_numeric(polygons[class_attribute], errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        examples = ", ".join(repr(v) for v in polygons[class_attribute][bad].unique()[:5].tolist())
        raise ValueError(
            f"{where}: attribute {class_attribute!r} has {int(bad.sum())} non-integer value(s): {examples}"
        )
    values = values.to_numpy(dtype=np.int64)
    allowed = {int(c) for c in class_ids} | {NO_DATA}
    unknown = sorted(set(np.unique(values).tolist()) - allowed)
    if unknown:
        raise ValueError(
            f"{where}: attribute {class_attribute!r} has class id(s) {unknown} outside the configured classes "
            f"{sorted(allowed)}"
        )
    return values


def rasterize_reference(
    polygons: gpd.GeoDataFrame, grid: TileGrid, class_attribute: str, class_ids: list[int]
) -> np.ndarray:
    """The tile's class raster (uint8, 0 = no data), pixels assigned by their centre.

    Where polygons overlap, the later one in file order wins (rasterio burns in order).
    Id 0 is allowed and burns no data, so a 0 polygon masks the polygons before it."""
    where = f"tile {grid.tile_id}: reference {polygons.attrs.get('source', 'polygons')}"
    if any(not 0 <= int(c) <= 255 for c in class_ids):
        raise ValueError(f"{where}: class ids {list(class_ids)} do not fit in uint8")
    labels = np.zeros((grid.height, grid.width), dtype=np.uint8)
    if polygons.empty:
        return labels
    if polygons.crs is None:
        raise ValueError(f"{where}: polygons have no CRS")
    values = _class_values(polygons, class_attribute, class_ids, where)

    geoms = polygons.geometry.to_numpy()
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    types = shapely.get_type_id(geoms[present])
    other = ~np.isin(types, (3, 6, 7))  # Polygon, MultiPolygon, GeometryCollection
    if other.any():
        names = sorted({g.geom_type for g in geoms[present][other]})
        raise ValueError(f"{where}: {int(other.sum())} geometries are not polygons ({', '.join(names)})")
    geoms, values = geoms[present], values[present]
    if not polygons.crs.equals(grid.crs.to_wkt()):
        # Select in the polygons' CRS first: reprojecting a whole country per tile is wasteful.
        keep = _overlaps(
            geoms, transform_bounds(grid.crs, CRS.from_user_input(polygons.crs), *grid.bounds, densify_pts=21)
        )
        geoms, values = geoms[keep], values[keep]
        geoms = gpd.GeoSeries(geoms, crs=polygons.crs).to_crs(grid.crs.to_wkt()).to_numpy()
    keep = _overlaps(geoms, grid.bounds)
    geoms, values = geoms[keep], values[keep]
    if len(geoms) == 0:
        return labels

    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        log.info("%s: repaired %d invalid polygon(s)", where, int(invalid.sum()))
    mixed = invalid | (shapely.get_type_id(geoms) == 7)
    if mixed.any():
        geoms = geoms.copy()
        geoms[mixed] = [_polygonal(g) for g in shapely.make_valid(geoms[mixed])]
    usable = ~shapely.is_empty(geoms)
    shapes = [(g, int(v)) for g, v in zip(geoms[usable], values[usable])]
    if shapes:
        rasterio.features.rasterize(shapes, out=labels, transform=grid.transform, all_touched=False)
    return labels


def _overlaps(geoms: np.ndarray, bounds) -> np.ndarray:
    """Envelope test: robust on invalid geometries, which are repaired only once near the tile."""
    minx, miny, maxx, maxy = shapely.bounds(geoms).T
    return (minx <= bounds[2]) & (maxx >= bounds[0]) & (miny <= bounds[3]) & (maxy >= bounds[1])


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygonal part of a repaired geometry (make_valid may add stray lines and points)."""
    parts = [p for p in shapely.get_parts(geom) if p.geom_type in _POLYGONAL]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _disk(radius: int) -> np.ndarray:
    """The structuring element dx^2 + dy^2 <= radius^2 (cv2's MORPH_ELLIPSE differs from it for radius > 2)."""
    dy, dx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (dy * dy + dx * dx <= radius * radius).astype(np.uint8)


def erode(labels: np.ndarray, radius: int) -> np.ndarray:
    """Keep a labelled pixel only if every pixel within `radius` has its label; others become 0.

    Pixels beyond the tile edge count as unknown and do not erode: the tile border is not a class
    boundary (cv2 pads min with the dtype's maximum and max with its minimum). A pixel's disk holds
    one label exactly when its minimum equals its maximum: two filter passes, no per-class loop."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"erode: labels must be 2-D (y, x), got shape {labels.shape}")
    if int(radius) != radius or radius < 0:
        raise ValueError(f"erode: radius must be a non-negative integer, got {radius!r}")
    if labels.size == 0:
        return labels.copy()
    codes = np.ascontiguousarray(labels)
    if codes.dtype not in _CV2_DTYPES:  # cv2 filters no int32/int64/bool: compare ranks (exact in float64)
        codes = np.unique(codes, return_inverse=True)[1].reshape(codes.shape).astype(np.float64)
    disk = _disk(int(radius))
    pure = cv2.erode(codes, disk) == cv2.dilate(codes, disk)
    return labels * pure  # NO_DATA is 0; np.where is several times slower here


def write_labels(path: str | os.PathLike, grid: TileGrid, reference: np.ndarray, eroded: np.ndarray) -> None:
    """The reference GeoTIFF: band 1 rasterised, band 2 eroded (the one used for training)."""
    profile = uint8_profile(grid.width, grid.height, grid.crs, grid.transform, count=2)
    for name, band in zip(BAND_NAMES, (reference, eroded)):
        if band.shape != (grid.height, grid.width):
            raise ValueError(
                f"tile {grid.tile_id}: {name} has shape {band.shape}, expected {(grid.height, grid.width)}"
            )
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(np.stack([reference, eroded]).astype(np.uint8))
            dst.descriptions = BAND_NAMES
            dst.update_tags(tile_id=grid.tile_id)
        check_readable(tmp)


def read_labels(path: str | os.PathLike, grid: TileGrid, band: int = 2) -> np.ndarray:
    """One band of a reference GeoTIFF, checked to lie on `grid` (default: the eroded labels)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"reference raster {path}: file does not exist")
    try:
        with rasterio.open(path) as src:
            same = (
                src.crs == grid.crs
                and (src.height, src.width) == (grid.height, grid.width)
                and src.transform.almost_equals(grid.transform)
            )
            if not same:
                found = f"{src.crs} {tuple(src.transform)[:6]} {src.height}x{src.width}"
                wanted = f"{grid.crs} {tuple(grid.transform)[:6]} {grid.height}x{grid.width}"
                raise ValueError(f"reference raster {path}: grid {found} differs from tile {grid.tile_id}'s {wanted}")
            return src.read(band)
    except rasterio.RasterioIOError as err:
        raise ValueError(f"reference raster {path}: cannot be read ({err})") from err
