"""The synthetic land-use register: the truth vectorised parcel by parcel, with a register's errors.

Land use is not land cover: a register files gardens under built-up land, young forest as scrub,
a meadow in a crop rotation as a field. A few percent of polygons carry such a plausible other class;
the choice is hashed from the parcel, so every tile's register agrees about a shared parcel.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely

from landcover.classes import EOLEARN_CLASSES
from landcover.stack import TileGrid
from landcover.synthetic.landscape import (
    ARTIFICIAL,
    BARELAND,
    CULTIVATED,
    FOREST,
    GRASSLAND,
    SHRUBLAND,
    WETLANDS,
    landscape,
)
from landcover.synthetic.noise import hash64, uniform

log = logging.getLogger(__name__)

# True class -> (chance the register says otherwise, the classes it says instead). Forest is not
# misfiled at random: at half the map, a small share would swamp the rare classes' labels.
_MISFILED = {
    CULTIVATED: (0.10, (GRASSLAND,)),
    GRASSLAND: (0.10, (CULTIVATED, CULTIVATED, SHRUBLAND)),
    SHRUBLAND: (0.15, (FOREST, GRASSLAND)),
    WETLANDS: (0.15, (GRASSLAND,)),
    ARTIFICIAL: (0.05, (GRASSLAND,)),
    BARELAND: (0.15, (ARTIFICIAL,)),
}
# Village gardens, young forest and the shrub mantle along forest edges (the register draws the
# forest line generously) are its classic disagreements.
_GARDEN_AS_BUILT_UP, _YOUNG_AS_SCRUB, _MANTLE_AS_FOREST = 0.5, 0.3, 0.5
_NAMES = {c.id: c.name for c in EOLEARN_CLASSES}


def _tile_polygons(grid: TileGrid, seed: int) -> gpd.GeoDataFrame:
    land = landscape(grid, seed)
    cover = land.land_cover
    # A polygon is a connected run of one parcel (stand, water body) with one class.
    key = hash64(land.unit, cover)
    keys, labels = np.unique(key, return_inverse=True)
    labels = labels.reshape(cover.shape).astype(np.int32)
    first = np.unique(labels.ravel(), return_index=True)[1]
    shapes = rasterio.features.shapes(labels, transform=grid.transform, connectivity=4)
    geoms, values = zip(*((shapely.geometry.shape(g), int(v)) for g, v in shapes))
    values = np.asarray(values)
    polygons = gpd.GeoDataFrame(
        {
            "key": keys[values].view(np.int64),
            "true_id": cover.ravel()[first][values].astype(np.int64),
            "young": land.young.ravel()[first][values],
            "garden": land.garden.ravel()[first][values],
            "mantle": land.mantle.ravel()[first][values],
        },
        geometry=list(geoms),
        crs=grid.crs,
    )
    bounds = polygons.geometry.bounds
    left, bottom, right, top = grid.bounds
    polygons["border"] = (bounds.minx <= left) | (bounds.miny <= bottom) | (bounds.maxx >= right) | (bounds.maxy >= top)
    return polygons


def _register_class(polygons: gpd.GeoDataFrame, seed: int) -> np.ndarray:
    """The class the register files each polygon under."""
    key = polygons["key"].to_numpy().view(np.uint64)
    true = polygons["true_id"].to_numpy()
    draw, pick = uniform(seed, "register", key), uniform(seed, "register-pick", key)
    out = true.copy()
    for cls, (chance, instead) in _MISFILED.items():
        sel = (true == cls) & (draw < chance)
        out[sel] = np.asarray(instead)[(pick[sel] * len(instead)).astype(int)]
    young = polygons["young"].to_numpy() & (draw < _YOUNG_AS_SCRUB)
    out[young] = SHRUBLAND
    out[polygons["garden"].to_numpy() & (draw < _GARDEN_AS_BUILT_UP)] = ARTIFICIAL
    out[polygons["mantle"].to_numpy() & (draw < _MANTLE_AS_FOREST)] = FOREST
    return out


def synthesize_reference(grids: list[TileGrid], seed: int) -> gpd.GeoDataFrame:
    """Reference polygons over the tiles, as a land-use register delivers them: `lulc_id`, `lulc_name`.

    Parcels split by tile borders are merged again; a few percent of them carry another plausible
    class than the truth (deliberately: land use is not land cover). `misfiled` and `true_id` record
    which, for measuring the reference check (`landcover.report.reference_check`)."""
    if not grids:
        raise ValueError("synthesize_reference: no tiles given")
    crs = grids[0].crs
    for grid in grids[1:]:
        if grid.crs != crs:
            raise ValueError(f"tile {grid.tile_id}: CRS {grid.crs} differs from tile {grids[0].tile_id}'s {crs}")
    parts = gpd.GeoDataFrame(pd.concat([_tile_polygons(grid, seed) for grid in grids], ignore_index=True), crs=crs)
    # Only polygons reaching a tile border can continue in a neighbour: merge those by parcel.
    border = parts[parts["border"]].dissolve(by="key", aggfunc="first", as_index=False).explode(index_parts=False)
    merged = pd.concat([parts[~parts["border"]], border], ignore_index=True)
    lulc = _register_class(merged, seed)
    log.info(
        "reference: %d polygons over %d tile(s), %d (%.1f%%) filed under another class than the truth",
        len(merged),
        len(grids),
        int((lulc != merged["true_id"]).sum()),
        100 * float((lulc != merged["true_id"]).mean()),
    )
    return gpd.GeoDataFrame(
        {
            "lulc_id": lulc.astype(np.int64),
            "lulc_name": [_NAMES[int(c)] for c in lulc],
            "misfiled": lulc != merged["true_id"].to_numpy(),
            "true_id": merged["true_id"].to_numpy(np.int64),
        },
        geometry=merged.geometry.to_numpy(),
        crs=crs,
    )
