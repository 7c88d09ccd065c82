"""Snakemake script: the offline map viewer (map.html and its folder of tiles) from the merged map."""

import glob

from landcover.classes import classes_from_config
from landcover.logs import log_to
from landcover.viewer import MapTile, build_viewer

sm = snakemake
log_to(sm.log[0])

tiles = [
    MapTile(tile, *paths)
    for tile, *paths in zip(
        sm.params.tiles, sm.input.maps, sm.input.confidence, sm.input.reference, sm.input.true_colour
    )
]
build_viewer(
    sm.input.cog,
    tiles,
    classes_from_config(sm.params.classes),
    sm.output.html,
    sm.output.assets,
    logs={tile: sorted(glob.glob(f"{sm.params.logs}/*/{tile}.log")) for tile in sm.params.tiles},
    pictures=dict(zip(sm.params.plot_tiles, sm.input.plots)),
    figures=[
        {"src": src, "caption": caption, "tile": figure["tile"]}
        for src, caption, figure in zip(sm.input.figures, sm.input.captions, sm.params.figures)
    ],
    reference_check=sm.input.reference_check,
)
