"""Checks of the workflow configuration that a JSON schema cannot express, the settings derived from it (the
area's tile grid and CRS), and the schema's key list.

`python -m landcover.config SCHEMA` prints the Markdown table of config/README.md (`make docs`)."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

INPUT_PATHS = (("area", "aoi"), ("reference", "path"), ("eopatch", "path"), ("local_l1c", "path"))
SYNTHETIC_CRS = "EPSG:32633"  # the synthetic area lies in Slovenia


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the setting."""


def check(config: dict) -> None:
    dates = config["dates"]
    start, end = (dt.date.fromisoformat(str(dates[key])) for key in ("start", "end"))
    if end < start:
        raise ConfigError(f"dates.end ({end}) is before dates.start ({start})")
    source = config["area"]["source"]
    if source in ("local_l1c", "sentinelhub") and not config["area"].get("aoi"):
        raise ConfigError(f"area.aoi is required for area.source={source}")
    if source not in ("synthetic", "eopatch") and not config["reference"].get("path"):
        raise ConfigError(f"reference.path is required for area.source={source}")
    if source == "eopatch" and not (config["reference"].get("path") or config.get("eopatch", {}).get("reference")):
        raise ConfigError("eopatch.reference (a feature inside each patch) or reference.path is required")
    ids = [c["id"] for c in config["classes"]]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"classes: duplicate class ids {sorted(i for i in set(ids) if ids.count(i) > 1)}")
    if len(ids) < 2:
        raise ConfigError("classes: at least two classes are needed")
    sampling = config["sampling"]
    if sampling.get("fraction") is not None and not 0 < sampling["fraction"] <= 1:
        raise ConfigError(f"sampling.fraction must be in (0, 1], got {sampling['fraction']}")
    for section, key in INPUT_PATHS:
        path = (config.get(section) or {}).get(key)
        if path and not os.path.exists(path):
            raise ConfigError(
                f"{section}.{key}: {path} does not exist (relative paths are relative to the working "
                f"directory, {os.getcwd()}, as every path of a Snakemake run)"
            )


def synthetic_bounds(config: dict) -> list[float]:
    """The synthetic area's extent: `synthetic.origin` snapped to the tile size, `tiles_x` by `tiles_y` tiles."""
    synthetic, size = config["synthetic"], config["area"]["tile_size_m"]
    minx = synthetic["origin"][0] // size * size
    miny = synthetic["origin"][1] // size * size
    return [minx, miny, minx + synthetic["tiles_x"] * size, miny + synthetic["tiles_y"] * size]


def area_grid(config: dict):
    """The tile grid (a GeoDataFrame, landcover.grid.make_grid) of a validated config's area: the tiles of
    `area.aoi`, or of the synthetic extent, limited to `area.tiles` when set; in `area.crs`, or where that is
    null the UTM zone of the AOI's centroid (EPSG:32633 for the synthetic area). Not for EOPatch sources,
    which bring their own grid."""
    import shapely

    from landcover.grid import make_grid, read_aoi

    area = config["area"]
    if area["source"] == "eopatch":
        raise ConfigError("area.source eopatch: the EOPatches bring their own grid")
    if area["source"] == "synthetic":
        aoi, crs = shapely.box(*synthetic_bounds(config)), area["crs"] or SYNTHETIC_CRS
    else:
        aoi, crs = read_aoi(area["aoi"]), area["crs"]
    return make_grid(aoi, area["tile_size_m"], area["resolution_m"], crs=crs, tiles=area["tiles"] or None)


def margin_px(config: dict) -> int:
    """The border (pixels) each tile's stack, clouds and features read from the source around the tile, so that no
    job reads another tile's files: the spatial context's reach (landcover.context.halo_pixels), 0 when context is
    off, rounded up to whole cloud blocks (clouds.resolution_m) so that the s2cloudless blocks of a grown tile lie
    where the tile's own blocks lie and every tile's blocks stay on one grid."""
    import math

    from landcover.context import halo_pixels

    halo = halo_pixels(config["features"]["context_sigmas"])
    cloud_m, pixel_m = config["clouds"]["resolution_m"], config["area"]["resolution_m"]
    block = max(1, round(cloud_m / pixel_m)) if cloud_m else 1
    return math.ceil(halo / block) * block


# Compiling costs as long as LightGBM takes for this many pixels more than the compiled model: measured on a model
# with spatial context [1, 3] (621 columns, 8 classes, 100 rounds: 800 trees) on 2 busy cores, 111 s to compile for the
# baseline x86-64 (51 s for the host's own CPU), 40 us a pixel for LightGBM and 13.5 us compiled (one thread each).
# Both grow with the trees, so the ratio holds for other model sizes roughly.
COMPILE_PAYS_PX = 4_000_000


def worth_compiling(setting: str, pixels: float) -> bool:
    """Whether a run that predicts `pixels` pixels should compile its model (`predict.compile`, landcover.trees);
    here, not in landcover.trees, so that reading the config imports no LLVM."""
    if setting == "auto":
        return pixels > COMPILE_PAYS_PX
    return setting == "always"


def area_crs(config: dict, grid) -> str:
    """`area.crs`, or where it is null the CRS `area_grid` chose, so every job gets the same one."""
    return config["area"]["crs"] or grid.crs.to_string()


def schema_markdown(schema: dict) -> str:
    """Every key of the config schema with its type, default and description, as a Markdown table."""
    import json

    rows = ["| key | type | default | description |", "|---|---|---|---|"]

    def kind(node: dict) -> str:
        if "$ref" in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
        if "oneOf" in node:
            return " or ".join(kind(option) for option in node["oneOf"])
        types = node.get("type", "")
        text = " or ".join(types) if isinstance(types, list) else types
        return f"{text} of {node['items']['type']}" if text == "array" and "type" in node.get("items", {}) else text

    def walk(parent: dict, prefix: str) -> None:
        for name, node in parent["properties"].items():
            key = f"{prefix}{name}"
            if key == "classes":
                default = "eo-learn's ten classes"
            elif "default" in node:
                default = f"`{json.dumps(node['default'])}`"
            else:
                default = "required" if name in parent.get("required", ()) else "none (optional)"
            description = " ".join(node.get("description", "").split())
            rows.append(f"| `{key}` | {kind(node)} | {default} | {description} |")
            if node.get("type") == "object" and "properties" in node:
                walk(node, f"{key}.")
            elif node.get("type") == "array" and "properties" in node.get("items", {}):
                walk(node["items"], f"{key}[].")

    walk(schema, "")
    return "\n".join(rows) + "\n"


def undescribed_keys(schema: dict) -> list[str]:
    """Schema keys without a description (config/README.md would list them bare)."""
    missing = []

    def walk(properties: dict, prefix: str) -> None:
        for name, node in properties.items():
            if not node.get("description"):
                missing.append(f"{prefix}{name}")
            walk(node.get("properties", {}), f"{prefix}{name}.")
            walk(node.get("items", {}).get("properties", {}), f"{prefix}{name}[].")

    walk(schema["properties"], "")
    return missing


def config_readme(schema_path: str | os.PathLike) -> str:
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    return README_HEAD + schema_markdown(schema)


README_HEAD = """# Configuration

Generated from `workflow/schemas/config.schema.yaml` by `make docs`; `tests/test_config.py` checks
that the two agree. Edit the schema, then regenerate.

A config names only what differs from these defaults. `config/config.yaml` is the demo (a synthetic area);
Snakemake reads it only when no `--configfile` is given, so a config of your own inherits none of its
choices (its test tiles, its tile pictures). Five lines are enough for a new area:

```yaml
area: {source: sentinelhub, aoi: my-area.geojson}
sentinelhub: {time_range: ["2023-01-01", "2023-12-31"]}
dates: {start: "2023-01-01", end: "2023-12-31"}
reference: {path: my-reference.gpkg, class_attribute: class_id}
```

`snakemake --configfile my-area.yaml` runs it from any working directory; relative paths in a config are
relative to the working directory (Snakemake's rule for every path of a run), and `results`, `logs/` and
`.snakemake/` are written there. `--config key=value` changes one value for one run, over either.
`area.source` picks the source; only that source's section is read.

"""


if __name__ == "__main__":
    sys.stdout.write(config_readme(sys.argv[1]))
