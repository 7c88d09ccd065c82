"""Real-format inputs made from the synthetic area of the tiny test grid: an AOI, reference polygons, and L1C band
files (one granule per tile) of chosen dates, so that real-data sources run the whole workflow on a known truth."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from conftest import TINY_TILES, tiny_config
from rasterio.crs import CRS
from shapely.geometry import box

from landcover.config import SYNTHETIC_CRS, margin_px
from landcover.grid import crop_to_tile, grown, tile_grid, with_margin
from landcover.stack import L1C_BANDS, TileGrid
from landcover.synthetic import synthesize_reference, synthesize_tile


def tiny_grids(config: dict | None = None) -> list[TileGrid]:
    area = (config or tiny_config())["area"]
    crs = area["crs"] or SYNTHETIC_CRS
    return [tile_grid(tile, area["tile_size_m"], area["resolution_m"], crs) for tile in TINY_TILES]


def synthesize_area(config: dict, acquisitions: int) -> dict[str, tuple[xr.Dataset, xr.Dataset]]:
    """{tile: (raw stack, truth)} of the synthetic source on each tile, exactly as its workflow rule makes them: drawn
    with the tile's margin (the sensor noise is seeded by the drawn grid's corner), then cut to the tile."""
    syn, margin = config["synthetic"], margin_px(config)
    area = {}
    for grid in tiny_grids(config):
        drawn = synthesize_tile(grown(grid, margin), syn["seed"], year=syn["year"], acquisitions=acquisitions)
        area[grid.tile_id] = tuple(crop_to_tile(with_margin(ds, margin)) for ds in drawn)
    return area


def clearest_frames(area: dict, count: int) -> list[int]:
    """Indices of the `count` frames with the most cloud-free data over the whole area, in time order."""
    clear = sum((raw["is_data"].values & ~truth["cloud"].values).sum(axis=(1, 2)) for raw, truth in area.values())
    return sorted(np.argsort(-clear, kind="stable")[:count].tolist())


def write_aoi_and_reference(folder: Path, config: dict) -> tuple[Path, Path]:
    """The AOI (a GeoPackage polygon around the tiny grid) and the synthetic reference polygons."""
    folder.mkdir(parents=True, exist_ok=True)
    grids = tiny_grids(config)
    bounds = np.array([g.bounds for g in grids])
    aoi = folder / "aoi.gpkg"
    area = box(bounds[:, 0].min() + 1, bounds[:, 1].min() + 1, bounds[:, 2].max() - 1, bounds[:, 3].max() - 1)
    gpd.GeoDataFrame(geometry=[area], crs=grids[0].crs).to_file(aoi, driver="GPKG")
    reference = folder / "reference.gpkg"
    synthesize_reference(grids, config["synthetic"]["seed"]).to_file(reference, driver="GPKG", layer="reference")
    return aoi, reference


def write_band(path: Path, data: np.ndarray, crs: CRS, transform: Affine, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    driver = "JP2OpenJPEG" if path.suffix == ".jp2" else "GTiff"
    if driver == "JP2OpenJPEG":
        options = {"QUALITY": 100, "REVERSIBLE": "YES", **options}
    height, width = data.shape
    with rasterio.open(
        path, "w", driver=driver, width=width, height=height, count=1, dtype=data.dtype, crs=crs,
        transform=transform, **options,
    ) as dst:  # fmt: skip
        dst.write(data, 1)


def write_l1c_granules(folder: Path, area: dict, frames: list[int], ext: str = "jp2") -> dict[tuple[str, int], Path]:
    """Band files `T<utm tile>_<time>_B<band>.<ext>` of `frames`, one granule per tile (T33TAA, T33TAB, ...).

    Returns {(tile, frame): granule folder}."""
    folders = {}
    for n, (tile, (raw, _)) in enumerate(sorted(area.items())):
        utm_tile = f"33TA{'ABCDEFGH'[n]}"
        for frame in frames:
            when = raw["time"].values[frame].astype("datetime64[s]").item()
            granule = folder / f"{tile}_{when:%Y%m%d}"
            for k, band in enumerate(L1C_BANDS):
                data = np.where(raw["is_data"].values[frame], raw["bands"].values[frame, ..., k], 0).astype(np.uint16)
                path = granule / f"T{utm_tile}_{when:%Y%m%dT%H%M%S}_{band}.{ext}"
                write_band(path, data, raw.rio.crs, raw.rio.transform())
            folders[tile, frame] = granule
    return folders
