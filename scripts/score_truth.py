"""Snakemake script: score the predicted maps against the synthetic generator's true land cover."""

import json

from landcover.atomic import atomic_path
from landcover.logs import log_to
from landcover.report.metrics import score_against_truth
from landcover.synthetic.calibration import interior_and_shares

sm = snakemake
log = log_to(sm.log[0])

maps, truth = list(sm.input.maps), list(sm.input.truth)
scores = score_against_truth(maps, truth)
scores.update(interior_and_shares(maps, truth, sm.params.erosion_radius))
scores["interior_gap"] = scores["interior"]["overall_accuracy"] - scores["overall_accuracy"]
log.info(
    "accuracy %.4f on all pixels, %.4f on the interior (%.1f%% of them), weighted F1 %.4f, no-data share %.4f",
    scores["overall_accuracy"],
    scores["interior"]["overall_accuracy"],
    100 * scores["interior"]["share_of_scored"],
    scores["f1_weighted"],
    scores["no_data_share"],
)
log.info("true class shares: %s", ", ".join(f"{c}: {s:.3f}" for c, s in scores["true_class_shares"].items()))
with atomic_path(sm.output.scores) as tmp:
    tmp.write_text(json.dumps(scores, indent=2) + "\n")
