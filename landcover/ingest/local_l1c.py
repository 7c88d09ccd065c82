"""Sentinel-2 L1C products on disk (SAFE folders or loose band files) as raw tile stacks.

Band files are found anywhere under a root folder by their name, ``T<utm tile>_<YYYYMMDDTHHMMSS>_B<band>``
with ``.jp2`` or ``.tif`` (L2A's ``_10m``/``_20m``/``_60m`` suffixes are accepted; the finest copy of a
band wins). Each band is resampled bilinearly onto the 10 m tile grid with GDAL's warper, which
reads only the window it needs and reprojects products of another UTM zone. DN 0 is L1C's no-data
value, so partial granules leave no data where their swath ends; so is NaN or inf in a float band file.
Bands of different data types (uint16 JPEG 2000 beside a float GeoTIFF) are all read as float DN.

All granules sensed on the same UTC day become one frame (the earliest sensing time), mosaicked
in time then path order, first valid pixel wins. A granule that lacks a requested band is an error
(naming granule, date and band) rather than a silently thinner frame: a missing band file usually
means an incomplete download. A frame with no data on the tile (the granules' swath misses it) is dropped;
one where a band decoded to all no data while other bands hold data is dropped with a WARNING naming the band.
The stack's ``attrs["dropped_frames"]`` counts the frames dropped per reason (JSON), for the validation report.

Every band file is read through `landcover.ingest.checked`: a GDAL decoding error (a truncated JPEG 2000 prints
``Stream too short`` and decodes to no data) raises naming tile, file and GDAL's message, never drops a date.
Damage that decodes cleanly (flipped bytes, a swapped file) is caught where the product lists checksums: each
band file named in a SAFE product's ``manifest.safe`` is checked against its MD5 or SHA3-256 before it is read.

Processing baseline 04.00 (January 2022) added a radiometric offset: reflectance = (DN + offset) /
quantification. Offsets (``RADIO_ADD_OFFSET``, or L2A's ``BOA_ADD_OFFSET``) and the quantification
value are read per band from the nearest ``MTD_MSIL1C.xml``/``MTD_MSIL2A.xml`` in the band file's
folder or above it (within the root); without one, no offset is applied. The stack stores
reflectance x 10000 without offset, clipped at 0, like older products.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import xarray as xr
from rasterio.warp import transform_bounds

from landcover.ingest import NO_DATA_ON_TILE, IngestError
from landcover.ingest.checked import open_raster, verify_checksum, warp_band
from landcover.stack import L1C_BANDS, REFLECTANCE_SCALE, TileGrid, new_stack

__all__ = ["INDEX_COLUMNS", "METADATA_FILES", "index_products", "read_l1c_tile"]

LOGGER = logging.getLogger(__name__)

METADATA_FILES: tuple[str, ...] = ("MTD_MSIL1C.xml", "MTD_MSIL2A.xml")
MANIFEST = "manifest.safe"
INDEX_COLUMNS: tuple[str, ...] = ("path", "utm_tile", "datetime", "band", "offset", "quantification", "checksum")
L1C_NODATA = 0

_BAND_FILE = re.compile(
    r"^T(?P<tile>\d{2}[A-Z]{3})_(?P<time>\d{8}T\d{6})_(?P<band>B(?:0[1-9]|1[0-2]|8A))(?:_(?P<res>\d+)m)?\.(?:jp2|tiff?)$",
    re.IGNORECASE,
)
_OFFSET_TAGS = ("RADIO_ADD_OFFSET", "BOA_ADD_OFFSET")
_QUANTIFICATION_TAGS = ("QUANTIFICATION_VALUE", "BOA_QUANTIFICATION_VALUE")


def index_products(root: str | os.PathLike) -> pd.DataFrame:
    """Every band file under `root`, one row each (`INDEX_COLUMNS`), sorted by time, tile and band."""
    root = Path(root)
    if not root.is_dir():
        raise IngestError(f"L1C folder {root}: does not exist")
    rows = []
    metadata: dict[Path, tuple[dict[str, float], float]] = {}
    manifests: dict[Path, dict[str, tuple[str, str]]] = {}
    for folder, _, files in os.walk(root):
        for name in files:
            match = _BAND_FILE.match(name)
            if match is None:
                continue
            band = match["band"].upper()
            offsets, quantification = _radiometry(Path(folder), root, metadata)
            rows.append(
                {
                    "path": str(Path(folder) / name),
                    "utm_tile": match["tile"].upper(),
                    "datetime": pd.Timestamp(match["time"]),
                    "band": band,
                    "offset": offsets.get(band, 0.0),
                    "quantification": quantification,
                    "resolution": int(match["res"]) if match["res"] else 0,
                    "checksum": _checksums(Path(folder), root, manifests).get(os.path.realpath(Path(folder) / name)),
                }
            )
    if not rows:
        raise IngestError(f"L1C folder {root}: no band files named T<tile>_<YYYYMMDDTHHMMSS>_B<band>.jp2/.tif")
    index = pd.DataFrame(rows).sort_values(["utm_tile", "datetime", "band", "resolution", "path"], kind="stable")
    # L2A products hold most bands at several resolutions: keep the finest (native) copy.
    finest = index.groupby(["utm_tile", "datetime", "band"], sort=False)["resolution"].transform("min")
    index = index[index["resolution"] == finest]
    duplicates = index[index.duplicated(["utm_tile", "datetime", "band"], keep=False)]
    if not duplicates.empty:
        raise IngestError(
            f"L1C folder {root}: the same granule band appears in several files (e.g. two processing "
            f"baselines of one product); keep one of: {', '.join(duplicates['path'].head(4))}"
        )
    index = index.sort_values(["datetime", "utm_tile", "band"], kind="stable").reset_index(drop=True)
    return index[list(INDEX_COLUMNS)]


def read_l1c_tile(
    source: str | os.PathLike | pd.DataFrame,
    grid: TileGrid,
    bands: Sequence[str] = L1C_BANDS,
    time_range: tuple | None = None,
) -> xr.Dataset:
    """A raw tile stack on `grid` from a product folder (or its `index_products` index).

    The index's ``checksum`` column (optional) holds (algorithm, digest) pairs, or None, to verify before reading.

    `time_range` is (start, end), both days included, or None for every date found."""
    index = source if isinstance(source, pd.DataFrame) else index_products(source)
    where = "the index" if isinstance(source, pd.DataFrame) else str(source)
    missing = [c for c in INDEX_COLUMNS if c not in index.columns and c != "checksum"]
    if missing:
        raise IngestError(f"tile {grid.tile_id}: the product index lacks column(s) {missing} (see index_products)")
    unknown = [b for b in bands if b not in L1C_BANDS]
    if unknown or not bands:
        raise IngestError(f"tile {grid.tile_id}: unknown band(s) {unknown} (expected some of {', '.join(L1C_BANDS)})")
    if time_range is not None:
        start = pd.Timestamp(str(time_range[0])).normalize()
        end = pd.Timestamp(str(time_range[1])).normalize() + pd.Timedelta(days=1)
        index = index[(index["datetime"] >= start) & (index["datetime"] < end)]

    granules = [
        (key, files)
        for key, files in index.groupby(["datetime", "utm_tile"], sort=True)
        if _overlaps(files["path"].iloc[0], grid)
    ]
    if not granules:
        raise IngestError(
            f"tile {grid.tile_id}: no L1C granule in {where} covers the tile {_describe_range(time_range)}"
        )

    days = _by_day(granules)
    # Filled in place, kept frames first, so that the year's stack exists once in memory.
    bands_out = np.zeros((len(days), grid.height, grid.width, len(bands)), dtype=np.uint16)
    is_data_out = np.zeros((len(days), grid.height, grid.width), dtype=bool)
    times = []
    dropped: dict[str, int] = {}
    for day, day_granules in days:
        stack = np.full((grid.height, grid.width, len(bands)), np.nan, dtype=np.float32)
        for (when, utm_tile), files in day_granules:
            by_band = files.set_index("band")
            for k, band in enumerate(bands):
                if band not in by_band.index:
                    raise IngestError(
                        f"tile {grid.tile_id}: granule T{utm_tile} sensed {when:%Y-%m-%dT%H:%M:%S} has no band {band} "
                        f"(found {', '.join(sorted(by_band.index))}; in {Path(files['path'].iloc[0]).parent})"
                    )
                row = by_band.loc[band]
                checksum = row.get("checksum")
                if isinstance(checksum, tuple):
                    verify_checksum(row["path"], *checksum, grid.tile_id)
                reflectance = (_warp(row["path"], grid) + row["offset"]) * (REFLECTANCE_SCALE / row["quantification"])
                empty = np.isnan(stack[..., k])
                stack[..., k][empty] = reflectance[empty]
        is_data = ~np.isnan(stack).any(axis=-1)
        if not is_data.any():
            reason = _drop_reason(stack, bands)
            dropped[reason] = dropped.get(reason, 0) + 1
            level = logging.INFO if reason == NO_DATA_ON_TILE else logging.WARNING
            LOGGER.log(level, "tile %s: %s dropped: %s", grid.tile_id, day.date(), reason)
            continue
        stack[~is_data] = 0.0
        bands_out[len(times)] = np.clip(np.rint(stack), 0, np.iinfo(np.uint16).max)
        is_data_out[len(times)] = is_data
        times.append(min(when for (when, _), _ in day_granules))
    if not times:
        raise IngestError(f"tile {grid.tile_id}: every L1C granule in {where} is no data over the tile")
    LOGGER.info("tile %s: %d frames from %d granules in %s", grid.tile_id, len(times), len(granules), where)
    n = len(times)
    ds = new_stack(bands_out[:n], is_data_out[:n], times, list(bands), grid)
    ds.attrs["dropped_frames"] = json.dumps(dropped)
    return ds


def _drop_reason(stack: np.ndarray, bands: Sequence[str]) -> str:
    """Why a frame without a valid pixel is dropped: the swath misses the tile, or some bands decoded to no data."""
    empty = [band for k, band in enumerate(bands) if np.isnan(stack[..., k]).all()]
    if len(empty) == len(bands):
        return NO_DATA_ON_TILE
    if empty:
        return f"band(s) {', '.join(empty)} all no data while other bands hold data"
    return "no pixel holds data in every band"


def _checksums(folder: Path, root: Path, cache: dict) -> dict[str, tuple[str, str]]:
    """{real path: (algorithm, digest)} of the band files the nearest SAFE manifest above `folder` lists."""
    if folder not in cache:
        if (folder / MANIFEST).is_file():
            cache[folder] = _read_manifest(folder / MANIFEST)
        elif folder == root or folder.parent == folder:
            cache[folder] = {}
        else:
            cache[folder] = _checksums(folder.parent, root, cache)
    return cache[folder]


def _read_manifest(file: Path) -> dict[str, tuple[str, str]]:
    try:
        tree = ElementTree.parse(file)
    except (OSError, ElementTree.ParseError) as err:
        raise IngestError(f"{file}: cannot be read as a SAFE manifest ({err})") from err
    checksums = {}
    for stream in tree.iter():
        if stream.tag.rsplit("}", 1)[-1] != "byteStream":
            continue
        children = {child.tag.rsplit("}", 1)[-1]: child for child in stream}
        location, checksum = children.get("fileLocation"), children.get("checksum")
        if location is None or checksum is None or not (checksum.text or "").strip():
            continue
        path = os.path.realpath(file.parent / location.attrib.get("href", ""))
        checksums[path] = (checksum.attrib.get("checksumName", "MD5"), checksum.text.strip())
    return checksums


def _radiometry(folder: Path, root: Path, cache: dict) -> tuple[dict[str, float], float]:
    """Per-band offsets and the quantification value of the nearest product metadata above `folder`."""
    if folder not in cache:
        file = next((folder / name for name in METADATA_FILES if (folder / name).is_file()), None)
        if file is not None:
            cache[folder] = _read_metadata(file)
        elif folder == root or folder.parent == folder:
            cache[folder] = ({}, REFLECTANCE_SCALE)
        else:
            cache[folder] = _radiometry(folder.parent, root, cache)
    return cache[folder]


def _read_metadata(file: Path) -> tuple[dict[str, float], float]:
    try:
        tree = ElementTree.parse(file)
    except (OSError, ElementTree.ParseError) as err:
        raise IngestError(f"{file}: cannot be read as product metadata ({err})") from err
    offsets: dict[str, float] = {}
    quantification = REFLECTANCE_SCALE
    for element in tree.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        try:
            if tag in _OFFSET_TAGS:
                band_id = int(element.attrib["band_id"])  # 0..12 in L1C_BANDS order (B8A is 8)
                offsets[L1C_BANDS[band_id]] = float(element.text)
            elif tag in _QUANTIFICATION_TAGS:
                quantification = float(element.text)
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise IngestError(f"{file}: malformed {tag} element ({err!r})") from err
    if not quantification > 0:
        raise IngestError(f"{file}: quantification value {quantification} is not positive")
    return offsets, quantification


def _overlaps(path: str, grid: TileGrid) -> bool:
    """Whether a granule's extent (from one of its band files) overlaps the tile."""
    with open_raster(path, grid.tile_id) as src:
        left, bottom, right, top = transform_bounds(src.crs, grid.crs, *src.bounds, densify_pts=21)
    minx, miny, maxx, maxy = grid.bounds
    return left < maxx and right > minx and bottom < maxy and top > miny


def _by_day(granules: list) -> list:
    days: dict[pd.Timestamp, list] = {}
    for (when, utm_tile), files in granules:
        days.setdefault(when.normalize(), []).append(((when, utm_tile), files))
    return sorted(days.items(), key=lambda item: item[0])


def _warp(path: str, grid: TileGrid) -> np.ndarray:
    """One band file on the tile grid as float DN, NaN where it has no data (DN 0, or NaN/inf in a float file)."""
    with open_raster(path, grid.tile_id) as src:
        return warp_band(src, grid, nodata=L1C_NODATA)


def _describe_range(time_range: tuple | None) -> str:
    return "at any date" if time_range is None else f"between {time_range[0]} and {time_range[1]}"
