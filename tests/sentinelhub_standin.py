"""A stand-in Sentinel Hub service on 127.0.0.1 for tests: OAuth token, Catalog search and Process API.

It checks requests as the documented service does and answers 400 (Process, Catalog) or 401 (token) otherwise:

- token: client credentials grant; unknown id or secret get Keycloak's ``invalid_client`` (what both Sentinel Hub
  and the Copernicus Data Space answer);
- catalog (STAC search): ``collections`` one known id, ``bbox`` in WGS84, ``datetime`` interval, ``limit`` 1..100
  (default 10, pages by it), CQL2-text ``eo:cloud_cover`` filters; items whose granule footprint meets the bbox,
  several items per overpass (one per granule, same datetime);
- process: bbox and EPSG CRS, width and height 1..2500, S2L1C data filter (timeRange, integer
  ``maxCloudCoverage`` 0..100, mosaicking order, ``harmonizeValues``, up/downsampling), and an evalscript version 3
  whose ``setup()`` names known S2L1C bands, their units, an output with a known ``sampleType`` and as many bands as
  evaluatePixel gives. It runs the multi-date ORBIT evalscript form the client sends (``var DAYS``/``var ORDER``),
  one mosaic per day of the scenes that pass the filter.

Pixel values are a function of the pixel centre's map coordinates (`served_value`), computed here from the
request's bbox and size, and written with a GDAL geotransform from the bbox: the raster does not share the
client's grid convention. Processing units are metered by the documented rules (`metered_units`, written from
the Processing Unit page, not from the client's formula); with `quota_pu` set, a request past it gets 403, as an
exhausted account does; Catalog requests add to `catalog_units`. `fail` queues HTTP errors (429 with a Retry-After of `retry_after_ms`);
`expire_tokens_at` makes the service forget every token it issued when the Process API's n-th request arrives
(a token revoked mid-run: 401 until the client authenticates again).
"""

from __future__ import annotations

import base64
import calendar
import datetime as dt
import json
import re
import secrets
import threading
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from affine import Affine
from pyproj import Geod, Transformer
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds

TOKEN_PATH = "/oauth/token"
CATALOG_PATH = "/api/v1/catalog/1.0.0/search"
PROCESS_PATH = "/api/v1/process"
ENDPOINTS = {TOKEN_PATH: "token", CATALOG_PATH: "catalog", PROCESS_PATH: "process"}
CLIENT_ID, CLIENT_SECRET = "test-client", "test-secret"
L1C_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
OTHER_INPUTS = {"dataMask": ("DN",), "sunAzimuthAngles": ("DEGREES",), "sunZenithAngles": ("DEGREES",)}
UNITS = {**dict.fromkeys(L1C_BANDS, ("REFLECTANCE", "DN")), **OTHER_INPUTS}
SAMPLE_TYPES = {"INT8", "UINT8", "INT16", "UINT16", "FLOAT32", "AUTO"}
COLLECTIONS = {"sentinel-2-l1c"}
PROCESS_TYPES = {"sentinel-2-l1c", "S2L1C"}
RESAMPLING = {"NEAREST", "BILINEAR", "BICUBIC"}
MOSAICKING_ORDERS = {"mostRecent", "leastRecent", "leastCC"}
SCENE_CRS = "EPSG:32633"
# The Processing Unit page (docs.sentinel-hub.com/api/latest/api/overview/processing-unit/; CDSE's
# APIs/SentinelHub/Overview/ProcessingUnit): Process API, 1 PU is an output of 512 x 512 px, 3 input bands, one
# data sample per pixel, at most 16 bits per value; each is a multiplication factor, the area factor at least
# 0.01, dataMask not counted unless it is the only band, 32-bit float output x 2, and a request at least 0.005 PU.
PU_PIXELS = 512 * 512
PU_BANDS = 3
PU_MIN_AREA_FACTOR = 0.01
PU_MIN_REQUEST = 0.005
PU_OUTPUT_FACTOR = {"INT8": 1, "UINT8": 1, "INT16": 1, "UINT16": 1, "AUTO": 1, "FLOAT32": 2}
# Catalog API: 1 PU is 1 000 000 km2 x 1 month; the area factor at least 0.01, the months rounded up; 0.01 to 1 PU a
# request.
CATALOG_PU_KM2 = 1_000_000
CATALOG_MIN_AREA_FACTOR = 0.01
CATALOG_REQUEST_PU = (0.01, 1.0)


@dataclass(frozen=True)
class Scene:
    """One granule: sensing time (UTC), cloud cover in percent, its footprint (what the catalogue matches) and where
    it has data (what Process returns), both (left, bottom, right, top) in EPSG:32633; None: everywhere."""

    datetime: dt.datetime
    cloud_cover: float
    footprint: tuple[float, float, float, float] | None = None
    data: tuple[float, float, float, float] | None = None
    granule: str = "T33TVM"


# A clear vegetated pixel's L1C digital numbers, so that s2cloudless finds no cloud in what is served.
CLEAR_DN = dict(zip(L1C_BANDS, (1300, 1000, 900, 700, 1100, 2000, 2400, 2600, 2700, 800, 15, 1800, 1000)))


def served_value(when: dt.datetime, band: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The digital number of `band` at map coordinates (x, y) (EPSG:32633) on the day sensed at `when`: linear in
    x and y, so that a bilinear resampling of it gives it back; near (465000, 5080000) a clear vegetated pixel."""
    position = 1e-5 * ((x - 460_000) + (5_090_000 - y))
    return CLEAR_DN[band] * (1 + position) + when.timetuple().tm_yday % 50


@dataclass
class StandIn:
    scenes: list[Scene]
    counts: Counter = field(default_factory=Counter)
    process_payloads: list[dict] = field(default_factory=list)
    catalog_payloads: list[dict] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=dict)
    quota_pu: float | None = None
    # Metres by which the written GeoTIFF's origin is off the requested bbox (a service bug to catch).
    misplace_m: float = 0.0
    processing_units: float = 0.0
    catalog_units: float = 0.0
    retry_after_ms: int = 10
    expire_tokens_at: set = field(default_factory=set)
    tokens: set = field(default_factory=set)
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    def fail(self, endpoint: str, *statuses: int) -> None:
        """Answer the next requests to `endpoint` ("token", "catalog", "process") with these HTTP statuses."""
        with self.lock:
            self.failures.setdefault(endpoint, []).extend(statuses)

    def take_failure(self, endpoint: str) -> int | None:
        with self.lock:
            self.counts[endpoint] += 1
            pending = self.failures.get(endpoint)
            return pending.pop(0) if pending else None


class BadRequest(ValueError):
    """What the real service answers with 400 and a message."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BadRequest(message)


def _fake_jwt() -> str:
    part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    claims = {"azp": CLIENT_ID, "sub": "standin", "jti": secrets.token_hex(8)}
    return f"{part({'alg': 'none'})}.{part(claims)}.signature"


def _parse_time(value: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value)
    except (TypeError, ValueError) as err:
        raise BadRequest(f"Invalid time {value!r}") from err
    _require(when.tzinfo is not None, f"Time {value!r} has no time zone")
    return when.astimezone(dt.UTC)


def _stac_time(when: dt.datetime) -> str:
    """As the real catalog writes it: milliseconds only when there are some."""
    return when.isoformat(timespec="milliseconds" if when.microsecond else "seconds").replace("+00:00", "Z")


def _wgs84_envelope(bounds: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    transformer = Transformer.from_crs(SCENE_CRS, "EPSG:4326", always_xy=True)
    return transformer.transform_bounds(*bounds, densify_pts=21)


def _overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _cloud_filter(text: str | None):
    """A predicate on cloud cover from a CQL2-text filter; only ``eo:cloud_cover <op> number`` clauses (and'ed)."""
    if not text:
        return lambda cover: True
    clauses = [c.strip() for c in re.split(r"\s+and\s+", text, flags=re.IGNORECASE)]
    tests = []
    for clause in clauses:
        match = re.fullmatch(r"eo:cloud_cover\s*(<=|<|>=|>|=)\s*(-?\d+(?:\.\d+)?)", clause)
        _require(match is not None, f"Cannot parse filter {text!r}")
        op, value = match[1], float(match[2])
        tests.append(
            {"<=": value.__ge__, "<": value.__gt__, ">=": value.__le__, ">": value.__lt__, "=": value.__eq__}[op]
        )
    return lambda cover: all(test(cover) for test in tests)


def _catalog(standin: StandIn, payload: dict) -> dict:
    collections = payload.get("collections")
    _require(isinstance(collections, list) and len(collections) == 1, "collections must name one collection")
    _require(collections[0] in COLLECTIONS, f"Unknown collection {collections[0]!r}")
    bbox = payload.get("bbox")
    _require(isinstance(bbox, list) and len(bbox) == 4, "bbox must be [minx, miny, maxx, maxy]")
    _require(-180 <= bbox[0] < bbox[2] <= 180 and -90 <= bbox[1] < bbox[3] <= 90, f"bbox {bbox} is not in WGS84")
    _require(isinstance(payload.get("datetime"), str) and "/" in payload["datetime"], "datetime must be an interval")
    start, end = (_parse_time(v) for v in payload["datetime"].split("/"))
    _require(start <= end, "datetime interval ends before it starts")
    limit = payload.get("limit", 10)
    _require(isinstance(limit, int) and 1 <= limit <= 100, f"limit must be 1..100, got {limit!r}")
    _require(payload.get("filter-lang", "cql2-text") == "cql2-text", "only cql2-text filters")
    keep_cover = _cloud_filter(payload.get("filter"))
    found = [
        s
        for s in standin.scenes
        if start <= s.datetime <= end
        and keep_cover(s.cloud_cover)
        and (s.footprint is None or _overlaps(_wgs84_envelope(s.footprint), bbox))
    ]
    offset = int(payload.get("next") or 0)
    page = found[offset : offset + limit]
    features = [
        {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": f"S2A_OPER_MSI_L1C_{s.granule}_{s.datetime:%Y%m%dT%H%M%S}",
            "collection": collections[0],
            "properties": {"datetime": _stac_time(s.datetime), "eo:cloud_cover": s.cloud_cover},
        }
        for s in page
    ]
    with standin.lock:
        standin.catalog_units += metered_catalog_units(bbox, start, end)
    context = {"limit": limit, "returned": len(page)}
    if offset + limit < len(found):
        context["next"] = offset + limit
    return {"type": "FeatureCollection", "features": features, "links": [], "context": context}


def _js_object(text: str, variables: dict) -> dict:
    """The object literal `text` of an evalscript's setup() as JSON: bare keys quoted, `variables` substituted."""
    for name, value in variables.items():
        text = re.sub(rf"\b{name}\b", json.dumps(value), text)
    text = re.sub(r"([{,]\s*)([A-Za-z_]\w*)\s*:", r'\1"\2":', text)
    try:
        return json.loads(text)
    except ValueError as err:
        raise BadRequest(f"Failed to evaluate script: setup() returns {text!r}") from err


def _setup(evalscript: str) -> tuple[dict, dict]:
    _require(isinstance(evalscript, str) and evalscript.startswith("//VERSION=3"), "evalscript must be version 3")
    variables = {m[1]: json.loads(m[2]) for m in re.finditer(r"^var (\w+) = (\[.*?\]);$", evalscript, re.MULTILINE)}
    body = re.search(r"function setup\(\)\s*\{\s*return\s*(\{.*?\});\s*\}", evalscript, re.DOTALL)
    _require(body is not None, "Failed to evaluate script: no setup() returning an object")
    return _js_object(body[1], variables), variables


def _check_setup(setup: dict) -> tuple[list[str], int, str]:
    inputs = setup.get("input")
    _require(isinstance(inputs, list) and len(inputs) == 1, "setup() input must be one input object")
    bands = inputs[0].get("bands") if isinstance(inputs[0], dict) else inputs
    _require(isinstance(bands, list) and bands, "setup() input names no bands")
    unknown = [b for b in bands if b not in UNITS]
    _require(not unknown, f"Unknown band(s) {unknown} for collection S2L1C")
    units = inputs[0].get("units") if isinstance(inputs[0], dict) else None
    if units is not None:
        units = [units] * len(bands) if isinstance(units, str) else units
        _require(len(units) == len(bands), "setup() units must be one string or one per band")
        for band, unit in zip(bands, units):
            _require(unit in UNITS[band], f"Band {band} has no unit {unit!r} (expected one of {UNITS[band]})")
    output = setup.get("output")
    _require(isinstance(output, dict), "setup() output must be one object (one response)")
    _require(output.get("id", "default") == "default", "the response identifier must match the output id")
    n_out = output.get("bands")
    _require(isinstance(n_out, int) and n_out >= 1, "setup() output bands must be a positive integer")
    _require(output.get("sampleType", "AUTO") in SAMPLE_TYPES, f"Unknown sampleType {output.get('sampleType')!r}")
    mosaicking = setup.get("mosaicking", "SIMPLE")
    _require(mosaicking in {"SIMPLE", "ORBIT", "TILE"}, f"Unknown mosaicking {mosaicking!r}")
    return bands, n_out, mosaicking


def _check_data(data: list) -> tuple[dt.datetime, dt.datetime, int | None]:
    _require(isinstance(data, list) and len(data) == 1, "input data must be one collection")
    item = data[0]
    _require(item.get("type") in PROCESS_TYPES, f"Unknown collection type {item.get('type')!r}")
    data_filter = item.get("dataFilter", {})
    time_range = data_filter.get("timeRange") or {}
    start, end = _parse_time(time_range.get("from")), _parse_time(time_range.get("to"))
    _require(start <= end, "timeRange ends before it starts")
    maxcc = data_filter.get("maxCloudCoverage")
    _require(
        maxcc is None or (type(maxcc) is int and 0 <= maxcc <= 100),
        f"maxCloudCoverage must be an integer 0..100, got {maxcc!r}",
    )
    _require(data_filter.get("mosaickingOrder", "mostRecent") in MOSAICKING_ORDERS, "unknown mosaickingOrder")
    processing = item.get("processing", {})
    unknown = set(processing) - {"harmonizeValues", "upsampling", "downsampling"}
    _require(not unknown, f"Unknown processing option(s) {sorted(unknown)}")
    _require(isinstance(processing.get("harmonizeValues", False), bool), "harmonizeValues must be a boolean")
    for key in ("upsampling", "downsampling"):
        _require(processing.get(key, "NEAREST") in RESAMPLING, f"Unknown {key} {processing.get(key)!r}")
    return start, end, maxcc


def _process(standin: StandIn, payload: dict) -> tuple[bytes, float]:
    bounds = payload.get("input", {}).get("bounds", {})
    bbox = bounds.get("bbox")
    _require(isinstance(bbox, list) and len(bbox) == 4 and bbox[0] < bbox[2] and bbox[1] < bbox[3], "invalid bbox")
    crs = re.fullmatch(r"http://www\.opengis\.net/def/crs/EPSG/0/(\d+)", bounds.get("properties", {}).get("crs", ""))
    _require(crs is not None, "bounds CRS must be an EPSG CRS URL")
    _require(f"EPSG:{crs[1]}" == SCENE_CRS, f"the stand-in serves {SCENE_CRS} only")
    output = payload.get("output", {})
    width, height = output.get("width"), output.get("height")
    _require(type(width) is int and type(height) is int, "output width and height are required (pixels)")
    _require(1 <= width <= 2500 and 1 <= height <= 2500, f"{width} x {height} px exceeds 2500 px per side")
    responses = output.get("responses", [])
    _require(len(responses) == 1 and responses[0].get("identifier") == "default", "one response, 'default'")
    _require(responses[0].get("format", {}).get("type") == "image/tiff", "the stand-in answers image/tiff only")
    start, end, maxcc = _check_data(payload["input"].get("data"))
    setup, variables = _setup(payload.get("evalscript"))
    bands, n_out, mosaicking = _check_setup(setup)
    days, order = variables.get("DAYS"), variables.get("ORDER")
    _require(mosaicking == "ORBIT" and days and order, "the stand-in runs the multi-date ORBIT evalscript form only")
    _require(order == bands, "ORDER must list the input bands")
    _require(
        n_out == len(days) * len(order),
        f"setup() declares {n_out} bands, evaluatePixel returns {len(days) * len(order)}",
    )
    _require(setup["output"].get("sampleType") == "UINT16", "the stand-in serves UINT16 digital numbers only")

    # One mosaic a day (an orbit) of the granules in the time range that pass the cloud filter.
    passing = [s for s in standin.scenes if start <= s.datetime <= end and (maxcc is None or s.cloud_cover <= maxcc)]
    x = bbox[0] + (np.arange(width) + 0.5) * (bbox[2] - bbox[0]) / width
    y = bbox[3] - (np.arange(height) + 0.5) * (bbox[3] - bbox[1]) / height
    xx, yy = np.meshgrid(x, y)
    out = np.zeros((len(days), len(order), height, width), dtype=np.uint16)
    for k, day in enumerate(days):
        scenes = sorted((s for s in passing if f"{s.datetime:%Y-%m-%d}" == day), key=lambda s: s.datetime, reverse=True)
        filled = np.zeros((height, width), dtype=bool)
        for scene in scenes:
            d = scene.data
            covers = np.ones_like(filled) if d is None else (xx > d[0]) & (xx < d[2]) & (yy > d[1]) & (yy < d[3])
            new = covers & ~filled
            for j, band in enumerate(order):
                value = 1 if band == "dataMask" else served_value(scene.datetime, band, xx, yy)[new]
                out[k, j][new] = np.clip(np.round(value), 0, 65535)  # UINT16 clamps, as the service does
            filled |= covers
    # ORBIT mosaicking: one data sample per pixel for each orbit that preProcessScenes keeps.
    orbits = len({f"{s.datetime:%Y-%m-%d}" for s in passing} & set(days))
    units = metered_units(width, height, bands, setup["output"]["sampleType"], orbits)
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": n_out,
        "dtype": "uint16",
        "interleave": "pixel",
        "crs": SCENE_CRS,
        "transform": from_bounds(*bbox, width, height) * Affine.translation(standin.misplace_m, 0),
    }
    with MemoryFile() as memfile:
        with memfile.open(**profile) as dst:
            dst.write(out.reshape(n_out, height, width))
        return memfile.read(), units


def metered_units(width: int, height: int, input_bands: list[str], sample_type: str, samples: int) -> float:
    """Processing units of a Process API request by the documented multiplication factors (module constants)."""
    counted = [band for band in input_bands if band != "dataMask"] or input_bands
    factors = {
        "area": max(PU_MIN_AREA_FACTOR, (width * height) / PU_PIXELS),
        "bands": len(counted) / PU_BANDS,
        "output": PU_OUTPUT_FACTOR[sample_type],
        "samples": samples,
    }
    return max(PU_MIN_REQUEST, float(np.prod(list(factors.values()))))


def metered_catalog_units(bbox_wgs84: list[float], start: dt.datetime, end: dt.datetime) -> float:
    """Processing units of a Catalog API request: the bbox's area on the ellipsoid, the period in months (rounded
    up: the whole months from `start` that reach `end`)."""
    west, south, east, north = bbox_wgs84
    area_m2, _ = Geod(ellps="WGS84").polygon_area_perimeter([west, east, east, west], [south, south, north, north])
    months, reached = 1, start
    while (reached := _add_month(reached)) < end:
        months += 1
    least, most = CATALOG_REQUEST_PU
    return min(most, max(least, max(CATALOG_MIN_AREA_FACTOR, abs(area_m2) / 1e6 / CATALOG_PU_KM2) * months))


def _add_month(when: dt.datetime) -> dt.datetime:
    year, month = when.year + when.month // 12, when.month % 12 + 1
    return when.replace(year=year, month=month, day=min(when.day, calendar.monthrange(year, month)[1]))


def _error(status: int, message: str, code: str = "COMMON_BAD_PAYLOAD") -> bytes:
    return json.dumps({"error": {"status": status, "reason": message, "message": message, "code": code}}).encode()


def _handler(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output quiet
            pass

        def _reply(self, status: int, body: bytes, content_type: str = "application/json", headers=None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _token(self, body: bytes) -> None:
            form = dict(urllib.parse.parse_qsl(body.decode()))
            basic = self.headers.get("Authorization", "")
            if basic.startswith("Basic "):
                form.setdefault("client_id", "")
                form["client_id"], _, form["client_secret"] = base64.b64decode(basic[6:]).decode().partition(":")
            if form.get("grant_type") != "client_credentials":
                error = {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}
                return self._reply(400, json.dumps(error).encode())
            if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
                error = {"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"}
                return self._reply(401, json.dumps(error).encode())
            token = _fake_jwt()
            with standin.lock:
                standin.tokens.add(token)
            reply = {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
            return self._reply(200, json.dumps(reply).encode())

        def do_POST(self) -> None:
            endpoint = ENDPOINTS.get(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if endpoint is None:
                return self._reply(404, _error(404, "not found"))
            status = standin.take_failure(endpoint)
            if status is not None:
                # Sentinel Hub's Retry-After is in milliseconds.
                retry_after = {"Retry-After": str(standin.retry_after_ms)}
                return self._reply(status, _error(status, "stand-in failure"), headers=retry_after)
            if endpoint == "process" and standin.counts["process"] in standin.expire_tokens_at:
                with standin.lock:
                    standin.tokens.clear()
            if endpoint == "token":
                return self._token(body)
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in standin.tokens:
                return self._reply(401, _error(401, "Token is not valid", "COMMON_UNAUTHORIZED"))
            try:
                payload = json.loads(body)
                with standin.lock:
                    (standin.catalog_payloads if endpoint == "catalog" else standin.process_payloads).append(payload)
                if endpoint == "catalog":
                    return self._reply(200, json.dumps(_catalog(standin, payload)).encode())
                tiff, units = _process(standin, payload)
            except (BadRequest, ValueError, KeyError, TypeError, AttributeError) as err:
                return self._reply(400, _error(400, str(err)))
            with standin.lock:
                if standin.quota_pu is not None and standin.processing_units + units > standin.quota_pu + 1e-9:
                    message = "You have exceeded your processing units quota"
                    return self._reply(403, _error(403, message, "ACCESS_INSUFFICIENT_PROCESSING_UNITS"))
                standin.processing_units += units
            return self._reply(200, tiff, "image/tiff")

    return Handler


@contextmanager
def serve(scenes: list[Scene], quota_pu: float | None = None) -> Iterator[StandIn]:
    """Run a stand-in on a random port for the duration of the block."""
    standin = StandIn(scenes=sorted(scenes, key=lambda s: s.datetime), quota_pu=quota_pu)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(standin))
    standin.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


__all__ = [
    "CATALOG_PATH",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "PROCESS_PATH",
    "TOKEN_PATH",
    "Scene",
    "StandIn",
    "metered_catalog_units",
    "metered_units",
    "serve",
    "served_value",
]
