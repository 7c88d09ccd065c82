"""Sentinel-2 L1C from Sentinel Hub (sentinelhub-py) as raw tile stacks, downloading only what the workflow uses.

Per tile, as eo-learn's `SentinelHubInputTask` does: the Catalog API lists the L1C items over the tile's bbox in
the time range with ``eo:cloud_cover <= maxcc``; items closer than `time_difference` are one overpass, kept as one
frame per UTC day. Then the Process API is asked, several days per request (``mosaicking: ORBIT``, one orbit a
day), for digital numbers (reflectance x 10000, processing baseline 04.00's offset removed by ``harmonizeValues``)
and ``dataMask``, as uint16, in the resolution groups of `landcover.ingest.sentinelhub_plan.request_groups`:

- the feature bands at their native resolution (never finer than the tile's): 10 m bands on the tile grid, 20 and
  60 m bands on a coarser grid, resampled here onto the tile grid bilinearly with GDAL's warper, as the local L1C
  source does (`landcover.ingest.local_l1c`);
- s2cloudless's ten bands at the cloud resolution (80 m), kept coarse in the stack (``cloud_bands``).

What that costs (requests, processing units) is planned in `landcover.ingest.sentinelhub_plan`.

Credentials come from `SHConfig()`: the environment (SH_CLIENT_ID, SH_CLIENT_SECRET) or the user's sentinelhub
profile, never from the repository; the deployment is a preset (`PRESETS`) or the configured base/token URL.
Requests are paced to the job's share of the per-minute limits (`RequestPacer`). A request answered HTTP 429 is
sent at most `max_retries` times in all (sentinelhub-py counts the first attempt), each after the service's
Retry-After, unless that asks for more than `max_wait_s` (then the tile stops with the quota message); 5xx and
connection errors are tried `max_download_attempts` times with a growing wait; a 401 (a token the service no longer
accepts) gets a fresh token once; other 4xx answers are permanent and fail at once. Every response is cached under
``cache_dir/<tile_id>/`` as it arrives (sentinelhub-py's cache, keyed by a hash of URL and request body; catalogue
answers by this module), so a run stopped by a quota continues where it stopped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
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
    SentinelHubSession,
    SHConfig,
)
from sentinelhub.constants import CRS as SHCRS
from sentinelhub.download.models import DownloadRequest
from sentinelhub.download.rate_limit import SentinelHubRateLimit
from sentinelhub.exceptions import BaseSentinelHubException, DownloadFailedException, OutOfRequestsException

from landcover.atomic import atomic_path
from landcover.ingest import IngestError
from landcover.ingest.checked import gdal_errors
from landcover.ingest.sentinelhub_plan import (
    FREE_PER_MINUTE,
    RequestGroup,
    area_km2,
    catalog_request_units,
    cloud_percent,
    day_range,
    processing_units,
    request_groups,
    tile_plan,
)
from landcover.stack import L1C_BANDS, TileGrid, new_stack

__all__ = [
    "CATALOGUED_WITHOUT_DATA",
    "PRESETS",
    "RequestPacer",
    "acquisitions",
    "download_tile",
    "evalscript",
    "overpass_days",
    "search_catalog",
    "sentinelhub_config",
]

LOGGER = logging.getLogger(__name__)

# Sentinel-2 L1C on whatever deployment the configuration names (the stock definition pins
# services.sentinel-hub.com, which would ignore `sh_base_url`).
L1C = DataCollection.SENTINEL2_L1C.define_from("SENTINEL2_L1C_CONFIGURED_URL", service_url=None)
TIME_DIFFERENCE = dt.timedelta(hours=2)  # eo-learn's land-cover example
MAX_PIXELS = 2500  # the Process API's limit per side
MAX_WAIT_S = 120  # the longest Retry-After honoured by default (sentinelhub.max_wait_s)
CATALOGUED_WITHOUT_DATA = "catalogued, but no data on the tile from the Process API"
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


class RequestPacer:
    """Keeps one download job within its share of the account's per-minute limits on requests and processing units.

    One token bucket per limit, refilled evenly at the limit per minute and holding `BURST_S` seconds' worth: the
    Rate limiting page (CDSE's APIs/SentinelHub/Overview/RateLimiting) asks for requests spread over the minute, a
    burst of the whole minute's allowance draws 429s. A request waits until both buckets hold it (or are full, for
    one larger than a bucket) and may leave them in debt, so the rate holds over time. One pacer serves one job;
    jobs running at once share the account's limits only through their shares (`resources: sentinelhub` in the
    profiles caps how many run). `clock` and `sleep` are injectable, so tests pace without waiting."""

    BURST_S = 10

    def __init__(
        self,
        requests_per_minute: float = FREE_PER_MINUTE["requests"],
        units_per_minute: float = FREE_PER_MINUTE["processing_units"],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if requests_per_minute <= 0 or units_per_minute <= 0:
            raise IngestError(
                f"sentinelhub: per-minute limits must be positive, got {requests_per_minute} requests and "
                f"{units_per_minute} PU"
            )
        self.per_second = {"requests": requests_per_minute / 60, "units": units_per_minute / 60}
        self.capacity = {key: rate * self.BURST_S for key, rate in self.per_second.items()}
        self.level = dict(self.capacity)
        self.clock, self.sleep = clock, sleep
        self.updated = clock()

    def _refill(self) -> None:
        now = self.clock()
        for key, rate in self.per_second.items():
            self.level[key] = min(self.capacity[key], self.level[key] + (now - self.updated) * rate)
        self.updated = now

    def take(self, units: float, requests: int = 1) -> float:
        """Wait until the buckets hold `requests` and `units` PU, then take them; the seconds waited."""
        need = {"requests": requests, "units": units}
        self._refill()
        wait = max((min(need[key], self.capacity[key]) - self.level[key]) / self.per_second[key] for key in need)
        if wait > 0:
            self.sleep(wait)
            self._refill()
        for key, amount in need.items():
            self.level[key] -= amount
        return max(wait, 0.0)


class _WaitTooLong(Exception):
    """A 429 whose Retry-After exceeds the longest wait this run accepts."""

    def __init__(self, seconds: float):
        super().__init__(f"Retry-After {seconds:.0f} s")
        self.seconds = seconds


class _CappedRateLimit(SentinelHubRateLimit):
    """sentinelhub-py's rate limit (it waits the Retry-After of each 429), refusing waits above `max_wait_s`."""

    def __init__(self, max_wait_s: float, num_processes: int):
        super().__init__(num_processes=num_processes)
        self.max_wait_s = max_wait_s

    def update(self, headers: dict, *, default: float) -> None:
        seconds = float(headers.get(self.RETRY_HEADER, default)) / 1000  # milliseconds, as the service sends it
        if seconds > self.max_wait_s:
            raise _WaitTooLong(seconds)
        super().update(headers, default=default)


def _capped(client: SentinelHubDownloadClient, max_wait_s: float) -> SentinelHubDownloadClient:
    client.rate_limit = _CappedRateLimit(max_wait_s, client.config.number_of_download_processes)
    return client


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

    `preset` ("cdse", "sentinelhub") sets both URLs; explicit URLs win. `max_retries` bounds the attempts of a
    request answered HTTP 429, the first one included (sentinelhub-py's SentinelHubDownloadClient._execute_download
    raises once ``download_attempts >= max_retries``; its default, None, tries forever)."""
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
    grid: TileGrid,
    time_range: Sequence,
    maxcc: float,
    config: SHConfig,
    cache_dir: str | os.PathLike | None = None,
    pacer: RequestPacer | None = None,
    max_wait_s: float = MAX_WAIT_S,
) -> list[pd.Timestamp]:
    """Sensing times (UTC) of the L1C items over the tile with cloud cover <= `maxcc`, sorted (with repeats).

    The search is paced as one request (its first page; further pages are rare: 100 items a page)."""
    percent = cloud_percent(maxcc)
    start, end = day_range(time_range)
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
        if pacer is not None:
            pacer.take(catalog_request_units(time_range, area_km2(grid)))
        with _service_errors(grid, config, "catalog search", max_wait_s):
            catalog = SentinelHubCatalog(config=config)
            _capped(catalog.client, max_wait_s)
            items = catalog.search(
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
    pacer: RequestPacer | None = None,
    max_wait_s: float = MAX_WAIT_S,
) -> xr.Dataset:
    """A raw tile stack of every overpass day in `time_range` ((start, end) days, both included): `bands` on the
    tile grid and, with `cloud_resolution_m`, s2cloudless's bands on the coarse cloud grid (``cloud_bands``).

    `pacer` (default: the CDSE free tier's per-minute limits) paces the requests sent; a 429 whose Retry-After
    exceeds `max_wait_s` seconds stops the tile with an error naming it."""
    pacer = pacer or RequestPacer()
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
    times = search_catalog(grid, time_range, maxcc, config, cache_dir, pacer, max_wait_s)
    days = overpass_days(times, time_difference)
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
        "tile %s: %d overpass days, %d Process API requests (%.1f PU), %d to download, %d cached",
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
    client = _capped(SentinelHubDownloadClient(config=config), max_wait_s)
    # Group by group (cached ones first), decoding as we go: whatever arrived stays in the cache if one fails.
    for group, start, n, request in sorted(requests, key=lambda item: not _cached(item[-1])):
        what = f"download of {group.name} bands from {days[start][0]}"
        if not _cached(request):
            pacer.take(processing_units(group.width, group.height, len(group.bands), n))
        with _service_errors(grid, config, what, max_wait_s):
            response = _download(client, request, grid, config, what)
        name = request.get_storage_paths()[1] or f"the {group.name} response from {days[start][0]}"
        values = _decode(response.content, name, grid, group, n)
        arrays[group.name][start : start + n] = values[..., :-1]
        masks[group.name][start : start + n] = values[..., -1] > 0
    return _assemble(grid, groups, days, out, arrays, masks)


def _download(client: SentinelHubDownloadClient, request: DownloadRequest, grid: TileGrid, config: SHConfig, what: str):
    """The response to `request`; a 401 (the service dropped the token mid-run) gets one fresh token."""
    try:
        return client.download([request], decode_data=False)[0]
    except DownloadFailedException as err:
        if _status(err) != 401:
            raise
        LOGGER.warning(
            "tile %s: Sentinel Hub refused the token (401) for the %s; authenticating again", grid.tile_id, what
        )
    client.session = SentinelHubSession(config=config)
    try:
        return client.download([request], decode_data=False)[0]
    except DownloadFailedException as err:
        if _status(err) == 401:
            raise IngestError(
                f"tile {grid.tile_id}: Sentinel Hub refused the {what} (401) with a fresh token too: the OAuth "
                f"client from {config.sh_token_url} has no access to {config.sh_base_url} (sentinelhub.preset, "
                "base_url and token_url must name one deployment)"
            ) from err
        raise


def _status(err: BaseException) -> int | None:
    return getattr(getattr(getattr(err, "request_exception", None), "response", None), "status_code", None)


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
    empty = [days[d][0] for d in sorted(set(range(len(days))) - set(keep))]
    if empty:
        LOGGER.warning(
            "tile %s: %d of %d catalogued days dropped, %s: %s. The catalogue lists granules whose footprint meets "
            "the tile's bounding box; one that only grazes it (a swath edge) gives no pixel, and so would a "
            "catalogue the Process API disagrees with (cloud filter, time range, deployment)",
            grid.tile_id,
            len(empty),
            len(days),
            CATALOGUED_WITHOUT_DATA,
            ", ".join(empty),
        )
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
    ds.attrs["dropped_frames"] = json.dumps({CATALOGUED_WITHOUT_DATA: dropped} if dropped else {})
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

    def __init__(self, grid: TileGrid, config: SHConfig, what: str, max_wait_s: float = MAX_WAIT_S):
        self.grid, self.config, self.what, self.max_wait_s = grid, config, what, max_wait_s

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
        if isinstance(err, _WaitTooLong):
            raise IngestError(
                f"{tile}: Sentinel Hub answered the {self.what} with 429 (too many requests) and a wait of "
                f"{err.seconds:,.0f} s, longer than sentinelhub.max_wait_s ({self.max_wait_s:g} s): the account's "
                "allowance is spent for now. What arrived is kept in sentinelhub.cache_dir; rerun later (the download "
                "continues there) or raise sentinelhub.max_wait_s"
            ) from err
        if isinstance(err, OutOfRequestsException):
            raise IngestError(
                f"{tile}: Sentinel Hub answered 429 (too many requests) to all {self.config.max_retries} attempts "
                f"of the {self.what}; fewer downloads at once (--resources sentinelhub=1), lower "
                "sentinelhub.requests_per_minute / processing_units_per_minute, or rerun later"
            ) from err
        status = _status(err)
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
