"""Reference QA: the reference polygons that the map contradicts with confidence.

A land-use register misfiles parcels (and land use is not land cover: an airport's grass is filed as artificial
surface). Per reference polygon of the tiles: its mapped pixels, the share of them the map assigns to another class
with a confidence of at least `high_confidence` percent (`maps/<tile>_confidence.tif`), the class the map prefers
there (the most frequent one) and the map's mean confidence in it. Those with `min_pixels` mapped pixels and a share
of at least `flag_share` are flagged. Polygons are ranked by `score`, the lower bound of the share's 95 % Wilson
interval: a small polygon wholly contradicted ranks below a large one nearly so, whose share its pixels carry better
(neighbouring pixels are not independent, so the bound orders, it does not test). A polygon cut by tile borders is counted
once, over all of its tiles. Where the reference is a raster (an EOPatch's LULC), its connected runs of one class are
the polygons.
"""

from __future__ import annotations

import logging
from pathlib import Path
from xml.sax.saxutils import escape

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import rasterio.features
import shapely
from rasterio.warp import transform_bounds
from scipy.stats import norm

from landcover.atomic import atomic_path
from landcover.classes import NO_DATA, LandCoverClass
from landcover.stack import TileGrid

log = logging.getLogger(__name__)

KNOWN_ERRORS = ("misfiled", "true_id")  # the synthetic register's own record of its errors, carried when present
LAYER = "reference_check"
WORST = 20  # rows of the report's table


def read_polygons(path, class_attribute: str, grid: TileGrid) -> gpd.GeoDataFrame:
    """The polygons near the tile, in its CRS: `source`, `source_fid` (its feature id), `class_id` (and `KNOWN_ERRORS` where present)."""
    info = pyogrio.read_info(path)
    if info["crs"] is None:
        raise ValueError(f"reference polygons {path}: has no CRS")
    bbox = transform_bounds(grid.crs, rasterio.crs.CRS.from_user_input(info["crs"]), *grid.bounds, densify_pts=21)
    polygons = gpd.read_file(path, bbox=bbox, fid_as_index=True)
    if class_attribute not in polygons.columns:
        raise ValueError(f"reference polygons {path}: no attribute {class_attribute!r}")
    polygons = polygons.to_crs(grid.crs.to_wkt())
    out = gpd.GeoDataFrame(
        {
            "source": Path(path).name,
            "source_fid": polygons.index.to_numpy(np.int64),
            "class_id": pd.to_numeric(polygons[class_attribute]).to_numpy(np.int64),
            **{name: polygons[name].to_numpy() for name in KNOWN_ERRORS if name in polygons.columns},
        },
        geometry=shapely.make_valid(polygons.geometry.to_numpy()),
        crs=grid.crs.to_wkt(),
    )
    return out[out["class_id"] != NO_DATA].reset_index(drop=True)


def raster_polygons(reference_path, grid: TileGrid) -> gpd.GeoDataFrame:
    """A reference raster's connected runs of one class (band 1) as polygons, for references without polygons."""
    with rasterio.open(reference_path) as src:
        labels = src.read(1)
    shapes = rasterio.features.shapes(labels, mask=labels != NO_DATA, transform=grid.transform, connectivity=4)
    geoms, values = zip(*((shapely.geometry.shape(g), int(v)) for g, v in shapes)) if labels.any() else ((), ())
    return gpd.GeoDataFrame(
        {
            "source": grid.tile_id,
            "source_fid": np.arange(len(values), dtype=np.int64),
            "class_id": np.array(values, np.int64),
        },
        geometry=list(geoms),
        crs=grid.crs.to_wkt(),
    )


def tile_counts(polygons: gpd.GeoDataFrame, map_path, confidence_path, high_confidence: int) -> pd.DataFrame:
    """Per (polygon, map class): mapped pixels, their summed confidence and those confidently of another class."""
    with rasterio.open(map_path) as map_src, rasterio.open(confidence_path) as confidence_src:
        labels, confidence, transform = map_src.read(1), confidence_src.read(1), map_src.transform
        if labels.shape != confidence.shape:
            raise ValueError(f"{confidence_path}: {confidence.shape} pixels, its map {map_path} {labels.shape}")
    index = np.zeros(labels.shape, dtype=np.int32)
    shapes = [(geom, i + 1) for i, geom in enumerate(polygons.geometry) if not geom.is_empty]
    if shapes:
        rasterio.features.rasterize(shapes, out=index, transform=transform, all_touched=False)
    inside = (index > 0) & (labels != NO_DATA)
    polygon = index[inside] - 1
    mapped, sure = labels[inside], confidence[inside].astype(np.int64)
    other = (mapped != polygons["class_id"].to_numpy()[polygon]) & (sure >= high_confidence)
    pixels = pd.DataFrame({"polygon": polygon, "map_class": mapped, "confidence": sure, "confident_other": other})
    counts = pixels.groupby(["polygon", "map_class"]).agg(
        pixels=("confidence", "size"), confidence=("confidence", "sum"), confident_other=("confident_other", "sum")
    )
    counts = counts.reset_index()
    keys = polygons[["source", "source_fid"]].iloc[counts["polygon"]].reset_index(drop=True)
    return pd.concat([keys, counts.drop(columns="polygon")], axis=1)


def wilson_lower_bound(successes, trials, z: float = float(norm.ppf(0.975))) -> np.ndarray:
    """The lower end of the Wilson score interval of a proportion (Wilson 1927)."""
    k, n = np.asarray(successes, float), np.asarray(trials, float)
    share = k / n
    centre = share + z * z / (2 * n)
    spread = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def rank(
    polygons: gpd.GeoDataFrame, counts: pd.DataFrame, classes, flag_share: float, min_pixels: int
) -> gpd.GeoDataFrame:
    """The checked polygons (those with a mapped pixel), worst first, with their scores and `flagged`."""
    names = {c.id: c.name for c in classes}
    per_class = counts.groupby(["source", "source_fid", "map_class"], sort=False).sum().reset_index()
    total = per_class.groupby(["source", "source_fid"]).agg(
        pixels=("pixels", "sum"), confident_other=("confident_other", "sum")
    )
    preferred = per_class.sort_values(["pixels", "map_class"], ascending=[False, True]).drop_duplicates(
        ["source", "source_fid"]
    )
    preferred = preferred.set_index(["source", "source_fid"])
    table = total.join(preferred[["map_class", "pixels", "confidence"]].rename(columns={"pixels": "preferred_pixels"}))
    shapes = polygons.drop_duplicates(["source", "source_fid"]).set_index(["source", "source_fid"])
    table = table.join(shapes).reset_index()
    table["other_share"] = table["confident_other"] / table["pixels"]
    table["map_confidence"] = table["confidence"] / table["preferred_pixels"]
    table["score"] = wilson_lower_bound(table["confident_other"], table["pixels"])
    table["flagged"] = (table["other_share"] >= flag_share) & (table["pixels"] >= min_pixels)
    table = table.sort_values(["score", "source", "source_fid"], ascending=[False, True, True])
    table = table.reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    table["class_name"] = table["class_id"].map(names)
    table["map_class_name"] = table["map_class"].map(names)
    columns = ["rank", "source", "source_fid", "class_id", "class_name", "pixels", "other_share", "score", "map_class"]
    columns += ["map_class_name", "map_confidence", "flagged", *(c for c in KNOWN_ERRORS if c in table.columns)]
    out = gpd.GeoDataFrame(table[columns], geometry=table["geometry"].to_numpy(), crs=polygons.crs)
    out["map_class"] = out["map_class"].astype(np.int64)
    return out


def map_grid(tile_id: str, map_path) -> TileGrid:
    with rasterio.open(map_path) as src:
        return TileGrid(tile_id, src.crs, src.transform, src.height, src.width)


def check_tiles(
    tiles: list[dict], classes, class_attribute: str, high_confidence: int, flag_share: float, min_pixels: int
) -> gpd.GeoDataFrame:
    """`rank` over tiles, each {"tile", "map", "confidence", "polygons" (a file) or "reference" (a raster)}."""
    polygons, counts = [], []
    for tile in tiles:
        grid = map_grid(tile["tile"], tile["map"])
        if tile.get("polygons"):
            found = read_polygons(tile["polygons"], class_attribute, grid)
        else:
            found = raster_polygons(tile["reference"], grid)
        polygons.append(found)
        counts.append(tile_counts(found, tile["map"], tile["confidence"], high_confidence))
        log.info("tile %s: %d reference polygons", grid.tile_id, len(found))
    polygons = gpd.GeoDataFrame(pd.concat(polygons, ignore_index=True), crs=polygons[0].crs)
    table = rank(polygons, pd.concat(counts, ignore_index=True), classes, flag_share, min_pixels)
    log.info("%d polygons checked, %d flagged", len(table), int(table["flagged"].sum()))
    return table


def detection(table: pd.DataFrame, top: int | None = None) -> dict:
    """Precision and recall of the flagged polygons against the register's known errors (`misfiled`), and the
    precision among the `top` ranked flagged ones (all of them when None)."""
    if "misfiled" not in table.columns:
        raise ValueError(
            "the checked polygons carry no `misfiled` column: only the synthetic register knows its errors"
        )
    flagged, misfiled = table["flagged"].to_numpy(bool), table["misfiled"].to_numpy(bool)
    top_flagged = table[table["flagged"]].sort_values("rank").head(top or len(table))
    hits = int((flagged & misfiled).sum())
    return {
        "polygons": len(table),
        "misfiled": int(misfiled.sum()),
        "flagged": int(flagged.sum()),
        "flagged_and_misfiled": hits,
        "precision": float(hits / flagged.sum()) if flagged.any() else None,
        "recall": float(hits / misfiled.sum()) if misfiled.any() else None,
        "top": len(top_flagged),
        "precision_top": float(top_flagged["misfiled"].mean()) if len(top_flagged) else None,
    }


def measured(gpkg_path, top: int | None = None) -> dict:
    """`detection` of a synthetic run's `report/reference_check.gpkg` (for `make accuracy`)."""
    return detection(gpd.read_file(gpkg_path, layer=LAYER), top)


def summary(table: gpd.GeoDataFrame, settings: dict) -> dict:
    """metrics.json's `reference_check`: counts, the settings and the worst polygons."""
    worst = table.head(WORST).drop(columns="geometry")
    return {
        "polygons": len(table),
        "flagged": int(table["flagged"].sum()),
        "settings": settings,
        "worst": json_rows(worst),
        "detection": detection(table) if "misfiled" in table.columns else None,
        "note": (
            "A flagged polygon is one the map contradicts with confidence: a register error, a map error, or a "
            "land-use class that is not the land cover (the seed's airport is filed as artificial surface and "
            "is mostly grass)."
        ),
    }


def json_rows(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def qml_style(classes: tuple[LandCoverClass, ...]) -> str:
    """A QGIS style: outlines coloured by the class the map prefers, thick where flagged, labelled by rank."""
    rules = []
    for c in classes:
        if c.id == NO_DATA:
            continue
        for flagged, width in ((1, 1.2), (0, 0.3)):
            rules.append((f'"map_class" = {c.id} AND "flagged" = {flagged}', c.name, c.colour, width, len(rules)))
    symbols = "".join(
        f'<symbol name="{i}" type="fill" alpha="1"><layer class="SimpleFill">'
        '<Option type="Map"><Option name="style" value="no" type="QString"/>'
        f'<Option name="outline_color" value="{colour}" type="QString"/>'
        f'<Option name="outline_width" value="{width}" type="QString"/></Option></layer></symbol>'
        for _, _, colour, width, i in rules
    )
    rule_xml = "".join(
        f'<rule key="r{i}" symbol="{i}" label="{escape(name)}{" (flagged)" if width > 1 else ""}" '
        f'filter="{escape(expression, {chr(34): "&quot;"})}"/>'
        for expression, name, colour, width, i in rules
    )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28" styleCategories="Symbology">'
        f'<renderer-v2 type="RuleRenderer"><rules key="root">{rule_xml}</rules><symbols>{symbols}</symbols>'
        "</renderer-v2></qgis>\n"
    )


def write(table: gpd.GeoDataFrame, path, classes: tuple[LandCoverClass, ...]) -> None:
    """The ranked GeoPackage and its QGIS style beside it (`<name>.qml`, which QGIS loads with the layer)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        table.to_file(tmp, driver="GPKG", layer=LAYER)
    with atomic_path(path.with_suffix(".qml")) as tmp:
        tmp.write_text(qml_style(classes))


def polygon_figure(row, map_paths, confidence_paths, classes: tuple[LandCoverClass, ...], margin: int = 15):
    """One checked polygon over the map and the map's confidence around it (`margin` pixels), outlined in black."""
    from matplotlib.figure import Figure
    from rasterio.merge import merge

    from landcover.maps import class_rgb, legend_handles

    geom = row.geometry
    with rasterio.open(map_paths[0]) as src:
        res = src.res[0]
    left, bottom, right, top = geom.bounds
    bounds = (left - margin * res, bottom - margin * res, right + margin * res, top + margin * res)
    labels, transform = merge([str(p) for p in map_paths], bounds=bounds, nodata=NO_DATA)
    confidence, _ = merge([str(p) for p in confidence_paths], bounds=bounds, nodata=0)
    extent = (
        bounds[0],
        bounds[0] + labels.shape[2] * transform.a,
        bounds[3] + labels.shape[1] * transform.e,
        bounds[3],
    )
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    for index, (picture, title) in enumerate(
        ((class_rgb(labels[0], classes), "map"), (confidence[0], "confidence of the map (%)"))
    ):
        ax = fig.add_subplot(1, 2, index + 1)
        image = ax.imshow(picture, extent=extent, interpolation="nearest", vmin=0, vmax=100, cmap="viridis")
        for part in shapely.get_parts(geom):
            for ring in (part.exterior, *part.interiors):
                ax.plot(*ring.xy, color="black" if index == 0 else "white", linewidth=1.5)
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        if index == 1:
            fig.colorbar(image, ax=ax, fraction=0.046)
    fig.legend(handles=legend_handles(classes, np.unique(labels)), loc="outside lower center", ncol=5, frameon=False)
    fig.suptitle(
        f"#{row['rank']}: {row['class_name']} in the reference, {100 * row['other_share']:.0f} % of its "
        f"{row['pixels']} pixels mapped as another class with high confidence; the map prefers "
        f"{row['map_class_name']} ({row['map_confidence']:.0f} %)"
    )
    return fig
