"""Snakemake script: the tile grid of the area of interest (or the synthetic extent) as a GeoPackage."""

from landcover.config import area_grid
from landcover.grid import write_grid
from landcover.logs import log_to

log = log_to(snakemake.log[0])
params = snakemake.params

grid = area_grid({"area": params.area, "synthetic": params.synthetic})
log.info(
    "%d tiles of %g m at %g m/pixel in %s", len(grid), params.area["tile_size_m"], params.area["resolution_m"], grid.crs
)
write_grid(grid, snakemake.output.grid)
