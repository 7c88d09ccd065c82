"""Snakemake script: Sentinel-2 L2A COGs of a STAC API read onto one tile's 10 m grid, with SCL cloud masks."""

from landcover import stack
from landcover.grid import tile_grid, with_margin
from landcover.ingest.stac import read_stac_tile, search_items, url_signer
from landcover.logs import log_to

log_to(snakemake.log[0])
params = snakemake.params
tile = snakemake.wildcards.tile

grid = tile_grid(tile, params.tile_size_m, params.resolution_m, params.crs, params.margin_px)  # tile + margin
signer = url_signer(params.sign)  # before the search: a missing package fails at once
items = search_items(params.url, params.collection, grid, params.time_range, params.max_cloud_cover)
ds = read_stac_tile(
    items,
    grid,
    params.bands,
    cloud_mask=params.cloud_mask,
    probability_asset=params.probability_asset,
    probability_threshold=params.probability_threshold,
    signer=signer,
)
stack.write(with_margin(ds, params.margin_px), snakemake.output.stack)
