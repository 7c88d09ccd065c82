"""The per-tile on-disk format shared by every stage.

Every per-tile file is a NetCDF-4 file (HDF5, written with h5netcdf) holding an xarray Dataset
that carries its own dates, CRS and transform:

- dims ``time`` (acquisitions, datetime64, sorted), ``y``/``x`` (pixel centres in the tile CRS,
  y descending), ``band`` (band names such as ``B01``..``B12``), ``date`` (the interpolation
  grid) and ``feature`` (feature names);
- the CRS and affine transform through rioxarray's ``spatial_ref`` coordinate;
- ``attrs["tile_id"]`` naming the tile.

Files and their variables:

- ``stack.nc`` (raw stack, from any source): ``bands`` (time, y, x, band) uint16 reflectance x 10000
  as in L1C; ``is_data`` (time, y, x) bool. ``time`` is sorted, not necessarily one per day.
  Optional, when the source has them: ``cloud_probability`` (time, y, x) float32 0..1 and
  ``cloud_mask`` (time, y, x) bool, precomputed cloud products used instead of s2cloudless;
  ``indices`` (time, y, x, index) float32 with coord ``index`` (e.g. NDVI), precomputed indices;
  ``bands`` may then have zero bands (time, y, x, 0). Sources that deliver the s2cloudless bands coarse
  (Sentinel Hub, at the cloud resolution) carry them as ``cloud_bands`` (time, cloud_y, cloud_x, cloud_band) uint16
  with the bands s2cloudless reads (`clouds.cloud_probability`) and ``cloud_is_data`` (time, cloud_y, cloud_x) bool, on blocks of
  ``attrs["cloud_pixel_blocks"]`` (y, x) tile pixels from the tile's top-left corner (the last row and column may
  reach past the tile); ``bands`` then holds the feature bands only.
- ``clouds.nc``: ``cloud_probability`` (time, y, x) float32 0..1; ``cloud_mask`` (time, y, x) bool.
- ``features.nc``: ``features`` (date, y, x, feature) float32, NaN where a pixel has no valid
  observation all year; ``valid_count`` (y, x) uint16 valid observations used per pixel;
  ``attrs["kept_dates"]``/``attrs["dropped_dates"]`` the scene filter's decision. Stored as float32: scaled int16
  (steps of 1.2e-4, values within 6e-5) moved the synthetic truth's plain-method accuracy from 0.912 to 0.836 once
  trained on, and the cause is the model, not the storage. The same values kept in float32 score 0.836 too, while
  uniform noise of +-6e-5 scores 0.912 and rounding to 1e-4 0.911. With the values before a pixel's first
  observation and after its last left missing instead of held flat, the same quantisation scores 0.907 against
  0.908. So the held edges (a snowy first scene carried back to 1 January reads as water) leave the model
  balanced on exact ties. Compact storage waits for that decision (issue 19's notes).

Variables are chunked on disk by row blocks, so that stages can stream a tile block by block, and by a few frames
(a chunk of all frames decompresses about a third slower). They are compressed with Blosc (LZ4, byte shuffle), an
HDF5 filter plugin that importing this module registers (hdf5plugin): several times faster to read and write than
gzip, 10-25 % larger. Other netCDF/HDF5 tools (ncdump, GDAL, netCDF4) read the files only with ``HDF5_PLUGIN_PATH``
set to the output of ``python -c "import hdf5plugin; print(hdf5plugin.PLUGIN_PATH)"``.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

import hdf5plugin
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from rasterio.crs import CRS

from landcover.atomic import atomic_path

L1C_BANDS: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
REFLECTANCE_SCALE = 10000.0
ROW_CHUNK = 64
TIME_CHUNK = 4
# lz4's clevel 9 compresses about as well as zstd's clevel 1 and reads faster; fletcher32 checksums each chunk, so
# a damaged chunk raises on read (as gzip's adler32 did) instead of decompressing to wrong values
COMPRESSION = {**hdf5plugin.Blosc(cname="lz4", clevel=9, shuffle=hdf5plugin.Blosc.SHUFFLE), "fletcher32": True}
_CHUNKS = {"y": ROW_CHUNK, "time": TIME_CHUNK}


class StackError(ValueError):
    """A per-tile file that is missing, corrupt or not in the expected format."""


@dataclass(frozen=True)
class TileGrid:
    """The pixel grid of one tile."""

    tile_id: str
    crs: CRS
    transform: Affine
    height: int
    width: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        left, top = self.transform @ (0, 0)
        right, bottom = self.transform @ (self.width, self.height)
        return (min(left, right), min(top, bottom), max(left, right), max(top, bottom))

    def coords(self) -> dict[str, np.ndarray]:
        """Pixel-centre coordinates, as xarray coords."""
        cols = np.arange(self.width) + 0.5
        rows = np.arange(self.height) + 0.5
        x = self.transform.c + cols * self.transform.a
        y = self.transform.f + rows * self.transform.e
        return {"y": y, "x": x}


def with_grid(ds: xr.Dataset, grid: TileGrid) -> xr.Dataset:
    """Attach coordinates, CRS, transform and tile id to a dataset with y/x dims."""
    ds = ds.assign_coords(grid.coords())  # a shallow copy: the arrays are shared, not copied
    ds.rio.write_crs(grid.crs, inplace=True)
    ds.rio.write_transform(grid.transform, inplace=True)
    ds.attrs["tile_id"] = grid.tile_id
    return ds


def grid_of(ds: xr.Dataset) -> TileGrid:
    crs = ds.rio.crs
    if crs is None:
        raise StackError(f"tile {ds.attrs.get('tile_id', '?')}: dataset has no CRS")
    return TileGrid(
        tile_id=str(ds.attrs.get("tile_id", "")),
        crs=CRS.from_user_input(crs),
        transform=ds.rio.transform(recalc=False),
        height=ds.sizes["y"],
        width=ds.sizes["x"],
    )


def new_stack(bands: np.ndarray, is_data: np.ndarray, times, band_names, grid: TileGrid) -> xr.Dataset:
    """A raw tile stack: uint16 L1C bands (time, y, x, band) and the data mask (time, y, x).

    Sources pass frames sorted by time; no stage depends on it (interpolation sorts), and frames sharing a
    timestamp stay separate frames (interpolation averages their valid observations). Sources turn NaN/inf into
    no data before this, as uint16 cannot hold them."""
    times = np.asarray(times, dtype="datetime64[ns]")
    bands = np.asarray(bands)
    if bands.dtype != np.uint16:
        raise StackError(f"tile {grid.tile_id}: bands must be uint16 reflectance x 10000, got {bands.dtype}")
    expected = (len(times), grid.height, grid.width, len(band_names))
    if bands.shape != expected:
        raise StackError(f"tile {grid.tile_id}: bands have shape {bands.shape}, expected {expected}")
    if is_data.shape != expected[:3]:
        raise StackError(f"tile {grid.tile_id}: is_data has shape {is_data.shape}, expected {expected[:3]}")
    if np.isnat(times).any():
        raise StackError(f"tile {grid.tile_id}: {int(np.isnat(times).sum())} acquisition time(s) are missing (NaT)")
    ds = xr.Dataset(
        {
            "bands": (("time", "y", "x", "band"), bands),
            "is_data": (("time", "y", "x"), np.asarray(is_data, dtype=bool)),
        },
        coords={"time": times, "band": np.asarray(band_names, dtype=str)},
    )
    return with_grid(ds, grid)


def write(ds: xr.Dataset, path: str | os.PathLike) -> None:
    """Write atomically, compressed, chunked by row blocks and a few frames."""
    encoding = {}
    for name, var in ds.data_vars.items():
        if var.size == 0:  # HDF5 cannot chunk an empty variable (e.g. an index-only source)
            continue
        chunks = tuple(min(_CHUNKS.get(dim, size), size) for dim, size in zip(var.dims, var.shape))
        encoding[name] = {**COMPRESSION, "chunksizes": chunks}
    with atomic_path(path) as tmp:
        _write_in_child(lambda: ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding), path)


# Resource limits this process shares with its writer child: when the child dies of one, so does this process,
# as it would have without the child (no cleanup; the next writer removes the temporary).
_SHARED_LIMIT_SIGNALS = (signal.SIGXFSZ, signal.SIGXCPU)


def _write_in_child(write, path) -> None:
    """Run `write` in a forked child and raise OSError naming `path` if it fails, crash included.

    HDF5 often crashes (SIGSEGV) closing a file whose write failed (a full disk, a quota, a file size limit),
    which would kill the job without a word. The child shares the data (copy-on-write), so this costs no
    memory; its error, or the signal it died of with the folder's free space, becomes this process's OSError."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        code = 0
        try:
            write()
        except BaseException as err:  # noqa: BLE001  (reported to the parent)
            os.write(write_end, f"{type(err).__name__}: {err}".encode()[:8000])
            code = 1
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number in _SHARED_LIMIT_SIGNALS:
            os.kill(os.getpid(), number)
        folder = os.path.dirname(os.path.abspath(path))
        usage = os.statvfs(folder)
        raise OSError(
            f"{path}: writing the NetCDF file failed, its writer died of {signal.Signals(number).name} (HDF5 "
            f"crashes when a write fails: is the disk full? {usage.f_bavail * usage.f_frsize / 2**20:.0f} MiB free "
            f"in {folder})"
        )
    if os.WEXITSTATUS(status):
        raise OSError(f"{path}: writing the NetCDF file failed: {message}")


def open(path: str | os.PathLike, required: tuple[str, ...] = ()) -> xr.Dataset:
    """Open lazily; a missing, corrupt (truncated) or incomplete file raises StackError naming it.

    Damage inside a compressed chunk shows only when the chunk is read: read with `load`."""
    if not os.path.exists(path):
        raise StackError(f"{path}: file does not exist")
    try:
        ds = xr.open_dataset(path, engine="h5netcdf", decode_coords="all")
        if "spatial_ref" in ds.data_vars:
            ds = ds.set_coords("spatial_ref")
    except Exception as err:  # h5py raises OSError/KeyError/ValueError on damage
        raise StackError(f"{path}: cannot be read as a tile file ({err})") from err
    missing = [name for name in required if name not in ds]
    if missing:
        ds.close()
        raise StackError(f"{path}: missing variable(s) {', '.join(missing)}")
    if "bands" in ds and ds["bands"].dtype != np.uint16:
        dtype = ds["bands"].dtype
        ds.close()
        raise StackError(f"{path}: bands are {dtype}, the raw stack format holds uint16 reflectance x 10000")
    return ds


def load(array: xr.DataArray) -> np.ndarray:
    """The values of a lazily read variable; a damaged chunk raises StackError naming the file and variable."""
    try:
        return array.values
    except OSError as err:  # h5py: "Can't read data (filter returned failure during read)", without the file
        source = array.encoding.get("source", "a tile file")
        raise StackError(f"{source}: variable {array.name!r} cannot be read, the file is damaged ({err})") from err
