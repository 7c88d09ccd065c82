"""Snakemake script: valid data, scene filter and interpolated features of one tile and its margin, and its frame
counts.

The scene filter judges a frame's valid coverage on the tile alone, not its margin: the tile is the unit the frame
counts (frames/<tile>.json) describe, and its decision does not change with the context's reach."""

from landcover import stack
from landcover.features import tile_features
from landcover.frames import frame_counts, write_frame_counts
from landcover.grid import crop_to_tile, margin_of, tile_window, with_margin
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
        coverage_window=tile_window(ds),
    )
    features = with_margin(features, margin_of(ds))
    counts = frame_counts(crop_to_tile(ds), crop_to_tile(clouds), params.valid_coverage_threshold)
stack.write(features, snakemake.output.features)
write_frame_counts(counts, snakemake.output.frames)
