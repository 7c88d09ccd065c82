"""Snakemake script: s2cloudless cloud probabilities and masks of one tile's raw stack (the tile and its margin)."""

from landcover import stack
from landcover.clouds import carried_cloud_masks, cloud_masks
from landcover.grid import margin_of, with_margin
from landcover.logs import log_to

log = log_to(snakemake.log[0])
params = snakemake.params

with stack.open(snakemake.input.stack, required=("bands", "is_data")) as ds:
    clouds = carried_cloud_masks(ds)
    if clouds is not None:
        log.info("tile %s: the source's own cloud masks are used instead of s2cloudless", ds.attrs.get("tile_id"))
    else:
        clouds = cloud_masks(
            ds,
            resolution_m=params.resolution_m,
            threshold=params.threshold,
            average_over=params.average_over,
            dilation_size=params.dilation_size,
            threads=snakemake.threads,
        )
    clouds = with_margin(clouds, margin_of(ds))
stack.write(clouds, snakemake.output.clouds)
