"""Sentinel-2 L2A Cloud-Optimised GeoTIFFs from a public STAC API (no account) as raw tile stacks.

Per tile and time range, `pystac-client` searches the collection (Earth Search v1 ``sentinel-2-l2a`` by default,
or Microsoft Planetary Computer's with its URL signing) over the tile's WGS84 bounds. Items above
``max_cloud_cover`` (the item's ``eo:cloud_cover``, percent) are skipped. Each band asset is read only where the
tile needs it: GDAL's warper on ``/vsicurl/`` fetches the COG's header and the overlapping internal tiles with HTTP
range requests, and resamples onto the tile's 10 m grid (bilinear, like the local L1C source; the Scene
Classification Layer nearest). Every read goes through `landcover.ingest.checked`, so a failed request or a
damaged COG raises naming the tile and the asset's URL instead of leaving no data.

Radiometry: reflectance = DN x scale + offset, from the asset's ``raster:bands`` (Earth Search v1 carries the
processing baseline 04.00 offset there); without it, from the item's ``s2:processing_baseline`` (04.00 and later:
offset -0.1, Planetary Computer's case). The stack stores reflectance x 10000 without offset, clipped at 0, like
L1C. Granules of one UTC day become one frame (the earliest time), first valid pixel wins.

L2A has no B10, so s2cloudless cannot run: the stack carries ``cloud_mask`` from the Scene Classification Layer
(`SCL_INVALID`: saturated or defective, cloud shadow, cloud medium and high probability, thin cirrus; SCL no data
is no data), or, with ``cloud_mask: probability``, from a cloud probability asset (percent) above a threshold,
where the source carries one. The choice is logged per tile.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds

from landcover.ingest import NO_DATA_ON_TILE, IngestError
from landcover.ingest.checked import open_raster, warp_band
from landcover.stack import L1C_BANDS, REFLECTANCE_SCALE, TileGrid, new_stack

__all__ = ["EARTH_SEARCH", "SCL_INVALID", "read_stac_tile", "search_items"]

LOGGER = logging.getLogger(__name__)

EARTH_SEARCH = "https://earth-search.aws.element84.com/v1"
L2A_BANDS = tuple(band for band in L1C_BANDS if band != "B10")
# Earth Search v1 names assets by common name; Planetary Computer by band.
COMMON_NAMES = {
    "B01": "coastal",
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B05": "rededge1",
    "B06": "rededge2",
    "B07": "rededge3",
    "B08": "nir",
    "B8A": "nir08",
    "B09": "nir09",
    "B11": "swir16",
    "B12": "swir22",
    "SCL": "scl",
}
SCL_NO_DATA = 0
SCL_INVALID = (1, 3, 8, 9, 10)  # saturated/defective, cloud shadow, cloud medium, cloud high, thin cirrus
PAGE_SIZE = 100  # items per search page
BASELINE_OFFSET = -0.1  # processing baseline 04.00 (January 2022), as reflectance
GDAL_HTTP = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no directory listing per COG
    "GDAL_HTTP_MAX_RETRY": 4,
    "GDAL_HTTP_RETRY_DELAY": 2,
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
}


def search_items(
    url: str,
    collection: str,
    grid: TileGrid,
    time_range: Sequence,
    max_cloud_cover: float | None = None,
    sign: str | None = None,
) -> list:
    """The collection's items over the tile in `time_range` ((start, end) days, both included), oldest first."""
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    bbox = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)
    start, end = (pd.Timestamp(str(day)).date() for day in time_range)
    try:
        client = Client.open(url, modifier=_signer(sign))
        search = client.search(collections=[collection], bbox=bbox, datetime=f"{start}/{end}", limit=PAGE_SIZE)
        items = list(search.items())
    except (APIError, OSError, ValueError) as err:  # requests' errors are OSErrors
        raise IngestError(f"tile {grid.tile_id}: STAC search of {collection} at {url} failed ({err})") from err
    if max_cloud_cover is not None:
        items = [item for item in items if item.properties.get("eo:cloud_cover", 0) <= max_cloud_cover]
    return sorted(items, key=lambda item: (item.datetime, item.id))


def _signer(sign: str | None):
    if sign is None:
        return None
    if sign != "planetary_computer":
        raise IngestError(f"stac.sign must be null or planetary_computer, got {sign!r}")
    try:
        import planetary_computer
    except ImportError as err:
        raise IngestError("stac.sign: planetary_computer needs `pip install planetary-computer`") from err
    return planetary_computer.sign_inplace


def read_stac_tile(
    items: Sequence,
    grid: TileGrid,
    bands: Sequence[str],
    cloud_mask: str = "scl",
    probability_asset: str | None = None,
    probability_threshold: float = 0.4,
) -> xr.Dataset:
    """A raw tile stack with ``cloud_mask`` from L2A items (see `search_items`); ``cloud_probability`` too when the
    masks come from a probability asset."""
    unknown = [band for band in bands if band not in L2A_BANDS]
    if unknown or not bands:
        raise IngestError(
            f"tile {grid.tile_id}: unknown L2A band(s) {unknown} (expected some of {', '.join(L2A_BANDS)})"
        )
    if cloud_mask not in ("scl", "probability"):
        raise IngestError(f"tile {grid.tile_id}: stac.cloud_mask must be scl or probability, got {cloud_mask!r}")
    if cloud_mask == "probability" and not probability_asset:
        raise IngestError(f"tile {grid.tile_id}: stac.cloud_mask: probability needs stac.probability_asset")
    LOGGER.info(
        "tile %s: cloud masks from %s",
        grid.tile_id,
        "the Scene Classification Layer (SCL classes 1, 3, 8, 9, 10 invalid)"
        if cloud_mask == "scl"
        else f"the cloud probability asset {probability_asset!r} above {probability_threshold}",
    )
    days: dict[pd.Timestamp, list] = {}
    for item in items:
        when = pd.Timestamp(item.datetime).tz_convert(None) if item.datetime.tzinfo else pd.Timestamp(item.datetime)
        days.setdefault(when.normalize(), []).append((when, item))
    if not days:
        raise IngestError(f"tile {grid.tile_id}: the STAC search found no L2A item over the tile")

    shape = (len(days), grid.height, grid.width)
    bands_out = np.zeros((*shape, len(bands)), dtype=np.uint16)
    is_data_out = np.zeros(shape, dtype=bool)
    cloud_out = np.zeros(shape, dtype=bool)
    probability_out = np.zeros(shape if cloud_mask == "probability" else (0, 0, 0), dtype=np.float32)
    times: list[pd.Timestamp] = []
    dropped: dict[str, int] = {}
    with rasterio.Env(**GDAL_HTTP):
        for day, granules in sorted(days.items(), key=lambda entry: entry[0]):
            stack = np.full((grid.height, grid.width, len(bands)), np.nan, dtype=np.float32)
            filled = np.zeros((grid.height, grid.width), dtype=bool)
            cloud = np.zeros_like(filled)
            probability = np.zeros((grid.height, grid.width), dtype=np.float32)
            for _, item in sorted(granules, key=lambda entry: (entry[0], entry[1].id)):
                values = np.stack([_reflectance(item, band, grid) for band in bands], axis=-1)
                scl = _read(item, "SCL", grid, Resampling.nearest)
                valid = ~np.isnan(values).any(axis=-1) & (np.nan_to_num(scl) != SCL_NO_DATA) & ~filled
                if cloud_mask == "scl":
                    item_cloud = np.isin(scl, SCL_INVALID)
                    item_probability = item_cloud.astype(np.float32)
                else:
                    item_probability = np.nan_to_num(_read(item, probability_asset, grid)) / 100.0
                    item_cloud = item_probability > probability_threshold
                stack[valid] = values[valid]
                probability[valid] = item_probability[valid]
                cloud[valid] = item_cloud[valid]
                filled |= valid
            if not filled.any():
                dropped[NO_DATA_ON_TILE] = dropped.get(NO_DATA_ON_TILE, 0) + 1
                LOGGER.info("tile %s: %s dropped: %s", grid.tile_id, day.date(), NO_DATA_ON_TILE)
                continue
            k = len(times)
            stack[~filled] = 0.0
            bands_out[k] = np.clip(np.rint(stack * REFLECTANCE_SCALE), 0, np.iinfo(np.uint16).max)
            is_data_out[k], cloud_out[k] = filled, cloud
            if probability_out.size:
                probability_out[k] = probability
            times.append(min(when for when, _ in granules))
    if not times:
        raise IngestError(f"tile {grid.tile_id}: every L2A item found is no data over the tile")
    n = len(times)
    LOGGER.info("tile %s: %d frames from %d items", grid.tile_id, n, len(items))
    ds = new_stack(bands_out[:n], is_data_out[:n], times, list(bands), grid)
    dims = ("time", "y", "x")
    ds = ds.assign(cloud_mask=(dims, cloud_out[:n]))
    if probability_out.size:
        ds = ds.assign(cloud_probability=(dims, probability_out[:n]))
    ds.attrs["dropped_frames"] = json.dumps(dropped)
    ds.attrs["cloud_mask_source"] = cloud_mask if cloud_mask == "scl" else f"probability:{probability_asset}"
    return ds


def _asset(item, name: str):
    for key in (name, COMMON_NAMES.get(name, name), name.lower()):
        if key in item.assets:
            return item.assets[key]
    raise IngestError(f"item {item.id}: no asset for {name} (has {', '.join(sorted(item.assets))})")


def _read(item, name: str, grid: TileGrid, resampling: Resampling = Resampling.bilinear) -> np.ndarray:
    """An asset on the tile grid, NaN where it has no data (its nodata, 0 by default)."""
    asset = _asset(item, name)
    nodata = (asset.extra_fields.get("raster:bands") or [{}])[0].get("nodata", 0)
    with open_raster(asset.href, grid.tile_id) as src:
        return warp_band(src, grid, nodata=nodata, resampling=resampling)


def _reflectance(item, band: str, grid: TileGrid) -> np.ndarray:
    raster = (_asset(item, band).extra_fields.get("raster:bands") or [{}])[0]
    if "scale" in raster or "offset" in raster:
        scale, offset = float(raster.get("scale", 1.0)), float(raster.get("offset", 0.0))
    else:
        baseline = float(item.properties.get("s2:processing_baseline", "0") or 0)
        scale, offset = 1.0 / REFLECTANCE_SCALE, (BASELINE_OFFSET if baseline >= 4.0 else 0.0)
    return _read(item, band, grid) * scale + offset
