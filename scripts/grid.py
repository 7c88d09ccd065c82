"""Snakemake script: the tile grid of the area of interest (or the synthetic bounds) as a GeoPackage."""

import shapely

from landcover.grid import make_grid, read_aoi, write_grid
from landcover.logs import log_to

log = log_to(snakemake.log[0])
params = snakemake.params

if params.aoi:
    aoi = read_aoi(params.aoi)
elif params.bounds:
    aoi = shapely.box(*params.bounds)
else:
    raise ValueError("grid: neither `aoi` nor `bounds` is set")
grid = make_grid(aoi, params.tile_size_m, params.resolution_m, crs=params.crs, tiles=list(params.tiles) or None)
log.info("%d tiles of %g m at %g m/pixel in %s", len(grid), params.tile_size_m, params.resolution_m, grid.crs)
write_grid(grid, snakemake.output.grid)
