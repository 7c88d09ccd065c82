"""Snakemake script: the model compiled to native code (landcover.trees), shared by the predict jobs."""

from landcover.logs import log_to
from landcover.trees import compile_model

sm = snakemake
log = log_to(sm.log[0])

compile_model(sm.input.model, sm.output.compiled)
