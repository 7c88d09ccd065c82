import os
import sys

from shapely.geometry import box

# The Snakefile and the scripts import the landcover package from this checkout (scripts/ holds
# a link to it, and Snakemake puts a script's folder on its path), also inside `--sdm conda` envs.
sys.path.insert(0, workflow.basedir)

from landcover import config as config_checks
from landcover import resources
from landcover.split import split_tiles

config_checks.check(config)

if workflow.is_main_process:
    from landcover import runlock

    # Snakemake's own lock is never touched here: this only marks the run as alive, so that
    # `landcover unlock` can tell a killed run's stale lock from a live one (landcover/runlock.py).
    runlock.hold(".snakemake")

RESULTS = config["results"]
AREA = config["area"]
SOURCE = AREA["source"]
CLASSES = config["classes"]
CLASS_IDS = [c["id"] for c in CLASSES]
ENV = "../../envs/landcover.yaml"
SYNTHETIC_CRS = "EPSG:32633"  # the synthetic area lies in Slovenia


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

    if SOURCE == "synthetic":
        AREA["crs"] = AREA["crs"] or SYNTHETIC_CRS
    aoi = box(*area_bounds()) if SOURCE == "synthetic" else read_aoi(AREA["aoi"])
    grid = make_grid(
        aoi,
        AREA["tile_size_m"],
        AREA["resolution_m"],
        crs=AREA["crs"],
        tiles=AREA["tiles"] or None,
    )
    # null: the UTM zone of the AOI's centroid, fixed here once for every job
    AREA["crs"] = AREA["crs"] or grid.crs.to_string()
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


RESOURCES = resources.load_table(
    os.path.join(workflow.basedir, "workflow", "resources.yaml")
)


def tile_pixels():
    return (AREA["tile_size_m"] / AREA["resolution_m"]) ** 2


def margin_px():
    """The border (pixels) each tile's stack, clouds and features read from the source around the tile: the
    spatial context's reach (landcover.context), 0 when context is off. No job reads another tile's files.
    """
    from landcover.context import halo_pixels

    return halo_pixels(config["features"]["context_sigmas"])


def stack_pixels():
    """Pixels of a tile grown by its margin: what the per-tile jobs up to the features hold."""
    side = AREA["tile_size_m"] / AREA["resolution_m"] + 2 * margin_px()
    return side**2


def tile_mem_mb(job):
    """mem_mb of a per-tile job: its peak measured by `make bench` (workflow/resources.yaml) scaled to this
    run's tile size, its model inputs' columns and, once the stack exists, its number of frames; doubled,
    tripled on a retry.
    """
    measured = RESOURCES["tile_jobs"][job]

    def mem_mb(wildcards, input, attempt):
        frames = resources.stack_frames(getattr(input, "stack", None))
        peak = resources.tile_peak_mb(
            measured, stack_pixels(), frames, resources.model_columns(config)
        )
        return resources.memory_request(peak, 1000, attempt)

    return mem_mb


def train_mem_mb(wildcards, attempt):
    """The training job's mem_mb for at most max_samples (or fraction) pixels per training tile
    (landcover.resources.train_peak_mb, measured by `make bench`), at least 2 GB."""
    sampling = config["sampling"]
    pixels = tile_pixels()
    per_tile = (
        pixels * sampling["fraction"]
        if sampling["fraction"]
        else sampling["max_samples"] or pixels
    )
    samples = len(TRAIN_TILES) * min(per_tile, pixels)
    columns = resources.model_columns(config) * (
        2 if config["features"]["temporal_stats"] else 1
    )
    peak = resources.train_peak_mb(RESOURCES["train"], samples, columns)
    return resources.memory_request(peak, 2000, attempt)


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


def samples_of(tiles):
    return [result(f"samples/{tile}.parquet") for tile in tiles]


def maps_of(tiles):
    return [result(f"maps/{tile}.tif") for tile in tiles]


REPORT_FIGURES = (
    {  # the report rule's `report/<name>.png` and its subcategory in the report
        "confusion_true": "Confusion matrices",
        "confusion_predicted": "Confusion matrices",
        "class_frequencies": "Training set",
        "roc": "Scores",
        "feature_importance": "Model",
        "area": "Area estimates",
    }
)


def frame_records():
    """Each tile's frames kept and dropped per reason, once the features rule writes them (issue 15)."""
    if not any("frames/" in path for path in rules.features.output):
        return []
    return [result(f"frames/{tile}.json") for tile in TILES]


def report_caption(name):
    return os.path.join(workflow.basedir, "workflow", "report", f"{name}.rst")


# The eo-learn post's explanatory figures (workflow/rules/figures.smk), shown in the report and the viewer.
SEED_FIGURES = [
    {
        "src": result("figures/class_evolution.png"),
        "caption": report_caption("class_evolution"),
        "tile": None,
    }
] + [
    {
        "src": result(f"figures/{tile}_{name}.png"),
        "caption": report_caption(name),
        "tile": tile,
    }
    for tile in PLOT_TILES
    for name in ("interpolation", "negative_buffer")
]


def final_outputs():
    outputs = [
        result("landcover.tif"),
        result("landcover.tif.aux.xml"),
        result("landcover.qml"),
        result("landcover_preview.png"),
        result("report/metrics.json"),
    ]
    outputs += [result(f"plots/{tile}.png") for tile in PLOT_TILES]
    outputs += [result("map.html")] + [figure["src"] for figure in SEED_FIGURES]
    if SOURCE != "eopatch":  # EOPatches bring their own grid
        outputs.append(result("grid.gpkg"))
    if SOURCE == "synthetic":
        outputs.append(result("report/truth_scores.json"))
    return outputs


def sentinelhub_bands(wildcards):
    """Sentinel Hub downloads only what the tile uses (landcover/ingest/sentinelhub.py)."""
    from landcover.ingest.sentinelhub import download_bands

    return download_bands(config, wildcards.tile)


def sentinelhub_mem_mb(wildcards):
    """The download's stack (uint16 bands, data mask) and one band resampled as float32, per overpass day
    (at most one in five) and tile pixel, over the cloud job's measured Python and libraries (a model, not
    measured by `make bench`: the download needs the service)."""
    from landcover.ingest.sentinelhub import assumed_days

    days = assumed_days(config["sentinelhub"]["time_range"])
    data_mb = (
        days * stack_pixels() * (2 * len(sentinelhub_bands(wildcards)) + 8) / 2**20
    )
    base_mb = RESOURCES["tile_jobs"]["cloud_mask"]["base_mb"]
    return resources.memory_request(base_mb + data_mb, 1000)


def log_sentinelhub_plan():
    """Requests and processing units of the run before any is spent (in `snakemake -n` too)."""
    from snakemake.logging import logger

    from landcover.grid import tile_grid
    from landcover.ingest.sentinelhub import format_plan, plan_tile

    plans = [
        plan_tile(config, tile_grid(tile, **grid_params(), margin_px=margin_px()))
        for tile in TILES
    ]
    logger.info(
        format_plan(plans)
        + "\n(`landcover plan --configfile ...` asks the catalogue for each tile's days)"
    )
