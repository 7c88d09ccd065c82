"""eo-learn EOPatch folders as raw tile stacks, read with numpy and json only (no eo-learn needed).

The layout is eo-learn >= 1.0's: ``bbox.geojson`` (with its CRS), ``timestamps.json`` and one
``.npy`` or ``.npy.gz`` file per feature under ``data/``, ``mask/``, ``mask_timeless/`` ...
The pixel grid is the patch's bbox divided into its array shape, so pixels need not be exactly
10 m (the eo-learn test patch has 9.9948 x 9.9974 m pixels).

Timestamps are kept as they are (sorted): eo-learn patches may hold two acquisitions of the same
day (the test patch has 2015-12-08 at 10:04 and at 10:11); both stay separate frames and the
feature stage treats them as any other observations.

One patch can be cut into ``n_rows x n_cols`` sub-tiles with ids ``{patch}_r{i}_c{j}``, so that
training and test tiles of a single patch differ in space.

A tile read with a margin (`read_eopatch(..., margin_px=)`, landcover.grid) takes it from its own patch around a
sub-tile, and beyond the patch from the neighbouring patches of the same folder whose pixels align with its own,
frame by frame where they have the same timestamp; the rest of the margin is no data.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import from_bounds

from landcover.grid import grown, with_margin
from landcover.ingest import IngestError
from landcover.stack import L1C_BANDS, REFLECTANCE_SCALE, TileGrid, new_stack

__all__ = [
    "KNOWN_INDICES",
    "eopatch_grid",
    "list_eopatches",
    "list_tiles",
    "parse_tile_id",
    "read_eopatch",
    "read_eopatch_reference",
    "subtile_id",
    "subtile_window",
]

LOGGER = logging.getLogger(__name__)

# Data features read as precomputed `indices` when present (the names the features stage uses).
KNOWN_INDICES: tuple[str, ...] = ("NDVI", "NDWI", "NORM")
DATA_MASKS: tuple[str, ...] = ("IS_DATA", "dataMask")

_SUBTILE_ID = re.compile(r"^(?P<patch>.+)_r(?P<row>\d+)_c(?P<col>\d+)$")
Subtile = tuple[int, int, int, int]  # (row, col, n_rows, n_cols)


def list_eopatches(root: str | os.PathLike) -> list[str]:
    """Names of the EOPatch folders directly under `root` (those with a bbox file), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise IngestError(f"EOPatch folder {root}: does not exist")
    names = sorted(
        p.name for p in root.iterdir() if p.is_dir() and _first_existing(p, "bbox", (".geojson", ".geojson.gz"))
    )
    if not names:
        raise IngestError(f"EOPatch folder {root}: contains no EOPatch (no sub-folder with bbox.geojson)")
    return names


def subtile_id(patch: str, row: int, col: int) -> str:
    return f"{patch}_r{row}_c{col}"


def list_tiles(root: str | os.PathLike, subtiles: Sequence[int] | None = None) -> list[str]:
    """Tile ids of the patches under `root`: folder names, or their sub-tile ids when `subtiles` is [n_rows, n_cols]."""
    patches = list_eopatches(root)
    if not subtiles:
        return patches
    n_rows, n_cols = _check_counts(subtiles)
    return [subtile_id(p, i, j) for p in patches for i in range(n_rows) for j in range(n_cols)]


def parse_tile_id(tile_id: str, subtiles: Sequence[int] | None = None) -> tuple[str, Subtile | None]:
    """The patch folder name and sub-tile of a tile id made by `list_tiles`."""
    if not subtiles:
        return tile_id, None
    n_rows, n_cols = _check_counts(subtiles)
    match = _SUBTILE_ID.match(tile_id)
    if match is None:
        raise IngestError(f"tile {tile_id}: not a sub-tile id of the form <patch>_r<i>_c<j>")
    row, col = int(match["row"]), int(match["col"])
    if row >= n_rows or col >= n_cols:
        raise IngestError(f"tile {tile_id}: sub-tile ({row}, {col}) outside the {n_rows} x {n_cols} split")
    return match["patch"], (row, col, n_rows, n_cols)


def subtile_window(height: int, width: int, subtile: Subtile) -> tuple[slice, slice]:
    """Row and column slices of a sub-tile; the sub-tiles of one split cover the patch exactly once."""
    row, col, n_rows, n_cols = subtile
    if not (0 <= row < n_rows and 0 <= col < n_cols):
        raise IngestError(f"sub-tile ({row}, {col}) is outside the {n_rows} x {n_cols} split")
    if n_rows > height or n_cols > width:
        raise IngestError(f"cannot split {height} x {width} pixels into {n_rows} x {n_cols} sub-tiles")
    return (
        slice(row * height // n_rows, (row + 1) * height // n_rows),
        slice(col * width // n_cols, (col + 1) * width // n_cols),
    )


def eopatch_grid(path: str | os.PathLike, tile_id: str | None = None, subtile: Subtile | None = None) -> TileGrid:
    """The pixel grid of a patch (or one of its sub-tiles): its bbox divided into its array shape."""
    path = _check_patch(path)
    crs, (minx, miny, maxx, maxy) = _read_bbox(path)
    height, width = _data_mask_shape(path)[1:3]
    grid = TileGrid(tile_id or path.name, crs, from_bounds(minx, miny, maxx, maxy, width, height), height, width)
    if subtile is None:
        return grid
    rows, cols = subtile_window(height, width, subtile)
    return TileGrid(
        tile_id or subtile_id(path.name, subtile[0], subtile[1]),
        crs,
        grid.transform @ Affine.translation(cols.start, rows.start),
        rows.stop - rows.start,
        cols.stop - cols.start,
    )


def read_eopatch(
    path: str | os.PathLike,
    tile_id: str | None = None,
    band_feature: str | None = None,
    band_names: Sequence[str] | None = None,
    subtile: Subtile | None = None,
    *,
    cloud_products: bool = True,
    index_features: Sequence[str] | None = None,
    margin_px: int = 0,
) -> xr.Dataset:
    """A raw tile stack from one patch (or sub-tile).

    `band_feature` (``data/BANDS-S2-L1C``, or ``BANDS`` for ``data/BANDS``) holds reflectances, float
    0..1 (scaled x 10000) or integer digital numbers (kept); None gives a stack with no bands, for
    patches that only hold indices. `band_names` defaults to the 13 L1C bands when the feature has 13.
    With `cloud_products`, ``mask/CLM`` and ``data/CLP`` become ``cloud_mask``/``cloud_probability``.
    `index_features` (default: those of `KNOWN_INDICES` present) become ``indices``. `margin_px`: the tile is
    grown by that many pixels on each side, read from the patch and its neighbours (module docstring)."""
    path = _check_patch(path)
    grid = grown(eopatch_grid(path, tile_id, subtile), margin_px)
    times = _read_timestamps(path)
    order = np.argsort(times, kind="stable")
    sources = _sources(path, grid, times[order])

    def temporal(ftype: str, name: str) -> np.ndarray:
        values = None
        for source, (src_rows, src_cols), (rows, cols), (frames, src_frames) in sources:
            if values is not None and _feature_file(source, ftype, name) is None:
                continue  # a neighbour without the feature: no data there
            part = _load(source, ftype, name, (src_rows, src_cols))
            if part.ndim != 4 or part.shape[0] != len(src_times := _read_timestamps(source)):
                raise IngestError(
                    f"{_feature_file(source, ftype, name)}: shape {part.shape} does not match the patch's "
                    f"{len(src_times)} timestamps (expected (time, height, width, channels))"
                )
            if values is None:  # the tile's own patch: zeros (no data) around what it covers
                values = np.zeros((len(times), grid.height, grid.width, part.shape[-1]), dtype=part.dtype)
            elif part.shape[-1] != values.shape[-1]:
                raise IngestError(f"{_feature_file(source, ftype, name)}: its channels differ from {path}'s")
            values[frames, rows, cols] = part[src_frames]
        return values

    mask_name = next(name for name in DATA_MASKS if _feature_file(path, "mask", name))
    is_data = temporal("mask", mask_name)[..., 0].astype(bool)

    if band_feature:
        ftype, name = band_feature.split("/", 1) if "/" in band_feature else ("data", band_feature)
        values = temporal(ftype, name)
        band_names = _band_names(band_names, values.shape[-1], _feature_file(path, ftype, name))
        bands, finite = _to_digital_numbers(values, _feature_file(path, ftype, name))
        is_data &= finite
    else:
        band_names = []
        bands = np.zeros((*is_data.shape, 0), dtype=np.uint16)
    ds = with_margin(new_stack(bands, is_data, times[order], band_names, grid), margin_px)
    ds = ds.assign_coords(band=np.asarray(band_names, dtype=str))  # an empty band list stays a string coordinate

    if cloud_products:
        if _feature_file(path, "mask", "CLM"):
            ds["cloud_mask"] = (("time", "y", "x"), temporal("mask", "CLM")[..., 0].astype(bool))
        if _feature_file(path, "data", "CLP"):
            clp = temporal("data", "CLP")[..., 0]
            scale = 255.0 if np.issubdtype(clp.dtype, np.integer) else 1.0  # Sentinel Hub serves CLP as 0..255
            ds["cloud_probability"] = (("time", "y", "x"), (clp / scale).astype(np.float32))

    names = (
        [n for n in KNOWN_INDICES if _feature_file(path, "data", n)] if index_features is None else list(index_features)
    )
    if names:
        indices = []
        for name in names:
            values = temporal("data", name)
            if values.shape[-1] != 1:
                raise IngestError(
                    f"{_feature_file(path, 'data', name)}: an index needs 1 channel, got {values.shape[-1]}"
                )
            indices.append(values[..., 0].astype(np.float32))
        ds["indices"] = (("time", "y", "x", "index"), np.stack(indices, axis=-1))
        ds = ds.assign_coords(index=names)

    LOGGER.info(
        "tile %s: %d frames, %d x %d px (a %d px margin) from %s and %d neighbouring patch(es) (bands %s, extras %s)",
        grid.tile_id,
        ds.sizes["time"],
        grid.height,
        grid.width,
        margin_px,
        path,
        len(sources) - 1,
        list(band_names),
        [v for v in ds.data_vars if v not in ("bands", "is_data")],
    )
    return ds


def read_eopatch_reference(path: str | os.PathLike, grid: TileGrid, feature: str = "mask_timeless/LULC") -> np.ndarray:
    """The patch's reference raster (class ids) on `grid`, the patch's own grid or one of its sub-tiles."""
    path = _check_patch(path)
    ftype, name = feature.split("/", 1)
    file = _feature_file(path, ftype, name)
    patch = eopatch_grid(path)
    if CRS.from_user_input(grid.crs) != patch.crs:
        raise IngestError(f"tile {grid.tile_id}: grid CRS {grid.crs} differs from patch {path} ({patch.crs})")
    col = (grid.transform.c - patch.transform.c) / patch.transform.a
    row = (grid.transform.f - patch.transform.f) / patch.transform.e
    aligned = np.allclose([grid.transform.a, grid.transform.e], [patch.transform.a, patch.transform.e], rtol=1e-9)
    if not (aligned and np.isclose(col, round(col), atol=1e-6) and np.isclose(row, round(row), atol=1e-6)):
        raise IngestError(f"tile {grid.tile_id}: grid is not aligned with the pixels of patch {path}")
    rows = slice(round(row), round(row) + grid.height)
    cols = slice(round(col), round(col) + grid.width)
    if rows.start < 0 or cols.start < 0 or rows.stop > patch.height or cols.stop > patch.width:
        raise IngestError(f"tile {grid.tile_id}: grid reaches outside patch {path}")
    values = _load(path, ftype, name, (rows, cols), temporal=False)
    if values.ndim != 3 or values.shape[-1] != 1:
        raise IngestError(f"{file}: expected a (height, width, 1) raster, got shape {values.shape}")
    values = values[..., 0]
    if values.min(initial=0) < 0 or values.max(initial=0) > 255:
        raise IngestError(f"{file}: class ids must be 0..255, got {values.min()}..{values.max()}")
    return values.astype(np.uint8)


def _check_counts(subtiles: Sequence[int]) -> tuple[int, int]:
    if len(subtiles) != 2 or any(int(n) < 1 for n in subtiles):
        raise IngestError(f"subtiles must be [n_rows, n_cols] with positive counts, got {list(subtiles)}")
    return int(subtiles[0]), int(subtiles[1])


def _check_patch(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise IngestError(f"EOPatch {path}: folder does not exist")
    for old in ("bbox.pkl", "timestamp.pkl"):
        if (path / old).exists() and not _first_existing(path, "bbox", (".geojson", ".geojson.gz")):
            raise IngestError(f"EOPatch {path}: pre-1.0 eo-learn format ({old}); re-save it with eo-learn >= 1.0")
    return path


def _first_existing(folder: Path, stem: str, suffixes: Sequence[str]) -> Path | None:
    return next((folder / f"{stem}{s}" for s in suffixes if (folder / f"{stem}{s}").is_file()), None)


def _read_json(file: Path):
    try:
        with gzip.open(file, "rt") if file.suffix == ".gz" else open(file) as handle:
            return json.load(handle)
    except (OSError, ValueError, EOFError) as err:
        raise IngestError(f"{file}: cannot be read as JSON ({err})") from err


def _read_bbox(path: Path) -> tuple[CRS, tuple[float, float, float, float]]:
    file = _first_existing(path, "bbox", (".geojson", ".geojson.gz"))
    if file is None:
        raise IngestError(f"EOPatch {path}: bbox.geojson is missing")
    geojson = _read_json(file)
    try:
        crs = CRS.from_user_input(geojson["crs"]["properties"]["name"])
        xy = np.asarray(geojson["coordinates"], dtype=float).reshape(-1, 2)
    except (KeyError, TypeError, ValueError) as err:
        raise IngestError(f"{file}: not a polygon with a CRS ({err!r})") from err
    minx, miny = xy.min(axis=0)
    maxx, maxy = xy.max(axis=0)
    if not (maxx > minx and maxy > miny):
        raise IngestError(f"{file}: empty bbox {minx, miny, maxx, maxy}")
    return crs, (float(minx), float(miny), float(maxx), float(maxy))


def _read_timestamps(path: Path) -> np.ndarray:
    # eo-learn 1.0-1.3 called the file `timestamp`, later versions `timestamps`.
    file = _first_existing(path, "timestamps", (".json", ".json.gz")) or _first_existing(
        path, "timestamp", (".json", ".json.gz")
    )
    if file is None:
        raise IngestError(f"EOPatch {path}: timestamps.json is missing")
    raw = _read_json(file)
    try:
        times = pd.to_datetime(raw, utc=True, format="ISO8601").tz_convert(None)
    except (TypeError, ValueError) as err:
        raise IngestError(f"{file}: not a list of ISO timestamps ({err})") from err
    if len(times) == 0:
        raise IngestError(f"{file}: no timestamps")
    return times.to_numpy(dtype="datetime64[ns]")


def _feature_file(path: Path, ftype: str, name: str) -> Path | None:
    folder = path / ftype
    if (folder / f"{name}.zarr").exists():
        raise IngestError(
            f"{folder / name}.zarr: zarr features are not supported; re-save the patch with use_zarr=False"
        )
    return _first_existing(folder, name, (".npy", ".npy.gz"))


def _data_mask_shape(path: Path) -> tuple[int, ...]:
    """Shape of the data mask from the .npy header alone (the mask fixes the patch's shape)."""
    name = next((n for n in DATA_MASKS if _feature_file(path, "mask", n)), None)
    if name is None:
        raise IngestError(f"EOPatch {path}: no data mask (mask/IS_DATA.npy or mask/dataMask.npy)")
    file = _feature_file(path, "mask", name)
    try:
        with gzip.open(file, "rb") if file.suffix == ".gz" else open(file, "rb") as handle:
            major, _ = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape = read_header(handle)[0]
    except (OSError, ValueError, EOFError) as err:
        raise IngestError(f"{file}: not a readable .npy file ({err})") from err
    if len(shape) != 4:
        raise IngestError(f"{file}: expected (time, height, width, 1), got shape {shape}")
    return shape


def _overlap(grid: TileGrid, patch: TileGrid) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """(window on the patch, window on the grid) of their common pixels; None if they share none or if the patch's
    pixels are not aligned with the grid's."""
    same = CRS.from_user_input(grid.crs) == patch.crs and np.allclose(
        [grid.transform.a, grid.transform.e], [patch.transform.a, patch.transform.e], rtol=1e-9
    )
    col = (patch.transform.c - grid.transform.c) / grid.transform.a
    row = (patch.transform.f - grid.transform.f) / grid.transform.e
    if not (same and np.isclose(col, round(col), atol=1e-6) and np.isclose(row, round(row), atol=1e-6)):
        return None
    row, col = round(row), round(col)  # the patch's first pixel on the grid
    rows = slice(max(row, 0), min(row + patch.height, grid.height))
    cols = slice(max(col, 0), min(col + patch.width, grid.width))
    if rows.start >= rows.stop or cols.start >= cols.stop:
        return None
    return (slice(rows.start - row, rows.stop - row), slice(cols.start - col, cols.stop - col)), (rows, cols)


def _sources(path: Path, grid: TileGrid, times: np.ndarray) -> list:
    """Where the (grown) tile's pixels come from: (patch, window on it, window on the grid, (tile frames, patch
    frames)), the tile's own patch first, then the neighbouring patches the margin reaches into."""
    own = _overlap(grid, eopatch_grid(path))
    patch_times = _read_timestamps(path)
    sources = [(path, *own, (np.arange(len(times)), np.argsort(patch_times, kind="stable")))]
    if own[1] == (slice(0, grid.height), slice(0, grid.width)):
        return sources  # the patch covers the grown tile (a sub-tile inside it, or no margin)
    for name in list_eopatches(path.parent):
        other = path.parent / name
        if other == path:
            continue
        try:
            windows = _overlap(grid, eopatch_grid(other))
        except IngestError as err:
            LOGGER.warning("tile %s: neighbouring patch %s left out of the margin (%s)", grid.tile_id, other, err)
            continue
        if windows is None:
            continue
        index = {t: i for i, t in reversed(list(enumerate(_read_timestamps(other))))}
        pairs = [(k, index[t]) for k, t in enumerate(times) if t in index]
        if pairs:
            frames, other_frames = (np.asarray(a) for a in zip(*pairs))
            sources.append((other, *windows, (frames, other_frames)))
    return sources


def _load(path: Path, ftype: str, name: str, window: tuple[slice, slice], temporal: bool = True) -> np.ndarray:
    """One feature cropped to `window`; plain .npy files are memory-mapped, so only the window is read."""
    file = _feature_file(path, ftype, name)
    if file is None:
        raise IngestError(f"EOPatch {path}: feature {ftype}/{name} is missing (no {ftype}/{name}.npy)")
    try:
        if file.suffix == ".gz":
            with gzip.open(file, "rb") as handle:
                values = np.load(handle, allow_pickle=False)
        else:
            values = np.load(file, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:
        raise IngestError(f"{file}: not a readable .npy file ({err})") from err
    height, width = _data_mask_shape(path)[1:3]
    spatial = values.shape[1:3] if temporal else values.shape[:2]
    if values.ndim < (3 if temporal else 2) or tuple(spatial) != (height, width):
        raise IngestError(f"{file}: shape {values.shape} does not match the patch's {height} x {width} pixels")
    return np.array(values[:, window[0], window[1]] if temporal else values[window[0], window[1]])


def _band_names(band_names: Sequence[str] | None, channels: int, file: Path) -> list[str]:
    if band_names is None:
        if channels != len(L1C_BANDS):
            raise IngestError(f"{file}: {channels} bands; name them (band_names) unless all 13 L1C bands are present")
        return list(L1C_BANDS)
    if len(band_names) != channels:
        raise IngestError(f"{file}: {channels} bands but {len(band_names)} band names given ({list(band_names)})")
    return list(band_names)


def _to_digital_numbers(values: np.ndarray, file: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint16 reflectance x 10000 and where every band is finite.

    NaN or inf in any band makes the pixel no data in that frame; values outside 0..65535 are clipped to that
    range (65535 is L1C's saturation value)."""
    if np.issubdtype(values.dtype, np.floating):
        finite = np.isfinite(values).all(axis=-1)
        scaled = np.rint(np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0) * REFLECTANCE_SCALE)
        return np.clip(scaled, 0, np.iinfo(np.uint16).max).astype(np.uint16), finite
    if np.issubdtype(values.dtype, np.integer):
        return np.clip(values, 0, np.iinfo(np.uint16).max).astype(np.uint16), np.ones(values.shape[:-1], dtype=bool)
    raise IngestError(f"{file}: bands must be float reflectances or integer digital numbers, got {values.dtype}")
