"""Snakemake script: the reference raster an EOPatch already holds, cropped to the tile and eroded."""

from pathlib import Path

import numpy as np

from landcover import stack
from landcover.grid import crop_to_tile
from landcover.ingest.eopatch import parse_tile_id, read_eopatch_reference
from landcover.logs import log_to
from landcover.reference import erode, write_labels

log = log_to(snakemake.log[0])
params = snakemake.params
tile = snakemake.wildcards.tile

with stack.open(snakemake.input.stack) as ds:
    grid = stack.grid_of(crop_to_tile(ds))  # the reference is on the tile exactly
patch, _ = parse_tile_id(tile, params.subtiles)
labels = read_eopatch_reference(Path(params.path) / patch, grid, params.feature)
unknown = sorted(set(np.unique(labels).tolist()) - {0} - set(params.class_ids))
if unknown:
    raise ValueError(f"tile {tile}: {params.feature} holds class ids {unknown} outside the configured classes")
eroded = erode(labels, params.erosion_radius)
for value in np.unique(labels):
    log.info(
        "tile %s class %d: %d pixels, %d after erosion", tile, value, (labels == value).sum(), (eroded == value).sum()
    )
write_labels(snakemake.output.reference, grid, labels, eroded)
