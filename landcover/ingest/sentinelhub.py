"""Sentinel-2 L1C from Sentinel Hub (sentinelhub-py) as raw tile stacks.

Per tile, as eo-learn's `SentinelHubInputTask` does: the Catalog API lists the L1C items over the tile's
bbox in the time range with ``eo:cloud_cover <= maxcc``; item times closer than `time_difference`
are one overpass (one frame, at its first time); then one Process API request per overpass asks for
all bands as digital numbers (reflectance x 10000, with processing baseline 04.00's offset removed
by Sentinel Hub's ``harmonizeValues``) plus ``dataMask``, as one uint16 TIFF on the tile's own grid.

Credentials come from `SHConfig()`: the environment (SH_CLIENT_ID, SH_CLIENT_SECRET) or the user's
sentinelhub profile, never from the repository. The deployment is the configured base/token URL.
Transient failures (5xx, connection errors) are retried by sentinelhub-py with back-off
(`max_download_attempts`, `download_sleep_time`), 429s after the service's Retry-After.

Everything fetched is cached under ``cache_dir/<tile_id>/``: Process API responses by sentinelhub-py
(keyed by a hash of URL and request body), catalog answers by this module (keyed the same way), so
a rerun (after a crash, or with another stage changed) fetches nothing twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
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
from sentinelhub.exceptions import BaseSentinelHubException

from landcover.atomic import atomic_path
from landcover.ingest import NO_DATA_ON_TILE, IngestError
from landcover.ingest.checked import read_encoded
from landcover.stack import L1C_BANDS, TileGrid, new_stack

__all__ = ["acquisitions", "download_tile", "evalscript", "search_catalog", "sentinelhub_config"]

LOGGER = logging.getLogger(__name__)

# Sentinel-2 L1C on whatever deployment the configuration names (the stock definition pins
# services.sentinel-hub.com, which would ignore `sh_base_url`).
L1C = DataCollection.SENTINEL2_L1C.define_from("SENTINEL2_L1C_CONFIGURED_URL", service_url=None)
TIME_DIFFERENCE = dt.timedelta(hours=2)  # eo-learn's land-cover example
MAX_PIXELS = 2500  # the Process API's limit per side


def sentinelhub_config(
    base_url: str | None = None,
    token_url: str | None = None,
    *,
    max_download_attempts: int | None = None,
    download_sleep_time: float | None = None,
) -> SHConfig:
    """The user's sentinelhub configuration (profile, then SH_CLIENT_ID/SH_CLIENT_SECRET) with these overrides."""
    config = SHConfig()
    overrides = {
        "sh_base_url": base_url,
        "sh_token_url": token_url,
        "max_download_attempts": max_download_attempts,
        "download_sleep_time": download_sleep_time,
    }
    for key, value in overrides.items():
        if value is not None:
            setattr(config, key, value)
    return config


def evalscript(bands: Sequence[str]) -> str:
    """Digital numbers of `bands` then dataMask, all as one uint16 raster."""
    names = [*bands, "dataMask"]
    return f"""//VERSION=3
function setup() {{
  return {{
    input: [{{bands: {json.dumps(names)}, units: "DN"}}],
    output: {{id: "default", bands: {len(names)}, sampleType: "UINT16"}}
  }};
}}
function evaluatePixel(sample) {{
  return [{", ".join(f"sample.{name}" for name in names)}];
}}
"""


def search_catalog(
    grid: TileGrid, time_range: Sequence, maxcc: float, config: SHConfig, cache_dir: str | os.PathLike | None = None
) -> list[pd.Timestamp]:
    """Sensing times (UTC) of the L1C items over the tile with cloud cover <= `maxcc`, sorted."""
    if not 0 <= maxcc <= 1:
        raise IngestError(f"tile {grid.tile_id}: maxcc must be a fraction in [0, 1], got {maxcc}")
    start, end = _day_range(time_range)
    query = {
        "url": f"{config.sh_base_url}/api/v1/catalog/1.0.0/search",
        "collection": L1C.catalog_id,
        "bbox": list(grid.bounds),
        "crs": grid.crs.to_epsg(),
        "time": [start.isoformat(), end.isoformat()],
        "filter": f"eo:cloud_cover <= {100 * maxcc:g}",
    }
    cache = _cache_file(cache_dir, grid, query)
    if cache is not None and cache.exists():
        times = json.loads(cache.read_text())
    else:
        _require_credentials(config, grid)
        try:
            items = SentinelHubCatalog(config=config).search(
                L1C,
                bbox=_bbox(grid),
                time=(start, end),
                filter=query["filter"],
                fields={"include": ["id", "properties.datetime", "properties.eo:cloud_cover"], "exclude": []},
            )
            times = sorted({item["properties"]["datetime"] for item in items})
        except (BaseSentinelHubException, KeyError, ValueError) as err:
            raise IngestError(f"tile {grid.tile_id}: Sentinel Hub catalog search failed ({err})") from err
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


def download_tile(
    grid: TileGrid,
    time_range: Sequence,
    maxcc: float,
    cache_dir: str | os.PathLike | None,
    config: SHConfig | None = None,
    bands: Sequence[str] = L1C_BANDS,
    time_difference: dt.timedelta = TIME_DIFFERENCE,
    max_threads: int = 4,
) -> xr.Dataset:
    """A raw tile stack of every overpass in `time_range` ((start, end) days, both included)."""
    config = config or sentinelhub_config()
    unknown = [b for b in bands if b not in L1C_BANDS]
    if unknown or not bands:
        raise IngestError(f"tile {grid.tile_id}: unknown band(s) {unknown} (expected some of {', '.join(L1C_BANDS)})")
    if max(grid.width, grid.height) > MAX_PIXELS:
        raise IngestError(
            f"tile {grid.tile_id}: {grid.width} x {grid.height} px exceeds the Process API's {MAX_PIXELS} px "
            "per side; use smaller tiles"
        )
    overpasses = acquisitions(search_catalog(grid, time_range, maxcc, config, cache_dir), time_difference)
    if not overpasses:
        raise IngestError(
            f"tile {grid.tile_id}: Sentinel Hub lists no L1C acquisition with cloud cover <= {maxcc} "
            f"between {time_range[0]} and {time_range[1]}"
        )
    folder = None if cache_dir is None else str(Path(cache_dir) / grid.tile_id)
    script = evalscript(bands)
    half = time_difference / 2  # overpasses are more than `time_difference` apart, so windows never overlap
    requests = [
        SentinelHubRequest(
            evalscript=script,
            input_data=[
                SentinelHubRequest.input_data(
                    L1C,
                    time_interval=((first - half).to_pydatetime(), (last + half).to_pydatetime()),
                    maxcc=maxcc,
                    mosaicking_order=MosaickingOrder.MOST_RECENT,
                    other_args={"processing": {"harmonizeValues": True}},
                )
            ],
            responses=[SentinelHubRequest.output_response("default", MimeType.TIFF)],
            bbox=_bbox(grid),
            size=(grid.width, grid.height),
            data_folder=folder,
            config=config,
        ).download_list[0]
        for first, last in overpasses
    ]
    missing = [r for r in requests if not _cached(r)]
    if missing:
        _require_credentials(config, grid)
    LOGGER.info(
        "tile %s: %d overpasses, %d to download, %d cached",
        grid.tile_id,
        len(requests),
        len(missing),
        len(requests) - len(missing),
    )
    # In batches, decoding as we go, so that the year's stack exists once in memory.
    client = SentinelHubDownloadClient(config=config)
    bands_out = np.zeros((len(overpasses), grid.height, grid.width, len(bands)), dtype=np.uint16)
    is_data_out = np.zeros((len(overpasses), grid.height, grid.width), dtype=bool)
    times = []
    dropped: dict[str, int] = {}
    expected = (grid.height, grid.width, len(bands) + 1)
    batch = 2 * max_threads
    for start in range(0, len(requests), batch):
        try:
            responses = client.download(requests[start : start + batch], max_threads=max_threads, decode_data=False)
        except BaseSentinelHubException as err:
            raise IngestError(f"tile {grid.tile_id}: Sentinel Hub download failed ({err})") from err
        for (first, _), request, response in zip(overpasses[start : start + batch], requests[start:], responses):
            name = request.get_storage_paths()[1] or f"the Sentinel Hub response for {first:%Y-%m-%dT%H:%M:%S}"
            array = read_encoded(response.content, name, grid.tile_id)  # decoding errors name the response
            if array is None or np.shape(array) != expected:
                raise IngestError(
                    f"tile {grid.tile_id}: Sentinel Hub answered {first:%Y-%m-%dT%H:%M:%S} with shape "
                    f"{np.shape(array)}, expected {expected}"
                )
            is_data = array[..., -1] > 0
            if not is_data.any():
                LOGGER.info("tile %s: %s dropped: %s", grid.tile_id, first, NO_DATA_ON_TILE)
                dropped[NO_DATA_ON_TILE] = dropped.get(NO_DATA_ON_TILE, 0) + 1
                continue
            bands_out[len(times)] = np.where(is_data[..., None], array[..., :-1], 0)
            is_data_out[len(times)] = is_data
            times.append(first)
    if not times:
        raise IngestError(f"tile {grid.tile_id}: every Sentinel Hub acquisition is no data over the tile")
    n = len(times)
    ds = new_stack(bands_out[:n], is_data_out[:n], times, list(bands), grid)
    ds.attrs["dropped_frames"] = json.dumps(dropped)  # per reason, for the validation report (landcover.frames)
    return ds


def _bbox(grid: TileGrid) -> BBox:
    epsg = grid.crs.to_epsg()
    if epsg is None:
        raise IngestError(f"tile {grid.tile_id}: Sentinel Hub needs an EPSG CRS, got {grid.crs}")
    return BBox(grid.bounds, crs=SHCRS(epsg))


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
    request.json may be truncated, so both are removed and the overpass is fetched again."""
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
