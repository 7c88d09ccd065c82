"""Snakemake script: validate the model on the test tiles (metrics.json, summary.html and figures)."""

from pathlib import Path

from landcover import report
from landcover.classes import classes_from_config
from landcover.logs import log_to
from landcover.model import load_model, load_samples, predict_proba

sm = snakemake
log = log_to(sm.log[0])
classes = classes_from_config(sm.params.classes)

booster, metadata = load_model(sm.input.model, sm.input.metadata)
test = load_samples(list(sm.input.test_samples))
proba = predict_proba(booster, metadata, test, threads=sm.threads)
metrics = report.evaluate(test, proba, metadata, classes)
log.info(
    "%d test pixels: accuracy %.4f, weighted F1 %.4f",
    metrics["test_pixels"],
    metrics["overall_accuracy"],
    metrics["f1_weighted"],
)
counts, tiles = report.map_reference_counts(list(sm.input.test_maps), list(sm.input.test_references))
mapped, pixel_ha = report.mapped_pixels(sm.input.map)
metrics["area_estimate"] = report.area_estimate(counts, mapped, pixel_ha, classes, tiles)
metrics["frames"] = report.frames_dropped(sm.input.frames) if sm.input.frames else None
metrics["software"] = report.software(metadata, sm.params.lock_file)
metrics["caveats"] = report.caveats(metrics)
for caveat in metrics["caveats"]:
    log.warning("%s", caveat)

train_labels = load_samples(list(sm.input.train_samples), columns=["tile_id", "row", "col", "label"])["label"]
figures = report.report_figures(booster, metadata, metrics, test, proba, train_labels, classes)
figures["area"] = report.area_figure(metrics["area_estimate"], classes)
report.write_report(metrics, figures, Path(sm.output.metrics).parent, dpi=sm.params.dpi)
