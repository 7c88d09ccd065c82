"""Snakemake script: one EOPatch (or one of its sub-tiles) and its margin as a raw tile stack."""

from pathlib import Path

from landcover import stack
from landcover.ingest.eopatch import parse_tile_id, read_eopatch
from landcover.logs import log_to

log_to(snakemake.log[0])
params = snakemake.params
tile = snakemake.wildcards.tile

patch, subtile = parse_tile_id(tile, params.subtiles)
ds = read_eopatch(
    Path(params.path) / patch,
    tile,
    band_feature=params.band_feature or None,
    band_names=list(params.band_names) or None,  # empty: the 13 L1C bands
    subtile=subtile,
    cloud_products=params.cloud_products,
    index_features=list(params.index_features) or None,  # empty: every known index the patch has
    margin_px=params.margin_px,
)
stack.write(ds, snakemake.output.stack)
