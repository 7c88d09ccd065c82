"""Snakemake script: valid data, scene filter and interpolated features of one tile, and its frame counts."""

from landcover import stack
from landcover.features import tile_features
from landcover.frames import frame_counts, write_frame_counts
from landcover.logs import log_to

log_to(snakemake.log[0])
params = snakemake.params

with (
    stack.open(snakemake.input.stack, required=("bands", "is_data")) as ds,
    stack.open(snakemake.input.clouds, required=("cloud_mask",)) as clouds,
):
    features = tile_features(
        ds,
        clouds,
        bands=params.bands,
        indices=params.indices,
        dates=params.dates,
        valid_coverage_threshold=params.valid_coverage_threshold,
        workers=snakemake.threads,
    )
    counts = frame_counts(ds, clouds, params.valid_coverage_threshold)
stack.write(features, snakemake.output.features)
write_frame_counts(counts, snakemake.output.frames)
