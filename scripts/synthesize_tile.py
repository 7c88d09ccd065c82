"""Snakemake script: one tile of the synthetic area, its raw L1C-like stack (the tile and its margin) and its truth
(the tile)."""

from landcover import stack
from landcover.grid import crop_to_tile, tile_grid, with_margin
from landcover.logs import log_to
from landcover.synthetic import synthesize_tile

log = log_to(snakemake.log[0])
params = snakemake.params

grid = tile_grid(snakemake.wildcards.tile, params.tile_size_m, params.resolution_m, params.crs, params.margin_px)
raw, truth = synthesize_tile(grid, int(params.seed), year=int(params.year), acquisitions=int(params.acquisitions))
stack.write(with_margin(raw, params.margin_px), snakemake.output.stack)
stack.write(crop_to_tile(with_margin(truth, params.margin_px)), snakemake.output.truth)
