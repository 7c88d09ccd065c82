"""Snakemake script: the synthetic land-use register (reference polygons) over the given tiles."""

from landcover.atomic import atomic_path
from landcover.grid import tile_grid
from landcover.logs import log_to
from landcover.synthetic import synthesize_reference

log = log_to(snakemake.log[0])
params = snakemake.params

grids = [tile_grid(tile, params.tile_size_m, params.resolution_m, params.crs) for tile in params.tiles]
polygons = synthesize_reference(grids, int(params.seed))
with atomic_path(snakemake.output.reference) as tmp:
    polygons.to_file(tmp, driver="GPKG", layer="reference")
