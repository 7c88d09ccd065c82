"""Sentinel Hub download through sentinelhub-py's own client, against the stand-in service."""

from __future__ import annotations

import datetime as dt
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sentinelhub_standin import Scene, serve, served_value

from landcover import stack
from landcover.grid import tile_grid
from landcover.ingest import IngestError
from landcover.ingest.sentinelhub import acquisitions, download_tile, sentinelhub_config
from landcover.stack import L1C_BANDS

REPO = Path(__file__).resolve().parents[1]
UTC = dt.UTC
GRID = tile_grid("x2326_y25397", 200, 10, "EPSG:32633")  # 20 x 20 px near Ljubljana
SCENES = [
    Scene(dt.datetime(2016, 12, 30, 10, 0, 21, tzinfo=UTC), 0.0),  # before the time range
    Scene(dt.datetime(2017, 3, 4, 10, 0, 21, tzinfo=UTC), 5.0),
    Scene(dt.datetime(2017, 3, 4, 10, 0, 31, tzinfo=UTC), 60.0),  # the next granule of the same overpass
    Scene(dt.datetime(2017, 4, 13, 10, 10, 21, tzinfo=UTC), 90.0),  # too cloudy
    Scene(dt.datetime(2017, 5, 3, 10, 0, 21, tzinfo=UTC), 10.0, top_half_only=True),
    Scene(dt.datetime(2017, 6, 12, 10, 10, 21, 26000, tzinfo=UTC), 80.0),  # exactly maxcc: kept; milliseconds
]
KEPT = [SCENES[2], SCENES[4], SCENES[5]]  # what each overpass serves (mostRecent)
TIME_RANGE = ["2017-01-01", "2017-12-31"]


@pytest.fixture
def standin(monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the stand-in speaks plain http
    with serve(SCENES, page_size=2) as server:
        yield server


def config_for(standin, **overrides):
    config = sentinelhub_config(standin.base_url, standin.token_url, download_sleep_time=0.01, **overrides)
    config.sh_client_id, config.sh_client_secret = "test-client", "test-secret"
    return config


def test_download_gives_the_served_values_and_dates(standin, tmp_path):
    # One thread: batches of two requests, so the three overpasses take two batches.
    ds = download_tile(GRID, TIME_RANGE, 0.8, tmp_path / "cache", config_for(standin), max_threads=1)
    expected_times = [SCENES[1].datetime, SCENES[4].datetime, SCENES[5].datetime]
    assert list(ds["time"].values) == [np.datetime64(t.replace(tzinfo=None), "ns") for t in expected_times]
    assert list(ds["band"].values) == list(L1C_BANDS)
    assert ds.rio.transform() == GRID.transform and ds.rio.crs == GRID.crs
    rows, cols = np.mgrid[0:20, 0:20]
    for t, scene in enumerate(KEPT):
        covered = rows < 10 if scene.top_half_only else np.ones((20, 20), dtype=bool)
        np.testing.assert_array_equal(ds["is_data"].values[t], covered)
        for k in range(len(L1C_BANDS)):
            want = np.where(covered, served_value(scene.datetime, k, rows, cols), 0)
            np.testing.assert_array_equal(ds["bands"].values[t, ..., k], want)

    # The requests asked for the tile's bbox, CRS and pixel size, one overpass each.
    assert standin.counts["process"] == 3
    assert standin.counts["catalog"] == 2  # four matching items, two per page
    for payload in standin.process_payloads:
        assert payload["input"]["bounds"]["bbox"] == pytest.approx(list(GRID.bounds))
        assert payload["input"]["bounds"]["properties"]["crs"].endswith("/32633")
        assert (payload["output"]["width"], payload["output"]["height"]) == (20, 20)
        assert payload["input"]["data"][0]["dataFilter"]["maxCloudCoverage"] == 80
    assert "eo:cloud_cover <= 80" in standin.catalog_payloads[0]["filter"]


def test_rerun_fetches_nothing(standin, tmp_path):
    first = download_tile(GRID, TIME_RANGE, 0.8, tmp_path / "cache", config_for(standin))
    counts = dict(standin.counts)
    again = download_tile(GRID, TIME_RANGE, 0.8, tmp_path / "cache", config_for(standin))
    assert dict(standin.counts) == counts
    assert again.identical(first)


def test_transient_failures_are_retried(standin, tmp_path):
    standin.fail("process", 500, 429)
    standin.fail("catalog", 503)
    ds = download_tile(GRID, TIME_RANGE, 0.8, tmp_path / "cache", config_for(standin))
    assert ds.sizes["time"] == 3
    assert standin.counts["process"] == 3 + 2
    assert standin.counts["catalog"] == 2 + 1


def test_persistent_failure_is_a_clear_error(standin, tmp_path):
    standin.fail("process", *[500] * 10)
    with pytest.raises(IngestError, match=rf"tile {GRID.tile_id}: Sentinel Hub download failed"):
        download_tile(GRID, TIME_RANGE, 0.8, tmp_path / "cache", config_for(standin, max_download_attempts=2))


def test_missing_credentials_fail_before_any_request(standin, tmp_path):
    config = config_for(standin)
    config.sh_client_id = ""
    with pytest.raises(IngestError, match="SH_CLIENT_ID and SH_CLIENT_SECRET"):
        download_tile(GRID, TIME_RANGE, 0.8, tmp_path / "cache", config)
    assert sum(standin.counts.values()) == 0


def test_acquisitions_group_granules_of_one_overpass():
    times = [
        pd.Timestamp("2017-03-04T10:00:21"),
        pd.Timestamp("2017-03-04T10:00:31"),
        pd.Timestamp("2017-03-07T10:10:21"),
    ]
    assert acquisitions(times) == [(times[0], times[1]), (times[2], times[2])]


def test_script_writes_the_tile_stack(standin, tmp_path, monkeypatch):
    monkeypatch.setenv("SH_CLIENT_ID", "test-client")
    monkeypatch.setenv("SH_CLIENT_SECRET", "test-secret")
    out = tmp_path / "stacks" / f"{GRID.tile_id}.nc"
    snakemake = SimpleNamespace(
        wildcards=SimpleNamespace(tile=GRID.tile_id),
        output=SimpleNamespace(stack=str(out)),
        params=SimpleNamespace(
            tile_size_m=200,
            resolution_m=10,
            crs="EPSG:32633",
            time_range=TIME_RANGE,
            maxcc=0.8,
            cache_dir=str(tmp_path / "cache"),
            base_url=standin.base_url,
            token_url=standin.token_url,
        ),
        log=[str(tmp_path / "log.txt")],
    )
    runpy.run_path(str(REPO / "scripts" / "download_sentinelhub.py"), init_globals={"snakemake": snakemake})
    with stack.open(out, required=("bands", "is_data")) as ds:
        assert ds.sizes == {"time": 3, "y": 20, "x": 20, "band": 13}
        assert stack.grid_of(ds) == GRID
    assert standin.counts["process"] == 3
