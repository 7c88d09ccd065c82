"""Snakemake script: one tile's year of Sentinel-2 L1C from Sentinel Hub (cached, so reruns fetch nothing)."""

from landcover import stack
from landcover.grid import tile_grid, with_margin
from landcover.ingest.sentinelhub import RequestPacer, download_tile, sentinelhub_config
from landcover.logs import log_to

log_to(snakemake.log[0])
params = snakemake.params
tile = snakemake.wildcards.tile

grid = tile_grid(tile, params.tile_size_m, params.resolution_m, params.crs, params.margin_px)  # tile + margin
config = sentinelhub_config(params.base_url, params.token_url, preset=params.preset)
ds = download_tile(
    grid,
    params.time_range,
    params.maxcc,
    params.cache_dir,
    config,
    bands=params.bands,
    cloud_resolution_m=params.cloud_resolution_m,
    pacer=RequestPacer(params.requests_per_minute, params.processing_units_per_minute),
    max_wait_s=params.max_wait_s,
)
stack.write(with_margin(ds, params.margin_px), snakemake.output.stack)
