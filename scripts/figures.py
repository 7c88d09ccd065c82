"""Snakemake script: the seed's explanatory figures for one tile (interpolation, negative buffer)."""

from landcover import figures, stack
from landcover.classes import classes_from_config
from landcover.grid import crop_to_tile
from landcover.logs import log_to

sm = snakemake
log = log_to(sm.log[0])
tile = sm.wildcards.tile

with (
    stack.open(sm.input.stack, required=("bands", "is_data")) as raw,
    stack.open(sm.input.clouds, required=("cloud_mask",)) as clouds,
    stack.open(sm.input.features, required=("features",)) as features,
):
    shown = figures.interpolation_stack(
        *map(crop_to_tile, (raw, clouds, features)), sm.output.interpolation, sm.params.dpi
    )
log.info("tile %s: raw acquisitions shown %s", tile, ", ".join(shown))
counts = figures.negative_buffer(
    sm.input.reference, classes_from_config(sm.params.classes), sm.output.negative_buffer, sm.params.dpi
)
log.info("tile %s: %d labelled pixels, %d after the negative buffer", tile, counts["before"], counts["after"])
