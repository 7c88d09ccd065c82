"""Snakemake script: a tile's true colour, reference and prediction side by side."""

from landcover import stack
from landcover.classes import classes_from_config
from landcover.grid import crop_to_tile
from landcover.logs import log_to
from landcover.maps import plot_tile

sm = snakemake
log_to(sm.log[0])

with stack.open(sm.input.stack, required=("bands", "is_data")) as ds:
    plot_tile(
        crop_to_tile(ds),
        sm.input.reference,
        sm.input.map,
        classes_from_config(sm.params.classes),
        sm.output.png,
        sm.params.dpi,
    )
