"""Snakemake script: the temporal evolution of each feature per class, from the training samples."""

from landcover.classes import classes_from_config
from landcover.figures import class_evolution
from landcover.logs import log_to

sm = snakemake
log = log_to(sm.log[0])

stats = class_evolution(
    list(sm.input.samples), classes_from_config(sm.params.classes), sm.params.features, sm.output.png, sm.params.dpi
)
for (name, feature), group in stats.groupby(["class", "feature"]):
    log.info(
        "%s %s: %d pixels, mean %.3f..%.3f",
        name,
        feature,
        group["pixels"].iat[0],
        group["mean"].min(),
        group["mean"].max(),
    )
