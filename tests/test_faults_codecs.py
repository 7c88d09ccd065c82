"""Damaged band files over real codecs: an error naming the file, or exactly the undamaged data, never other data.

Band files are written by GDAL (JPEG 2000 through its OpenJPEG driver, lossless; tiled DEFLATE GeoTIFF), then
damaged: truncated at several offsets, bytes flipped inside the codestream, emptied, or swapped for another band's
file. Products that list checksums (a SAFE ``manifest.safe``) catch every kind; loose band files (no manifest)
are caught by decoding, which sees truncation and emptying but cannot see flipped bytes or a swap.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from rasterio.io import MemoryFile
from rasterio.warp import reproject

from landcover.frames import CLOUDS, SWATH, frame_counts
from landcover.grid import tile_grid
from landcover.ingest import NO_DATA_ON_TILE, IngestError
from landcover.ingest.checked import gdal_errors, open_raster, warp_band
from landcover.ingest.local_l1c import read_l1c_tile
from landcover.stack import new_stack

GRID = tile_grid("x0457_y5097", 640, 10, "EPSG:32633")
BANDS = ("B03", "B04")
WHEN = pd.Timestamp("2017-03-01T10:00:21")
CODECS = {
    "jp2": {"driver": "JP2OpenJPEG", "QUALITY": 100, "REVERSIBLE": "YES", "BLOCKXSIZE": 32, "BLOCKYSIZE": 32},
    "tif": {"driver": "GTiff", "compress": "deflate", "tiled": True, "blockxsize": 32, "blockysize": 32},
}
TRUNCATIONS = (0.02, 0.25, 0.5, 0.75, 0.98)
FLIPS = (0.3, 0.6, 0.9)


def band_data(band: str) -> np.ndarray:
    return np.random.default_rng(BANDS.index(band)).integers(1, 5000, (GRID.height, GRID.width), dtype=np.uint16)


def write_product(root, ext: str, manifest: bool) -> dict[str, str]:
    """A granule of BANDS (one date) under `root`, with a SAFE manifest listing MD5s or none; {band: path}."""
    folder = root / "S2A_MSIL1C.SAFE" / "GRANULE" / "L1C_T33TVM" / "IMG_DATA"
    folder.mkdir(parents=True)
    paths = {}
    for band in BANDS:
        path = folder / f"T33TVM_{WHEN:%Y%m%dT%H%M%S}_{band}.{ext}"
        options = {k: v for k, v in CODECS[ext].items() if k != "driver"}
        with rasterio.open(
            path, "w", driver=CODECS[ext]["driver"], width=GRID.width, height=GRID.height, count=1,
            dtype="uint16", crs=GRID.crs, transform=GRID.transform, **options,
        ) as dst:  # fmt: skip
            dst.write(band_data(band), 1)
        paths[band] = str(path)
    if manifest:
        streams = "".join(
            f'<dataObject><byteStream><fileLocation locatorType="URL" href="./{p.split(".SAFE/")[1]}"/>'
            f'<checksum checksumName="MD5">{hashlib.md5(Path(p).read_bytes()).hexdigest().upper()}</checksum>'
            "</byteStream></dataObject>"
            for p in paths.values()
        )
        (root / "S2A_MSIL1C.SAFE" / "manifest.safe").write_text(
            f'<?xml version="1.0"?><xfdu:XFDU xmlns:xfdu="urn:ccsds:schema:xfdu:1"><dataObjectSection>{streams}'
            "</dataObjectSection></xfdu:XFDU>"
        )
    return paths


def damage(paths: dict[str, str], kind: str, where: float) -> str:
    """Damage the B04 file in place; the damaged file's path."""
    path = paths["B04"]
    size = Path(path).stat().st_size
    with open(path, "r+b") as file:
        if kind == "truncated":
            file.truncate(int(size * where))
        elif kind == "flipped":
            file.seek(int(size * where))
            chunk = file.read(4)
            file.seek(int(size * where))
            file.write(bytes(b ^ 0xFF for b in chunk))
        elif kind == "empty":
            file.truncate(0)
    if kind == "swapped":
        shutil.copyfile(paths["B03"], path)
    return path


DAMAGES = [("truncated", w) for w in TRUNCATIONS] + [("flipped", w) for w in FLIPS] + [("empty", 0.0), ("swapped", 0.0)]


def read_or_error(root) -> xr.Dataset | IngestError:
    try:
        return read_l1c_tile(root, GRID, bands=BANDS)
    except IngestError as err:
        return err


@pytest.mark.parametrize("ext", sorted(CODECS))
@pytest.mark.parametrize(("kind", "where"), DAMAGES)
def test_a_damaged_band_file_of_a_product_raises_naming_it_or_reads_exactly(tmp_path, ext, kind, where):
    expected = np.stack([band_data(b) for b in BANDS], axis=-1)
    paths = write_product(tmp_path, ext, manifest=True)
    assert np.array_equal(read_l1c_tile(tmp_path, GRID, bands=BANDS)["bands"].values[0], expected)
    damaged = damage(paths, kind, where)
    outcome = read_or_error(tmp_path)
    if isinstance(outcome, IngestError):
        assert damaged in str(outcome) and GRID.tile_id in str(outcome)
    else:
        assert np.array_equal(outcome["bands"].values[0], expected), "different data without an error"


@pytest.mark.parametrize("ext", sorted(CODECS))
@pytest.mark.parametrize(("kind", "where"), [d for d in DAMAGES if d[0] in ("truncated", "empty")])
def test_a_truncated_or_empty_loose_band_file_raises_naming_file_tile_and_gdal(tmp_path, ext, kind, where):
    """Without a manifest, decoding must catch it: GDAL's error, which rasterio's warp only prints, raises."""
    damaged = damage(write_product(tmp_path, ext, manifest=False), kind, where)
    with pytest.raises(IngestError) as error:
        read_l1c_tile(tmp_path, GRID, bands=BANDS)
    assert damaged in str(error.value) and GRID.tile_id in str(error.value)
    assert "GDAL" in str(error.value) or "cannot be read" in str(error.value)


def test_gdal_message_reaches_the_error_for_a_truncated_jpeg2000(tmp_path):
    """The case of the issue: rasterio's warp returns no data after `Stream too short`; the checked read raises."""
    damaged = damage(write_product(tmp_path, "jp2", manifest=False), "truncated", 0.5)
    match = "opj_|Stream too short|segment too long|Failed to decode"
    with pytest.raises(IngestError, match=match) as error, open_raster(damaged, GRID.tile_id) as src:
        warp_band(src, GRID)
    assert damaged in str(error.value)


def test_rasterio_alone_still_returns_no_data_for_a_truncated_jpeg2000(tmp_path):
    """Why landcover.ingest.checked hooks GDAL's error handler: rasterio's reproject raises only when GDAL's warp
    returns an error code (rasterio/_warp.pyx, `checker.exc_wrap_int(err)` after ChunkAndWarpImage), and the
    OpenJPEG driver's decoding error does not make it return one. When this fails, rasterio raises by itself and
    the hook can go."""
    damaged = damage(write_product(tmp_path, "jp2", manifest=False), "truncated", 0.5)
    out = np.full((GRID.height, GRID.width), np.nan, dtype=np.float32)
    with rasterio.open(damaged) as src:
        reproject(rasterio.band(src, 1), out, src_nodata=0, dst_transform=GRID.transform, dst_crs=GRID.crs)
    assert not np.array_equal(np.nan_to_num(out), band_data("B04"))


def test_the_hook_finds_rasterios_gdal_when_pyogrio_loaded_its_own_first(tmp_path):
    """Both wheels bundle a libgdal; with pyogrio's loaded first (a GeoPackage read), the checked read still raises."""
    damaged = damage(write_product(tmp_path, "jp2", manifest=False), "truncated", 0.5)
    script = f"""
import geopandas as gpd, shapely, sys
gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs="EPSG:32633").to_file({str(tmp_path / "a.gpkg")!r})
gpd.read_file({str(tmp_path / "a.gpkg")!r}, engine="pyogrio")
from landcover.grid import tile_grid
from landcover.ingest import IngestError
from landcover.ingest.checked import open_raster, warp_band
libraries = sorted({{line.split()[-1] for line in open("/proc/self/maps") if "libgdal" in line}})
print(len(libraries), "libgdal:", libraries)
try:
    with open_raster({damaged!r}, "t") as src:
        warp_band(src, tile_grid("x0457_y5097", 640, 10, "EPSG:32633"))
except IngestError as err:
    print("raised:", err)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert run.stdout.startswith("2 libgdal:") and "raised: tile t:" in run.stdout, run.stdout + run.stderr


def test_a_damaged_response_in_memory_is_named(tmp_path):
    paths = write_product(tmp_path, "tif", manifest=False)
    content = Path(paths["B03"]).read_bytes()

    def decode(data: bytes) -> np.ndarray:  # as the Sentinel Hub source decodes its responses
        with gdal_errors("response.tiff", "t"), MemoryFile(data) as memory, memory.open() as src:
            return src.read(1)

    assert np.array_equal(decode(content), band_data("B03"))
    with pytest.raises(IngestError, match="tile t: response.tiff"):
        decode(content[: len(content) // 2])


def test_a_band_all_no_data_beside_bands_with_data_is_a_warning_and_counted(tmp_path, caplog):
    paths = write_product(tmp_path, "tif", manifest=False)
    second = tmp_path / "second"
    for band, path in paths.items():
        target = second / path.split("/")[-1].replace(f"{WHEN:%Y%m%d}", "20170311")
        target.parent.mkdir(exist_ok=True)
        with rasterio.open(path) as src:
            profile, data = src.profile, src.read()
        with rasterio.open(target, "w", **profile) as dst:
            dst.write(data * 0 if band == "B04" else data)  # B04 decodes to all no data (DN 0)
    with caplog.at_level(logging.INFO):
        ds = read_l1c_tile(tmp_path, GRID, bands=BANDS)
    assert len(ds["time"]) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("2017-03-11 dropped" in w and "B04" in w for w in warnings), warnings
    assert json.loads(ds.attrs["dropped_frames"]) == {"band(s) B04 all no data while other bands hold data": 1}


def test_frame_counts_add_the_scene_filter_reasons_to_the_source_reasons():
    shape = (4, GRID.height, GRID.width)
    is_data = np.ones(shape, bool)
    is_data[1, : GRID.height // 2] = False  # half outside the swath
    cloud = np.zeros(shape, bool)
    cloud[2, : GRID.height // 2] = True  # half cloudy
    cloud[3, :2] = True  # a little cloud: kept
    stack = new_stack(np.zeros((*shape, 1), np.uint16), is_data, pd.date_range("2017-01-01", periods=4), ["B04"], GRID)
    stack.attrs["dropped_frames"] = json.dumps({NO_DATA_ON_TILE: 3})
    clouds = xr.Dataset({"cloud_mask": (("time", "y", "x"), cloud)})
    counts = frame_counts(stack, clouds, 0.8)
    assert counts == {"tile": GRID.tile_id, "kept": 2, "dropped": {NO_DATA_ON_TILE: 3, SWATH: 1, CLOUDS: 1}}
