"""The memory-request formula the workflow and benchmarks/RESULTS.md share (landcover.resources)."""

import re

import h5py
import numpy as np
import pytest
from conftest import REPO

from landcover import resources

JOB = {"peak_mb": 1300, "base_mb": 300, "pixels": 1_000_000, "frames": 70, "per_frame": True}


def test_request_is_peak_plus_margin_in_steps_and_grows_with_the_attempt():
    assert resources.memory_request(1000, 500) == 1500  # 1.3 x 1000 + 200 = 1500
    assert resources.memory_request(1001, 500) == 1750
    assert resources.memory_request(100, 1000) == 1000  # the floor
    assert resources.memory_request(1000, 500, attempt=2) == 3000
    assert resources.memory_request(1000, 500, attempt=3) == 4500


def test_tile_peak_scales_the_data_part_with_pixels_and_frames():
    assert resources.tile_peak_mb(JOB, 1_000_000) == 1300
    assert resources.tile_peak_mb(JOB, 250_000) == 300 + 250  # a 5 km tile: a quarter of the data
    assert resources.tile_peak_mb(JOB, 1_000_000, frames=140) == 300 + 2000
    assert resources.tile_peak_mb(JOB, 1_000_000, frames=35) == 1300  # never below the measured frames
    assert resources.tile_peak_mb({**JOB, "per_frame": False}, 1_000_000, frames=140) == 1300


def test_tile_peak_of_a_job_holding_the_model_inputs_scales_with_their_columns():
    job = {**JOB, "per_frame": False, "columns": 621}
    assert resources.tile_peak_mb(job, 1_000_000, columns=621) == 1300
    assert resources.tile_peak_mb(job, 1_000_000, columns=207) == 300 + 1000 / 3  # context off: a third
    assert resources.tile_peak_mb(job, 250_000, columns=1242) == 300 + 500
    assert resources.tile_peak_mb(JOB, 1_000_000, columns=207) == 1300  # measured without columns: unscaled


def test_train_peak_counts_values_and_the_binning_sample():
    train = {"base_mb": 250, "bytes_per_value": 5}
    assert resources.train_peak_mb(train, 100_000, 2**20 / 100_000) == 250 + 5 + 8
    assert resources.train_peak_mb(train, 400_000, 1) * 2**20 == 250 * 2**20 + 400_000 * 5 + 200_000 * 8
    measured = {**train, "binning_bytes": 20}  # make bench's fit at two sizes
    assert resources.train_peak_mb(measured, 400_000, 1) * 2**20 == 250 * 2**20 + 400_000 * 5 + 200_000 * 20


def test_frames_are_read_from_the_stack(tmp_path):
    path = tmp_path / "stack.nc"
    assert resources.stack_frames(path) is None  # not written yet
    with h5py.File(path, "w") as f:
        f["time"] = np.arange(140)
    assert resources.stack_frames(path) == 140


def test_the_table_make_bench_writes_has_every_job():
    table = resources.load_table(REPO / "workflow" / "resources.yaml")
    assert set(table["tile_jobs"]) >= {"cloud_mask", "features", "sample", "predict"}
    for job in table["tile_jobs"].values():
        assert job["peak_mb"] > job["base_mb"] > 0 and job["pixels"] > 0 and job["frames"] > 0
    assert table["train"]["bytes_per_value"] > 0


def test_model_columns_count_dates_features_and_context_scales():
    from conftest import default_config

    config = default_config()  # 2017 every 16 days: 23 dates; 6 bands and 3 indices; no context
    assert resources.model_columns(config) == 23 * 9
    config["features"]["context_sigmas"] = [1, 3]
    assert resources.model_columns(config) == 23 * 9 * 3


def test_train_columns_add_the_temporal_statistics_of_every_per_date_feature():
    from conftest import default_config

    from landcover.features import temporal_names

    config = default_config()
    config["features"].update(temporal_stats=True, context_sigmas=[1, 3])
    features = [f"f{i}" for i in range(27)]  # 9 features at 3 scales
    assert resources.train_columns(config) == 23 * 27 + len(temporal_names(features, range(23)))
    config["features"]["temporal_stats"] = False
    assert resources.train_columns(config) == 23 * 27


def test_the_samples_that_fit_a_budget_are_the_most_whose_request_fits():
    train = {"base_mb": 250, "bytes_per_value": 6.5, "binning_bytes": 14}
    for budget, columns in ((12000, 1350), (12000, 207), (4000, 1350), (2000, 1350)):
        n = resources.train_samples_within(train, budget, columns)
        assert resources.memory_request(resources.train_peak_mb(train, n, columns), 0) <= budget
        assert resources.memory_request(resources.train_peak_mb(train, n + 1, columns), 0) > budget
    assert resources.train_samples_within({"base_mb": 5000, "bytes_per_value": 6.5}, 2000, 1350) == 0


def test_samples_per_tile_lowers_max_samples_to_the_budget_only():
    from conftest import default_config

    config = default_config()
    config["features"].update(temporal_stats=True, context_sigmas=[1, 3])  # 1 350 columns: binds at 200 tiles
    train = {"base_mb": 250, "bytes_per_value": 6.5}
    config["sampling"].update(max_samples=5000, train_memory_mb=12000)
    assert resources.samples_per_tile(config, train, 10, 1e6) == 5000  # the cap: the budget holds far more
    fit = resources.train_samples_within(train, 12000, resources.train_columns(config))
    assert resources.samples_per_tile(config, train, 200, 1e6) == fit // 200 < 5000
    config["sampling"]["max_samples"] = None
    assert resources.samples_per_tile(config, train, 200, 1e6) == fit // 200
    assert resources.samples_per_tile(config, train, 1, 100) is None  # every pixel fits: no cap


def test_a_training_budget_too_small_for_the_tiles_is_an_error_that_names_the_setting_and_a_size_that_fits():
    from conftest import default_config

    config = default_config()
    train = {"base_mb": 250, "bytes_per_value": 6.5}
    config["sampling"].update(max_samples=5000, train_memory_mb=2000)
    columns = resources.train_columns(config)
    tiles = resources.train_samples_within(train, 2000, columns) // resources.MIN_SAMPLES_PER_TILE + 1
    with pytest.raises(ValueError, match=r"sampling.train_memory_mb = 2000 MB .* at least (\d+) MB") as error:
        resources.samples_per_tile(config, train, tiles, 1e6)
    assert resources.samples_per_tile(config, train, tiles - 1, 1e6) >= resources.MIN_SAMPLES_PER_TILE
    config["sampling"]["train_memory_mb"] = int(re.search(r"at least (\d+) MB", str(error.value)).group(1))
    assert resources.samples_per_tile(config, train, tiles, 1e6) >= resources.MIN_SAMPLES_PER_TILE
