"""Temporal interpolation against numpy.interp, pixel by pixel, and the date grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import load_npy

from landcover import interpolate as interp
from landcover.interpolate import date_grid, interpolate

DAY = np.timedelta64(1, "D")


MIDNIGHT = np.timedelta64(0, "s")


def _reference(values, valid, times, dates, at=MIDNIGHT):
    """numpy.interp per pixel and feature over the valid observations (averaged per timestamp), NaN if none;
    each date evaluated at its 00:00 + `at`."""
    times = np.asarray(times, dtype="datetime64[s]")
    x = (times - np.datetime64("2017-01-01T00:00:00")) / DAY
    instants = np.asarray(dates, dtype="datetime64[D]").astype("datetime64[s]") + at
    targets = (instants - np.datetime64("2017-01-01T00:00:00")) / DAY
    out = np.full((len(dates), *values.shape[1:]), np.nan)
    for row in range(values.shape[1]):
        for col in range(values.shape[2]):
            ok = valid[:, row, col]
            if not ok.any():
                continue
            days, inverse = np.unique(x[ok], return_inverse=True)
            for f in range(values.shape[3]):
                sums = np.bincount(inverse, weights=values[ok, row, col, f].astype(np.float64))
                out[:, row, col, f] = np.interp(targets, days, sums / np.bincount(inverse))
    return out


def _random_case(rng, n_times=17, height=9, width=11, n_features=3, masked=0.6):
    days = np.sort(rng.choice(np.arange(-40, 400), n_times, replace=False))
    times = np.datetime64("2017-01-01T10:30:00") + days * DAY
    values = rng.normal(size=(n_times, height, width, n_features)).astype(np.float32)
    valid = rng.random((n_times, height, width)) > masked
    # pixels with exactly 0, 1 and 2 valid observations, and one valid only outside the date grid
    valid[:, 0, 0] = False
    valid[:, 0, 1] = False
    valid[n_times // 2, 0, 1] = True
    valid[:, 0, 2] = False
    valid[[3, n_times - 4], 0, 2] = True
    valid[:, 0, 3] = False
    valid[0, 0, 3] = True
    values[~valid] = np.nan  # invalid values must never leak
    return values, valid, times


HALF_PAST_TEN = np.timedelta64(10 * 3600 + 1800, "s")  # the time of day of _random_case's acquisitions


@pytest.mark.parametrize(("time_of_day", "at"), [("acquisitions", HALF_PAST_TEN), ("00:00", MIDNIGHT), ("13:45", None)])
def test_matches_numpy_interp_per_pixel(time_of_day, at):
    rng = np.random.default_rng(7)
    values, valid, times = _random_case(rng)
    dates = date_grid("2017-01-01", "2017-12-31", 16)
    out = interpolate(values, valid, times, dates, time_of_day=time_of_day)
    assert out.dtype == np.float32 and out.shape == (23, 9, 11, 3)
    at = np.timedelta64(13 * 3600 + 45 * 60, "s") if at is None else at
    expected = _reference(values, valid, times, dates, at)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert np.isnan(out[:, 0, 0]).all()
    assert np.isfinite(out[:, 0, 1:]).all()
    assert (out[:, 0, 1] == values[len(times) // 2, 0, 1]).all()  # one observation: held everywhere
    # invalid observations' values never matter, and a pixel without valid observations is NaN, not 0
    np.testing.assert_array_equal(interpolate(np.nan_to_num(values), valid, times, dates, time_of_day=time_of_day), out)


def test_edges_hold_and_exact_hits():
    times = np.array(["2016-12-20", "2017-01-17", "2017-02-02"], dtype="datetime64[D]")
    values = np.array([1.0, 3.0, 5.0], dtype=np.float32).reshape(3, 1, 1, 1)
    valid = np.ones((3, 1, 1), dtype=bool)
    dates = np.array(["2016-12-01", "2017-01-01", "2017-01-17", "2017-01-25", "2017-03-01"], dtype="datetime64[D]")
    out = interpolate(values, valid, times, dates)[:, 0, 0, 0]
    # before the first and after the last observation: held; December 2016 takes part in January's value
    np.testing.assert_allclose(out, [1.0, 1.0 + 2.0 * 12 / 28, 3.0, 4.0, 5.0], rtol=1e-6)
    assert np.array_equal(interpolate(values, valid, times, dates[::-1])[:, 0, 0, 0], out[::-1])


def test_unsorted_and_duplicate_times():
    rng = np.random.default_rng(3)
    values, valid, times = _random_case(rng, n_times=12)
    times[5] = times[4]  # a duplicate: averaged over its valid observations
    times[9] = times[4]
    order = rng.permutation(len(times))
    dates = date_grid("2016-12-01", "2018-01-15", 10)
    out = interpolate(values[order], valid[order], times[order], dates)
    np.testing.assert_allclose(out, _reference(values, valid, times, dates, HALF_PAST_TEN), rtol=1e-5, atol=1e-6)


def test_blocks_threads_and_more_than_127_observations(monkeypatch):
    """Tiny blocks (partial rows, a remainder), two threads and int16 observation indices give the same result."""
    rng = np.random.default_rng(11)
    values, valid, times = _random_case(rng, n_times=130, height=5, width=7, n_features=2, masked=0.8)
    dates = date_grid("2017-01-01", "2017-12-31", 16)
    expected = _reference(values, valid, times, dates, HALF_PAST_TEN)
    monkeypatch.setattr(interp, "BLOCK_PIXELS", 10)
    out = interpolate(values.astype(np.float64), valid, times, dates, workers=2)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_no_observations_give_nan():
    out = interpolate(
        np.zeros((0, 2, 3, 4), np.float32), np.zeros((0, 2, 3), bool), [], date_grid("2017-01-01", "2017-01-31", 10)
    )
    assert out.shape == (4, 2, 3, 4) and np.isnan(out).all()


def _real_patch(real_data):
    patch = real_data / "eolearn-testeopatch" / "TestEOPatch"
    times = np.array(json.loads((patch / "timestamps.json").read_text()), dtype="datetime64[s]")
    ndvi = load_npy(patch / "data" / "NDVI.npy")[:, :20, :20]
    valid = load_npy(patch / "mask" / "IS_VALID.npy")[:, :20, :20, 0].astype(bool)
    valid &= np.isfinite(ndvi[..., 0])
    return ndvi, valid, times


def test_real_ndvi_of_the_test_eopatch(real_data):
    """Real irregular times (2015-12-08 twice) and masks: eo-learn's TestEOPatch NDVI through IS_VALID, evaluated
    at midnight and at the acquisitions' mean time of day (near 10:00 UTC, all within the same hour here)."""
    ndvi, valid, times = _real_patch(real_data)
    dates = date_grid("2015-07-01", "2018-01-01", 30)
    out = interpolate(ndvi, valid, times, dates, time_of_day="00:00")
    np.testing.assert_allclose(out, _reference(ndvi, valid, times, dates), rtol=1e-5, atol=1e-6)
    clock = (times - times.astype("datetime64[D]")).astype(np.int64)
    assert clock.max() - clock.min() < 6 * 3600  # no wrap around midnight: a plain mean is the circular one
    mean = np.timedelta64(round(clock.mean()), "s")
    out = interpolate(ndvi, valid, times, dates)
    np.testing.assert_allclose(out, _reference(ndvi, valid, times, dates, mean), rtol=1e-5, atol=1e-6)


def test_first_acquisition_follows_eolearn_on_real_times(real_data):
    """eo-learn's InterpolationTask (1.5.7), restated: hours since the first acquisition, rounded (same-hour
    observations averaged); grid date g at hour (g - first's date) in hours, i.e. at the first's time of day."""
    ndvi, valid, times = _real_patch(real_data)
    dates = date_grid("2017-01-01", "2017-12-31", 16)
    first = times.min()
    hours = np.array([round((t - first) / np.timedelta64(3600, "s")) for t in times])
    grid_hours = (dates - first.astype("datetime64[D]")) / np.timedelta64(1, "h")
    as_times = np.datetime64("2017-01-01T00:00:00") + (hours * 3600).astype("timedelta64[s]")
    expected = _reference(ndvi, valid, as_times, (grid_hours * 3600).astype("timedelta64[s]") + as_times[0])
    out = interpolate(ndvi, valid, times, dates, time_of_day="first_acquisition")
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert np.nanmax(np.abs(out - interpolate(ndvi, valid, times, dates, time_of_day="00:00"))) > 1e-3


def test_time_of_day_conventions():
    dates = date_grid("2017-01-01", "2017-01-17", 16)
    times = np.array(["2016-12-31T23:50:00", "2017-01-05T00:10:00", "2017-01-09T10:20:00"], dtype="datetime64[s]")
    at, same = interp.evaluation_times(dates, times[:2])  # circular mean over midnight: 00:00, not 12:00
    assert at[0] == np.datetime64("2017-01-01T00:00:00") and np.array_equal(same, times[:2])
    at, rounded = interp.evaluation_times(dates, times, "first_acquisition")
    assert at[1] == np.datetime64("2017-01-17T23:50:00")
    assert rounded[1] == np.datetime64("2017-01-04T23:50:00") and rounded[2] == np.datetime64("2017-01-09T09:50:00")
    assert interp.evaluation_times(dates, times, "06:30")[0][0] == np.datetime64("2017-01-01T06:30:00")
    with pytest.raises(ValueError, match="time_of_day must be one of acquisitions, first_acquisition or a UTC"):
        interp.evaluation_times(dates, times, "noon")


def test_date_grid():
    dates = date_grid("2017-01-01", "2017-12-31", 16)
    assert dates.dtype == np.dtype("datetime64[D]") and len(dates) == 23
    assert dates[0] == np.datetime64("2017-01-01") and dates[-1] == np.datetime64("2017-12-19")
    assert len(date_grid("2017-01-01", "2017-01-01", 5)) == 1
    with pytest.raises(ValueError, match="end 2016-12-31 is before its start 2017-01-01"):
        date_grid("2017-01-01", "2016-12-31", 16)
    with pytest.raises(ValueError, match="step_days"):
        date_grid("2017-01-01", "2017-12-31", 0)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="valid"):
        interpolate(np.zeros((3, 2, 2, 1)), np.zeros((3, 2, 3), bool), np.arange(3).astype("datetime64[D]"), [])
    with pytest.raises(ValueError, match="2 times given for 3"):
        interpolate(np.zeros((3, 2, 2, 1)), np.zeros((3, 2, 2), bool), np.arange(2).astype("datetime64[D]"), [])
