"""Sentinel Hub download through sentinelhub-py's own client, against the stand-in service (tests/sentinelhub_standin.py).

The stand-in validates requests as the documented API does, serves values that are a linear function of map
coordinates (so the expected stack is computed here from the tile grid, not from the client), and meters PU.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from affine import Affine
from sentinelhub_standin import (
    CLIENT_ID,
    CLIENT_SECRET,
    SCENE_CRS,
    Scene,
    metered_catalog_units,
    metered_units,
    serve,
    served_value,
)

from landcover import stack
from landcover.clouds import cloud_masks
from landcover.grid import tile_grid
from landcover.ingest import IngestError
from landcover.ingest.sentinelhub import (
    CATALOGUED_WITHOUT_DATA,
    RequestPacer,
    download_tile,
    evalscript,
    overpass_days,
    search_catalog,
    sentinelhub_config,
)
from landcover.ingest.sentinelhub_plan import (
    S2CLOUDLESS_BANDS,
    catalog_plan,
    cloud_percent,
    max_overpass_days,
    plan_tile,
    processing_units,
    request_groups,
    tile_plan,
)
from landcover.stack import L1C_BANDS

REPO = Path(__file__).resolve().parents[1]
UTC = dt.UTC
GRID = tile_grid("x1163_y12698", 400, 10, "EPSG:32633")  # 40 x 40 px near Ljubljana
LEFT, BOTTOM, RIGHT, TOP = GRID.bounds
FEATURE_BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]
SCENES = [
    Scene(dt.datetime(2016, 12, 30, 10, 0, 21, tzinfo=UTC), 0.0),  # before the time range
    Scene(dt.datetime(2017, 3, 4, 10, 0, 21, tzinfo=UTC), 5.0),
    # the same overpass, next granule: a duplicate datetime
    Scene(dt.datetime(2017, 3, 4, 10, 0, 21, tzinfo=UTC), 20.0, granule="T33TWM"),
    Scene(dt.datetime(2017, 4, 13, 10, 10, 21, tzinfo=UTC), 90.0),  # too cloudy
    # swath edge: data on the top half of the tile only
    Scene(dt.datetime(2017, 5, 3, 10, 0, 21, tzinfo=UTC), 10.0, data=(0, (BOTTOM + TOP) / 2, 1e7, 1e8)),
    Scene(dt.datetime(2017, 6, 12, 10, 10, 21, 26000, tzinfo=UTC), 29.0),  # exactly maxcc: kept; milliseconds
    # a granule the catalogue lists (its footprint meets the tile) with no data on the tile
    Scene(
        dt.datetime(2017, 7, 2, 10, 0, 21, tzinfo=UTC), 1.0, footprint=(0, 0, 1e7, 1e8), data=(RIGHT + 5, 0, 1e7, 1e8)
    ),
    # a granule far away: not listed
    Scene(dt.datetime(2017, 8, 1, 10, 0, 21, tzinfo=UTC), 1.0, footprint=(700_000, 5_000_000, 800_000, 5_100_000)),
]
KEPT = [SCENES[1], SCENES[4], SCENES[5]]
TIME_RANGE = ["2017-01-01", "2017-12-31"]
MAXCC = 0.29  # int(0.29 * 100) is 28: sentinelhub-py's own maxcc would refuse the 29 % scene the catalogue lists


@pytest.fixture
def standin(monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the stand-in speaks plain http
    with serve(SCENES) as server:
        yield server


def config_for(standin, **overrides):
    config = sentinelhub_config(standin.base_url, standin.token_url, download_sleep_time=0.01, **overrides)
    config.sh_client_id, config.sh_client_secret = CLIENT_ID, CLIENT_SECRET
    return config


def fetch(standin, tmp_path, **kwargs):
    options = {"bands": FEATURE_BANDS, "config": config_for(standin), **kwargs}
    return download_tile(GRID, TIME_RANGE, MAXCC, tmp_path / "cache", **options)


def centres(transform, height, width):
    """Pixel-centre map coordinates of a grid, computed here (not by the client)."""
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    return transform.c + cols * transform.a, transform.f + rows * transform.e


def test_download_gives_the_served_values_dates_and_coarse_cloud_bands(standin, tmp_path):
    ds = fetch(standin, tmp_path)
    assert list(ds["time"].values) == [np.datetime64(s.datetime.replace(tzinfo=None), "ns") for s in KEPT]
    assert list(ds["band"].values) == FEATURE_BANDS and ds["bands"].dtype == np.uint16
    assert ds.rio.transform() == GRID.transform and ds.rio.crs == GRID.crs
    x, y = centres(GRID.transform, 40, 40)
    for t, scene in enumerate(KEPT):
        covered = y > (BOTTOM + TOP) / 2 if scene.data else np.ones((40, 40), dtype=bool)
        np.testing.assert_array_equal(ds["is_data"].values[t], covered)
        for k, band in enumerate(FEATURE_BANDS):
            want = np.where(covered, np.round(served_value(scene.datetime, band, x, y)), 0)
            got = ds["bands"].values[t, ..., k].astype(float)
            if band in ("B11", "B12"):  # fetched at 20 m, resampled bilinearly here: exact inside, 1 px border
                inner = covered.copy()
                inner[[0, -1], :] = inner[:, [0, -1]] = False
                inner &= ~(np.abs(y - (BOTTOM + TOP) / 2) < 20) if scene.data else True
                np.testing.assert_allclose(got[inner], want[inner], atol=1)
                assert (got[~covered] == 0).all()
            else:
                np.testing.assert_array_equal(got, want)
    # s2cloudless's 10 bands at 80 m: 5 x 5 blocks of 8 x 8 tile pixels, values at the blocks' centres.
    assert ds["cloud_bands"].shape == (3, 5, 5, 10) and list(ds["cloud_band"].values) == list(S2CLOUDLESS_BANDS)
    assert list(ds.attrs["cloud_pixel_blocks"]) == [8, 8]
    cx, cy = centres(GRID.transform @ Affine.scale(8), 5, 5)
    for k, band in enumerate(S2CLOUDLESS_BANDS):
        want = np.round(served_value(KEPT[0].datetime, band, cx, cy))
        np.testing.assert_array_equal(ds["cloud_bands"].values[0, ..., k], want)
    np.testing.assert_array_equal(ds["cloud_is_data"].values[1], np.repeat(cy[:, :1] > (BOTTOM + TOP) / 2, 5, axis=1))


def test_requests_are_what_the_documented_api_takes(standin, tmp_path):
    fetch(standin, tmp_path)
    assert standin.counts["process"] == 3  # 10 m, 20 m and cloud groups, all five days in one request each
    for payload in standin.process_payloads:
        data = payload["input"]["data"][0]
        assert data["dataFilter"]["maxCloudCoverage"] == 29
        assert data["processing"]["harmonizeValues"] is True
        assert payload["input"]["bounds"]["properties"]["crs"].endswith("/32633")
    assert "eo:cloud_cover <= 29" in standin.catalog_payloads[0]["filter"]
    assert standin.counts["catalog"] == 1  # 6 items, one page at sentinelhub-py's limit of 100
    sizes = sorted((p["output"]["width"], p["output"]["height"]) for p in standin.process_payloads)
    assert sizes == [(5, 5), (20, 20), (40, 40)]


def test_the_cloud_group_fetches_what_s2cloudless_reads():
    from s2cloudless.utils import MODEL_BANDS

    assert list(S2CLOUDLESS_BANDS) == MODEL_BANDS  # its all_bands=False input, in that order
    assert not {"B03", "B06", "B07"} & set(S2CLOUDLESS_BANDS)


def test_the_ten_cloud_bands_give_s2cloudless_golden_scene(real_data):
    """The stack as Sentinel Hub delivers it (only s2cloudless's bands, coarse grid of 1 x 1 blocks here) gives
    s2cloudless's own probabilities and mask of its test scene."""
    from rasterio.crs import CRS

    with np.load(real_data / "s2cloudless-scene" / "input_arrays_crop.npz") as arrays:
        scene, probabilities, mask = arrays["s2_im"], arrays["cl_probs"], arrays["cl_mask"].astype(bool)
    n, height, width, _ = scene.shape
    dn = np.round(scene * 10000).astype(np.uint16)
    grid = stack.TileGrid("x0001_y0002", CRS.from_epsg(32633), Affine(10, 0, 500000, 0, -10, 5100000), height, width)
    everywhere = np.ones((n, height, width), dtype=bool)
    ds = stack.new_stack(dn[..., [1]], everywhere, [np.datetime64("2017-06-01")] * n, ["B02"], grid)
    ten = [L1C_BANDS.index(band) for band in S2CLOUDLESS_BANDS]
    ds = ds.assign(
        cloud_bands=(("time", "cloud_y", "cloud_x", "cloud_band"), dn[..., ten]),
        cloud_is_data=(("time", "cloud_y", "cloud_x"), everywhere),
    ).assign_coords(cloud_band=list(S2CLOUDLESS_BANDS))
    ds.attrs["cloud_pixel_blocks"] = np.array([1, 1], dtype=np.int32)
    result = cloud_masks(ds, resolution_m=10, threshold=0.4, average_over=1, dilation_size=1)
    assert np.abs(result["cloud_probability"].values - probabilities).max() < 1e-6
    inner = np.s_[:, 1:-1, 1:-1]  # the golden mask was dilated on the whole scene, of which this is a crop
    assert np.array_equal(result["cloud_mask"].values[inner], mask[inner])


def test_the_standin_meters_pu_by_the_documented_definition():
    """The Processing Unit page's own worked examples, and its definition, against the stand-in's meter."""
    # "NDVI calculation for a parcel": 20 x 20 px (area factor 0.01), 2 bands, 16-bit, 1 sample: 0.0067 PU.
    assert metered_units(20, 20, ["B04", "B08"], "UINT16", 1) == pytest.approx(0.0067, abs=5e-5)
    # "Sentinel-1 change detection": 1024 x 1024 px (x 4), 4 bands (x 4/3), 32-bit float (x 2), 2 samples (x 2),
    # orthorectification (x 2): 42.667 PU; L1C has no orthorectification factor, so half of that here.
    assert metered_units(1024, 1024, ["B02", "B03", "B04", "B08"], "FLOAT32", 2) == pytest.approx(42.667 / 2, abs=1e-3)
    # The definition: 512 x 512 px, 3 bands (dataMask not counted), 16 bits, one sample: 1 PU; the request's floor.
    assert metered_units(512, 512, ["B02", "B03", "B04", "dataMask"], "UINT16", 1) == pytest.approx(1.0)
    assert metered_units(50, 50, ["B04"], "UINT16", 1) == pytest.approx(0.005)  # 0.01 x 1/3 < 0.005
    assert metered_units(512, 512, ["dataMask"], "UINT16", 1) == pytest.approx(1 / 3)  # counted when alone
    # Catalog API: a year over 10 km (area factor 0.01, 12 months): 0.12 PU; 2 000 x 1 000 km for a month and a
    # day (x 2 area, 2 months, capped at 1 PU).
    year = (dt.datetime(2017, 1, 1, tzinfo=UTC), dt.datetime(2017, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert metered_catalog_units([14.0, 46.0, 14.13, 46.09], *year) == pytest.approx(0.12)
    month_and_day = (dt.datetime(2017, 1, 15, tzinfo=UTC), dt.datetime(2017, 2, 16, tzinfo=UTC))
    assert metered_catalog_units([0.0, 0.0, 18.0, 9.0], *month_and_day) == pytest.approx(1.0)
    assert metered_catalog_units([14.0, 46.0, 14.13, 46.09], *month_and_day) == pytest.approx(0.02)


def test_the_pu_estimate_matches_a_hand_computed_case_and_the_metered_use(standin, tmp_path):
    # 1 PU = 512 x 512 px x 3 bands x 1 date; dataMask free; area factor at least 0.01; at least 0.005 PU a request.
    assert processing_units(512, 512, 3, 1) == pytest.approx(1.0)
    assert processing_units(1000, 1000, 13, 1) == pytest.approx(1000 * 1000 / 262144 * 13 / 3)  # 16.53
    assert processing_units(125, 125, 13, 70) == pytest.approx(125 * 125 / 262144 * 13 / 3 * 70)
    assert processing_units(10, 10, 3, 1) == pytest.approx(0.01)  # the area factor's floor
    assert processing_units(10, 10, 1, 1) == pytest.approx(0.005)  # the request's floor
    # A 10 km tile, 70 days: 4 bands at 10 m (5 days a request), 2 at 20 m, s2cloudless's 10 at 80 m.
    country = tile_grid("x0046_y0508", 10000, 10, "EPSG:32633")
    requests, units = tile_plan(request_groups(country, FEATURE_BANDS, 80), 70)
    by_hand = 70 * (1000**2 / 512**2 * 4 / 3 + 500**2 / 512**2 * 2 / 3 + 125**2 / 512**2 * 10 / 3)
    assert units == pytest.approx(by_hand)  # 5.95 PU a day, 36 % of the 16.53 PU of 13 bands at 10 m
    assert units <= 0.5 * 70 * processing_units(1000, 1000, 13, 1)
    assert requests == -(-70 // 4) + 2 * -(-70 // 32)  # 4, 32 and 32 days a request (responses up to ~48 MB)

    fetch(standin, tmp_path)
    _, estimate = tile_plan(request_groups(GRID, FEATURE_BANDS, 80), 4)  # the catalogue's 4 overpass days
    assert standin.processing_units == pytest.approx(estimate)  # metered by the stand-in from the requests


def test_maxcc_is_one_whole_percent_in_both_apis():
    assert [cloud_percent(v) for v in (0.29, 0.805, 0.8, 1.0, 0.0)] == [29, 80, 80, 100, 0]
    with pytest.raises(IngestError, match="maxcc"):
        cloud_percent(80)


def test_rerun_fetches_nothing(standin, tmp_path):
    first = fetch(standin, tmp_path)
    counts = dict(standin.counts)
    again = fetch(standin, tmp_path)
    assert dict(standin.counts) == counts
    assert again.identical(first)


def test_transient_failures_are_retried_within_bounds(standin, tmp_path):
    standin.fail("process", 500, 429)
    standin.fail("catalog", 503)
    ds = fetch(standin, tmp_path)
    assert ds.sizes["time"] == 3
    assert standin.counts["process"] == 3 + 2
    assert standin.counts["catalog"] == 1 + 1


def test_rate_limit_attempts_are_bounded(standin, tmp_path):
    standin.fail("process", *[429] * 20)
    with pytest.raises(IngestError, match=rf"tile {GRID.tile_id}: .*429.* to all 3 attempts"):
        fetch(standin, tmp_path, config=config_for(standin, max_retries=3))
    assert standin.counts["process"] == 3  # sentinelhub-py's max_retries counts the first attempt


def test_a_long_retry_after_is_the_quota_message_not_a_wait(standin, tmp_path):
    standin.retry_after_ms = 3_600_000  # an hour
    standin.fail("process", 429)
    with pytest.raises(IngestError, match=rf"tile {GRID.tile_id}: .*429.* 3,600 s, longer than sentinelhub.max_wait_s"):
        fetch(standin, tmp_path, max_wait_s=60)
    assert standin.counts["process"] == 1


def test_a_token_dropped_mid_run_is_renewed_once(standin, tmp_path):
    standin.expire_tokens_at = {2}  # the service forgets its tokens when the second Process request arrives
    ds = fetch(standin, tmp_path)
    assert ds.sizes["time"] == 3
    assert standin.counts["token"] == 2 and standin.counts["process"] == 3 + 1


def test_a_token_refused_again_after_renewal_fails_naming_the_tile(standin, tmp_path):
    standin.expire_tokens_at = {2, 3}
    with pytest.raises(IngestError, match=rf"tile {GRID.tile_id}: .*\(401\) with a fresh token too"):
        fetch(standin, tmp_path)
    assert standin.counts["token"] == 2


class FakeClock:
    """A clock that moves only when slept on."""

    def __init__(self):
        self.now, self.slept = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_pacer_keeps_both_per_minute_limits():
    clock = FakeClock()
    pacer = RequestPacer(requests_per_minute=300, units_per_minute=300, clock=clock, sleep=clock.sleep)
    # Buckets of ten seconds' worth (50 requests, 50 PU), refilled at 5 a second.
    pacer.take(20)
    pacer.take(20)
    assert clock.slept == []
    pacer.take(20)  # 10 PU left: 10 more take 2 s
    assert clock.slept == [pytest.approx(2.0)]
    clock.now += 60  # a quiet minute fills both buckets, never above their ten seconds' worth
    for _ in range(50):
        pacer.take(0.01)  # small requests: the request bucket binds
    pacer.take(0.01)
    assert clock.slept[1:] == [pytest.approx(0.2)]
    clock.now += 60
    pacer.take(120)  # larger than the bucket: sent once it is full, leaving a debt of 70 PU
    pacer.take(1)  # waits for the debt and its own PU: 71 / 5 = 14.2 s
    assert clock.slept[2:] == [pytest.approx(14.2)]


def test_the_download_is_paced(standin, tmp_path):
    clock = FakeClock()
    pacer = RequestPacer(requests_per_minute=1, units_per_minute=1000, clock=clock, sleep=clock.sleep)
    fetch(standin, tmp_path, pacer=pacer)
    # catalogue, then 3 Process requests, at one request a minute: three waits of a minute
    assert clock.slept == [pytest.approx(60.0)] * 3
    clock = FakeClock()
    fetch(standin, tmp_path, pacer=RequestPacer(1, 1000, clock=clock, sleep=clock.sleep))
    assert clock.slept == []  # all cached: nothing sent, nothing paced


def test_a_catalogued_day_without_data_is_a_warning_with_the_count(standin, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="landcover.ingest.sentinelhub"):
        ds = fetch(standin, tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(f"tile {GRID.tile_id}: 1 of 4 catalogued days dropped" in w and "2017-07-02" in w for w in warnings)
    assert json.loads(ds.attrs["dropped_frames"]) == {CATALOGUED_WITHOUT_DATA: 1}


def test_permanent_errors_are_not_retried(standin, tmp_path):
    standin.fail("process", 400)
    with pytest.raises(IngestError, match="permanent error: not retried"):
        fetch(standin, tmp_path)
    assert standin.counts["process"] == 1


def test_persistent_server_error_is_a_clear_error(standin, tmp_path):
    standin.fail("process", *[500] * 10)
    with pytest.raises(IngestError, match=rf"tile {GRID.tile_id}: Sentinel Hub download of .* failed"):
        fetch(standin, tmp_path, config=config_for(standin, max_download_attempts=2))


def test_quota_exhausted_names_the_tile_and_keeps_what_arrived(tmp_path, monkeypatch):
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    with serve(SCENES, quota_pu=0.2) as standin:  # enough for the 10 and 20 m requests, not the cloud one
        with pytest.raises(IngestError, match=rf"tile {GRID.tile_id}: .*403.*used up.*rerun when the quota renews"):
            fetch(standin, tmp_path)
        paid = standin.counts["process"]
        standin.quota_pu = None  # next month
        ds = fetch(standin, tmp_path)
        assert ds.sizes["time"] == 3
        assert paid == 3 and standin.counts["process"] == paid + 1  # only what had not arrived


def test_a_misplaced_response_is_refused(standin, tmp_path):
    standin.misplace_m = 0.05  # a twentieth of a metre
    with pytest.raises(IngestError, match=rf"tile {GRID.tile_id}: Sentinel Hub's 10m response has transform"):
        fetch(standin, tmp_path)


def test_bad_credentials_name_the_setting(standin, tmp_path):
    config = config_for(standin)
    config.sh_client_secret = "wrong"
    with pytest.raises(IngestError, match=r"rejected the credentials \(invalid_client.*SH_CLIENT_ID.*preset: cdse"):
        fetch(standin, tmp_path, config=config)


def test_missing_credentials_fail_before_any_request(standin, tmp_path):
    config = config_for(standin)
    config.sh_client_id = ""
    with pytest.raises(IngestError, match="SH_CLIENT_ID and SH_CLIENT_SECRET"):
        fetch(standin, tmp_path, config=config)
    assert sum(standin.counts.values()) == 0


def test_the_standin_refuses_what_the_service_refuses(standin, tmp_path):
    """A request the documented API rejects gets 400, and the client says which tile."""
    import requests

    token = requests.post(
        standin.token_url,
        data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    ).json()["access_token"]
    good = {
        "input": {
            "bounds": {"bbox": list(GRID.bounds), "properties": {"crs": "http://www.opengis.net/def/crs/EPSG/0/32633"}},
            "data": [
                {
                    "type": "sentinel-2-l1c",
                    "dataFilter": {
                        "timeRange": {"from": "2017-03-04T00:00:00Z", "to": "2017-03-04T23:59:59Z"},
                        "maxCloudCoverage": 80,
                    },
                    "processing": {"harmonizeValues": True},
                }
            ],
        },
        "output": {"width": 4, "height": 4, "responses": [{"identifier": "default", "format": {"type": "image/tiff"}}]},
        "evalscript": evalscript(["B02"], ["2017-03-04"]),
    }
    post = lambda payload: requests.post(
        standin.base_url + "/api/v1/process", json=payload, headers={"Authorization": f"Bearer {token}"}
    )
    assert post(good).status_code == 200
    data = good["input"]["data"][0]
    bad = {
        "band": evalscript(["B02"], ["2017-03-04"]).replace('"B02"', '"B2"'),
        "units": evalscript(["B02"], ["2017-03-04"]).replace('"DN"', '"RAD"'),
        "version": evalscript(["B02"], ["2017-03-04"]).replace("//VERSION=3", "//VERSION=2"),
        "output bands": evalscript(["B02"], ["2017-03-04"]).replace("bands: 2,", "bands: 3,"),
        "sampleType": evalscript(["B02"], ["2017-03-04"]).replace("UINT16", "UINT12"),
    }
    for what, script in bad.items():
        assert post({**good, "evalscript": script}).status_code == 400, what
    for change in (
        {"output": {**good["output"], "width": 2501}},
        {
            "input": {
                **good["input"],
                "data": [{**data, "dataFilter": {**data["dataFilter"], "maxCloudCoverage": 80.5}}],
            }
        },
        {"input": {**good["input"], "bounds": {**good["input"]["bounds"], "bbox": [1, 1, 0, 0]}}},
        {"input": {**good["input"], "data": [{**data, "processing": {"harmonizeValues": "yes"}}]}},
    ):
        assert post({**good, **change}).status_code == 400, change
    assert requests.post(standin.base_url + "/api/v1/process", json=good).status_code == 401


def test_overpass_days_group_granules_and_keep_one_frame_a_day():
    import pandas as pd

    times = [
        pd.Timestamp(t)
        for t in ("2017-03-04T10:00:21", "2017-03-04T10:00:21", "2017-03-04T10:00:31", "2017-03-07T10:10:21")
    ]
    assert overpass_days(times) == [("2017-03-04", times[0]), ("2017-03-07", times[3])]


def test_cloud_masks_use_the_coarse_cloud_bands(standin, tmp_path):
    ds = fetch(standin, tmp_path)
    clouds = cloud_masks(ds, resolution_m=80, threshold=0.4, average_over=2, dilation_size=1)
    assert clouds["cloud_probability"].shape == (3, 40, 40)
    assert not clouds["cloud_mask"].values[1][~ds["is_data"].values[1]].any()
    # the same probabilities as s2cloudless on those 80 m bands, upsampled
    from landcover.clouds import cloud_probability

    coarse = cloud_probability(ds["cloud_bands"].values[:1].astype(np.float32) / 10000)
    assert clouds["cloud_probability"].values[0, 0, 0] == pytest.approx(coarse[0, 0, 0], abs=1e-6)


def test_script_writes_the_tile_stack(standin, tmp_path, monkeypatch):
    monkeypatch.setenv("SH_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SH_CLIENT_SECRET", CLIENT_SECRET)
    out = tmp_path / "stacks" / f"{GRID.tile_id}.nc"
    snakemake = SimpleNamespace(
        wildcards=SimpleNamespace(tile=GRID.tile_id),
        output=SimpleNamespace(stack=str(out)),
        params=SimpleNamespace(
            tile_size_m=400,
            resolution_m=10,
            crs="EPSG:32633",
            time_range=TIME_RANGE,
            maxcc=MAXCC,
            bands=FEATURE_BANDS,
            cloud_resolution_m=80,
            cache_dir=str(tmp_path / "cache"),
            preset=None,
            base_url=standin.base_url,
            token_url=standin.token_url,
            requests_per_minute=150,
            processing_units_per_minute=150,
            max_wait_s=120,
            margin_px=0,
        ),
        log=[str(tmp_path / "log.txt")],
    )
    runpy.run_path(str(REPO / "scripts" / "download_sentinelhub.py"), init_globals={"snakemake": snakemake})
    with stack.open(out, required=("bands", "is_data", "cloud_bands")) as ds:
        assert ds.sizes == {"time": 3, "y": 40, "x": 40, "band": 6, "cloud_y": 5, "cloud_x": 5, "cloud_band": 10}
        assert stack.grid_of(ds) == GRID
        assert cloud_masks(ds, resolution_m=80, threshold=0.4, average_over=2, dilation_size=1)["cloud_mask"].shape == (
            3,
            40,
            40,
        )
    assert standin.counts["process"] == 3


def test_plan_asks_the_catalogue_and_the_download_reuses_its_answer(standin, tmp_path):
    from conftest import example_config

    config = example_config("slovenia-cdse")
    config["sentinelhub"].update(maxcc=MAXCC, cache_dir=str(tmp_path / "cache"))
    config["features"]["bands"] = FEATURE_BANDS
    sh = config["sentinelhub"]
    times = search_catalog(GRID, sh["time_range"], MAXCC, config_for(standin), sh["cache_dir"])
    items, days = len(times), len(overpass_days(times))
    plan = plan_tile(config, GRID, catalog_items=items, days=days)
    assert (items, plan.days, plan.from_catalog) == (5, 4, True)  # two granules on 2017-03-04
    assert (plan.process_requests, plan.catalog_requests) == (3, 1)
    assert plan.process_units == pytest.approx(tile_plan(request_groups(GRID, FEATURE_BANDS, 80), 4)[1])
    assert plan.catalog_units == pytest.approx(standin.catalog_units)  # metered by the stand-in: 0.12
    fetch(standin, tmp_path)
    assert standin.counts["catalog"] == 1  # the download found the plan's answer in the cache
    assert standin.processing_units == pytest.approx(plan.process_units)


def test_landcover_plan_counts_the_catalogue_with_credentials(standin, tmp_path, monkeypatch, capsys):
    import geopandas as gpd
    import yaml
    from conftest import example_config
    from shapely.geometry import box

    from landcover.cli import main

    monkeypatch.setenv("SH_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SH_CLIENT_SECRET", CLIENT_SECRET)
    gpd.GeoDataFrame(geometry=[box(LEFT, BOTTOM, RIGHT + 400, TOP)], crs=SCENE_CRS).to_file(tmp_path / "aoi.gpkg")
    config = example_config("slovenia-cdse")
    config["area"].update(aoi=str(tmp_path / "aoi.gpkg"), tile_size_m=400, crs=SCENE_CRS)
    config["features"]["bands"] = FEATURE_BANDS
    config["sentinelhub"].update(maxcc=MAXCC, cache_dir=str(tmp_path / "cache"), preset=None)
    config["sentinelhub"].update(base_url=standin.base_url, token_url=standin.token_url)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["plan", "--configfile", str(tmp_path / "config.yaml"), "--per-tile"]) == 0
    out = capsys.readouterr().out
    assert "plan: 2 tiles, 4-4 overpass days a tile (the catalogue's), 8 requests" in out
    assert standin.counts["catalog"] == 2 and standin.counts["process"] == 0
    assert re.search(rf"^{GRID.tile_id} +4 +4 ", out, re.MULTILINE)  # 3 Process requests and a catalogue page


def test_the_overpass_bound_counts_two_orbits_a_satellite_per_cycle():
    # 2017: Sentinel-2A all year (2 x ceil(365 / 10) = 74), 2B from 2017-07-06 (179 days: 2 x 18 = 36).
    assert max_overpass_days(["2017-01-01", "2017-12-31"]) == 74 + 36
    assert max_overpass_days(["2016-01-01", "2016-12-31"]) == 2 * 37  # 2A alone, 366 days
    assert max_overpass_days(["2017-08-01", "2017-08-05"]) == 4  # two in five days
    assert max_overpass_days(["2017-08-01", "2017-08-01"]) == 1  # never more than the days
    assert max_overpass_days(["2017-08-01", "2017-08-10"]) == 4  # one cycle: two orbits of each satellite


def test_the_catalogue_is_planned_by_pages_and_months():
    # The Processing Unit page's Catalog API rules: 1 PU is 1 000 000 km2 x 1 month; area factor >= 0.01 (10 000
    # km2), months rounded up, 0.01 to 1 PU a request; a page (100 items) a request.
    assert catalog_plan(["2017-01-01", "2017-12-31"], 0, 100) == (1, pytest.approx(0.01 * 12))
    assert catalog_plan(["2017-01-15", "2017-02-02"], 250, 100) == (3, pytest.approx(3 * 0.01))  # 19 days: 1 month
    assert catalog_plan(["2017-01-15", "2017-02-15"], 1, 100) == (1, pytest.approx(0.02))  # a month and a day: 2
    assert catalog_plan(["2017-01-01", "2017-12-31"], 1, 50_000) == (1, pytest.approx(0.05 * 12))
    assert catalog_plan(["2017-01-01", "2017-12-31"], 1, 200_000) == (1, pytest.approx(1.0))  # 2.4, at most 1


def test_the_slovenia_cdse_plan_costs_at_most_half_of_all_13_bands_at_10_m(capsys):
    from landcover.cli import main

    assert main(["plan", "--configfile", str(REPO / "config" / "slovenia-cdse.yaml"), "--no-catalog"]) == 0
    out = capsys.readouterr().out
    found = re.search(r"plan: (\d+) tiles, \d+-(\d+) .*?\), (\d+) requests, ([\d,]+) PU", out)
    tiles, days, requests, units = (float(value.replace(",", "")) for value in found.groups())
    assert 250 <= tiles <= 275 and days == max_overpass_days(["2017-01-01", "2017-12-31"])
    before = days * processing_units(1000, 1000, 13, 1)  # one request a day, 13 bands at 10 m: 16.5 PU a day
    assert units / tiles <= 0.5 * before
    assert requests / tiles < days / 2
    assert "months of PU" in out


@pytest.mark.slow
def test_the_workflow_runs_on_sentinel_hub(tmp_path, monkeypatch):
    """Two 1 km tiles from the stand-in: coarse cloud bands, feature bands only, to the merged map."""
    import geopandas as gpd
    from conftest import snakemake, tiny_config, write_config
    from shapely.geometry import box

    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    monkeypatch.setenv("SH_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SH_CLIENT_SECRET", CLIENT_SECRET)
    gpd.GeoDataFrame(geometry=[box(465000, 5079000, 467000, 5080000)], crs=SCENE_CRS).to_file(tmp_path / "aoi.gpkg")
    halves = [box(465000, 5079000, 465500, 5080000), box(465500, 5079000, 467000, 5080000)]
    gpd.GeoDataFrame({"lulc_id": [1, 2]}, geometry=halves, crs=SCENE_CRS).to_file(tmp_path / "reference.gpkg")
    scenes = [Scene(dt.datetime(2017, month, 10, 10, 0, 21, tzinfo=UTC), 5.0) for month in range(1, 13, 2)]
    with serve(scenes) as server:
        config = tiny_config(
            area={"source": "sentinelhub", "aoi": str(tmp_path / "aoi.gpkg")},
            reference={"path": str(tmp_path / "reference.gpkg")},
            split={"test_tiles": ["x0466_y5079"]},
            report={"plot_tiles": ["x0465_y5079"], "dpi": 50},
        )
        config["sentinelhub"] = {"time_range": TIME_RANGE, "maxcc": 0.8, "cache_dir": str(tmp_path / "cache")}
        config["sentinelhub"].update(base_url=server.base_url, token_url=server.token_url)
        write_config(tmp_path, config)
        run = snakemake(tmp_path)
        assert server.counts["process"] == 2 * 3  # per tile: 10 m, 20 m and cloud groups, 6 days each
    assert "Sentinel Hub plan: 2 tiles" in run.stdout + run.stderr
    with stack.open(tmp_path / "results" / "stacks" / "x0466_y5079.nc") as ds:
        assert ds.sizes["time"] == 6 and ds.sizes["cloud_band"] == len(S2CLOUDLESS_BANDS)
    assert (tmp_path / "results" / "landcover.tif").exists()
