import math
import os
import sys
from datetime import date

from shapely.geometry import box

# The Snakefile and the scripts import the landcover package from this checkout (scripts/ holds
# a link to it, and Snakemake puts a script's folder on its path), also inside `--sdm conda` envs.
sys.path.insert(0, workflow.basedir)

from landcover import config as config_checks
from landcover.split import split_tiles

config_checks.check(config)

if workflow.is_main_process:
    from snakemake.logging import logger

    from landcover import runlock

    if runlock.claim(".snakemake"):
        logger.warning(
            "Removed the lock left by an earlier run that was killed (no other run is alive here)."
        )

RESULTS = config["results"]
AREA = config["area"]
SOURCE = AREA["source"]
CLASSES = config["classes"]
CLASS_IDS = [c["id"] for c in CLASSES]
ENV = "../../envs/landcover.yaml"


def area_bounds():
    """The synthetic area's extent; real sources take theirs from `area.aoi`."""
    syn = config["synthetic"]
    size = AREA["tile_size_m"]
    minx = syn["origin"][0] // size * size
    miny = syn["origin"][1] // size * size
    return [minx, miny, minx + syn["tiles_x"] * size, miny + syn["tiles_y"] * size]


def list_tiles():
    """Tile ids of the run, decided when the workflow is parsed (cheap: geometry only)."""
    if SOURCE == "eopatch":
        from landcover.ingest.eopatch import list_tiles as eopatch_tiles

        tiles = eopatch_tiles(
            config["eopatch"]["path"], config["eopatch"].get("subtiles")
        )
        wanted = AREA["tiles"]
        unknown = sorted(set(wanted) - set(tiles))
        if unknown:
            raise ValueError(
                f"area.tiles names tiles that are not in the EOPatch folder: {', '.join(unknown)}"
            )
        return sorted(wanted) if wanted else sorted(tiles)
    from landcover.grid import make_grid, read_aoi

    aoi = box(*area_bounds()) if SOURCE == "synthetic" else read_aoi(AREA["aoi"])
    grid = make_grid(
        aoi,
        AREA["tile_size_m"],
        AREA["resolution_m"],
        crs=AREA["crs"],
        tiles=AREA["tiles"] or None,
    )
    return list(grid.tile_id)


TILES = list_tiles()
TRAIN_TILES, TEST_TILES = split_tiles(
    TILES,
    config["split"]["test_tiles"],
    config["split"]["test_fraction"],
    config["split"]["seed"],
)
PLOT_TILES = [t for t in config["report"]["plot_tiles"] if t in TILES]


wildcard_constraints:
    tile="|".join(TILES),


def result(path):
    return os.path.join(RESULTS, path)


LIBRARIES_MB = 250  # a job's Python, numpy, GDAL and LightGBM, before any data


def tile_pixels():
    return (AREA["tile_size_m"] / AREA["resolution_m"]) ** 2


def memory_request(peak_mb, floor_mb):
    """mem_mb for a job whose measured or modelled peak RSS is `peak_mb`: x1.3 + 200 MB, in 250 MB steps."""
    return max(floor_mb, math.ceil((1.3 * peak_mb + 200) / 250) * 250)


def tile_mem_mb(peak_mb_10km):
    """A per-tile job's memory request from its peak RSS on a 10 km tile (1000 x 1000 px, 70 frames;
    benchmarks/RESULTS.md): the data part scaled to this run's tile size, at least 1 GB.
    """
    data_mb = (peak_mb_10km - LIBRARIES_MB) * tile_pixels() / 1e6
    return memory_request(LIBRARIES_MB + data_mb, 1000)


def context_mem_mb():
    """The context job's request, modelled (not measured): the tile's feature cube padded by its halo, the
    smoothed scales and the output (the features once more and each scale), float32, at least 1 GB.
    """
    scales = len(config["features"]["context_sigmas"])
    cube_mb = model_columns() / (1 + scales) * tile_pixels() * 4 / 2**20
    return memory_request(LIBRARIES_MB + cube_mb * (2 + 2 * scales), 1000)


def model_columns():
    """Per-date model inputs: each feature on each date, and its smoothed copies with spatial context on."""
    dates = config["dates"]
    days = (date.fromisoformat(dates["end"]) - date.fromisoformat(dates["start"])).days
    features = config["features"]
    n_features = len(features["bands"]) + len(features["indices"])
    return (
        (days // dates["step_days"] + 1)
        * n_features
        * (1 + len(features["context_sigmas"]))
    )


def train_mem_mb():
    """The training job's memory request for at most max_samples (or fraction) pixels per training tile:
    one float32 matrix, LightGBM's binned copy (1 byte a value) and its binning sample (at most 200 000
    rows of float64), at least 2 GB (benchmarks/RESULTS.md, row 6)."""
    sampling = config["sampling"]
    pixels = tile_pixels()
    per_tile = (
        pixels * sampling["fraction"]
        if sampling["fraction"]
        else sampling["max_samples"] or pixels
    )
    samples = len(TRAIN_TILES) * min(per_tile, pixels)
    columns = model_columns() * (2 if config["features"]["temporal_stats"] else 1)
    data_mb = (samples * 5 + min(samples, 200_000) * 8) * columns / 2**20
    return memory_request(LIBRARIES_MB + data_mb, 2000)


def tile_log(rule_name):
    return f"logs/{rule_name}/{{tile}}.log"


def grid_params():
    return {
        "tile_size_m": AREA["tile_size_m"],
        "resolution_m": AREA["resolution_m"],
        "crs": AREA["crs"],
    }


def eopatch_reference_raster():
    """`mask_timeless/<name>` when the reference is a raster inside each EOPatch, else None."""
    if SOURCE != "eopatch" or config["reference"]["path"]:
        return None
    feature = config["eopatch"].get("reference")
    return feature if feature and not feature.endswith(".gpkg") else None


def reference_polygons(wildcards):
    """The land-use register: per tile for the synthetic area, per patch or one file otherwise."""
    if SOURCE == "synthetic":
        return result(f"synthetic/reference/{wildcards.tile}.gpkg")
    if SOURCE == "eopatch" and not config["reference"]["path"]:
        from landcover.ingest.eopatch import parse_tile_id

        patch, _ = parse_tile_id(wildcards.tile, config["eopatch"].get("subtiles"))
        return os.path.join(
            config["eopatch"]["path"], patch, config["eopatch"]["reference"]
        )
    return config["reference"]["path"]


def tile_bounds():
    """Each tile's (minx, miny, maxx, maxy), for the spatial context's neighbours; computed once, on demand."""
    global TILE_BOUNDS
    if TILE_BOUNDS is None:
        if SOURCE == "eopatch":
            from landcover.ingest.eopatch import eopatch_grid, parse_tile_id

            subtiles = config["eopatch"].get("subtiles")
            TILE_BOUNDS = {}
            for tile in TILES:
                patch, subtile = parse_tile_id(tile, subtiles)
                path = os.path.join(config["eopatch"]["path"], patch)
                TILE_BOUNDS[tile] = eopatch_grid(path, tile, subtile).bounds
        else:
            from landcover.grid import tile_grid

            TILE_BOUNDS = {
                tile: tile_grid(tile, **grid_params()).bounds for tile in TILES
            }
    return TILE_BOUNDS


TILE_BOUNDS = None


def neighbour_features(wildcards):
    """The features of the tiles around this one: the spatial context reads its halo from them."""
    from landcover.context import touching_tiles

    return [
        result(f"features/{tile}.nc")
        for tile in touching_tiles(tile_bounds(), wildcards.tile)
    ]


def model_features(wildcards):
    """What the samples and the prediction read: the context file when spatial context is on."""
    if config["features"]["context_sigmas"]:
        return result(f"context/{wildcards.tile}.nc")
    return result(f"features/{wildcards.tile}.nc")


def samples_of(tiles):
    return [result(f"samples/{tile}.parquet") for tile in tiles]


def maps_of(tiles):
    return [result(f"maps/{tile}.tif") for tile in tiles]


REPORT_FIGURES = [
    "confusion_true",
    "confusion_predicted",
    "class_frequencies",
    "roc",
    "feature_importance",
]


def final_outputs():
    outputs = [
        result("landcover.tif"),
        result("landcover_preview.png"),
        result("report/metrics.json"),
    ]
    outputs += [result(f"plots/{tile}.png") for tile in PLOT_TILES]
    if SOURCE != "eopatch":  # EOPatches bring their own grid
        outputs.append(result("grid.gpkg"))
    if SOURCE == "synthetic":
        outputs.append(result("report/truth_scores.json"))
    return outputs
