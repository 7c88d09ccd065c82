"""Snakemake script: train the one LightGBM model on the training tiles' samples."""

from landcover.classes import classes_from_config
from landcover.logs import log_to
from landcover.model import read_training_set, save_model, train_model

sm = snakemake
log = log_to(sm.log[0])

samples = read_training_set(list(sm.input.samples), temporal_stats=sm.params.temporal_stats)
log.info("%d samples from %d tables", len(samples.labels), len(sm.input.samples))
booster, metadata = train_model(
    samples,
    classes_from_config(sm.params.classes),
    seed=sm.params.seed,
    params=dict(sm.params.params or {}),
    threads=sm.threads,
    training_tiles=list(sm.params.training_tiles),
    temporal_stats=sm.params.temporal_stats,
    class_weight=sm.params.class_weight,
    tuning=dict(sm.params.tuning) if sm.params.tuning["enabled"] else None,
    rounds=sm.params.rounds,
)
save_model(booster, metadata, sm.output.model, sm.output.metadata)
