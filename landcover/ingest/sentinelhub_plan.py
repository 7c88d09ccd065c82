"""What a Sentinel Hub run will ask of the service, before it asks: request groups, processing units, the plan.

Pure arithmetic over the tile grid and the configuration (no sentinelhub-py, no network), so that Snakemake's parse
time and `landcover plan` stay cheap; `landcover.ingest.sentinelhub` downloads by the same groups.

The Processing Unit (PU) rules are those of the Processing Unit page (docs.sentinel-hub.com/api/latest/api/overview/
processing-unit/, the same in the Copernicus Data Space's documentation, APIs/SentinelHub/Overview/ProcessingUnit):

- Process API (`processing_units`): 1 PU is 512 x 512 px x 3 input bands x 1 data sample at 16 bits or less,
  dataMask free, an area factor of at least 0.01, at least 0.005 PU a request: 13 bands at 10 m cost about 16.5 PU
  per 10 km tile and date, the workflow's groups about 6 (`tile_plan`);
- Catalog API (`catalog_request_units`): 1 PU is 1 000 000 km2 x 1 month, the area factor at least 0.01, months
  rounded up, 0.01 to 1 PU a request; each result page (up to `CATALOG_PAGE_ITEMS` items) is a request
  (`catalog_plan`): a year over a tile costs 0.12 PU a page.

Without the catalogue, a tile's overpass days are bounded by `max_overpass_days`: every satellite passes over a
point in at most `ORBITS_PER_POINT` relative orbits per `REPEAT_CYCLE_DAYS`-day cycle (neighbouring swaths overlap:
at 46 deg N about half of the area lies in two), with the satellites' first days in `SATELLITES_FROM`. With
credentials the catalogue's count replaces that bound.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from affine import Affine

from landcover.ingest import IngestError
from landcover.stack import L1C_BANDS, TileGrid

__all__ = [
    "CATALOG_PAGE_ITEMS",
    "FREE_PER_MINUTE",
    "FREE_QUOTA",
    "S2CLOUDLESS_BANDS",
    "RequestGroup",
    "TilePlan",
    "area_km2",
    "catalog_plan",
    "catalog_request_units",
    "cloud_percent",
    "day_range",
    "download_bands",
    "format_plan",
    "max_overpass_days",
    "months_searched",
    "plan_tile",
    "processing_units",
    "request_groups",
    "tile_plan",
]

NATIVE_RESOLUTION_M = {
    **dict.fromkeys(("B02", "B03", "B04", "B08"), 10),
    **dict.fromkeys(("B05", "B06", "B07", "B8A", "B11", "B12"), 20),
    **dict.fromkeys(("B01", "B09", "B10"), 60),
}
# The bands s2cloudless's model reads (s2cloudless.utils.MODEL_BANDS, its input with all_bands=False): the cloud
# group fetches these and not B03, B06 and B07. Written out here so that planning needs no s2cloudless import;
# tests/test_ingest_sentinelhub.py checks it against s2cloudless.
S2CLOUDLESS_BANDS = ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")
# Values (pixels x output bands x days) per response: about 48 MB of uint16, well inside the synchronous API's limits;
# and at most this many days a request, so that no request processes many scenes (the service times requests out).
MAX_RESPONSE_VALUES = 24_000_000
MAX_DAYS_PER_REQUEST = 32
# The Copernicus Data Space Ecosystem's free tier: a month's quota, and the per-minute limits (a 429 past them).
FREE_QUOTA = {"processing_units": 10_000, "requests": 10_000}
FREE_PER_MINUTE = {"processing_units": 300, "requests": 300}
# sentinelhub-py's SentinelHubCatalog.search asks for pages of `limit=100` items, each page one request.
CATALOG_PAGE_ITEMS = 100
CATALOG_PU_AREA_KM2 = 1_000_000
CATALOG_MIN_AREA_FACTOR = 0.01
CATALOG_REQUEST_PU = (0.01, 1.0)  # a request's least and most
# The catalogue lists one item per MGRS granule: a tile in the granules' overlap lies in up to four.
GRANULES_PER_OVERPASS = 4
# The overpass bound's assumptions: each satellite repeats its ground track every 10 days, and a point lies in at
# most two relative orbits' swaths. First days: Sentinel-2A's launch (2015-06-23); Sentinel-2B's routine operations
# (2017-07-06, as issue 22 dates them: commissioning products before that, should the catalogue list any, are
# outside the bound); Sentinel-2C's launch (2024-09-05; it took over from 2A in 2025, and counting 2A on as well
# only loosens the bound).
REPEAT_CYCLE_DAYS = 10
ORBITS_PER_POINT = 2
SATELLITES_FROM = {"Sentinel-2A": "2015-06-23", "Sentinel-2B": "2017-07-06", "Sentinel-2C": "2024-09-05"}
TRUE_COLOUR = ("B02", "B03", "B04")


def cloud_percent(maxcc: float) -> int:
    """`maxcc` (a fraction) as the whole percent both APIs get.

    The Process API's ``maxCloudCoverage`` is an integer percent (sentinelhub-py sends ``int(maxcc * 100)``: 28
    for 0.29); the Catalog filter takes any number. Both get this value, so that no listed granule is refused."""
    if not 0 <= maxcc <= 1:
        raise IngestError(f"sentinelhub.maxcc must be a fraction in [0, 1], got {maxcc}")
    return math.floor(maxcc * 100 + 1e-9)


def day_range(time_range: Sequence) -> tuple[dt.datetime, dt.datetime]:
    """[start 00:00:00, end 23:59:59] UTC of a (start, end) pair of days."""
    if len(time_range) != 2:
        raise IngestError(f"time_range must be [start, end], got {time_range}")
    start = pd.Timestamp(str(time_range[0])).normalize()
    end = pd.Timestamp(str(time_range[1])).normalize() + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    if end < start:
        raise IngestError(f"time_range ends ({time_range[1]}) before it starts ({time_range[0]})")
    return start.to_pydatetime().replace(tzinfo=dt.UTC), end.to_pydatetime().replace(tzinfo=dt.UTC)


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
    """The requests' band groups: `bands` by native resolution (never finer than the tile), then s2cloudless's ten
    bands at `cloud_resolution_m` (None: no cloud group)."""
    pixel = abs(grid.transform.a)
    by_factor: dict[int, list[str]] = {}
    for band in bands:
        factor = max(1, round(NATIVE_RESOLUTION_M[band] / pixel))
        by_factor.setdefault(factor, []).append(band)
    groups = [_group(f"{factor * pixel:g}m", group, factor, grid) for factor, group in sorted(by_factor.items())]
    if cloud_resolution_m is not None:
        groups.append(_group("clouds", S2CLOUDLESS_BANDS, max(1, round(cloud_resolution_m / pixel)), grid))
    return groups


def processing_units(width: int, height: int, n_bands: int, n_days: int) -> float:
    """PU of one Process API request: uint16 output, dataMask not counted (Sentinel Hub's definition)."""
    area = max(0.01, width * height / (512 * 512))
    return max(0.005, area * n_bands / 3 * n_days)


def tile_plan(groups: Sequence[RequestGroup], n_days: int) -> tuple[int, float]:
    """(Process API requests, PU) to download `n_days` overpass days of a tile."""
    requests, units = 0, 0.0
    for group in groups:
        per_request = group.days_per_request
        for start in range(0, n_days, per_request):
            requests += 1
            units += processing_units(group.width, group.height, len(group.bands), min(per_request, n_days - start))
    return requests, units


def months_searched(time_range: Sequence) -> int:
    """The searched period in months, rounded up: the fewest whole months from its start that reach its end."""
    start, end = day_range(time_range)
    months = 1
    while start + pd.DateOffset(months=months) < end:
        months += 1
    return months


def catalog_request_units(time_range: Sequence, area_km2: float) -> float:
    """PU of one Catalog API request over `area_km2` and `time_range`."""
    area = max(CATALOG_MIN_AREA_FACTOR, area_km2 / CATALOG_PU_AREA_KM2)
    least, most = CATALOG_REQUEST_PU
    return min(most, max(least, area * months_searched(time_range)))


def catalog_plan(time_range: Sequence, n_items: int, area_km2: float) -> tuple[int, float]:
    """(Catalog API requests, PU) of a search over `area_km2` that lists `n_items` items: one request a page."""
    pages = max(1, -(-n_items // CATALOG_PAGE_ITEMS))
    return pages, pages * catalog_request_units(time_range, area_km2)


def area_km2(grid: TileGrid) -> float:
    """The tile's area in its (projected) CRS."""
    left, bottom, right, top = grid.bounds
    return (right - left) * (top - bottom) / 1e6


def max_overpass_days(time_range: Sequence) -> int:
    """At most this many overpass days in `time_range` (module docstring: the satellites' first days, two relative
    orbits a point per 10-day cycle each); never more than the days in the range."""
    start, end = (pd.Timestamp(t.date()) for t in day_range(time_range))
    bound = 0
    for first in SATELLITES_FROM.values():
        days = (end - max(start, pd.Timestamp(first))).days + 1
        bound += ORBITS_PER_POINT * -(-days // REPEAT_CYCLE_DAYS) if days > 0 else 0
    return min(bound, (end - start).days + 1)


def download_bands(config: dict, tile: str) -> list[str]:
    """The bands a tile needs: the feature bands, and true colour on the tiles the report pictures."""
    bands = list(config["features"]["bands"])
    extra = TRUE_COLOUR if tile in config["report"].get("plot_tiles", []) else ()
    return bands + [band for band in extra if band not in bands]


@dataclass(frozen=True)
class TilePlan:
    tile_id: str
    days: int
    from_catalog: bool
    process_requests: int
    process_units: float
    catalog_requests: int
    catalog_units: float
    all_bands_units: float  # what all 13 bands at the tile's resolution, one request a day, would cost

    @property
    def requests(self) -> int:
        return self.process_requests + self.catalog_requests

    @property
    def processing_units(self) -> float:
        return self.process_units + self.catalog_units


def plan_tile(config: dict, grid: TileGrid, catalog_items: int | None = None, days: int | None = None) -> TilePlan:
    """A tile's requests and PU: for the catalogue's answer (`catalog_items` items on `days` overpass days, from
    `landcover.ingest.sentinelhub.search_catalog`), or else for `max_overpass_days` and as many pages as
    `GRANULES_PER_OVERPASS` items a day would take."""
    sh = config["sentinelhub"]
    from_catalog = days is not None
    if not from_catalog:
        days = max_overpass_days(sh["time_range"])
        catalog_items = GRANULES_PER_OVERPASS * days
    groups = request_groups(grid, download_bands(config, grid.tile_id), config["clouds"]["resolution_m"])
    process_requests, process_units = tile_plan(groups, days)
    catalog_requests, catalog_units = catalog_plan(sh["time_range"], catalog_items or 0, area_km2(grid))
    all_bands = days * processing_units(grid.width, grid.height, len(L1C_BANDS), 1)
    return TilePlan(
        grid.tile_id, days, from_catalog, process_requests, process_units, catalog_requests, catalog_units, all_bands
    )


def format_plan(plans: Sequence[TilePlan], per_tile: bool = False) -> str:
    """The plan against the Copernicus Data Space free tier."""
    requests = sum(p.requests for p in plans)
    units = sum(p.processing_units for p in plans)
    catalog = sum(p.catalog_units for p in plans), sum(p.catalog_requests for p in plans)
    days = [p.days for p in plans]
    source = (
        "the catalogue's"
        if all(p.from_catalog for p in plans)
        else f"an upper bound: {ORBITS_PER_POINT} relative orbits a satellite per {REPEAT_CYCLE_DAYS}-day cycle, "
        f"Sentinel-2B from {SATELLITES_FROM['Sentinel-2B']}"
    )
    lines = []
    if per_tile:
        lines += ["tile            days  requests       PU"]
        lines += [f"{p.tile_id:<15} {p.days:>4} {p.requests:>9} {p.processing_units:>8.1f}" for p in plans]
    n = max(len(plans), 1)
    totals = (
        f"Sentinel Hub plan: {len(plans)} tiles, {min(days, default=0)}-{max(days, default=0)} overpass days a tile "
        f"({source}), {requests} requests, {units:,.0f} PU ({units / n:.1f} PU and {requests / n:.1f} requests a "
        f"tile; the Catalog API's share {catalog[0]:,.1f} PU and {catalog[1]} requests)"
    )
    quota = (
        f"CDSE free tier ({FREE_QUOTA['processing_units']:,} PU and {FREE_QUOTA['requests']:,} requests a month): "
        f"{units / FREE_QUOTA['processing_units']:.1f} months of PU, {requests / FREE_QUOTA['requests']:.1f} of "
        "requests; the download cache keeps what arrived, so a run stopped by the quota continues the next month"
    )
    before = sum(p.all_bands_units for p in plans)
    saving = (
        f"All 13 bands on the tile grid, one request a day, would cost {before:,.0f} PU and {sum(days)} requests"
        f"; this plan's Process API requests need {sum(p.process_units for p in plans) / max(before, 1e-9):.0%} "
        "of those PU"
    )
    lines += [totals, saving, quota]
    return "\n".join(lines)
