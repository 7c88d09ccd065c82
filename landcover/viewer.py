"""The offline map viewer: ``map.html`` beside a folder of pre-rendered tiles, opened from disk.

A browser opened on ``file://`` may load scripts and images from beside the page but read none of
their bytes (canvas pixels and fetch are blocked), so every pyramid tile is a small script that
hands the viewer its pictures as ``data:`` URLs, which it may read. A tile carries two pictures:

- a lossless PNG whose red, green and blue are the class id, the reference class id and the
  confidence (percent, bit 7 set where the area has imagery), so that hovering reads exact values;
- a JPEG of the true-colour composite.

The pyramid halves the resolution level by level from the map's own pixels (level ``zmax``) until
one 256-pixel tile holds the whole map; the class map is read from the COG's overviews and the
other layers from their tiles' overviews, so no level needs the whole country in memory and the
page loads only the tiles in view. Per map tile, a script with its logs and a small picture is
loaded when the tile is clicked. The reference check's flagged polygons (`reference_check.gpkg`), worst first,
are one more script of outlines drawn over the map.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from PIL import Image
from rasterio.enums import Resampling
from rasterio.windows import Window

from landcover.atomic import atomic_path, scratch_dir
from landcover.classes import NO_DATA, LandCoverClass
from landcover.maps import (
    Mosaic,
    _backdrop,
    check_readable,
    class_rgb,
    mosaic_of,
    overview_factors,
    write_mosaic_vrt,
)
from landcover.stack import TileGrid, grid_of

log = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("viewer_assets")
TILE = 256  # pixels across a pyramid tile
HAS_IMAGERY = 128  # bit set in the confidence byte where the area has imagery
LOG_LINES = 200  # the last lines of each log shown per tile
THUMBNAIL = 200  # pixels across each panel of a tile's picture
JPEG_QUALITY = 80
MAX_CHECKED = 500  # flagged reference polygons drawn, worst first (a country's would weigh megabytes)


def write_true_colour(stack_ds, path) -> str:
    """A tile's clearest mid-summer acquisition as an RGB GeoTIFF (uint8, 0 = no data); returns its title."""
    grid: TileGrid = grid_of(stack_ds)
    image, title = _backdrop(stack_ds, grid.tile_id or "?")
    rgb = np.clip(np.round(image * 254) + 1, 1, 255).astype(np.uint8)  # 0 stays free for no data
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 3,
        "dtype": "uint8",
        "crs": grid.crs,
        "transform": grid.transform,
        "nodata": 0,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "photometric": "RGB",
    }
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(np.moveaxis(rgb, -1, 0))
            dst.update_tags(TITLE=title)
            dst.build_overviews(overview_factors(grid.height, grid.width), Resampling.average)
        check_readable(tmp)
    return title


@dataclass(frozen=True)
class MapTile:
    """One tile of the run and its rasters."""

    tile_id: str
    map: str
    confidence: str
    reference: str
    true_colour: str


def pyramid_levels(mosaic: Mosaic) -> int:
    """Levels below the map's own pixels until one pyramid tile holds the whole map."""
    return max(0, math.ceil(math.log2(max(mosaic.width, mosaic.height) / TILE)))


def _data_url(array: np.ndarray, kind: str) -> str:
    buffer = io.BytesIO()
    if kind == "png":
        Image.fromarray(array).save(buffer, "PNG", compress_level=9)
    else:
        Image.fromarray(array).save(buffer, "JPEG", quality=JPEG_QUALITY)
    return f"data:image/{kind};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _read(src, window: Window, shape: tuple[int, int], resampling: Resampling) -> np.ndarray:
    return src.read(window=window, out_shape=(src.count, *shape), resampling=resampling)


def write_pyramid(cog_path, tiles: list[MapTile], out_dir: Path, scratch: Path) -> tuple[Mosaic, list[str]]:
    """Pyramid tiles `tiles/<z>/<x>_<y>.js` under `out_dir`; returns the grid and each level's written tiles."""
    mosaic = mosaic_of([t.map for t in tiles])
    levels = pyramid_levels(mosaic)
    vrts = {}
    for name, bands in (("reference", 1), ("confidence", 1), ("true_colour", 3)):
        sources = [(getattr(t, name), window) for t, window in zip(tiles, mosaic.windows)]
        vrts[name] = write_mosaic_vrt(scratch / f"{name}.vrt", mosaic, sources, bands)
    present = []
    with (
        rasterio.open(cog_path) as classes,
        rasterio.open(vrts["reference"]) as reference,
        rasterio.open(vrts["confidence"]) as confidence,
        rasterio.open(vrts["true_colour"]) as true_colour,
    ):
        if (classes.width, classes.height) != (mosaic.width, mosaic.height):
            raise ValueError(f"{cog_path}: {classes.width} x {classes.height} pixels, its tiles make a different grid")
        for z in range(levels + 1):
            factor = 2 ** (levels - z)
            span = TILE * factor
            written = []
            for ty in range(math.ceil(mosaic.height / span)):
                for tx in range(math.ceil(mosaic.width / span)):
                    col, row = tx * span, ty * span
                    window = Window(col, row, min(span, mosaic.width - col), min(span, mosaic.height - row))
                    shape = (math.ceil(window.height / factor), math.ceil(window.width / factor))
                    labels = _read(classes, window, shape, Resampling.nearest)[0]
                    truth = _read(reference, window, shape, Resampling.nearest)[0]
                    rgb = _read(true_colour, window, shape, Resampling.average)
                    imagery = (rgb > 0).any(axis=0)
                    if not (imagery.any() or labels.any() or truth.any()):
                        continue  # outside every tile (a country's corners): nothing to load
                    sure = _read(confidence, window, shape, Resampling.average)[0].astype(np.uint8)
                    data = np.stack([labels, truth, np.minimum(sure, 100) | (imagery * HAS_IMAGERY)], axis=-1)
                    picture = np.moveaxis(rgb, 0, -1)
                    path = out_dir / "tiles" / str(z) / f"{tx}_{ty}.js"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(
                        f'LCV.tile("{z}/{tx}_{ty}","{_data_url(data.astype(np.uint8), "png")}",'
                        f'"{_data_url(np.ascontiguousarray(picture), "jpeg")}");\n'
                    )
                    written.append(f"{tx}_{ty}")
            present.append(",".join(written))
            log.info("level %d: %d tiles of %d map pixels", z, len(written), span)
    return mosaic, present


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines()
    skipped = len(lines) - LOG_LINES
    return "\n".join(([f"[{skipped} earlier lines in {path}]"] if skipped > 0 else []) + lines[-LOG_LINES:])


def _thumbnail(tile: MapTile, classes: tuple[LandCoverClass, ...]) -> np.ndarray:
    """True colour, reference and map of a tile side by side, each at most THUMBNAIL pixels across."""
    panels = []
    for path, coloured in ((tile.true_colour, False), (tile.reference, True), (tile.map, True)):
        with rasterio.open(path) as src:
            step = max(1, math.ceil(max(src.width, src.height) / THUMBNAIL))
            shape = (math.ceil(src.height / step), math.ceil(src.width / step))
            if coloured:
                panels.append(class_rgb(src.read(1, out_shape=shape), classes))
            else:
                panels.append(np.moveaxis(src.read(out_shape=(3, *shape), resampling=Resampling.average), 0, -1))
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    return np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)


def reference_check_script(gpkg_path, mosaic: Mosaic) -> str:
    """`LCV.referenceCheck([...])`: the flagged polygons, worst first, as rings in the map's CRS, simplified to half
    a pixel, with their rank, reference class, the class the map prefers, its confidence and the contradicted share."""
    table = gpd.read_file(gpkg_path, layer="reference_check")
    flagged = table[table["flagged"].astype(bool)].sort_values("rank").head(MAX_CHECKED)
    flagged = flagged.to_crs(mosaic.crs.to_wkt()) if len(flagged) else flagged
    polygons = []
    for row in flagged.itertuples():
        geom = shapely.simplify(row.geometry, mosaic.res / 2)
        rings = [
            [[round(x, 1), round(y, 1)] for x, y in ring.coords]
            for part in shapely.get_parts(geom)
            if part.geom_type == "Polygon"
            for ring in (part.exterior, *part.interiors)
        ]
        polygons.append(
            {
                "rank": int(row.rank),
                "cls": int(row.class_id),
                "map": int(row.map_class),
                "share": round(float(row.other_share), 3),
                "conf": round(float(row.map_confidence)),
                "rings": rings,
            }
        )
    return "LCV.referenceCheck(" + json.dumps(polygons, separators=(",", ":")) + ");\n"


def _caption(path) -> str:
    """A report caption (reStructuredText) as plain text for the page."""
    text = Path(path).read_text()
    return re.sub(r"``?([^`]+)``?", r"\1", " ".join(text.split()))


def build_viewer(
    cog_path,
    tiles: list[MapTile],
    classes: tuple[LandCoverClass, ...],
    html_path,
    assets_dir,
    logs: dict[str, list[str]] | None = None,
    pictures: dict[str, str] | None = None,
    figures: list[dict] | None = None,
    title: str = "Land cover",
    reference_check=None,
) -> None:
    """Write `html_path` and its folder `assets_dir` (next to it) from the merged map and the tile rasters.

    `logs`: per tile id, the log files to show; `pictures`: per tile id, a picture made by the workflow;
    `figures`: {"src", "caption" (an .rst file), "tile" (or None)} shown in the side panel; `reference_check`: the
    reference check's GeoPackage, drawn as a layer."""
    html_path, assets_dir = Path(html_path), Path(assets_dir)
    if assets_dir.parent.resolve() != html_path.parent.resolve():
        raise ValueError(f"{assets_dir}: the viewer's folder must sit beside {html_path}")
    base = html_path.parent

    def link(path) -> str:
        return Path(os.path.relpath(os.path.abspath(path), base.resolve())).as_posix()

    with scratch_dir(assets_dir) as scratch, atomic_path(assets_dir) as out:
        out.mkdir()
        mosaic, present = write_pyramid(cog_path, tiles, out, scratch)
        info_dir = out / "info"
        info_dir.mkdir()
        grid = []
        for tile in tiles:
            with rasterio.open(tile.map) as src:
                grid.append({"id": tile.tile_id, "bounds": list(src.bounds)})
            with rasterio.open(tile.true_colour) as src:
                imagery = src.tags().get("TITLE", "")
            Image.fromarray(_thumbnail(tile, classes)).save(info_dir / f"{tile.tile_id}.png")
            info = {
                "imagery": imagery,
                "thumbnail": f"{assets_dir.name}/info/{tile.tile_id}.png",
                "picture": link(pictures[tile.tile_id]) if pictures and tile.tile_id in pictures else None,
                "logs": {
                    link(path): _tail(Path(path)) for path in (logs or {}).get(tile.tile_id, []) if Path(path).exists()
                },
            }
            (info_dir / f"{tile.tile_id}.js").write_text(
                f"LCV.tileInfo({json.dumps(tile.tile_id)},{json.dumps(info)});\n"
            )
        manifest = {
            "title": title,
            "crs": mosaic.crs.to_string(),
            "left": mosaic.left,
            "top": mosaic.top,
            "res": mosaic.res,
            "resY": mosaic.res_y,
            "width": mosaic.width,
            "height": mosaic.height,
            "tileSize": TILE,
            "levels": pyramid_levels(mosaic),
            "present": present,
            "folder": assets_dir.name,
            "classes": [{"id": c.id, "name": c.name, "colour": c.colour} for c in classes if c.id != NO_DATA],
            "grid": grid,
            "referenceCheck": reference_check is not None,
            "figures": [
                {"src": link(f["src"]), "caption": _caption(f["caption"]), "tile": f.get("tile")} for f in figures or []
            ],
        }
        (out / "manifest.js").write_text("LCV.manifest(" + json.dumps(manifest, separators=(",", ":")) + ");\n")
        if reference_check is not None:
            (out / "reference_check.js").write_text(reference_check_script(reference_check, mosaic))
        for name in ("viewer.js", "viewer.css"):
            shutil.copyfile(ASSETS / name, out / name)
        page = (ASSETS / "map.html").read_text()
        page = page.replace("{{title}}", html.escape(title)).replace("{{folder}}", html.escape(assets_dir.name))
        with atomic_path(html_path) as tmp:
            tmp.write_text(page)
    log.info(
        "viewer %s: %d x %d pixels, %d levels, %d tiles",
        html_path,
        mosaic.width,
        mosaic.height,
        len(present),
        len(tiles),
    )
