"""Snakemake script: Sentinel-2 L1C products on disk resampled onto one tile's 10 m grid."""

from landcover import stack
from landcover.grid import tile_grid, with_margin
from landcover.ingest.local_l1c import read_l1c_tile
from landcover.logs import log_to
from landcover.stack import L1C_BANDS

log_to(snakemake.log[0])
params = snakemake.params
tile = snakemake.wildcards.tile

grid = tile_grid(tile, params.tile_size_m, params.resolution_m, params.crs, params.margin_px)  # tile + margin
ds = read_l1c_tile(params.path, grid, bands=params.bands or L1C_BANDS, time_range=params.time_range or None)
stack.write(with_margin(ds, params.margin_px), snakemake.output.stack)
