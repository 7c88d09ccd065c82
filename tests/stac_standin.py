"""A STAC API stand-in on 127.0.0.1: a static catalogue of Sentinel-2 L2A COGs made from the synthetic area,
served with HTTP range requests (Python's http.server has none) and a minimal item search (POST /search:
collections, bbox, datetime, limit, paged with a `next` link), as Earth Search v1 and Planetary Computer answer.
Faults on demand: a file answered with HTTP statuses before its data (`faults`), and signed URLs whose tokens expire
(`token_uses`, tokens from a SAS token API like Planetary Computer's).

Items vary as the real catalogues do: processing baseline 05.09 with the offset in the asset's ``raster:bands``
(Earth Search v1, assets named by common name), 04.00 without ``raster:bands`` (Planetary Computer, assets named by
band), and 02.14 without offset. DN = reflectance x 10000 (+ 1000 from baseline 04.00). The SCL (20 m) says cloud
high probability (9) where the synthetic truth has cloud, shadow (3) where it has shadow, no data (0) outside the
swath, vegetation (4) elsewhere; a cloud probability asset ``CLD`` says 100 % where SCL says 9.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds
from shapely.geometry import box, mapping, shape

from landcover.ingest.stac import COMMON_NAMES, L2A_BANDS
from landcover.stack import L1C_BANDS

COLLECTION = "sentinel-2-l2a"
RADIOMETRY = ("05.09", "04.00", "02.14")  # by frame, in turn


def mosaic(area: dict, name: str, frame: int) -> tuple[np.ndarray, Affine, object]:
    """One variable of frame `frame` over the whole tiny area (the tiles side by side), its transform and CRS."""
    stacks = [stack if name in stack else truth for stack, truth in area.values()]
    transforms = [s.rio.transform() for s in stacks]
    left, top = min(t.c for t in transforms), max(t.f for t in transforms)
    res = transforms[0].a
    height = round((top - min(t.f + t.e * s.sizes["y"] for t, s in zip(transforms, stacks))) / res)
    width = round((max(t.c + t.a * s.sizes["x"] for t, s in zip(transforms, stacks)) - left) / res)
    sample = stacks[0][name].isel(time=frame)
    out = np.zeros((height, width, *sample.shape[2:]), dtype=sample.dtype)
    for t, s in zip(transforms, stacks):
        row, col = round((top - t.f) / res), round((t.c - left) / res)
        out[row : row + s.sizes["y"], col : col + s.sizes["x"]] = s[name].isel(time=frame).values
    return out, Affine(res, 0, left, 0, -res, top), stacks[0].rio.crs


def scene_classification(area: dict, frame: int) -> np.ndarray:
    is_data, _, _ = mosaic(area, "is_data", frame)
    cloud, _, _ = mosaic(area, "cloud", frame)
    shadow, _, _ = mosaic(area, "shadow", frame)
    scl = np.full(is_data.shape, 4, dtype=np.uint8)
    scl[shadow] = 3
    scl[cloud] = 9
    scl[~is_data] = 0
    return scl


def write_cog(path: Path, data: np.ndarray, transform: Affine, crs) -> None:
    height, width = data.shape
    with rasterio.open(
        path, "w", driver="COG", width=width, height=height, count=1, dtype=data.dtype, crs=crs,
        transform=transform, nodata=0, compress="deflate", blocksize=128, overviews="NONE",
    ) as dst:  # fmt: skip
        dst.write(data, 1)


def write_catalogue(folder: Path, base_url: str, area: dict, frames: list[int]) -> list[dict]:
    """COGs and item JSONs of `frames` under `folder`, the processing baselines of `RADIOMETRY` in turn; the items."""
    return [
        write_item(folder, base_url, area, frame, RADIOMETRY[n % len(RADIOMETRY)]) for n, frame in enumerate(frames)
    ]


def write_item(
    folder: Path,
    base_url: str,
    area: dict,
    frame: int,
    baseline: str,
    item_id: str | None = None,
    keep: np.ndarray | None = None,
    offset_in_dn: bool | None = None,
    raster: tuple[str, ...] | None = None,
) -> dict:
    """One item of frame `frame` (its COGs under `folder`) as a catalogue of `baseline` labels it.

    `keep`: the area's pixels the item has data on (default all in the swath); `offset_in_dn`: whether the DN carry
    the +1000 of baseline 04.00 (default: as the baseline says; False with baseline 04.00 or later is the mislabelled
    item of Earth Search issues 66 and 71); `raster`: the keys of the bands' ``raster:bands`` among scale and offset
    (default both for 05.09, Earth Search v1, none otherwise). Assets are named by common name for 05.09."""
    when = pd.Timestamp(next(iter(area.values()))[0]["time"].values[frame])
    item_id = item_id or f"S2A_33TVM_{when:%Y%m%d}_0_L2A"
    offset_in_dn = baseline >= "04.00" if offset_in_dn is None else offset_in_dn
    raster = ("scale", "offset") if raster is None and baseline == "05.09" else raster or ()
    (folder / item_id).mkdir(parents=True, exist_ok=True)
    bands, transform, crs = mosaic(area, "bands", frame)
    is_data, _, _ = mosaic(area, "is_data", frame)
    is_data = is_data & (True if keep is None else keep)
    scl = scene_classification(area, frame)
    scl[~is_data] = 0
    assets = {}
    for band in (*L2A_BANDS, "SCL", "CLD"):
        if band in ("SCL", "CLD"):  # 20 m, as L2A's SCL and cloud probability (percent)
            data = scl if band == "SCL" else np.where(scl == 9, 100, 0).astype(np.uint8)
            data, cog_transform = data[::2, ::2], transform @ Affine.scale(2)
        else:
            dn = bands[..., L1C_BANDS.index(band)].astype(np.int32) + (1000 if offset_in_dn else 0)
            data, cog_transform = np.where(is_data, dn, 0).astype(np.uint16), transform
        write_cog(folder / item_id / f"{band}.tif", data, cog_transform, crs)
        key = COMMON_NAMES.get(band, band) if baseline == "05.09" else band
        assets[key] = {"href": f"{base_url}/{item_id}/{band}.tif", "type": "image/tiff; profile=cloud-optimized"}
        if baseline == "05.09" or raster:
            description = {"nodata": 0, "data_type": str(data.dtype)}
            if band not in ("SCL", "CLD"):
                description.update(
                    {key: value for key, value in (("scale", 0.0001), ("offset", -0.1)) if key in raster}
                )
            assets[key]["raster:bands"] = [description]
    height, width = bands.shape[:2]
    bounds = transform_bounds(crs, "EPSG:4326", *rasterio.transform.array_bounds(height, width, transform))
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [],
        "id": item_id,
        "collection": COLLECTION,
        "geometry": mapping(box(*bounds)),
        "bbox": list(bounds),
        "properties": {
            "datetime": f"{when:%Y-%m-%dT%H:%M:%S}Z",
            "eo:cloud_cover": float((scl == 9).mean() * 100),
            "s2:processing_baseline": baseline,
        },
        "links": [],
        "assets": assets,
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:
        pass

    def _send_json(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_HEAD(self) -> None:
        self._serve_file(head=True)

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        if path == "":
            self._send_json(self.server.landing())
        elif path.startswith("/sas/"):
            self._send_json(self.server.new_token())
        elif path == f"/collections/{COLLECTION}":
            self._send_json({"type": "Collection", "id": COLLECTION, "stac_version": "1.0.0", "links": []})
        else:
            self._serve_file(head=False)

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/search":
            self.send_error(404)
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self._send_json(self.server.search(body))

    def _serve_file(self, head: bool) -> None:
        path, _, query = self.path.partition("?")
        file = self.server.folder / path.lstrip("/")
        status = self.server.fault(path) or self.server.check_token(parse_qs(query).get("sig", [""])[0])
        if status:
            with self.server.lock:
                self.server.refused.append((path, status))
            self.send_error(status)
            return
        if not file.is_file():
            self.send_error(404)
            return
        size = file.stat().st_size
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        start, end = (int(match[1]), min(int(match[2] or size - 1), size - 1)) if match else (0, size - 1)
        if start >= size:
            self.send_error(416)
            return
        self.send_response(206 if match else 200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if match:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if not head:
            with open(file, "rb") as handle:
                handle.seek(start)
                self.wfile.write(handle.read(end - start + 1))
            with self.server.lock:
                self.server.requests.append((self.path, bool(match), end - start + 1))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, folder: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.folder = folder
        self.items: list[dict] = []
        self.requests: list[tuple[str, bool, int]] = []  # (path, was a range request, bytes) of file GETs
        self.faults: dict[str, list[int]] = {}  # file path -> the HTTP statuses served instead of it, in turn
        self.refused: list[tuple[str, int]] = []  # (path, status) of the file requests answered with an error
        # Signed URLs, as Planetary Computer's: with `token_uses` set, a file request needs `sig` of a token from
        # GET /sas/<account>/<container>, which expires after `token_uses` file requests (403 afterwards).
        self.token_uses: int | None = None
        self.tokens: dict[str, int] = {}  # sig -> file requests left
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def new_token(self) -> dict:
        """A SAS token as Planetary Computer's token API answers, stated to expire in an hour."""
        with self.lock:
            sig = f"token{len(self.tokens)}"
            self.tokens[sig] = self.token_uses or 0
        expiry = pd.Timestamp.now(tz="UTC") + pd.Timedelta(hours=1)
        return {"msft:expiry": f"{expiry:%Y-%m-%dT%H:%M:%SZ}", "token": f"se={expiry:%Y-%m-%d}&sp=rl&sig={sig}"}

    def fault(self, path: str) -> int | None:
        with self.lock:
            statuses = self.faults.get(path)
            return statuses.pop(0) if statuses else None

    def check_token(self, sig: str) -> int | None:
        """403 for a file request whose token is unknown or used up, when tokens are required."""
        if self.token_uses is None:
            return None
        with self.lock:
            if self.tokens.get(sig, 0) <= 0:
                return 403
            self.tokens[sig] -= 1
        return None

    def landing(self) -> dict:
        return {
            "type": "Catalog",
            "id": "stac-standin",
            "stac_version": "1.0.0",
            "description": "Sentinel-2 L2A COGs of the synthetic area",
            "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"],
            "links": [
                {"rel": "self", "href": f"{self.url}/", "type": "application/json"},
                {"rel": "root", "href": f"{self.url}/", "type": "application/json"},
                {"rel": "search", "href": f"{self.url}/search", "type": "application/geo+json", "method": "POST"},
            ],
        }

    def search(self, body: dict) -> dict:
        start, end = (_naive(t) for t in body["datetime"].split("/"))
        end = end + pd.Timedelta(days=1) if end == end.normalize() else end  # a bare end day is included
        area = box(*body["bbox"])
        matches = [
            item
            for item in self.items
            if item["collection"] in body.get("collections", [item["collection"]])
            and shape(item["geometry"]).intersects(area)
            and start <= _naive(item["properties"]["datetime"]) < end
        ]
        offset, limit = int(body.get("token", 0)), int(body.get("limit", 10))
        links = []
        if offset + limit < len(matches):
            next_body = {**body, "token": offset + limit}
            links.append({"rel": "next", "href": f"{self.url}/search", "method": "POST", "body": next_body})
        return {"type": "FeatureCollection", "features": matches[offset : offset + limit], "links": links}


def _naive(text: str) -> pd.Timestamp:
    when = pd.Timestamp(text)
    return when.tz_convert(None) if when.tzinfo else when


@contextmanager
def stac_standin(folder: Path) -> Iterator[_Server]:
    server = _Server(folder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
