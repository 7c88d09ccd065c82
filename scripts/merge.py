"""Snakemake script: all tile maps as one Cloud-Optimised GeoTIFF, its preview picture, GDAL and QGIS class names."""

from landcover.classes import classes_from_config
from landcover.logs import log_to
from landcover.maps import merge_tiles, preview_png, write_class_sidecars

sm = snakemake
log_to(sm.log[0])
classes = classes_from_config(sm.params.classes)

merge_tiles(list(sm.input.maps), sm.output.cog, classes)
preview_png(sm.output.cog, sm.output.preview, classes)
write_class_sidecars(sm.output.aux, sm.output.qml, classes)
