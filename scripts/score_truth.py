"""Snakemake script: score the predicted maps against the synthetic generator's true land cover."""

import json

from landcover.atomic import atomic_path
from landcover.logs import log_to
from landcover.report import score_against_truth

sm = snakemake
log = log_to(sm.log[0])

scores = score_against_truth(list(sm.input.maps), list(sm.input.truth))
log.info(
    "accuracy %.4f, weighted F1 %.4f, no-data share %.4f",
    scores["overall_accuracy"],
    scores["f1_weighted"],
    scores["no_data_share"],
)
with atomic_path(sm.output.scores) as tmp:
    tmp.write_text(json.dumps(scores, indent=2) + "\n")
