"""The reference check on the real patch: its maps (the eopatch workflow's) against the register's own polygons.

`python -m tools.reference_check_patch [results/eopatch]` runs after `snakemake --configfile config/eopatch.yaml`:
the patch's workflow checks the LULC raster's runs of one class; this checks the RABA polygons the raster was drawn
from (`vector_timeless/LULC.gpkg`), prints how many are flagged, and writes docs/reference_check.md with pictures of
the five worst flagged (docs/reference_check/). Thresholds are the schema's defaults.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import yaml

from landcover.classes import EOLEARN_CLASSES
from landcover.raster_io import save_png
from landcover.report import reference_check

REPO = Path(__file__).resolve().parents[1]
POLYGONS = REPO / "data" / "eolearn-testeopatch" / "TestEOPatch" / "vector_timeless" / "LULC.gpkg"
TILES = ("TestEOPatch_r0_c0", "TestEOPatch_r0_c1")
COMMAND = "python -m tools.reference_check_patch  # after snakemake --configfile config/eopatch.yaml"


def schema_settings() -> dict:
    """The reference check's thresholds as the schema's defaults set them."""
    report = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())["properties"]["report"]
    defaults = {name: entry["default"] for name, entry in report["properties"].items()}
    return {
        "high_confidence": defaults["high_confidence"],
        "flag_share": defaults["flag_share"],
        "min_pixels": defaults["flag_min_pixels"],
    }


PICTURES = 5


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default=REPO / "results" / "eopatch", type=Path)
    parser.add_argument("--out", default=REPO / "docs" / "reference_check.md", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = schema_settings()
    maps = [args.results / "maps" / f"{tile}.tif" for tile in TILES]
    confidences = [args.results / "maps" / f"{tile}_confidence.tif" for tile in TILES]
    tiles = [
        {"tile": tile, "map": m, "confidence": c, "polygons": POLYGONS} for tile, m, c in zip(TILES, maps, confidences)
    ]
    table = reference_check.check_tiles(tiles, EOLEARN_CLASSES, "LULC_ID", **settings)
    flagged = table[table["flagged"]]
    pictures = args.out.with_suffix("")
    lines = [
        "# Reference check on the real patch",
        "",
        (
            f"Written by `{COMMAND}`. The eo-learn test patch's map (trained on the left half, tested on the right) against "
            f"the {len(table)} RABA polygons of `{POLYGONS.relative_to(REPO)}` that hold a mapped pixel: "
            f"**{len(flagged)} flagged** (at least {100 * settings['flag_share']:.0f} % of their mapped pixels, and "
            f"{settings['min_pixels']} or more, mapped as another class with a confidence of "
            f"{settings['high_confidence']} % or more). A flagged polygon is a register error, a map error, or land use "
            "that is not land cover: the airport is filed as artificial surface and is mostly grass."
        ),
        "",
        (
            "| rank | RABA polygon (fid) | register class | mapped pixels | confidently other | the map prefers | "
            "its confidence | flagged |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in table.head(20).itertuples():
        lines.append(
            f"| {row.rank} | {row.source_fid} | {row.class_name} | {row.pixels} | {100 * row.other_share:.0f} % | "
            f"{row.map_class_name} | {row.map_confidence:.0f} % | {'yes' if row.flagged else 'no'} |"
        )
    lines.append("")
    pictures.mkdir(parents=True, exist_ok=True)
    for _, row in flagged.head(PICTURES).iterrows():
        path = pictures / f"rank{row['rank']}.png"
        save_png(reference_check.polygon_figure(row, maps, confidences, EOLEARN_CLASSES), path, 90)
        lines += [f"![rank {row['rank']}]({pictures.name}/{path.name})", ""]
    args.out.write_text("\n".join(lines))
    print(f"{len(flagged)} of {len(table)} polygons flagged; worst five pictured in {pictures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
