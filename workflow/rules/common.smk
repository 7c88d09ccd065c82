import os

from landcover import resources
from landcover.config import (
    area_crs,
    area_grid,
    check,
    margin_px as area_margin_px,
    worth_compiling,
)
from landcover.split import split_tiles

# `landcover` is imported from this checkout: Snakemake puts the Snakefile's folder on the path of its own
# process, and scripts/landcover (a link to the package) is on every script's path, also in `--sdm conda`
# environments, which do not install the package.

check(config)

RESULTS = config["results"]
AREA = config["area"]
SOURCE = AREA["source"]
CLASSES = config["classes"]
CLASS_IDS = [c["id"] for c in CLASSES]
ENV = "../../envs/landcover.yaml"


def list_tiles():
    """Tile ids of the run, decided when the workflow is parsed (cheap: geometry only)."""
    if SOURCE == "eopatch":
        from landcover.ingest.eopatch import list_tiles as eopatch_tiles

        tiles = eopatch_tiles(config["eopatch"]["path"], config["eopatch"]["subtiles"])
        wanted = AREA["tiles"]
        unknown = sorted(set(wanted) - set(tiles))
        if unknown:
            raise ValueError(
                f"area.tiles names tiles that are not in the EOPatch folder: {', '.join(unknown)}"
            )
        return sorted(wanted) if wanted else sorted(tiles)
    return list(AREA_GRID.tile_id)


AREA_GRID = None if SOURCE == "eopatch" else area_grid(config)
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
    """The border each tile reads from its source around the tile (landcover.config.margin_px)."""
    return area_margin_px(config)


# the model compiled to native code that predict uses, if the predict.compile setting says so for this run's pixels
COMPILED_MODEL = (
    [result("model/model_compiled.o")]
    if worth_compiling(config["predict"]["compile"], len(TILES) * tile_pixels())
    else []
)


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


# the sample rule's params: the memory budget acts through max_samples
SAMPLING = resources.sample_params(
    config, RESOURCES["train"], len(TRAIN_TILES), tile_pixels()
)


def train_mem_mb(wildcards, attempt):
    """The training job's mem_mb for the samples of every training tile (SAMPLING's max_samples or fraction
    of its pixels; landcover.resources.train_peak_mb, measured by `make bench`), at least 2 GB.
    """
    pixels = tile_pixels()
    per_tile = (
        pixels * SAMPLING["fraction"]
        if SAMPLING["fraction"]
        else SAMPLING["max_samples"] or pixels
    )
    samples = len(TRAIN_TILES) * min(per_tile, pixels)
    columns = resources.train_columns(config)
    peak = resources.train_peak_mb(RESOURCES["train"], samples, columns)
    return resources.memory_request(peak, 2000, attempt)


def intermediate(path):
    """An output nothing reads after this run's jobs: Snakemake deletes it once read (temp()), unless the config
    sets keep_intermediates."""
    return path if config["keep_intermediates"] else temp(path)


def tile_log(rule_name):
    return f"logs/{rule_name}/{{tile}}.log"


def grid_params():
    """The tile grid's settings for the jobs; a null `area.crs` resolved once, here (landcover.config.area_crs)."""
    return {
        "tile_size_m": AREA["tile_size_m"],
        "resolution_m": AREA["resolution_m"],
        "crs": AREA["crs"] if AREA_GRID is None else area_crs(config, AREA_GRID),
    }


def eopatch_reference_raster():
    """`mask_timeless/<name>` when the reference is a raster inside each EOPatch, else None."""
    if SOURCE != "eopatch" or config["reference"]["path"]:
        return None
    feature = config["eopatch"]["reference"]
    return feature if feature and not feature.endswith(".gpkg") else None


def reference_polygons(wildcards):
    """The land-use register: per tile for the synthetic area, per patch or one file otherwise."""
    if SOURCE == "synthetic":
        return result(f"synthetic/reference/{wildcards.tile}.gpkg")
    if SOURCE == "eopatch" and not config["reference"]["path"]:
        from landcover.ingest.eopatch import parse_tile_id

        patch, _ = parse_tile_id(wildcards.tile, config["eopatch"]["subtiles"])
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


def reference_check_settings():
    """The reference check's thresholds (the schema's report section)."""
    return {
        "high_confidence": config["report"]["high_confidence"],
        "flag_share": config["report"]["flag_share"],
        "min_pixels": config["report"]["flag_min_pixels"],
    }


def reference_polygon_files():
    """Each tile's reference polygons; none where the reference is an EOPatch's raster (its runs are checked)."""
    from types import SimpleNamespace

    if eopatch_reference_raster():
        return []
    return [reference_polygons(SimpleNamespace(tile=tile)) for tile in TILES]


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
        result("report/reference_check.gpkg"),
    ]
    outputs += [result(f"plots/{tile}.png") for tile in PLOT_TILES]
    outputs += [result("map.html")] + [figure["src"] for figure in SEED_FIGURES]
    if SOURCE != "eopatch":  # EOPatches bring their own grid
        outputs.append(result("grid.gpkg"))
    if SOURCE == "synthetic":
        outputs.append(result("report/truth_scores.json"))
    return outputs


def sentinelhub_bands(wildcards):
    """Sentinel Hub downloads only what the tile uses (landcover/ingest/sentinelhub_plan.py)."""
    from landcover.ingest.sentinelhub_plan import download_bands

    return download_bands(config, wildcards.tile)


def sentinelhub_mem_mb(wildcards):
    """The download's stack (uint16 bands, data mask) and one band resampled as float32, per overpass day
    (the planning bound, max_overpass_days: never fewer than the catalogue can list while two relative orbits
    a satellite cover a point) and tile pixel, over the cloud job's measured Python and libraries (a model,
    not measured by `make bench`: the download needs the service)."""
    from landcover.ingest.sentinelhub_plan import max_overpass_days

    days = max_overpass_days(config["sentinelhub"]["time_range"])
    data_mb = (
        days * stack_pixels() * (2 * len(sentinelhub_bands(wildcards)) + 8) / 2**20
    )
    base_mb = RESOURCES["tile_jobs"]["cloud_mask"]["base_mb"]
    return resources.memory_request(base_mb + data_mb, 1000)


def log_sentinelhub_plan():
    """Requests and processing units of the run before any is spent (in `snakemake -n` too)."""
    from snakemake.logging import logger

    from landcover.grid import tile_grid
    from landcover.ingest.sentinelhub_plan import format_plan, plan_tile

    plans = [
        plan_tile(config, tile_grid(tile, **grid_params(), margin_px=margin_px()))
        for tile in TILES
    ]
    logger.info(
        format_plan(plans)
        + "\n(`landcover plan --configfile ...` asks the catalogue for each tile's days)"
    )
