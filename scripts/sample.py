"""Snakemake script: a seeded sample of a tile's labelled pixels and their features and spatial context, as
Parquet."""

from landcover import stack
from landcover.atomic import atomic_path
from landcover.grid import crop_to_tile
from landcover.logs import log_to
from landcover.reference import read_labels
from landcover.sampling import sample_pixels

log = log_to(snakemake.log[0])
params = snakemake.params
tile = snakemake.wildcards.tile

with stack.open(snakemake.input.features, required=("features", "valid_count")) as features:
    labels = read_labels(snakemake.input.reference, stack.grid_of(crop_to_tile(features)))
    samples = sample_pixels(
        labels,
        features,
        tile,
        seed=params.seed,
        max_samples=params.max_samples,
        fraction=params.fraction,
        per_class_cap=params.per_class_cap,
        sigmas=params.context_sigmas,
    )
log.info("tile %s: %d samples of %d labelled pixels", tile, len(samples), int((labels > 0).sum()))
for label, count in samples["label"].value_counts().sort_index().items():
    log.info("tile %s class %d: %d samples", tile, label, count)
with atomic_path(snakemake.output.samples) as tmp:
    samples.to_parquet(tmp, index=False)
