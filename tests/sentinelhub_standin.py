"""A stand-in Sentinel Hub service on 127.0.0.1 for tests: OAuth token, Catalog search and Process API.

It serves what sentinelhub-py's own client expects (the same JSON and TIFF shapes as the real service),
with pixel values that are deterministic functions of date, band and position (`served_value`),
counts every request, and can be told to fail the next requests of an endpoint (`fail`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds

TOKEN_PATH = "/oauth/token"
CATALOG_PATH = "/api/v1/catalog/1.0.0/search"
PROCESS_PATH = "/api/v1/process"
ENDPOINTS = {TOKEN_PATH: "token", CATALOG_PATH: "catalog", PROCESS_PATH: "process"}


@dataclass(frozen=True)
class Scene:
    """One catalog item: sensing time (UTC), cloud cover in percent, and whether its swath covers only the top half."""

    datetime: dt.datetime
    cloud_cover: float
    top_half_only: bool = False


def served_value(when: dt.datetime, band: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The digital number served for band `band` (0-based) of the scene sensed at `when`."""
    return (1000 + 300 * band + when.timetuple().tm_yday + 7 * rows + 3 * cols).astype(np.uint16)


@dataclass
class StandIn:
    scenes: list[Scene]
    page_size: int = 2
    counts: Counter = field(default_factory=Counter)
    process_payloads: list[dict] = field(default_factory=list)
    catalog_payloads: list[dict] = field(default_factory=list)
    failures: dict[str, list[int]] = field(default_factory=dict)
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    def fail(self, endpoint: str, *statuses: int) -> None:
        """Answer the next requests to `endpoint` ("catalog", "process") with these HTTP statuses."""
        with self.lock:
            self.failures.setdefault(endpoint, []).extend(statuses)

    def take_failure(self, endpoint: str) -> int | None:
        with self.lock:
            self.counts[endpoint] += 1
            pending = self.failures.get(endpoint)
            return pending.pop(0) if pending else None


def _fake_jwt() -> str:
    part = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none'})}.{part({'azp': 'standin-client', 'sub': 'standin'})}.signature"


def _parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC)


def _stac_time(when: dt.datetime) -> str:
    """As the real catalog writes it: milliseconds only when there are some."""
    return when.isoformat(timespec="milliseconds" if when.microsecond else "seconds").replace("+00:00", "Z")


def _catalog(standin: StandIn, payload: dict) -> dict:
    start, end = (_parse_time(v) for v in payload["datetime"].split("/"))
    limit = re.search(r"eo:cloud_cover\s*(<=|<)\s*([\d.]+)", payload.get("filter") or "")

    def keep(scene: Scene) -> bool:
        if not start <= scene.datetime <= end:
            return False
        if limit is None:
            return True
        return scene.cloud_cover <= float(limit[2]) if limit[1] == "<=" else scene.cloud_cover < float(limit[2])

    found = [s for s in standin.scenes if keep(s)]
    offset = int(payload.get("next") or 0)
    page = found[offset : offset + standin.page_size]
    following = offset + standin.page_size
    features = [
        {
            "type": "Feature",
            "id": f"S2A_MSIL1C_{s.datetime:%Y%m%dT%H%M%S}",
            "properties": {"datetime": _stac_time(s.datetime), "eo:cloud_cover": s.cloud_cover},
        }
        for s in page
    ]
    context = {"limit": standin.page_size, "returned": len(page)}
    if following < len(found):
        context["next"] = following
    return {"type": "FeatureCollection", "features": features, "context": context}


def _process(standin: StandIn, payload: dict) -> bytes:
    bounds = payload["input"]["bounds"]
    epsg = int(re.search(r"(\d+)$", bounds["properties"]["crs"])[1])
    width, height = payload["output"]["width"], payload["output"]["height"]
    time_range = payload["input"]["data"][0]["dataFilter"]["timeRange"]
    start, end = _parse_time(time_range["from"]), _parse_time(time_range["to"])
    evalscript = payload["evalscript"]
    n_bands = int(re.search(r"bands:\s*(\d+)", evalscript.split("output", 1)[1])[1])
    inside = [s for s in standin.scenes if start <= s.datetime <= end]
    rows, cols = np.mgrid[0:height, 0:width]
    data = np.zeros((n_bands, height, width), dtype=np.uint16)
    if inside:
        scene = max(inside, key=lambda s: s.datetime)  # mosaickingOrder mostRecent
        covered = rows < height // 2 if scene.top_half_only else np.ones((height, width), dtype=bool)
        for band in range(n_bands - 1):
            data[band] = np.where(covered, served_value(scene.datetime, band, rows, cols), 0)
        data[n_bands - 1] = covered  # dataMask, the last output band
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": n_bands,
        "dtype": "uint16",
        "interleave": "pixel",
        "crs": f"EPSG:{epsg}",
        "transform": from_bounds(*bounds["bbox"], width, height),
    }
    with MemoryFile() as memfile:
        with memfile.open(**profile) as dst:
            dst.write(data)
        return memfile.read()


def _handler(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output quiet
            pass

        def _reply(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            endpoint = ENDPOINTS.get(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if endpoint is None:
                return self._reply(404, b'{"error": "not found"}', "application/json")
            status = standin.take_failure(endpoint)
            if status is not None:
                # Retry-After is in milliseconds at Sentinel Hub.
                return self._reply(
                    status, b'{"error": {"message": "stand-in failure"}}', "application/json", {"Retry-After": "10"}
                )
            if endpoint == "token":
                token = {"access_token": _fake_jwt(), "token_type": "Bearer", "expires_in": 3600}
                return self._reply(200, json.dumps(token).encode(), "application/json")
            if not self.headers.get("Authorization", "").startswith("Bearer "):
                return self._reply(401, b'{"error": {"message": "no token"}}', "application/json")
            payload = json.loads(body)
            with standin.lock:
                (standin.catalog_payloads if endpoint == "catalog" else standin.process_payloads).append(payload)
            if endpoint == "catalog":
                return self._reply(200, json.dumps(_catalog(standin, payload)).encode(), "application/json")
            return self._reply(200, _process(standin, payload), "image/tiff")

    return Handler


@contextmanager
def serve(scenes: list[Scene], page_size: int = 2) -> Iterator[StandIn]:
    """Run a stand-in on a random port for the duration of the block."""
    standin = StandIn(scenes=sorted(scenes, key=lambda s: s.datetime), page_size=page_size)
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


__all__ = ["CATALOG_PATH", "PROCESS_PATH", "TOKEN_PATH", "Scene", "StandIn", "serve", "served_value"]
