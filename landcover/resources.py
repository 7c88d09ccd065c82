"""Memory requests of the workflow's jobs, from the peaks `make bench` measured: one formula for
workflow/rules/common.smk and benchmarks/RESULTS.md.

`make bench` writes the measured peaks to workflow/resources.yaml (per-tile jobs on a 10 km tile, and the
training's memory per sample value); the workflow reads that table, so the requests follow the last benchmark.
"""

from __future__ import annotations

import math
from pathlib import Path

BINNING_SAMPLE = 200_000  # LightGBM bins from at most this many rows (bin_construct_sample_cnt), as float64
MIN_SAMPLES_PER_TILE = 100  # below this a tile cannot show each of its classes to the model: a budget error, not a map


def load_table(path) -> dict:
    import yaml

    with open(path) as f:
        return yaml.safe_load(f)


STEP_MB = 250


def memory_request(peak_mb: float, floor_mb: int, attempt: int = 1) -> int:
    """mem_mb for a job whose measured or modelled peak RSS is `peak_mb`: x1.3 + 200 MB in 250 MB steps, at
    least `floor_mb`; times `attempt`, so a job killed for memory is retried with more (profiles set `retries`)."""
    return max(floor_mb, math.ceil((1.3 * peak_mb + 200) / STEP_MB) * STEP_MB) * max(1, int(attempt))


def largest_peak_mb(request_mb: int) -> float:
    """The largest peak RSS whose `memory_request` (first attempt) is at most `request_mb`."""
    return (request_mb // STEP_MB * STEP_MB - 200) / 1.3


def tile_peak_mb(job: dict, pixels: float, frames: int | None = None, columns: int | None = None) -> float:
    """A per-tile job's peak RSS on a tile of `pixels` pixels and `frames` acquisitions, from its measured peak
    (`peak_mb` with `base_mb` of Python and libraries, on `pixels`/`frames` of the benchmark tile): the data part
    scales with the pixels; for jobs that hold every frame (`per_frame`), with the frames beyond the measured
    ones (in proportion: an upper bound, the per-date outputs do not grow); for jobs that hold the model inputs
    (measured at `columns` per-date columns), with the columns."""
    data = (job["peak_mb"] - job["base_mb"]) * pixels / job["pixels"]
    if job.get("per_frame") and frames:
        data *= max(1.0, frames / job["frames"])
    if job.get("columns") and columns:
        data *= columns / job["columns"]
    return job["base_mb"] + data


def model_columns(config: dict) -> int:
    """Per-date model inputs of a (validated) config: each feature on each date, and its smoothed copies with
    spatial context on; what the context, sample and predict jobs hold per pixel."""
    from landcover.interpolate import date_grid

    dates, features = config["dates"], config["features"]
    n_features = len(features["bands"]) + len(features["indices"])
    grid = date_grid(dates["start"], dates["end"], dates["step_days"])
    return len(grid) * n_features * (1 + len(features["context_sigmas"]))


def train_peak_mb(train: dict, samples: float, columns: int) -> float:
    """The training job's peak RSS: Python and libraries, LightGBM's binning sample of at most 200 000 rows
    (`binning_bytes` a value) and the samples (`bytes_per_value`: their binned copy, the table being read), both
    measured by `make bench` at two sizes above the binning sample (8 bytes a value for the sample where only one
    size was measured)."""
    values = samples * train["bytes_per_value"] + min(samples, BINNING_SAMPLE) * train.get("binning_bytes", 8)
    return train["base_mb"] + values * columns / 2**20


def train_samples_within(train: dict, request_mb: int, columns: int) -> int:
    """The most samples of `columns` model inputs that training can take within a memory request of `request_mb`
    (`train_peak_mb` inverted); at least 0."""
    values_bytes = (largest_peak_mb(request_mb) - train["base_mb"]) * 2**20 / columns
    binning = train.get("binning_bytes", 8)
    above = (values_bytes - BINNING_SAMPLE * binning) / train["bytes_per_value"]  # all of the binning sample taken
    samples = above if above >= BINNING_SAMPLE else values_bytes / (train["bytes_per_value"] + binning)
    return max(0, math.floor(samples))


def train_columns(config: dict) -> int:
    """The training's model inputs of a (validated) config: the per-date columns, and their temporal statistics
    (landcover.features.temporal_names) when on."""
    from landcover.features import TEMPORAL_STATS
    from landcover.interpolate import date_grid

    per_date = model_columns(config)
    if not config["features"]["temporal_stats"]:
        return per_date
    dates = len(date_grid(config["dates"]["start"], config["dates"]["end"], config["dates"]["step_days"]))
    return per_date + per_date // dates * (len(TEMPORAL_STATS) + dates - 1)  # per feature: statistics, differences


def samples_per_tile(config: dict, train: dict, training_tiles: int, tile_pixels: float) -> int | None:
    """`sampling.max_samples` for each tile: the configured cap, lowered so that all training tiles' samples fit
    the training's memory request `sampling.train_memory_mb`; None (no cap) only when neither sets one."""
    sampling = config["sampling"]
    columns = train_columns(config)
    budget = train_samples_within(train, sampling["train_memory_mb"], columns)
    fits = budget // max(1, training_tiles)
    if fits < MIN_SAMPLES_PER_TILE:
        needed = memory_request(train_peak_mb(train, MIN_SAMPLES_PER_TILE * max(1, training_tiles), columns), 0)
        raise ValueError(
            f"sampling.train_memory_mb = {sampling['train_memory_mb']} MB fits {budget:,} samples of {columns} columns: "
            f"{fits} for each of the {training_tiles} training tiles, fewer than {MIN_SAMPLES_PER_TILE}; "
            f"set it to at least {needed} MB, or use fewer columns (features.context_sigmas, features.temporal_stats)"
        )
    if sampling["max_samples"] is None and fits >= tile_pixels:
        return None
    return min(fits, sampling["max_samples"] or fits)


def sample_params(config: dict, train: dict, training_tiles: int, tile_pixels: float) -> dict:
    """The sample rule's settings: `sampling`, its memory budget turned into each tile's `max_samples`."""
    params = {key: value for key, value in config["sampling"].items() if key != "train_memory_mb"}
    params["max_samples"] = samples_per_tile(config, train, training_tiles, tile_pixels)
    return params


def stack_frames(path) -> int | None:
    """The number of acquisitions in a tile's stack (NetCDF), None while it does not exist yet (Snakemake
    evaluates resources again before it schedules the job)."""
    if not path or not Path(path).exists():
        return None
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return int(f["time"].shape[0])
    except (OSError, KeyError):
        return None
