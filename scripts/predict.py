"""Snakemake script: a tile's land-cover map and confidence from its features and their spatial context, as
GeoTIFFs on the tile (its margin cut off)."""

from landcover import stack
from landcover.classes import classes_from_config
from landcover.grid import crop_to_tile
from landcover.logs import log_to
from landcover.maps import write_class_geotiff, write_confidence_geotiff
from landcover.model import load_model, predict_tile
from landcover.trees import load as load_compiled

sm = snakemake
log = log_to(sm.log[0])
tile = sm.wildcards.tile

booster, metadata = load_model(sm.input.model, sm.input.metadata)
if sm.input.compiled:  # predict.compile: the same trees as native code
    booster = load_compiled(sm.input.model, sm.input.compiled[0])
with stack.open(sm.input.features, required=("features", "valid_count")) as features:
    grid = stack.grid_of(crop_to_tile(features))
    if grid.tile_id != tile:
        raise ValueError(f"{sm.input.features}: holds tile {grid.tile_id!r}, expected {tile!r}")
    labels, confidence = predict_tile(
        booster,
        metadata,
        features,
        block_rows=sm.params.block_rows,
        threads=sm.threads,
        sigmas=sm.params.context_sigmas,
    )
write_class_geotiff(sm.output.map, labels, grid, classes_from_config(sm.params.classes))
write_confidence_geotiff(sm.output.confidence, confidence, grid)
