"""Snakemake script: a tile's features and the same smoothed at a few scales, with a halo from its neighbours."""

from contextlib import ExitStack

from landcover import stack
from landcover.context import context_features
from landcover.logs import log_to

log_to(snakemake.log[0])
sm = snakemake
required = ("features", "valid_count")

with ExitStack() as files:
    features = files.enter_context(stack.open(sm.input.features, required=required))
    neighbours = [files.enter_context(stack.open(path, required=required)) for path in sm.input.neighbours]
    context = context_features(features, neighbours, sm.params.sigmas)
stack.write(context, sm.output.context)
