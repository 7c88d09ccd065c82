"""Snakemake script: one tile of the synthetic area, its raw L1C-like stack and its truth."""

from landcover import stack
from landcover.grid import tile_grid
from landcover.logs import log_to
from landcover.synthetic import synthesize_tile

log = log_to(snakemake.log[0])
params = snakemake.params

grid = tile_grid(snakemake.wildcards.tile, params.tile_size_m, params.resolution_m, params.crs)
raw, truth = synthesize_tile(grid, int(params.seed), year=int(params.year), acquisitions=int(params.acquisitions))
stack.write(raw, snakemake.output.stack)
stack.write(truth, snakemake.output.truth)
