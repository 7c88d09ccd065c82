"""Raster reads that fail loudly: GDAL's decoding errors raise, naming the tile, the file and GDAL's message.

GDAL reports many decoding failures only to its error handler and carries on: a truncated JPEG 2000 band file
prints ``ERROR 1: Stream too short`` while rasterio's warp returns no data, and a damaged block read may return
zeros (L1C's no-data value), so a damaged download would silently drop a date. Every read of a source raster goes
through `open_raster` / `warp_band`, which install a GDAL error handler (through ctypes, on the libgdal that
rasterio loaded) for the duration of the read: any error of class CE_Failure or CE_Fatal, from the calling
thread or one of GDAL's worker threads, becomes an `IngestError`. Warnings are logged, not raised.

Decoding cannot see every damage: bytes flipped inside JPEG 2000's entropy-coded data, or a band file swapped
for another of the same size, decode without error. `verify_checksum` checks a file against the checksum its product
lists (SAFE's ``manifest.safe``) before it is decoded.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject

from landcover.ingest import IngestError
from landcover.stack import TileGrid

__all__ = ["gdal_errors", "open_raster", "verify_checksum", "warp_band"]

LOGGER = logging.getLogger(__name__)

_CE_WARNING, _CE_FAILURE = 2, 3  # GDAL's CPLErr classes; CE_Fatal is 4
_HANDLER_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int, ctypes.c_char_p)
_lock = threading.Lock()
_recorders: list[list[str]] = []
_state: dict = {}


def _libgdal() -> ctypes.CDLL:
    """The libgdal rasterio uses (a wheel bundles its own copy, so the system's may differ or be absent)."""
    try:
        lib = ctypes.CDLL(None)  # macOS, or a libgdal loaded with global symbols
        lib.CPLSetErrorHandlerEx  # noqa: B018  (raises AttributeError when absent)
        return lib
    except (AttributeError, OSError):
        pass
    try:
        with open("/proc/self/maps") as maps:
            loaded = sorted({line.split()[-1] for line in maps if "libgdal" in line.rsplit("/", 1)[-1]})
    except OSError:
        loaded = []
    # Other wheels bundle their own copy too (pyogrio's, once a GeoPackage was read or written): rasterio's first.
    loaded.sort(key=lambda path: "rasterio" not in path)
    for path in loaded or [ctypes.util.find_library("gdal")]:
        if path:
            return ctypes.CDLL(path)
    raise IngestError("cannot find the libgdal that rasterio loaded, so GDAL's decoding errors cannot be checked")


def _on_gdal_error(error_class: int, error_number: int, message: bytes | None) -> None:
    text = (message or b"").decode("utf-8", "replace").strip()
    if error_class >= _CE_FAILURE:
        with _lock:
            for recorder in _recorders:
                recorder.append(f"CPLE {error_number}: {text}")
    elif error_class == _CE_WARNING:
        LOGGER.warning("GDAL: %s", text)


_HANDLER = _HANDLER_TYPE(_on_gdal_error)  # kept alive for as long as GDAL may call it


@contextmanager
def gdal_errors(path: str | os.PathLike, tile: str) -> Iterator[None]:
    """Raise IngestError naming `tile`, `path` and GDAL's messages if GDAL reports an error inside the block.

    The handler is GDAL's process-wide one (worker threads report there), installed while any block is active, and
    pushed on the calling thread's handler stack for the block."""
    errors: list[str] = []
    with _lock:
        if not _recorders:
            lib = _state.get("lib") or _state.setdefault("lib", _libgdal())
            lib.CPLSetErrorHandlerEx.restype = ctypes.c_void_p
            lib.CPLSetErrorHandlerEx.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
            _state["previous"] = lib.CPLSetErrorHandlerEx(ctypes.cast(_HANDLER, ctypes.c_void_p), None)
            lib.CPLPushErrorHandlerEx.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        _recorders.append(errors)
    # A handler pushed on this thread (rasterio's, while a rasterio.Env is active) would take this thread's errors
    # before the process-wide one: push ours on top for the block.
    _state["lib"].CPLPushErrorHandlerEx(ctypes.cast(_HANDLER, ctypes.c_void_p), None)
    try:
        yield
    except IngestError:
        raise
    except Exception as err:  # rasterio raises several types (RasterioIOError, CPLE_*, WarpOperationError)
        cause: BaseException | None = err
        while cause is not None:  # rasterio chains GDAL's own message as the cause or context
            errors.append(f"{type(cause).__name__}: {cause}")
            cause = cause.__cause__ or cause.__context__
        raise IngestError(_message(path, tile, errors)) from err
    finally:
        _state["lib"].CPLPopErrorHandler()
        with _lock:
            _recorders.remove(errors)
            if not _recorders:
                _state["lib"].CPLSetErrorHandlerEx(_state.pop("previous"), None)
    if errors:
        raise IngestError(_message(path, tile, errors))


def _message(path, tile: str, errors: list[str]) -> str:
    unique = list(dict.fromkeys(errors))
    shown = "; ".join(unique[:4]) + (f"; and {len(unique) - 4} more" if len(unique) > 4 else "")
    return f"tile {tile}: {path}: cannot be read as a raster, damaged or incomplete? (GDAL: {shown})"


@contextmanager
def open_raster(path: str | os.PathLike, tile: str) -> Iterator[rasterio.DatasetReader]:
    """A georeferenced raster whose every read inside the block is checked (`gdal_errors`)."""
    with gdal_errors(path, tile), rasterio.open(path) as src:
        if src.crs is None or src.transform.is_identity:
            raise IngestError(f"tile {tile}: {path}: raster has no georeferencing (CRS and transform)")
        yield src


def warp_band(
    src: rasterio.DatasetReader,
    grid: TileGrid,
    band: int = 1,
    nodata: float | None = 0,
    resampling: Resampling = Resampling.bilinear,
) -> np.ndarray:
    """Band `band` of an open raster on the tile grid as float32, NaN where it has no data (also NaN/inf values).

    GDAL's warper reads only the window the tile needs (HTTP range reads for a remote COG)."""
    out = np.full((grid.height, grid.width), np.nan, dtype=np.float32)
    reproject(
        rasterio.band(src, band),
        out,
        src_nodata=nodata,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        dst_nodata=np.nan,
        resampling=resampling,
    )
    out[np.isinf(out)] = np.nan
    return out


def verify_checksum(path: str | os.PathLike, algorithm: str, expected: str, tile: str) -> None:
    """Raise IngestError naming the file when its digest differs from the product's (manifest) checksum.

    `algorithm` is a manifest's checksumName: MD5 (older SAFE products) or SHA3-256 (newer ones)."""
    name = algorithm.lower().replace("-", "_")
    if name not in hashlib.algorithms_available:
        raise IngestError(f"tile {tile}: {path}: unknown checksum algorithm {algorithm!r} in the product manifest")
    digest = hashlib.new(name)
    try:
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except OSError as err:
        raise IngestError(f"tile {tile}: {path}: cannot be read ({err})") from err
    if digest.hexdigest().lower() != expected.lower():
        raise IngestError(
            f"tile {tile}: {path}: {algorithm} {digest.hexdigest()} differs from the product manifest's "
            f"{expected.lower()} (damaged, incomplete or swapped file)"
        )
