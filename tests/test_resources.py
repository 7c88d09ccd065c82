"""The memory-request formula the workflow and benchmarks/RESULTS.md share (landcover.resources)."""

import h5py
import numpy as np
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

    config = default_config()  # 2017 every 16 days: 23 dates; 6 bands and 3 indices; sigmas 1 and 3
    assert resources.model_columns(config) == 23 * 9 * 3
    config["features"]["context_sigmas"] = []
    assert resources.model_columns(config) == 23 * 9
