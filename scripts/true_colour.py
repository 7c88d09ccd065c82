"""Snakemake script: a tile's clearest mid-summer acquisition as an RGB GeoTIFF, for the map viewer."""

from landcover import stack
from landcover.grid import crop_to_tile
from landcover.logs import log_to
from landcover.viewer import write_true_colour

sm = snakemake
log = log_to(sm.log[0])

with stack.open(sm.input.stack) as ds:
    title = write_true_colour(crop_to_tile(ds), sm.output.rgb)
log.info("tile %s: %s", sm.wildcards.tile, title)
