"""Sentinel-2 L1C from Sentinel Hub (sentinelhub-py) as raw tile stacks, downloading only what the workflow uses.

Per tile, as eo-learn's `SentinelHubInputTask` does: the Catalog API lists the L1C items over the tile's bbox in
the time range with ``eo:cloud_cover <= maxcc``; items closer than `time_difference` are one overpass, kept as one
frame per UTC day. Then the Process API is asked, several days per request (``mosaicking: ORBIT``, one orbit a
day), for digital numbers (reflectance x 10000, processing baseline 04.00's offset removed by ``harmonizeValues``)
and ``dataMask``, as uint16, in resolution groups (`request_groups`):

- the feature bands at their native resolution (never finer than the tile's): 10 m bands on the tile grid, 20 and
  60 m bands on a coarser grid, resampled here onto the tile grid bilinearly with GDAL's warper, as the local L1C
  source does (`landcover.ingest.local_l1c`);
- all 13 bands at the cloud resolution (80 m), kept coarse in the stack (``cloud_bands``) for s2cloudless.

A Processing Unit (PU) is 512 x 512 px x 3 bands x 1 date at 16 bits or less, dataMask free, at least 0.005 PU a
request and an area factor of at least 0.01 (`processing_units`): 13 bands at 10 m cost about 16.5 PU per 10 km
tile and date, this about 6 (`tile_plan`).

Credentials come from `SHConfig()`: the environment (SH_CLIENT_ID, SH_CLIENT_SECRET) or the user's sentinelhub
profile, never from the repository; the deployment is a preset (`PRESETS`) or the configured base/token URL.
HTTP 429 is retried at most `max_retries` times after the service's Retry-After, 5xx and connection errors
`max_download_attempts` times with a growing wait; other 4xx answers are permanent and fail at once. Every response
is cached under ``cache_dir/<tile_id>/`` as it arrives (sentinelhub-py's cache, keyed by a hash of URL and request
body; catalogue answers by this module), so a run stopped by a quota continues where it stopped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from oauthlib.oauth2 import OAuth2Error
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.io import MemoryFile
from rasterio.warp import reproject
from sentinelhub import (
    BBox,
    DataCollection,
    MimeType,
    MosaickingOrder,
    SentinelHubCatalog,
    SentinelHubDownloadClient,
    SentinelHubRequest,
    SHConfig,
)
from sentinelhub.constants import CRS as SHCRS
from sentinelhub.download.models import DownloadRequest
from sentinelhub.exceptions import BaseSentinelHubException, OutOfRequestsException

from landcover.atomic import atomic_path
from landcover.ingest import NO_DATA_ON_TILE, IngestError
from landcover.ingest.checked import gdal_errors
from landcover.stack import L1C_BANDS, TileGrid, new_stack

__all__ = [
    "FREE_QUOTA",
    "PRESETS",
    "RequestGroup",
    "acquisitions",
    "cloud_percent",
    "download_tile",
    "evalscript",
    "overpass_days",
    "processing_units",
    "request_groups",
    "search_catalog",
    "sentinelhub_config",
    "tile_plan",
]

LOGGER = logging.getLogger(__name__)

# Sentinel-2 L1C on whatever deployment the configuration names (the stock definition pins
# services.sentinel-hub.com, which would ignore `sh_base_url`).
L1C = DataCollection.SENTINEL2_L1C.define_from("SENTINEL2_L1C_CONFIGURED_URL", service_url=None)
TIME_DIFFERENCE = dt.timedelta(hours=2)  # eo-learn's land-cover example
MAX_PIXELS = 2500  # the Process API's limit per side
NATIVE_RESOLUTION_M = {
    **dict.fromkeys(("B02", "B03", "B04", "B08"), 10),
    **dict.fromkeys(("B05", "B06", "B07", "B8A", "B11", "B12"), 20),
    **dict.fromkeys(("B01", "B09", "B10"), 60),
}
# Values (pixels x output bands x days) per response: about 48 MB of uint16, well inside the synchronous API's limits;
# and at most this many days a request, so that no request processes many scenes (the service times requests out).
MAX_RESPONSE_VALUES = 24_000_000
MAX_DAYS_PER_REQUEST = 32
# The Copernicus Data Space Ecosystem's free tier, per month.
FREE_QUOTA = {"processing_units": 10_000, "requests": 10_000}
PRESETS = {
    "cdse": {
        "base_url": "https://sh.dataspace.copernicus.eu",
        "token_url": "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token",
    },
    "sentinelhub": {
        "base_url": "https://services.sentinel-hub.com",
        "token_url": "https://services.sentinel-hub.com/auth/realms/main/protocol/openid-connect/token",
    },
}


def sentinelhub_config(
    base_url: str | None = None,
    token_url: str | None = None,
    *,
    preset: str | None = None,
    max_retries: int | None = 5,
    max_download_attempts: int | None = None,
    download_sleep_time: float | None = None,
) -> SHConfig:
    """The user's sentinelhub configuration (profile, then SH_CLIENT_ID/SH_CLIENT_SECRET) with these overrides.

    `preset` ("cdse", "sentinelhub") sets both URLs; explicit URLs win. `max_retries` bounds the retries of HTTP 429
    (sentinelhub-py's default retries it forever)."""
    config = SHConfig()
    if preset is not None:
        if preset not in PRESETS:
            raise IngestError(f"sentinelhub.preset: unknown preset {preset!r} (expected one of {', '.join(PRESETS)})")
        base_url = base_url or PRESETS[preset]["base_url"]
        token_url = token_url or PRESETS[preset]["token_url"]
    overrides = {
        "sh_base_url": base_url,
        "sh_token_url": token_url,
        "max_retries": max_retries,
        "max_download_attempts": max_download_attempts,
        "download_sleep_time": download_sleep_time,
    }
    for key, value in overrides.items():
        if value is not None:
            setattr(config, key, value)
    return config


def cloud_percent(maxcc: float) -> int:
    """`maxcc` (a fraction) as the whole percent both APIs get.

    The Process API's ``maxCloudCoverage`` is an integer percent (sentinelhub-py sends ``int(maxcc * 100)``: 28
    for 0.29); the Catalog filter takes any number. Both get this value, so that no listed granule is refused."""
    if not 0 <= maxcc <= 1:
        raise IngestError(f"sentinelhub.maxcc must be a fraction in [0, 1], got {maxcc}")
    return math.floor(maxcc * 100 + 1e-9)


@dataclass(frozen=True)
class RequestGroup:
    """Bands asked for together on one grid: `factor` tile pixels per pixel, over `bounds` (the tile's, grown to a
    whole number of coarse pixels at the right and bottom)."""

    name: str
    bands: tuple[str, ...]
    factor: int
    width: int
    height: int
    bounds: tuple[float, float, float, float]
    transform: Affine

    @property
    def days_per_request(self) -> int:
        by_size = MAX_RESPONSE_VALUES // (self.width * self.height * (len(self.bands) + 1))
        return max(1, min(MAX_DAYS_PER_REQUEST, by_size))


def _group(name: str, bands: Sequence[str], factor: int, grid: TileGrid) -> RequestGroup:
    t = grid.transform
    width, height = -(-grid.width // factor), -(-grid.height // factor)
    transform = Affine(t.a * factor, 0.0, t.c, 0.0, t.e * factor, t.f)
    left, top = transform @ (0, 0)
    right, bottom = transform @ (width, height)
    bounds = (min(left, right), min(top, bottom), max(left, right), max(top, bottom))
    return RequestGroup(name, tuple(bands), factor, width, height, bounds, transform)


def request_groups(grid: TileGrid, bands: Sequence[str], cloud_resolution_m: float | None = 80) -> list[RequestGroup]:
    """The requests' band groups: `bands` by native resolution (never finer than the tile), then all 13 bands at
    `cloud_resolution_m` for s2cloudless (None: no cloud group)."""
    pixel = abs(grid.transform.a)
    by_factor: dict[int, list[str]] = {}
    for band in bands:
        factor = max(1, round(NATIVE_RESOLUTION_M[band] / pixel))
        by_factor.setdefault(factor, []).append(band)
    groups = [_group(f"{factor * pixel:g}m", group, factor, grid) for factor, group in sorted(by_factor.items())]
    if cloud_resolution_m is not None:
        groups.append(_group("clouds", L1C_BANDS, max(1, round(cloud_resolution_m / pixel)), grid))
    return groups


def processing_units(width: int, height: int, n_bands: int, n_days: int) -> float:
    """PU of one Process API request: uint16 output, dataMask not counted (Sentinel Hub's definition)."""
    area = max(0.01, width * height / (512 * 512))
    return max(0.005, area * n_bands / 3 * n_days)


def tile_plan(groups: Sequence[RequestGroup], n_days: int) -> tuple[int, float]:
    """(requests, PU) to download `n_days` overpass days of a tile."""
    requests, units = 0, 0.0
    for group in groups:
        per_request = group.days_per_request
        for start in range(0, n_days, per_request):
            requests += 1
            units += processing_units(group.width, group.height, len(group.bands), min(per_request, n_days - start))
    return requests, units


def evalscript(bands: Sequence[str], days: Sequence[str]) -> str:
    """Digital numbers of `bands` then dataMask for each of `days` (UTC, YYYY-MM-DD), day by day, as one uint16
    raster; zeros on a day without data. Orbits of other days are dropped before processing (and not paid for)."""
    order = [*bands, "dataMask"]
    return f"""//VERSION=3
var DAYS = {json.dumps(list(days))};
var ORDER = {json.dumps(order)};
function setup() {{
  return {{
    input: [{{bands: ORDER, units: {json.dumps(["DN"] * len(order))}}}],
    output: {{id: "default", bands: {len(days) * len(order)}, sampleType: "UINT16"}},
    mosaicking: "ORBIT"
  }};
}}
function preProcessScenes(collections) {{
  collections.scenes.orbits = collections.scenes.orbits.filter(function (orbit) {{
    return DAYS.indexOf(orbit.dateFrom.slice(0, 10)) >= 0;
  }});
  return collections;
}}
function evaluatePixel(samples, scenes) {{
  var out = new Array(DAYS.length * ORDER.length).fill(0);
  for (var i = 0; i < samples.length; i++) {{
    var k = DAYS.indexOf(scenes.orbits[i].dateFrom.slice(0, 10));
    if (k < 0 || !samples[i].dataMask) continue;
    for (var j = 0; j < ORDER.length; j++) out[k * ORDER.length + j] = samples[i][ORDER[j]];
  }}
  return out;
}}
"""


def search_catalog(
    grid: TileGrid, time_range: Sequence, maxcc: float, config: SHConfig, cache_dir: str | os.PathLike | None = None
) -> list[pd.Timestamp]:
    """Sensing times (UTC) of the L1C items over the tile with cloud cover <= `maxcc`, sorted (with repeats)."""
    percent = cloud_percent(maxcc)
    start, end = _day_range(time_range)
    query = {
        "url": f"{config.sh_base_url}/api/v1/catalog/1.0.0/search",
        "collection": L1C.catalog_id,
        "bbox": list(grid.bounds),
        "crs": grid.crs.to_epsg(),
        "time": [start.isoformat(), end.isoformat()],
        "filter": f"eo:cloud_cover <= {percent}",
    }
    cache = _cache_file(cache_dir, grid, query)
    if cache is not None and cache.exists():
        times = json.loads(cache.read_text())
    else:
        _require_credentials(config, grid)
        with _service_errors(grid, config, "catalog search"):
            items = SentinelHubCatalog(config=config).search(
                L1C,
                bbox=_bbox(grid),
                time=(start, end),
                filter=query["filter"],
                fields={"include": ["id", "properties.datetime", "properties.eo:cloud_cover"], "exclude": []},
            )
            times = sorted(item["properties"]["datetime"] for item in items)
        if cache is not None:
            with atomic_path(cache) as tmp:
                tmp.write_text(json.dumps(times))
    return list(pd.to_datetime(times, utc=True, format="ISO8601").tz_convert(None))


def acquisitions(times: Sequence[pd.Timestamp], time_difference: dt.timedelta = TIME_DIFFERENCE) -> list[tuple]:
    """(first, last) sensing time of each overpass: sorted times closer than `time_difference` belong together."""
    groups: list[list[pd.Timestamp]] = []
    for when in sorted(times):
        if groups and when - groups[-1][-1] <= time_difference:
            groups[-1].append(when)
        else:
            groups.append([when])
    return [(group[0], group[-1]) for group in groups]


def overpass_days(times: Sequence[pd.Timestamp], time_difference: dt.timedelta = TIME_DIFFERENCE) -> list[tuple]:
    """(UTC day, first sensing time) per day with an overpass: ORBIT mosaicking gives one frame a day."""
    days: dict[str, pd.Timestamp] = {}
    for first, _ in acquisitions(times, time_difference):
        days.setdefault(f"{first:%Y-%m-%d}", first)
    return list(days.items())


def download_tile(
    grid: TileGrid,
    time_range: Sequence,
    maxcc: float,
    cache_dir: str | os.PathLike | None,
    config: SHConfig | None = None,
    bands: Sequence[str] = L1C_BANDS,
    cloud_resolution_m: float | None = 80,
    time_difference: dt.timedelta = TIME_DIFFERENCE,
) -> xr.Dataset:
    """A raw tile stack of every overpass day in `time_range` ((start, end) days, both included): `bands` on the
    tile grid and, with `cloud_resolution_m`, all 13 bands on the coarse cloud grid (``cloud_bands``)."""
    config = config or sentinelhub_config()
    bands = list(dict.fromkeys(bands))
    unknown = [b for b in bands if b not in L1C_BANDS]
    if unknown or not bands:
        raise IngestError(f"tile {grid.tile_id}: unknown band(s) {unknown} (expected some of {', '.join(L1C_BANDS)})")
    if max(grid.width, grid.height) > MAX_PIXELS:
        raise IngestError(
            f"tile {grid.tile_id}: {grid.width} x {grid.height} px exceeds the Process API's {MAX_PIXELS} px "
            "per side; use smaller tiles"
        )
    days = overpass_days(search_catalog(grid, time_range, maxcc, config, cache_dir), time_difference)
    if not days:
        raise IngestError(
            f"tile {grid.tile_id}: Sentinel Hub lists no L1C acquisition with cloud cover <= {maxcc} "
            f"between {time_range[0]} and {time_range[1]}"
        )
    groups = request_groups(grid, bands, cloud_resolution_m)
    folder = None if cache_dir is None else str(Path(cache_dir) / grid.tile_id)
    requests = []
    for group in groups:
        for start in range(0, len(days), group.days_per_request):
            chunk = [day for day, _ in days[start : start + group.days_per_request]]
            requests.append((group, start, len(chunk), _request(grid, group, chunk, maxcc, config, folder)))
    missing = [r for *_, r in requests if not _cached(r)]
    if missing:
        _require_credentials(config, grid)
    n_requests, units = tile_plan(groups, len(days))
    LOGGER.info(
        "tile %s: %d overpass days, %d requests (%.1f PU), %d to download, %d cached",
        grid.tile_id,
        len(days),
        n_requests,
        units,
        len(missing),
        n_requests - len(missing),
    )
    # The tile-grid bands are decoded straight into the stack's array; coarser groups beside it.
    band_groups = [g for g in groups if g.name != "clouds"]
    out = np.zeros((len(days), grid.height, grid.width, len(bands)), np.uint16)
    arrays, masks, column = {}, {}, 0
    for group in groups:
        shape = (len(days), group.height, group.width)
        if group.factor == 1 and group in band_groups:
            arrays[group.name] = out[..., column : column + len(group.bands)]
        else:
            arrays[group.name] = np.zeros((*shape, len(group.bands)), np.uint16)
        masks[group.name] = np.zeros(shape, bool)
        column += len(group.bands) if group in band_groups else 0
    client = SentinelHubDownloadClient(config=config)
    # Group by group (cached ones first), decoding as we go: whatever arrived stays in the cache if one fails.
    for group, start, n, request in sorted(requests, key=lambda item: not _cached(item[-1])):
        with _service_errors(grid, config, f"download of {group.name} bands from {days[start][0]}"):
            (response,) = client.download([request], decode_data=False)
        name = request.get_storage_paths()[1] or f"the {group.name} response from {days[start][0]}"
        values = _decode(response.content, name, grid, group, n)
        arrays[group.name][start : start + n] = values[..., :-1]
        masks[group.name][start : start + n] = values[..., -1] > 0
    return _assemble(grid, groups, days, out, arrays, masks)


def _request(grid, group, days, maxcc, config, folder) -> DownloadRequest:
    first = pd.Timestamp(days[0]).to_pydatetime().replace(tzinfo=dt.UTC)
    last = pd.Timestamp(days[-1]).to_pydatetime().replace(tzinfo=dt.UTC) + dt.timedelta(days=1, seconds=-1)
    return SentinelHubRequest(
        evalscript=evalscript(group.bands, days),
        input_data=[
            SentinelHubRequest.input_data(
                L1C,
                time_interval=(first, last),
                mosaicking_order=MosaickingOrder.MOST_RECENT,
                upsampling="BILINEAR",
                downsampling="BILINEAR",
                other_args={
                    "dataFilter": {"maxCloudCoverage": cloud_percent(maxcc)},
                    "processing": {"harmonizeValues": True},
                },
            )
        ],
        responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
        bbox=BBox(group.bounds, crs=_sh_crs(grid)),
        size=(group.width, group.height),
        data_folder=folder,
        config=config,
    ).download_list[0]


def _decode(content: bytes, name: str, grid: TileGrid, group: RequestGroup, days: int) -> np.ndarray:
    """(days, height, width, bands + 1) of a response, after checking its georeferencing against the group's grid;
    GDAL's decoding errors raise, naming the response (`landcover.ingest.checked`)."""
    try:
        with gdal_errors(name, grid.tile_id), MemoryFile(content) as memfile, memfile.open() as src:
            crs, transform, count = src.crs, src.transform, src.count
            data = src.read()
    except RasterioError as err:
        raise IngestError(
            f"tile {grid.tile_id}: Sentinel Hub's {group.name} response is not a readable TIFF ({err})"
        ) from err
    what = f"tile {grid.tile_id}: Sentinel Hub's {group.name} response"
    if data.shape[1:] != (group.height, group.width) or data.dtype != np.uint16:
        raise IngestError(f"{what} is {data.dtype} {data.shape[1:]}, expected uint16 {(group.height, group.width)}")
    if crs is None or crs.to_epsg() != grid.crs.to_epsg():
        raise IngestError(f"{what} is in {crs}, the tile grid in {grid.crs}")
    if not transform.almost_equals(group.transform, precision=1e-6 * abs(group.transform.a)):
        raise IngestError(f"{what} has transform {tuple(transform)[:6]}, the tile grid {tuple(group.transform)[:6]}")
    stride = len(group.bands) + 1
    if count != days * stride:
        raise IngestError(
            f"{what} has {count} bands, expected {days} days x {stride} ({', '.join(group.bands)}, dataMask)"
        )
    return data.reshape(days, stride, group.height, group.width).transpose(0, 2, 3, 1)


def _assemble(grid: TileGrid, groups, days, out, arrays, masks) -> xr.Dataset:
    """Feature bands on the tile grid (coarse groups resampled bilinearly, as local L1C), plus the cloud stack."""
    band_groups = [g for g in groups if g.name != "clouds"]
    fine = band_groups[0]
    bands = [b for g in band_groups for b in g.bands]
    is_data = masks[fine.name] if fine.factor == 1 else None
    column = 0
    for group in band_groups:
        for k in range(len(group.bands)):
            if group.factor > 1:
                resampled = _to_tile_grid(arrays[group.name][..., k], group, grid)
                is_data = np.isfinite(resampled) if is_data is None else is_data & np.isfinite(resampled)
                out[..., column] = np.nan_to_num(np.clip(resampled, 0, 65535), nan=0).round()
            column += 1
    out[~is_data] = 0
    keep = np.flatnonzero(is_data.any(axis=(1, 2)))
    for d in sorted(set(range(len(days))) - set(keep)):
        LOGGER.info("tile %s: %s dropped: %s", grid.tile_id, days[d][0], NO_DATA_ON_TILE)
    if not len(keep):
        raise IngestError(f"tile {grid.tile_id}: every Sentinel Hub acquisition is no data over the tile")
    everything = len(keep) == len(days)  # no copy of the large arrays then
    ds = new_stack(
        out if everything else out[keep],
        is_data if everything else is_data[keep],
        [days[d][1] for d in keep],
        bands,
        grid,
    )
    dropped = len(days) - len(keep)
    # per reason, for the validation report (landcover.frames)
    ds.attrs["dropped_frames"] = json.dumps({NO_DATA_ON_TILE: dropped} if dropped else {})
    clouds = next((g for g in groups if g.name == "clouds"), None)
    if clouds is not None:
        coarse = arrays["clouds"][keep]
        coarse_is_data = masks["clouds"][keep]
        coarse[~coarse_is_data] = 0
        ds = ds.assign(
            cloud_bands=(("time", "cloud_y", "cloud_x", "cloud_band"), coarse),
            cloud_is_data=(("time", "cloud_y", "cloud_x"), coarse_is_data),
        ).assign_coords(cloud_band=list(clouds.bands))
        ds.attrs["cloud_pixel_blocks"] = np.array([clouds.factor, clouds.factor], dtype=np.int32)
    return ds


def _to_tile_grid(values: np.ndarray, group: RequestGroup, grid: TileGrid) -> np.ndarray:
    """(days, h, w) coarse DN -> float32 on the tile grid, NaN where no data; GDAL bilinear, DN 0 as no data."""
    out = np.full((values.shape[0], grid.height, grid.width), np.nan, np.float32)
    for d in range(values.shape[0]):
        reproject(
            values[d],
            out[d],
            src_transform=group.transform,
            src_crs=grid.crs,
            src_nodata=0,
            dst_transform=grid.transform,
            dst_crs=grid.crs,
            dst_nodata=np.nan,
            resampling=Resampling.bilinear,
        )
    return out


class _service_errors:
    """Sentinel Hub failures as IngestErrors that name the tile and the setting to change."""

    def __init__(self, grid: TileGrid, config: SHConfig, what: str):
        self.grid, self.config, self.what = grid, config, what

    def __enter__(self):
        return self

    def __exit__(self, kind, err, tb):
        if err is None or isinstance(err, IngestError):
            return False
        tile = f"tile {self.grid.tile_id}"
        if isinstance(err, OAuth2Error):
            raise IngestError(
                f"{tile}: the token endpoint {self.config.sh_token_url} rejected the credentials "
                f"({err.error}: {err.description}). Check SH_CLIENT_ID and SH_CLIENT_SECRET (or your sentinelhub "
                "profile), and that sentinelhub.preset (or base_url/token_url) names the deployment the client "
                "belongs to: a Copernicus Data Space client needs `preset: cdse`"
            ) from err
        if isinstance(err, OutOfRequestsException):
            raise IngestError(
                f"{tile}: Sentinel Hub kept answering 429 (too many requests) to the {self.what} after "
                f"{self.config.max_retries} retries; fewer downloads at once (--resources sentinelhub=1) or rerun later"
            ) from err
        status = getattr(getattr(getattr(err, "request_exception", None), "response", None), "status_code", None)
        if status == 403:
            raise IngestError(
                f"{tile}: Sentinel Hub refused the {self.what} (403): the account's processing units or requests "
                "are used up (or it lacks access). What arrived is kept in sentinelhub.cache_dir; rerun when the "
                "quota renews and the download continues there"
            ) from err
        if isinstance(err, (BaseSentinelHubException, KeyError, ValueError)):
            permanent = "" if status is None or status >= 500 else " (a permanent error: not retried)"
            raise IngestError(f"{tile}: Sentinel Hub {self.what} failed{permanent} ({err})") from err
        return False


def _sh_crs(grid: TileGrid) -> SHCRS:
    epsg = grid.crs.to_epsg()
    if epsg is None:
        raise IngestError(f"tile {grid.tile_id}: Sentinel Hub needs an EPSG CRS, got {grid.crs}")
    return SHCRS(epsg)


def _bbox(grid: TileGrid) -> BBox:
    return BBox(grid.bounds, crs=_sh_crs(grid))


def _day_range(time_range: Sequence) -> tuple[dt.datetime, dt.datetime]:
    """[start 00:00:00, end 23:59:59] UTC of a (start, end) pair of days."""
    if len(time_range) != 2:
        raise IngestError(f"time_range must be [start, end], got {time_range}")
    start = pd.Timestamp(str(time_range[0])).normalize()
    end = pd.Timestamp(str(time_range[1])).normalize() + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    if end < start:
        raise IngestError(f"time_range ends ({time_range[1]}) before it starts ({time_range[0]})")
    return start.to_pydatetime().replace(tzinfo=dt.UTC), end.to_pydatetime().replace(tzinfo=dt.UTC)


def _cached(request: DownloadRequest) -> bool:
    """Whether sentinelhub-py will answer `request` from the cache; removes what a killed download left.

    sentinelhub-py writes the response, then request.json, both in place: a response without a readable
    request.json may be truncated, so both are removed and the request is sent again."""
    request_path, response_path = request.get_storage_paths()
    if response_path is None or not os.path.exists(response_path):
        return False
    try:
        json.loads(Path(request_path).read_text())
        return True
    except (OSError, ValueError):
        LOGGER.warning("%s: incomplete cache entry (no readable %s), fetched again", response_path, request_path)
        for path in (response_path, request_path):
            Path(path).unlink(missing_ok=True)
        return False


def _cache_file(cache_dir: str | os.PathLike | None, grid: TileGrid, query: dict) -> Path | None:
    if cache_dir is None:
        return None
    key = hashlib.md5(json.dumps(query, sort_keys=True).encode()).hexdigest()
    return Path(cache_dir) / grid.tile_id / f"catalog-{key}.json"


def _require_credentials(config: SHConfig, grid: TileGrid) -> None:
    if not (config.sh_client_id and config.sh_client_secret):
        raise IngestError(
            f"tile {grid.tile_id}: Sentinel Hub credentials are missing; set SH_CLIENT_ID and SH_CLIENT_SECRET "
            "in the environment or configure a sentinelhub profile (sentinelhub.config --sh_client_id ...)"
        )


# --- the plan: what a run will ask of the service, before it asks ------------------------------------------------

TRUE_COLOUR = ("B02", "B03", "B04")


def download_bands(config: dict, tile: str) -> list[str]:
    """The bands a tile needs: the feature bands, and true colour on the tiles the report pictures."""
    bands = list(config["features"]["bands"])
    extra = TRUE_COLOUR if tile in config["report"].get("plot_tiles", []) else ()
    return bands + [band for band in extra if band not in bands]


def assumed_days(time_range: Sequence) -> int:
    """Overpass days in `time_range` before the catalogue is asked: one in five (two satellites), an upper bound."""
    start, end = _day_range(time_range)
    return (end - start).days // 5 + 1


@dataclass(frozen=True)
class TilePlan:
    tile_id: str
    days: int
    requests: int
    processing_units: float
    from_catalog: bool
    all_bands_units: float  # what all 13 bands at the tile's resolution, one request a day, would cost


def plan_tile(config: dict, grid: TileGrid, days: int | None = None, sh_config: SHConfig | None = None) -> TilePlan:
    """A tile's requests and PU, for `days` overpass days, or the catalogue's (with `sh_config`; cached in
    `sentinelhub.cache_dir`, so the download asks nothing twice), or else `assumed_days`."""
    sh = config["sentinelhub"]
    from_catalog = days is None and sh_config is not None
    if from_catalog:
        times = search_catalog(grid, sh["time_range"], sh["maxcc"], sh_config, sh.get("cache_dir"))
        days = len(overpass_days(times))
    elif days is None:
        days = assumed_days(sh["time_range"])
    groups = request_groups(grid, download_bands(config, grid.tile_id), config["clouds"]["resolution_m"])
    requests, units = tile_plan(groups, days)
    all_bands = days * processing_units(grid.width, grid.height, len(L1C_BANDS), 1)
    return TilePlan(grid.tile_id, days, requests, units, from_catalog, all_bands)


def format_plan(plans: Sequence[TilePlan], per_tile: bool = False) -> str:
    """The plan against the Copernicus Data Space free tier."""
    requests = sum(p.requests for p in plans)
    units = sum(p.processing_units for p in plans)
    days = [p.days for p in plans]
    source = "catalogue" if all(p.from_catalog for p in plans) else "assumed, at most one in five"
    lines = []
    if per_tile:
        lines += ["tile            days  requests       PU"]
        lines += [f"{p.tile_id:<15} {p.days:>4} {p.requests:>9} {p.processing_units:>8.1f}" for p in plans]
    n = max(len(plans), 1)
    totals = (
        f"Sentinel Hub plan: {len(plans)} tiles, {min(days, default=0)}-{max(days, default=0)} overpass days a tile "
        f"({source}), {requests} requests, {units:,.0f} PU ({units / n:.1f} PU and {requests / n:.1f} requests a tile)"
    )
    quota = (
        f"CDSE free tier ({FREE_QUOTA['processing_units']:,} PU and {FREE_QUOTA['requests']:,} requests a month): "
        f"{units / FREE_QUOTA['processing_units']:.1f} months of PU, {requests / FREE_QUOTA['requests']:.1f} of "
        "requests; the download cache keeps what arrived, so a run stopped by the quota continues the next month"
    )
    before = sum(p.all_bands_units for p in plans)
    saving = (
        f"All 13 bands on the tile grid, one request a day, would cost {before:,.0f} PU and {sum(days)} requests"
        f"; this plan needs {units / max(before, 1e-9):.0%} of those PU"
    )
    lines += [totals, saving, quota]
    return "\n".join(lines)
