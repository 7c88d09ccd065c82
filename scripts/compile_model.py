"""Snakemake script: the model compiled to native code for this machine's CPU, shared by the predict jobs."""

from landcover.logs import log_to
from landcover.trees import compile_model

sm = snakemake
log = log_to(sm.log[0])

compile_model(sm.input.model, sm.output.compiled)
