"""Valid data, the scene filter, feature formulas and tile_features end to end."""

from __future__ import annotations

import logging
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from conftest import load_npy
from rasterio.crs import CRS

from landcover import features as ft
from landcover import stack

REPO = Path(__file__).resolve().parents[1]
BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]
INDICES = ["NDVI", "NDWI", "NORM"]
TILE = "x0183_y2040"


def _tile(n_times=8, height=7, width=6, seed=0):
    """A raw stack and cloud masks: random reflectance, frames 2, 5, .. 60% cloudy, one pixel never valid."""
    rng = np.random.default_rng(seed)
    grid = stack.TileGrid(TILE, CRS.from_epsg(32633), Affine(10, 0, 457500, 0, -10, 5102500), height, width)
    bands = rng.integers(1, 6000, (n_times, height, width, len(stack.L1C_BANDS)), dtype=np.uint16)
    is_data = np.ones((n_times, height, width), dtype=bool)
    is_data[1, :, :2] = False
    cloud = rng.random((n_times, height, width)) < 0.1
    cloud[2::3] = rng.random(cloud[2::3].shape) < 0.6
    cloud[:, 3, 3] = True
    times = np.datetime64("2016-12-25T10:00:00") + np.sort(rng.choice(400, n_times, replace=False)) * np.timedelta64(
        1, "D"
    )
    raw = stack.new_stack(bands, is_data, times, stack.L1C_BANDS, grid)
    clouds = xr.Dataset(
        {
            "cloud_mask": (("time", "y", "x"), cloud),
            "cloud_probability": (("time", "y", "x"), cloud.astype(np.float32)),
        },
        coords={"time": raw["time"].values},
    )
    return raw, stack.with_grid(clouds, grid)


def test_valid_mask_and_scene_filter_reproduce_the_test_eopatch(real_data):
    mask = real_data / "eolearn-testeopatch" / "TestEOPatch" / "mask"
    is_data, clm, is_valid = (load_npy(mask / f"{name}.npy")[..., 0] for name in ("IS_DATA", "CLM", "IS_VALID"))
    valid = ft.valid_mask(is_data, clm)
    assert np.array_equal(valid, is_valid.astype(bool))
    kept = ft.filter_scenes(valid, 0.8)
    assert kept.dtype == bool and kept.sum() == 36  # as the data's README says
    assert np.array_equal(kept, ft.valid_coverage(valid) > 0.8)


def test_scene_filter_keeps_coverage_above_the_threshold():
    valid = np.zeros((3, 2, 5), dtype=bool)
    valid[0] = True
    valid[1, :, :4] = True  # 0.8: not above 0.8, dropped as by eo-learn's ValidDataFractionPredicate
    valid[2, :, :3] = True
    assert ft.filter_scenes(valid, 0.8).tolist() == [True, False, False]
    assert ft.filter_scenes(valid, 0.5).tolist() == [True, True, True]
    with pytest.raises(ValueError, match="valid_coverage_threshold"):
        ft.filter_scenes(valid, 80)


def test_feature_formulas():
    raw = np.array([[[[100, 2000, 300, 4000], [0, 50, 0, 0], [10000, 10000, 10000, 10000]]]], dtype=np.uint16)
    names = ["B03", "B04", "B11", "B08"]
    values, feature_names = ft.compute_features(raw, names, ["B04", "B08"], INDICES)
    assert feature_names == ["B04", "B08", "NDVI", "NDWI", "NORM"]
    assert values.dtype == np.float32 and values.shape == (1, 1, 3, 5)
    b03, b04, b08 = (raw[..., names.index(b)].astype(np.float64) / 10000 for b in ("B03", "B04", "B08"))
    with np.errstate(invalid="ignore"):
        expected = np.stack([b04, b08, (b08 - b04) / (b08 + b04), (b03 - b08) / (b03 + b08), np.hypot(b04, b08)], -1)
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    assert np.isnan(values[0, 0, 1, 3]) and values[0, 0, 1, 2] == -1  # 0/0 is NaN, not 0
    with pytest.raises(ValueError, match="EVI"):
        ft.compute_features(raw, names, ["B04"], ["EVI"])
    with pytest.raises(ValueError, match="B12"):
        ft.compute_features(raw, names, ["B12"], [])


def _expected_features(raw, clouds, threshold, dates):
    """Independent reference: scene filter, formulas and numpy.interp pixel by pixel."""
    valid = raw["is_data"].values & ~clouds["cloud_mask"].values
    kept = valid.mean(axis=(1, 2)) > threshold
    refl = raw["bands"].sel(band=BANDS).values[kept].astype(np.float64) / 10000
    b03, b04, b08 = (refl[..., BANDS.index(b)] for b in ("B03", "B04", "B08"))
    values = np.concatenate(
        [refl, np.stack([(b08 - b04) / (b08 + b04), (b03 - b08) / (b03 + b08), np.sqrt((refl**2).sum(-1))], -1)], -1
    )
    valid = valid[kept]
    x = (raw["time"].values[kept] - np.datetime64("2017-01-01")) / np.timedelta64(1, "D")
    targets = (dates.astype("datetime64[ns]") - np.datetime64("2017-01-01")) / np.timedelta64(1, "D")
    out = np.full((len(dates), *values.shape[1:]), np.nan)
    for row in range(values.shape[1]):
        for col in range(values.shape[2]):
            ok = valid[:, row, col]
            for f in range(values.shape[-1]):
                if ok.any():
                    out[:, row, col, f] = np.interp(targets, x[ok], values[ok, row, col, f])
    return out, valid.sum(axis=0), kept


def test_tile_features_end_to_end_in_row_blocks(tmp_path, caplog):
    raw, clouds = _tile()
    dates = ft.date_grid("2017-01-01", "2017-12-31", 16)
    with caplog.at_level(logging.INFO, logger="landcover.features"):
        result = ft.tile_features(raw, clouds, BANDS, INDICES, dates, 0.8, block_rows=3, time_of_day="00:00")
    expected, count, kept = _expected_features(raw, clouds, 0.8, dates)
    assert 0 < kept.sum() < len(kept)
    assert result["features"].dims == ("date", "y", "x", "feature")
    assert result["features"].dtype == np.float32 and result["valid_count"].dtype == np.uint16
    assert list(result["feature"].values) == BANDS + INDICES
    np.testing.assert_allclose(result["features"].values, expected, rtol=1e-5, atol=1e-6)
    assert np.array_equal(result["valid_count"].values, count)
    assert np.isnan(result["features"].values[:, 3, 3]).all() and result["valid_count"].values[3, 3] == 0
    assert stack.grid_of(result) == stack.grid_of(raw)

    times = [str(t) for t in raw["time"].values.astype("datetime64[s]")]
    kept_dates = [t for t, k in zip(times, kept) if k]
    dropped_dates = [t for t, k in zip(times, kept) if not k]
    assert ft.dates_attr(result, "kept_dates") == kept_dates
    assert ft.dates_attr(result, "dropped_dates") == dropped_dates
    assert all(d in caplog.text for d in times) and TILE in caplog.text

    path = tmp_path / "features.nc"
    stack.write(result, path)
    with stack.open(path, required=("features", "valid_count")) as back:
        assert ft.dates_attr(back, "kept_dates") == kept_dates
        assert ft.dates_attr(back, "dropped_dates") == dropped_dates
        assert np.array_equal(back["date"].values, dates.astype("datetime64[ns]"))
        assert back["features"].dtype == np.float32
        np.testing.assert_array_equal(back["features"].values, result["features"].values)
        np.testing.assert_array_equal(np.isnan(back["features"].values), np.isnan(result["features"].values))


def test_undefined_index_makes_the_observation_invalid():
    raw, clouds = _tile()
    raw["bands"].loc[{"band": ["B04", "B08"]}] = 0
    raw["bands"][4, 0, 0] = 1000  # one defined observation: held all year
    clouds["cloud_mask"][:] = False
    result = ft.tile_features(raw, clouds, BANDS, INDICES, ft.date_grid("2017-01-01", "2017-12-31", 16), 0.5)
    count = result["valid_count"].values
    assert count[0, 0] == 1 and (count.ravel()[1:] == 0).all()
    assert np.isnan(result["features"].values[:, 1:]).all()
    assert (result["features"].sel(feature="NDVI").values[:, 0, 0] == 0).all()


def test_no_frame_passing_still_gives_a_tile(caplog):
    raw, clouds = _tile()
    clouds["cloud_mask"][:] = True
    dates = {"start": "2017-01-01", "end": "2017-12-31", "step_days": 16}
    with caplog.at_level(logging.INFO, logger="landcover.features"):
        result = ft.tile_features(raw, clouds, BANDS, INDICES, dates, 0.8)
    assert result["features"].shape == (23, 7, 6, 9) and np.isnan(result["features"].values).all()
    assert (result["valid_count"].values == 0).all()
    assert ft.dates_attr(result, "kept_dates") == [] and len(ft.dates_attr(result, "dropped_dates")) == 8
    assert any(r.levelno == logging.WARNING and "no frame" in r.getMessage() for r in caplog.records)


def test_inconsistent_inputs_raise_naming_the_tile():
    raw, clouds = _tile()
    with pytest.raises(stack.StackError, match=f"{TILE}.*times"):
        ft.tile_features(
            raw, clouds.isel(time=slice(1, None)), BANDS, INDICES, ft.date_grid("2017-01-01", "2017-12-31", 16), 0.8
        )
    with pytest.raises(stack.StackError, match=f"{TILE}.*B8A"):
        ft.tile_features(
            raw.sel(band=["B02", "B03", "B04", "B08"]),
            clouds,
            ["B8A"],
            [],
            ft.date_grid("2017-01-01", "2017-12-31", 16),
            0.8,
        )


def test_script_logs_kept_and_dropped_dates(tmp_path):
    raw, clouds = _tile()
    paths = {name: tmp_path / name / f"{TILE}.nc" for name in ("stacks", "clouds", "features")}
    stack.write(raw, paths["stacks"])
    stack.write(clouds, paths["clouds"])
    log = tmp_path / "logs" / "features.log"
    snakemake = SimpleNamespace(
        input=SimpleNamespace(stack=str(paths["stacks"]), clouds=str(paths["clouds"])),
        output=SimpleNamespace(features=str(paths["features"]), frames=str(paths["features"]) + ".frames.json"),
        params=SimpleNamespace(
            bands=BANDS,
            indices=INDICES,
            dates={"start": "2017-01-01", "end": "2017-12-31", "step_days": 16},
            valid_coverage_threshold=0.8,
        ),
        log=[str(log)],
        threads=1,
        wildcards=SimpleNamespace(tile=TILE),
    )
    try:
        runpy.run_path(str(REPO / "scripts" / "features.py"), init_globals={"snakemake": snakemake})
    finally:  # log_to replaced the root handlers with the job's log file
        for handler in logging.getLogger().handlers:
            handler.close()
    with stack.open(paths["features"], required=("features", "valid_count")) as result:
        kept, dropped = ft.dates_attr(result, "kept_dates"), ft.dates_attr(result, "dropped_dates")
    text = log.read_text()
    assert kept and dropped
    assert all(d in text for d in kept + dropped) and "kept" in text and "dropped" in text
