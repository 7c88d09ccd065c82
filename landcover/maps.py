"""Land-cover GeoTIFFs (per tile and the merged Cloud-Optimised GeoTIFF) and their pictures.

Class names travel inside the GeoTIFF as band metadata ``CLASS_<id>=<name>`` (the GDAL_METADATA
TIFF tag), next to the colour table. QGIS and ArcGIS do not read those tags as class names, and a
GeoTIFF cannot hold GDAL's category names or raster attribute table: the GTiff driver keeps them in
a ``.aux.xml`` sidecar. The merged map therefore gets that sidecar (category names and a thematic
attribute table: value, class, colour) and a QGIS layer style (``.qml``, which QGIS loads by itself
for the file beside it), both written by the merge rule as outputs of their own.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import matplotlib
import numpy as np
import rasterio
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rio_cogeo.cogeo import cog_translate
from rio_cogeo.profiles import cog_profiles

from landcover.atomic import atomic_path, scratch_dir
from landcover.classes import NO_DATA, LandCoverClass
from landcover.raster_io import check_readable, save_png, uint8_profile
from landcover.stack import REFLECTANCE_SCALE, ROW_CHUNK, TileGrid, load

log = logging.getLogger(__name__)

BLOCK_SIZE = 256
OVERVIEW_MIN_SIZE = 64  # halve while the overview's longer side stays at least this
TRUE_COLOUR = ("B04", "B03", "B02")
TRUE_COLOUR_GAIN = 2.5  # L1C reflectance is dark; the eo-learn example brightens the same way
CLOUD_BLUE = 0.2  # B02 reflectance above which a pixel counts as (probably) cloud in picture selection
MIDSUMMER_DAY = 195  # 15 July, days after 1 January


def class_tags(classes: tuple[LandCoverClass, ...]) -> dict[str, str]:
    return {f"CLASS_{c.id}": c.name for c in classes}


def colormap(classes: tuple[LandCoverClass, ...]) -> dict[int, tuple[int, int, int, int]]:
    return {c.id: (*c.rgb, 0 if c.id == NO_DATA else 255) for c in classes}


def overview_factors(height: int, width: int) -> list[int]:
    factors = []
    while max(height, width) / (2 ** (len(factors) + 1)) >= OVERVIEW_MIN_SIZE:
        factors.append(2 ** (len(factors) + 1))
    return factors


def _write_band(path, array: np.ndarray, grid: TileGrid, resampling: Resampling, description: str, classes=None):
    if array.shape != (grid.height, grid.width):
        raise ValueError(
            f"tile {grid.tile_id}: raster has shape {array.shape}, the tile grid {(grid.height, grid.width)}"
        )
    profile = uint8_profile(grid.width, grid.height, grid.crs, grid.transform, block=BLOCK_SIZE)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            if classes is not None:  # the colour table first: it sets the TIFF's photometric interpretation
                dst.write_colormap(1, colormap(classes))
                dst.update_tags(1, **class_tags(classes))
            dst.set_band_description(1, description)
            dst.write(array.astype(np.uint8, copy=False), 1)
            dst.build_overviews(overview_factors(grid.height, grid.width), resampling)
        check_readable(tmp)


def write_class_geotiff(path, labels: np.ndarray, grid: TileGrid, classes: tuple[LandCoverClass, ...]) -> None:
    """Class ids (0 = no data) with the classes' colour table and names; nearest-neighbour overviews."""
    unknown = sorted(set(np.unique(labels).tolist()) - {c.id for c in classes})
    if unknown:
        raise ValueError(f"tile {grid.tile_id}: labels {unknown} are not configured classes")
    _write_band(path, labels, grid, Resampling.nearest, "land cover class", classes)


def write_confidence_geotiff(path, confidence: np.ndarray, grid: TileGrid) -> None:
    """Percent probability of the predicted class (1..100, 0 = no data); averaged overviews."""
    if confidence.size and confidence.max() > 100:
        raise ValueError(f"tile {grid.tile_id}: confidence exceeds 100 %")
    _write_band(path, confidence, grid, Resampling.average, "confidence of the predicted class (%)")


@dataclass(frozen=True)
class Mosaic:
    """The pixel grid of tile rasters side by side (the tiles of one grid do not overlap), and each tile's
    window on it (col, row, width, height)."""

    crs: CRS
    left: float
    top: float
    res: float
    res_y: float  # an EOPatch's pixels are not quite square
    width: int
    height: int
    windows: tuple[tuple[int, int, int, int], ...]


def mosaic_of(paths) -> Mosaic:
    """The mosaic grid of tile rasters; an error names a file that cannot be read, has lost its georeference,
    differs from the first in CRS, pixel size, bands or data type, or lies off the first's pixel grid."""
    if not paths:
        raise ValueError("no tile maps to merge")
    headers = []
    for path in paths:
        try:
            with rasterio.open(path) as src:
                headers.append((src.bounds, (src.crs, src.res, src.count, src.dtypes[0])))
        except rasterio.errors.RasterioIOError as err:
            raise ValueError(f"{path}: cannot be read as a GeoTIFF ({err})") from err
        if headers[-1][1][0] is None:  # GDAL skips unreadable tags: a truncated file loses its georeferencing
            raise ValueError(f"{path}: has no CRS; a tile map is georeferenced, so the file is damaged or truncated")
        if headers[-1][1] != headers[0][1]:
            raise ValueError(f"{path}: CRS/resolution/bands {headers[-1][1]} differ from {paths[0]}'s {headers[0][1]}")
    crs, (res, res_y), _, _ = headers[0][1]
    left, top = min(b.left for b, _ in headers), max(b.top for b, _ in headers)
    windows = []
    for path, (bounds, _) in zip(paths, headers):
        col, row = (bounds.left - left) / res, (top - bounds.top) / res_y
        if not np.allclose([col, row], np.round([col, row])):
            raise ValueError(f"{path}: tile is not on the pixel grid of {paths[0]}")
        size = (round((bounds.right - bounds.left) / res), round((bounds.top - bounds.bottom) / res_y))
        windows.append((round(col), round(row), *size))
    width = round((max(b.right for b, _ in headers) - left) / res)
    height = round((top - min(b.bottom for b, _ in headers)) / res_y)
    return Mosaic(crs, left, top, res, res_y, width, height, tuple(windows))


def write_mosaic_vrt(path, mosaic: Mosaic, sources, bands: int = 1, classes=None) -> Path:
    """A GDAL VRT that places each source raster at its mosaic window (0 = no data); GDAL reads the sources'
    overviews when the VRT is read zoomed out. With `classes`, band 1 carries their colour table and names."""
    transform = f"{mosaic.left}, {mosaic.res}, 0, {mosaic.top}, 0, {-mosaic.res_y}"
    parts = [
        f'<VRTDataset rasterXSize="{mosaic.width}" rasterYSize="{mosaic.height}">',
        f"<SRS>{escape(mosaic.crs.to_wkt())}</SRS><GeoTransform>{transform}</GeoTransform>",
        '<Metadata><MDI key="AREA_OR_POINT">Area</MDI></Metadata>',
    ]
    for band in range(1, bands + 1):
        parts.append(f'<VRTRasterBand dataType="Byte" band="{band}"><NoDataValue>0</NoDataValue>')
        if classes is not None and band == 1:
            tags = "".join(f"<MDI key={quoteattr(k)}>{escape(v)}</MDI>" for k, v in class_tags(classes).items())
            table = colormap(classes)
            entries = "".join(
                f'<Entry c1="{r}" c2="{g}" c3="{b}" c4="{a}"/>'
                for r, g, b, a in (table.get(i, (0, 0, 0, 255)) for i in range(256))
            )
            parts.append(
                f"<Description>land cover class</Description><Metadata>{tags}</Metadata>"
                f"<ColorInterp>Palette</ColorInterp><ColorTable>{entries}</ColorTable>"
            )
        for source, (col, row, width, height) in sources:
            parts.append(
                f'<ComplexSource><SourceFilename relativeToVRT="0">{escape(os.path.abspath(source))}'
                f"</SourceFilename><SourceBand>{band}</SourceBand>"
                f'<SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>'
                f'<DstRect xOff="{col}" yOff="{row}" xSize="{width}" ySize="{height}"/><NODATA>0</NODATA>'
                "</ComplexSource>"
            )
        parts.append("</VRTRasterBand>")
    parts.append("</VRTDataset>")
    Path(path).write_text("\n".join(parts))
    return Path(path)


def merge_tiles(paths, out_path, classes: tuple[LandCoverClass, ...]) -> None:
    """One Cloud-Optimised GeoTIFF of all tile maps, colour table and class names kept: rio-cogeo (GDAL)
    copies a VRT of the tiles on their common pixel grid, with nearest-neighbour overviews."""
    mosaic = mosaic_of(paths)
    for path in paths:  # a damaged tile is named here, not left to GDAL's reading through the VRT
        try:
            check_readable(path)
        except OSError as err:
            raise ValueError(f"{path}: cannot be read as a GeoTIFF ({err.__cause__})") from err
    out_path = Path(out_path)
    with scratch_dir(out_path) as scratch:  # rio-cogeo writes a temporary file beside its output
        vrt = write_mosaic_vrt(scratch / "mosaic.vrt", mosaic, zip(paths, mosaic.windows), classes=classes)
        cog = scratch / out_path.name
        cog_translate(
            vrt,
            cog,
            cog_profiles.get("deflate"),
            nodata=0,
            overview_resampling="nearest",
            forward_band_tags=True,
            in_memory=False,
            quiet=True,
        )
        check_readable(cog)
        with atomic_path(out_path) as tmp:  # fsynced and renamed like every other output
            os.replace(cog, tmp)
    log.info("merged %d tile maps (%d x %d pixels) into %s", len(paths), mosaic.width, mosaic.height, out_path)


def category_sidecar(classes: tuple[LandCoverClass, ...]) -> str:
    """GDAL's PAM ``.aux.xml`` for band 1: category names (index = class id) and a thematic attribute table."""
    by_id = {c.id: c for c in classes}
    names = [escape(by_id[i].name) if i in by_id else "" for i in range(max(by_id) + 1)]
    # field types: 0 integer, 2 string; usages: 5 min-max (the value), 2 name, 6-9 red, green, blue, alpha
    fields = (("Value", 0, 5), ("Class", 2, 2), ("Red", 0, 6), ("Green", 0, 7), ("Blue", 0, 8), ("Alpha", 0, 9))
    rows = [
        f'<Row index="{row}">'
        + "".join(f"<F>{v}</F>" for v in (c.id, escape(c.name), *c.rgb, colormap(classes)[c.id][3]))
        + "</Row>"
        for row, c in enumerate(classes)
    ]
    return "\n".join(
        [
            "<PAMDataset>",
            '  <PAMRasterBand band="1">',
            "    <CategoryNames>",
            *(f"      <Category>{name}</Category>" for name in names),
            "    </CategoryNames>",
            '    <GDALRasterAttributeTable tableType="thematic">',
            *(
                f'      <FieldDefn index="{i}"><Name>{name}</Name><Type>{kind}</Type><Usage>{usage}</Usage></FieldDefn>'
                for i, (name, kind, usage) in enumerate(fields)
            ),
            *(f"      {row}" for row in rows),
            "    </GDALRasterAttributeTable>",
            "  </PAMRasterBand>",
            "</PAMDataset>",
            "",
        ]
    )


def qgis_style(classes: tuple[LandCoverClass, ...]) -> str:
    """A QGIS layer style: the paletted renderer with the class colours and names, no data transparent."""
    entries = "\n".join(
        f'        <paletteEntry value="{c.id}" color={quoteattr(c.colour)} alpha="255" label={quoteattr(c.name)}/>'
        for c in classes
        if c.id != NO_DATA
    )
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.28" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">
      <rasterTransparency/>
      <minMaxOrigin><limits>None</limits><extent>WholeRaster</extent><statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower><cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor></minMaxOrigin>
      <colorPalette>
{entries}
      </colorPalette>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""


def write_class_sidecars(aux_path, qml_path, classes: tuple[LandCoverClass, ...]) -> None:
    """The merged map's ``<map>.aux.xml`` (GDAL categories and attribute table) and ``.qml`` (QGIS style)."""
    for path, text in ((aux_path, category_sidecar(classes)), (qml_path, qgis_style(classes))):
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")


def class_rgb(labels: np.ndarray, classes: tuple[LandCoverClass, ...]) -> np.ndarray:
    """(…, 3) uint8 picture of class ids in the class colours (unknown ids white)."""
    lut = np.full((256, 3), 255, dtype=np.uint8)
    for c in classes:
        lut[c.id] = c.rgb
    return lut[labels]


def legend_handles(classes: tuple[LandCoverClass, ...], present) -> list[Patch]:
    present = set(np.asarray(present).tolist())
    return [
        Patch(facecolor=c.colour, edgecolor="black", label=c.name)
        for c in classes
        if c.id in present and c.id != NO_DATA
    ]


def preview_png(
    cog_path, png_path, classes: tuple[LandCoverClass, ...], max_pixels: int = 1500, dpi: int = 110
) -> None:
    """The merged map at most `max_pixels` across (read from the COG's overviews), with a legend."""
    with rasterio.open(cog_path) as src:
        step = max(1, math.ceil(max(src.height, src.width) / max_pixels))
        labels = src.read(1, out_shape=(math.ceil(src.height / step), math.ceil(src.width / step)))
        left, bottom, right, top = src.bounds
        crs = src.crs
    fig = Figure(figsize=(8, 8 * labels.shape[0] / labels.shape[1] + 0.5))
    ax = fig.add_subplot()
    ax.imshow(class_rgb(labels, classes), extent=(left, right, bottom, top), interpolation="nearest")
    ax.set_title(f"Land cover ({crs})")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.legend(handles=legend_handles(classes, np.unique(labels)), loc="upper left", bbox_to_anchor=(1.02, 1))
    save_png(fig, png_path, dpi)


def clearest_frame(stack_ds: xr.Dataset) -> int:
    """Index of the acquisition to show: full coverage, least bright-blue (cloud) share, closest to midsummer.

    Frames within 2 % of the best coverage and then within 2 % of the least cloud share compete on date.
    Read row block by row block, as the stack is chunked on disk."""
    n_time = stack_ds.sizes["time"]
    if n_time == 0:
        raise ValueError(f"tile {stack_ds.attrs.get('tile_id', '?')}: stack has no acquisitions")
    data = np.zeros(n_time)
    bright = np.zeros(n_time)
    for start in range(0, stack_ds.sizes["y"], ROW_CHUNK):
        rows = slice(start, start + ROW_CHUNK)
        is_data = load(stack_ds["is_data"].isel(y=rows).transpose("time", "y", "x"))
        blue = load(stack_ds["bands"].isel(y=rows).sel(band="B02").transpose("time", "y", "x"))
        data += is_data.sum(axis=(1, 2))
        bright += (is_data & (blue > CLOUD_BLUE * REFLECTANCE_SCALE)).sum(axis=(1, 2))
    cloud = bright / np.maximum(data, 1)
    candidates = np.flatnonzero(data >= 0.98 * data.max())
    candidates = candidates[cloud[candidates] <= cloud[candidates].min() + 0.02]
    days = stack_ds["time"].values.astype("datetime64[D]")
    day_of_year = (days - days.astype("datetime64[Y]")).astype(int)
    return int(candidates[np.argmin(np.abs(day_of_year[candidates] - MIDSUMMER_DAY))])


def _read_labels(path, shape: tuple[int, int], what: str) -> np.ndarray:
    try:
        with rasterio.open(path) as src:
            labels = src.read(1)
    except rasterio.errors.RasterioIOError as err:
        raise ValueError(f"{path}: cannot be read as a {what} GeoTIFF ({err})") from err
    if labels.shape != shape:
        raise ValueError(f"{path}: {what} has shape {labels.shape}, the tile's stack {shape}")
    return labels


def _backdrop(stack_ds: xr.Dataset, tile: str) -> tuple[np.ndarray, str]:
    """True colour of the clearest summer frame; for index-only sources (an EOPatch with NDVI) that index."""
    missing = [b for b in TRUE_COLOUR if b not in stack_ds["band"].values]
    if not missing:
        frame = clearest_frame(stack_ds)
        rgb = load(stack_ds["bands"].isel(time=frame).sel(band=list(TRUE_COLOUR)).transpose("y", "x", "band"))
        date = str(stack_ds["time"].values[frame].astype("datetime64[D]"))
        return np.clip(rgb / REFLECTANCE_SCALE * TRUE_COLOUR_GAIN, 0, 1), f"true colour {date}"
    if "indices" not in stack_ds:
        raise ValueError(f"tile {tile}: stack lacks band(s) {', '.join(missing)} for a true-colour picture")
    index = str(stack_ds["index"].values[0])
    values = load(stack_ds["indices"].sel(index=index).transpose("time", "y", "x"))
    valid = load(stack_ds["is_data"].transpose("time", "y", "x")) & np.isfinite(values)
    if "cloud_mask" in stack_ds:
        valid &= ~load(stack_ds["cloud_mask"].transpose("time", "y", "x")).astype(bool)
    days = stack_ds["time"].values.astype("datetime64[D]")
    day_of_year = (days - days.astype("datetime64[Y]")).astype(int)
    coverage = valid.mean(axis=(1, 2))
    candidates = np.flatnonzero(coverage >= coverage.max() - 0.02)
    frame = int(candidates[np.argmin(np.abs(day_of_year[candidates] - MIDSUMMER_DAY))])
    image = matplotlib.colormaps["YlGn"](np.clip((np.nan_to_num(values[frame]) + 0.2) / 1.1, 0, 1))[..., :3]
    return image, f"{index} {days[frame]}"


def plot_tile(
    stack_ds: xr.Dataset, reference_path, map_path, classes: tuple[LandCoverClass, ...], png_path, dpi: int
) -> None:
    """True colour of the clearest summer acquisition, reference and prediction side by side."""
    tile = stack_ds.attrs.get("tile_id", "?")
    image, title = _backdrop(stack_ds, tile)
    shape = image.shape[:2]
    reference = _read_labels(reference_path, shape, "reference")
    prediction = _read_labels(map_path, shape, "land-cover map")
    fig = Figure(figsize=(13, 5))
    panels = (
        (image, title),
        (class_rgb(reference, classes), "reference"),
        (class_rgb(prediction, classes), "prediction"),
    )
    for index, (image, title) in enumerate(panels):
        ax = fig.add_subplot(1, 3, index + 1)
        ax.imshow(image, interpolation="nearest")
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"tile {tile}")
    handles = legend_handles(classes, np.union1d(np.unique(reference), np.unique(prediction)))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5) or 1, frameon=False)
    save_png(fig, png_path, dpi)
