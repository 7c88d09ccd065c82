"""Snakemake script: the reference polygons the map contradicts with confidence, ranked (reference_check.gpkg)."""

from landcover.classes import classes_from_config
from landcover.logs import log_to
from landcover.report import reference_check

sm = snakemake
log_to(sm.log[0])
classes = classes_from_config(sm.params.classes)

tiles = [
    {"tile": tile, "map": map_path, "confidence": confidence, "reference": reference, "polygons": polygons}
    for tile, map_path, confidence, reference, polygons in zip(
        sm.params.tiles,
        sm.input.maps,
        sm.input.confidence,
        sm.input.reference,
        sm.input.polygons or [None] * len(sm.params.tiles),
    )
]
table = reference_check.check_tiles(
    tiles, classes, sm.params.class_attribute, sm.params.high_confidence, sm.params.flag_share, sm.params.min_pixels
)
reference_check.write(table, sm.output.gpkg, classes)
