"""GeoTIFF and PNG writing shared by the stages: the uint8 GeoTIFF profile, the read-back check, atomic PNGs."""

from __future__ import annotations

import rasterio
from matplotlib.figure import Figure

from landcover.atomic import atomic_path


def uint8_profile(width: int, height: int, crs, transform, count: int = 1, block: int = 256) -> dict:
    """A tiled, deflate-compressed uint8 GeoTIFF with 0 as no data (class ids, labels, percentages)."""
    return {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": "uint8",
        "crs": crs,
        "transform": transform,
        "nodata": 0,
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "compress": "deflate",
    }


def check_readable(path) -> None:
    """Read every band and overview of a raster just written, raising if any part is missing.

    GDAL only logs a failed write (a full disk, a file size limit) and rasterio's close does not raise, so a
    truncated GeoTIFF would otherwise be renamed onto its target as if complete."""
    try:
        with rasterio.open(path) as src:
            for band in src.indexes:
                src.read(band)
                for factor in src.overviews(band):
                    src.read(band, out_shape=(-(-src.height // factor), -(-src.width // factor)))
    except rasterio.errors.RasterioIOError as err:
        raise OSError(f"{path}: the raster just written is incomplete ({err})") from err


def save_png(fig: Figure, path, dpi: int) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
