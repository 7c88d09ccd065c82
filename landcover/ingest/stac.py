"""Sentinel-2 L2A Cloud-Optimised GeoTIFFs from a public STAC API (no account) as raw tile stacks.

Per tile and time range, `pystac-client` searches the collection (Earth Search v1 ``sentinel-2-l2a`` by default,
or Microsoft Planetary Computer's) over the tile's WGS84 bounds. Items whose ``eo:cloud_cover`` (percent) is above
``max_cloud_cover`` are left out and logged; items without one are kept as unknown and logged. Each band asset is
read only where the tile needs it: GDAL's warper on ``/vsicurl/`` fetches the COG's header and the overlapping
internal tiles with HTTP range requests, and resamples onto the tile's grid (bilinear, like the local L1C source;
the Scene Classification Layer nearest). Every read goes through `landcover.ingest.checked`, so a failed request or a
damaged COG raises naming the tile and the asset's URL instead of leaving no data.

Planetary Computer's asset URLs need a SAS token, which expires (its token API states when), while a tile's year of
reads can last longer: `url_signer` signs each URL when it is read (the planetary-computer package caches the token
and fetches a new one a minute before its stated expiry), and a read refused with HTTP 403 is signed afresh (the
cache dropped) and tried once more.

Radiometry: reflectance = DN x scale + offset, each from the asset's ``raster:bands`` where it says (Earth Search v1
carries the processing baseline 04.00 offset there), otherwise scale 1/10000 and the offset of the item's
``s2:processing_baseline`` (04.00 and later: -0.1, Planetary Computer's case). The catalogues' labels have been
wrong (Earth Search issues 66 and 71: the offset already in the DN while the metadata asks for it again), so an
item whose clear pixels' median in its darkest band is below `PLAUSIBLE_MEDIAN_MIN` is left out with a WARNING naming
it. The stack stores reflectance x 10000 without offset, clipped at 0, like L1C.

Granules of one UTC day become one frame (the earliest time): the newest processing baseline first (a reprocessed
granule supersedes the older one), then by time and id; a later granule is read only over the bounding box of the
pixels the earlier ones left without data, and not at all when they left none.

L2A has no B10, so s2cloudless cannot run: the stack carries ``cloud_mask`` from the Scene Classification Layer
(`SCL_INVALID`: saturated or defective, cloud shadow, cloud medium and high probability, thin cirrus; SCL no data
is no data), or, with ``cloud_mask: probability``, from a cloud probability asset (percent) above a threshold,
where the source carries one. The choice is logged per tile.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from http import HTTPStatus

import numpy as np
import pandas as pd
import rasterio
import xarray as xr
from affine import Affine
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds

from landcover.ingest import NO_DATA_ON_TILE, IngestError
from landcover.ingest.checked import open_raster, warp_band
from landcover.stack import L1C_BANDS, REFLECTANCE_SCALE, TileGrid, new_stack

__all__ = ["EARTH_SEARCH", "SCL_INVALID", "read_stac_tile", "search_items", "url_signer"]

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
# The offset lets L2A hold slightly negative reflectance over very dark surfaces; a median of an item's clear pixels
# this far below zero is no surface, while an offset applied twice (-0.1 more) puts the darkest band of vegetation
# (blue and red, 0.01 to 0.06) there. Judged only on this many clear pixels or more.
PLAUSIBLE_MEDIAN_MIN = -0.02
MIN_CLEAR_PIXELS = 500
IMPLAUSIBLY_DARK = "implausibly dark, the BOA offset applied twice?"
HTTP_TIMEOUT_S = 60
GDAL_HTTP = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no directory listing per COG
    "GDAL_HTTP_MAX_RETRY": 4,
    "GDAL_HTTP_RETRY_DELAY": 2,
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
}

Signer = Callable[[str, bool], str]  # (asset URL, renew the token) -> the URL to read


def search_items(
    url: str,
    collection: str,
    grid: TileGrid,
    time_range: Sequence,
    max_cloud_cover: float | None = None,
) -> list:
    """The collection's items over the tile in `time_range` ((start, end) days, both included), oldest first, unsigned
    (`url_signer` signs at read time)."""
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    bbox = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21)
    start, end = (pd.Timestamp(str(day)).date() for day in time_range)
    try:
        search = Client.open(url).search(
            collections=[collection], bbox=bbox, datetime=f"{start}/{end}", limit=PAGE_SIZE
        )
        items = list(search.items())
    except (APIError, OSError, ValueError) as err:  # requests' errors are OSErrors
        raise IngestError(f"tile {grid.tile_id}: STAC search of {collection} at {url} failed ({err})") from err
    if max_cloud_cover is not None:
        items = _below_cloud_cover(items, max_cloud_cover, grid.tile_id)
    return sorted(items, key=lambda item: (item.datetime, item.id))


def _below_cloud_cover(items: list, max_cloud_cover: float, tile: str) -> list:
    """`items` but those whose eo:cloud_cover is above; one without it is unknown, so kept."""
    unknown = [item for item in items if item.properties.get("eo:cloud_cover") is None]
    cloudy = [item for item in items if item not in unknown and item.properties["eo:cloud_cover"] > max_cloud_cover]
    if cloudy:
        LOGGER.info(
            "tile %s: %d of %d items left out, eo:cloud_cover above max_cloud_cover %g %%: %s",
            tile,
            len(cloudy),
            len(items),
            max_cloud_cover,
            ", ".join(f"{item.id} ({item.properties['eo:cloud_cover']:.0f} %)" for item in cloudy),
        )
    if unknown:
        LOGGER.info(
            "tile %s: %d items have no eo:cloud_cover, kept (cloud cover unknown): %s",
            tile,
            len(unknown),
            ", ".join(item.id for item in unknown),
        )
    return [item for item in items if item not in cloudy]


def url_signer(sign: str | None) -> Signer | None:
    """The signer of `stac.sign` (None: URLs are read as they are); fails at once when its package is missing."""
    if sign is None:
        return None
    if sign != "planetary_computer":
        raise IngestError(f"stac.sign must be null or planetary_computer, got {sign!r}")
    try:
        import planetary_computer.sas
    except ImportError as err:
        raise IngestError(
            "stac.sign: planetary_computer needs the planetary-computer package, the optional extra "
            "`pip install .[pc]` (landcover[pc])"
        ) from err

    def sign_href(href: str, renew: bool) -> str:
        if renew:  # a token refused before its stated expiry: drop the cached ones
            planetary_computer.sas.TOKEN_CACHE.clear()
        return planetary_computer.sas.sign_url(href)

    return sign_href


def read_stac_tile(
    items: Sequence,
    grid: TileGrid,
    bands: Sequence[str],
    cloud_mask: str = "scl",
    probability_asset: str | None = None,
    probability_threshold: float = 0.4,
    signer: Signer | None = None,
) -> xr.Dataset:
    """A raw stack on `grid` with ``cloud_mask`` from L2A items (see `search_items`); ``cloud_probability`` too when
    the masks come from a probability asset. `signer` signs each asset URL as it is read (`url_signer`)."""
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

    reader = _ItemReader(grid, list(bands), cloud_mask, probability_asset, probability_threshold, signer)
    shape = (len(days), grid.height, grid.width)
    bands_out = np.zeros((*shape, len(bands)), dtype=np.uint16)
    is_data_out = np.zeros(shape, dtype=bool)
    cloud_out = np.zeros(shape, dtype=bool)
    probability_out = np.zeros(shape if cloud_mask == "probability" else (0, 0, 0), dtype=np.float32)
    times: list[pd.Timestamp] = []
    dropped: dict[str, int] = {}
    with rasterio.Env(**GDAL_HTTP):
        for day, granules in sorted(days.items(), key=lambda entry: entry[0]):
            frame = reader.fuse([item for _, item in sorted(granules, key=_preference)])
            if frame is None or not frame[1].any():
                reason = IMPLAUSIBLY_DARK if reader.dark_on_day else NO_DATA_ON_TILE
                dropped[reason] = dropped.get(reason, 0) + 1
                level = logging.WARNING if reader.dark_on_day else logging.INFO
                LOGGER.log(level, "tile %s: %s dropped: %s", grid.tile_id, day.date(), reason)
                continue
            stack, filled, cloud, probability = frame
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
    LOGGER.info("tile %s: %d frames from %d items (%d read)", grid.tile_id, n, len(items), reader.items_read)
    ds = new_stack(bands_out[:n], is_data_out[:n], times, list(bands), grid)
    dims = ("time", "y", "x")
    ds = ds.assign(cloud_mask=(dims, cloud_out[:n]))
    if probability_out.size:
        ds = ds.assign(cloud_probability=(dims, probability_out[:n]))
    ds.attrs["dropped_frames"] = json.dumps(dropped)
    ds.attrs["cloud_mask_source"] = cloud_mask if cloud_mask == "scl" else f"probability:{probability_asset}"
    return ds


def _preference(entry: tuple) -> tuple:
    """Same-day granules: the newest processing baseline first, then the earliest, then by id."""
    when, item = entry
    return (-_baseline(item), when, item.id)


def _baseline(item) -> float:
    try:
        return float(item.properties.get("s2:processing_baseline") or 0)
    except ValueError:
        return 0.0


class _ItemReader:
    """Reads items' bands, validity and cloud masks onto windows of one grid, with the radiometry checks."""

    def __init__(self, grid, bands, cloud_mask, probability_asset, probability_threshold, signer):
        self.grid, self.bands, self.cloud_mask, self.signer = grid, bands, cloud_mask, signer
        self.probability_asset, self.probability_threshold = probability_asset, probability_threshold
        self.items_read = 0
        self.dark_on_day = False

    def fuse(self, items: list) -> tuple | None:
        """One day's granules fused in the given order, each read only over the gaps the earlier ones left:
        (reflectance, filled, cloud, probability) on the grid, or None if no item was read."""
        grid = self.grid
        self.dark_on_day = False
        stack = np.full((grid.height, grid.width, len(self.bands)), np.nan, dtype=np.float32)
        filled = np.zeros((grid.height, grid.width), dtype=bool)
        cloud = np.zeros_like(filled)
        probability = np.zeros((grid.height, grid.width), dtype=np.float32)
        read_any = False
        for item in items:
            rows, cols = np.nonzero(~filled)
            if rows.size == 0:
                LOGGER.debug("tile %s: %s not read, the day is covered", grid.tile_id, item.id)
                break
            window = np.s_[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            read = self._read_item(item, _subgrid(grid, window))
            if read is None:
                continue
            read_any = True
            values, valid, item_cloud, item_probability = read
            valid &= ~filled[window]
            stack[window][valid] = values[valid]
            probability[window][valid] = item_probability[valid]
            cloud[window][valid] = item_cloud[valid]
            filled[window] |= valid
        return (stack, filled, cloud, probability) if read_any else None

    def _read_item(self, item, grid: TileGrid) -> tuple | None:
        """(reflectance, valid, cloud, probability) of one item on `grid`; None where it has no data there or is
        implausibly dark."""
        scl = self._read(item, "SCL", grid, Resampling.nearest)
        has_scl = ~np.isnan(scl) & (np.nan_to_num(scl) != SCL_NO_DATA)
        if not has_scl.any():
            return None
        self.items_read += 1
        values = np.stack([self._reflectance(item, band, grid) for band in self.bands], axis=-1)
        valid = ~np.isnan(values).any(axis=-1) & has_scl
        if self.cloud_mask == "scl":
            item_cloud = np.isin(scl, SCL_INVALID)
            item_probability = item_cloud.astype(np.float32)
        else:
            item_probability = np.nan_to_num(self._read(item, self.probability_asset, grid)) / 100.0
            item_cloud = item_probability > self.probability_threshold
        clear = valid & ~item_cloud
        if clear.sum() >= MIN_CLEAR_PIXELS:
            medians = np.median(values[clear], axis=0)
            darkest = int(np.argmin(medians))
            if medians[darkest] < PLAUSIBLE_MEDIAN_MIN:
                LOGGER.warning(
                    "tile %s: item %s left out: the median reflectance of its %d clear pixels in %s is %.3f, below "
                    "%g (is the BOA offset applied twice, %s in raster:bands, processing baseline %s?)",
                    self.grid.tile_id,
                    item.id,
                    clear.sum(),
                    self.bands[darkest],
                    medians[darkest],
                    PLAUSIBLE_MEDIAN_MIN,
                    self._raster(item, self.bands[darkest]).get("offset", "no offset"),
                    item.properties.get("s2:processing_baseline", "unknown"),
                )
                self.dark_on_day = True
                return None
        return values, valid, item_cloud, item_probability

    def _read(self, item, name: str, grid: TileGrid, resampling: Resampling = Resampling.bilinear) -> np.ndarray:
        """An asset on `grid`, NaN where it has no data (its nodata, 0 by default); signed as it is read, and signed
        afresh once if the server refuses the signature (403)."""
        asset = _asset(item, name)
        nodata = self._raster(item, name).get("nodata", 0)

        def read(href: str) -> np.ndarray:
            with open_raster(href, self.grid.tile_id) as src:
                return warp_band(src, grid, nodata=nodata, resampling=resampling)

        if self.signer is None:
            return read(asset.href)
        signed = self.signer(asset.href, False)
        try:
            return read(signed)
        except IngestError:
            if _http_status(signed) != HTTPStatus.FORBIDDEN:  # GDAL's message does not always carry the status
                raise
            LOGGER.info("tile %s: %s refused (403): signing it afresh", self.grid.tile_id, asset.href)
        return read(self.signer(asset.href, True))

    def _raster(self, item, name: str) -> dict:
        return (_asset(item, name).extra_fields.get("raster:bands") or [{}])[0]

    def _reflectance(self, item, band: str, grid: TileGrid) -> np.ndarray:
        raster = self._raster(item, band)
        scale = float(raster.get("scale", 1.0 / REFLECTANCE_SCALE))
        if "offset" in raster:
            offset = float(raster["offset"])
        else:
            offset = BASELINE_OFFSET if _baseline(item) >= 4.0 else 0.0
        return self._read(item, band, grid) * scale + offset


def _http_status(href: str) -> int | None:
    """The HTTP status of a one-byte range request for `href`; None when there is no answer."""
    import requests

    try:
        return requests.get(href, headers={"Range": "bytes=0-0"}, timeout=HTTP_TIMEOUT_S).status_code
    except requests.RequestException:
        return None


def _subgrid(grid: TileGrid, window: tuple[slice, slice]) -> TileGrid:
    rows, cols = window
    if (rows.start, cols.start, rows.stop, cols.stop) == (0, 0, grid.height, grid.width):
        return grid
    transform = grid.transform @ Affine.translation(cols.start, rows.start)
    return TileGrid(grid.tile_id, grid.crs, transform, rows.stop - rows.start, cols.stop - cols.start)


def _asset(item, name: str):
    for key in (name, COMMON_NAMES.get(name, name), name.lower()):
        if key in item.assets:
            return item.assets[key]
    raise IngestError(f"item {item.id}: no asset for {name} (has {', '.join(sorted(item.assets))})")
