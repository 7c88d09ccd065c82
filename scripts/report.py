"""Snakemake script: validate the map and the model on the test tiles (metrics.json, summary.html and figures)."""

import json
from pathlib import Path

import geopandas as gpd

from landcover import area
from landcover.classes import classes_from_config
from landcover.logs import log_to
from landcover.model import load_model, load_samples, predict_proba
from landcover.report import figures, metrics, page, reference_check

sm = snakemake
log = log_to(sm.log[0])
classes = classes_from_config(sm.params.classes)

counts, tiles = metrics.map_reference_counts(list(sm.input.test_maps), list(sm.input.test_references))
report = metrics.map_scores(counts, tiles, classes)
booster, metadata = load_model(sm.input.model, sm.input.metadata)
test = load_samples(list(sm.input.test_samples))
proba = predict_proba(booster, metadata, test, threads=sm.threads)
report["sampled_interior"] = metrics.sampled_scores(test, proba, metadata, classes)
report["truth"] = json.loads(Path(sm.input.truth[0]).read_text()) if sm.input.truth else None
for name, section in (("all labelled", report), ("sampled interior", report["sampled_interior"])):
    log.info(
        "%s test pixels (%d): accuracy %.4f, weighted F1 %.4f",
        name,
        section["test_pixels"],
        section["overall_accuracy"],
        section["f1_weighted"],
    )
mapped, pixel_ha = area.mapped_pixels(sm.input.map)
report["area_estimate"] = area.area_estimate(counts, mapped, pixel_ha, classes, tiles)
checked = gpd.read_file(sm.input.reference_check, layer=reference_check.LAYER)
report["reference_check"] = reference_check.summary(checked, dict(sm.params.reference_check))
report["frames"] = metrics.frames_dropped(sm.input.frames) if sm.input.frames else None
report["software"] = metrics.software(metadata, sm.params.lock_file)
report["caveats"] = metrics.caveats(report)
for caveat in report["caveats"]:
    log.warning("%s", caveat)

train_labels = load_samples(list(sm.input.train_samples), columns=["tile_id", "row", "col", "label"])["label"]
pictures = figures.report_figures(booster, metadata, report, test, proba, train_labels, classes)
page.write_report(report, pictures, Path(sm.output.metrics).parent, dpi=sm.params.dpi)
