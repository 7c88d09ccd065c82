"""Snakemake script: rasterise the reference polygons onto a tile and erode them (negative buffer)."""

import numpy as np

from landcover import stack
from landcover.grid import crop_to_tile
from landcover.logs import log_to
from landcover.reference import erode, rasterize_reference, read_reference, write_labels

log = log_to(snakemake.log[0])
params = snakemake.params
tile = snakemake.wildcards.tile

with stack.open(snakemake.input.stack) as ds:
    grid = stack.grid_of(crop_to_tile(ds))  # the reference is on the tile exactly
if grid.tile_id != tile:
    raise ValueError(f"{snakemake.input.stack}: holds tile {grid.tile_id!r}, expected {tile!r}")

polygons = read_reference(snakemake.input.polygons, params.class_attribute, grid)
labels = rasterize_reference(polygons, grid, params.class_attribute, params.class_ids)
eroded = erode(labels, params.erosion_radius)
for value in sorted(set(np.unique(labels).tolist()) | set(np.unique(eroded).tolist())):
    log.info(
        "tile %s class %d: %d pixels, %d after erosion (radius %d)",
        tile,
        value,
        int((labels == value).sum()),
        int((eroded == value).sum()),
        params.erosion_radius,
    )
write_labels(snakemake.output.reference, grid, labels, eroded)
