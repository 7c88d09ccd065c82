"""Cloud masks: s2cloudless's own golden scene, the 80 m path against s2cloudless called directly, no-data rules."""

from __future__ import annotations

import json
import logging
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.ndimage
from affine import Affine
from conftest import default_config, load_npy
from rasterio.crs import CRS
from s2cloudless import S2PixelCloudDetector

from landcover import clouds, stack

REPO = Path(__file__).resolve().parents[1]
# all 13 L1C bands, reflectance 0..1: a thick cloud and clear vegetation (s2cloudless: 0.999 and 0.02)
CLOUD = np.array([0.45, 0.44, 0.43, 0.44, 0.46, 0.48, 0.49, 0.49, 0.50, 0.24, 0.04, 0.36, 0.27])
CLEAR = np.array([0.12, 0.08, 0.07, 0.05, 0.10, 0.25, 0.30, 0.33, 0.35, 0.10, 0.003, 0.18, 0.09])
SETTINGS = default_config()["clouds"]  # the schema's clouds: (resolution_m 80, threshold 0.4, average_over 2, ...)


def _grid(height, width, pixel=(10.0, 10.0), tile="x0001_y0002"):
    return stack.TileGrid(tile, CRS.from_epsg(32633), Affine(pixel[0], 0, 500000, 0, -pixel[1], 5100000), height, width)


def _stack(reflectance, is_data=None, times=None, grid=None):
    n, height, width, _ = reflectance.shape
    bands = np.round(np.asarray(reflectance, dtype=np.float64) * 10000).astype(np.uint16)
    is_data = np.ones((n, height, width), dtype=bool) if is_data is None else is_data
    times = np.datetime64("2017-01-01") + np.arange(n) * np.timedelta64(5, "D") if times is None else times
    return stack.new_stack(bands, is_data, times, stack.L1C_BANDS, grid or _grid(height, width))


@pytest.fixture(scope="module")
def golden(real_data):
    with np.load(real_data / "s2cloudless-scene" / "input_arrays_crop.npz") as arrays:
        return {name: arrays[name] for name in ("s2_im", "cl_probs", "cl_mask")}


def test_golden_scene_probabilities_through_the_stack_path(golden):
    """uint16 stack -> cloud_masks without resampling gives s2cloudless's probabilities. Every 8th row only: the
    model costs ~40 us a pixel, and probabilities are per pixel."""
    rows = np.s_[:, ::8]
    ds = _stack(golden["s2_im"][rows])
    result = clouds.cloud_masks(ds, resolution_m=None, threshold=0.4, average_over=1, dilation_size=1)
    assert result["cloud_probability"].dtype == np.float32
    assert np.abs(result["cloud_probability"].values - golden["cl_probs"][rows]).max() < 1e-6


def test_golden_scene_at_native_resolution(golden):
    """The scene's crop, as s2cloudless's own test: probabilities within 1e-6 and the identical mask (the crop's
    outermost pixels left out: the golden mask was dilated on the whole scene)."""
    probability = clouds.cloud_probability(golden["s2_im"])
    mask = clouds.mask_from_probability(probability, threshold=0.4, average_over=1, dilation_size=1)
    assert np.abs(probability - golden["cl_probs"]).max() < 1e-6
    inner = np.s_[:, 1:-1, 1:-1]
    assert np.array_equal(mask[inner], golden["cl_mask"][inner].astype(bool))
    assert 0.4 < mask.mean() < 0.5


def _block_means_by_loops(bands, is_data, factor):
    """Independent reference: mean of each block's data pixels, one block at a time."""
    n, height, width, n_bands = bands.shape
    rows, cols = -(-height // factor), -(-width // factor)
    out = np.zeros((n, rows, cols, n_bands), dtype=np.float32)
    for t in range(n):
        for i in range(rows):
            for j in range(cols):
                block = np.s_[t, i * factor : (i + 1) * factor, j * factor : (j + 1) * factor]
                if is_data[block].any():
                    out[t, i, j] = bands[block][is_data[block]].astype(np.float64).mean(axis=0) / 10000
    return out


def test_block_mean_averages_data_pixels_and_partial_edge_blocks():
    rng = np.random.default_rng(1)
    bands = rng.integers(0, 65535, (2, 19, 21, 13), dtype=np.uint16)
    is_data = rng.random((2, 19, 21)) > 0.3
    is_data[1, :8, :8] = False
    mean, has_data = clouds.block_mean(bands, is_data, 8, 8)
    assert mean.shape == (2, 3, 3, 13) and mean.dtype == np.float32
    assert np.array_equal(mean, _block_means_by_loops(bands, is_data, 8))
    assert not has_data[1, 0, 0] and has_data.sum() == has_data.size - 1


def test_upsampled_probabilities_are_pixel_centre_bilinear():
    coarse = np.random.default_rng(2).random((13, 13), dtype=np.float32)
    fine = clouds.upsample_probability(coarse, 8, 8, (101, 100))
    reference = scipy.ndimage.zoom(coarse, 8, order=1, mode="nearest", grid_mode=True)[:101, :100]
    assert fine.shape == (101, 100)
    assert np.abs(fine - reference).max() < 1e-6


def test_80m_path_matches_s2cloudless_on_block_means(real_data):
    """Real 13-band scenes on the TestEOPatch grid (9.9948 m pixels: 8 x 8 blocks, partial at the edges)."""
    folder = real_data / "eolearn-testeopatch"
    scenes = json.loads((folder / "REFERENCE_SCENES_dates.json").read_text())["scenes"]
    scenes = scenes["eolearn_example_data/REFERENCE_SCENES.npy"]
    frames = [scene["index_in_68ts_TestEOPatch"] for scene in scenes]
    times = np.array([scene["timestamp"] for scene in scenes], dtype="datetime64[s]")
    reflectance = load_npy(folder / "REFERENCE_SCENES.npy")
    ds = _stack(reflectance, times=times, grid=_grid(101, 100, pixel=(9.9948, 9.9974)))
    result = clouds.cloud_masks(ds, resolution_m=80, threshold=0.4, average_over=2, dilation_size=1)
    assert list(result.attrs["cloud_pixel_blocks"]) == [8, 8]

    coarse = _block_means_by_loops(ds["bands"].values, ds["is_data"].values, 8)
    detector = S2PixelCloudDetector(threshold=0.4, all_bands=True, average_over=2, dilation_size=1)
    probability = detector.get_cloud_probability_maps(coarse)
    mask = detector.get_mask_from_prob(probability).astype(bool)
    expected_mask = np.repeat(np.repeat(mask, 8, axis=1), 8, axis=2)[:, :101, :100]
    assert np.array_equal(result["cloud_mask"].values, expected_mask)
    expected_probability = np.stack(
        [scipy.ndimage.zoom(p, 8, order=1, mode="nearest", grid_mode=True)[:101, :100] for p in probability]
    )
    assert np.abs(result["cloud_probability"].values - expected_probability).max() < 1e-5

    # and eo-learn's own masks of these dates (two of them fully cloudy) agree
    clm = load_npy(folder / "TestEOPatch" / "mask" / "CLM.npy")[frames, ..., 0].astype(bool)
    assert (result["cloud_mask"].values == clm).mean() > 0.99
    assert result["cloud_mask"].values[:2].all() and not result["cloud_mask"].values[2:].any()


def test_no_data_is_never_cloud_and_grid_is_carried():
    """A 37 x 45 tile (not a multiple of 8) of thick cloud, with a no-data swath edge and an empty frame."""
    reflectance = np.broadcast_to(CLOUD, (3, 37, 45, 13)).copy()
    reflectance[2, :, :20] = CLEAR
    is_data = np.ones((3, 37, 45), dtype=bool)
    is_data[0, :, 30:] = False
    is_data[1] = False
    ds = _stack(reflectance, is_data)
    result = clouds.cloud_masks(ds, **SETTINGS)
    mask, probability = result["cloud_mask"].values, result["cloud_probability"].values
    assert mask.shape == probability.shape == (3, 37, 45)
    assert probability.dtype == np.float32
    assert not mask[~is_data].any() and (probability[~is_data] == 0).all()
    assert mask[0, :, :30].all() and (probability[0, :, :24] > 0.9).all()
    # clear columns 0..19: the 80 m dilation reaches one block (8 px) into them from the mixed block 16..23
    assert not mask[2, :, :8].any() and mask[2, :, 16:].all()
    assert stack.grid_of(result) == stack.grid_of(ds)
    assert np.array_equal(result["time"].values, ds["time"].values)


@pytest.mark.parametrize(
    ("pixel", "resolution_m", "blocks"),
    [
        ((10.0, 10.0), 80, [8, 8]),
        ((9.9948, 9.9974), 80, [8, 8]),
        ((20.0, 20.0), 80, [4, 4]),
        ((10.0, 10.0), None, [1, 1]),
    ],
)
def test_block_size_is_the_nearest_whole_factor(pixel, resolution_m, blocks):
    ds = _stack(np.broadcast_to(CLEAR, (1, 9, 9, 13)), grid=_grid(9, 9, pixel=pixel))
    result = clouds.cloud_masks(ds, **{**SETTINGS, "resolution_m": resolution_m})
    assert list(result.attrs["cloud_pixel_blocks"]) == blocks


def test_bad_input_raises_naming_the_tile():
    ds = _stack(np.broadcast_to(CLEAR, (1, 4, 4, 13)))
    with pytest.raises(stack.StackError, match="x0001_y0002.*B10"):
        clouds.cloud_masks(ds.sel(band=[b for b in stack.L1C_BANDS if b != "B10"]), **SETTINGS)
    with pytest.raises(ValueError, match="threshold"):
        clouds.cloud_masks(ds, **{**SETTINGS, "threshold": 1.5})
    with pytest.raises(ValueError, match="dilation_size"):
        clouds.cloud_masks(ds, **{**SETTINGS, "dilation_size": -1})


def test_script_writes_the_cloud_file(tmp_path):
    path = tmp_path / "stacks" / "x0001_y0002.nc"
    stack.write(_stack(np.broadcast_to(CLOUD, (2, 16, 16, 13))), path)
    out, log = tmp_path / "clouds" / "x0001_y0002.nc", tmp_path / "logs" / "cloud_mask.log"
    snakemake = SimpleNamespace(
        input=SimpleNamespace(stack=str(path)),
        output=SimpleNamespace(clouds=str(out)),
        params=SimpleNamespace(resolution_m=80, threshold=0.4, average_over=2, dilation_size=1),
        log=[str(log)],
        threads=1,
        wildcards=SimpleNamespace(tile="x0001_y0002"),
    )
    try:
        runpy.run_path(str(REPO / "scripts" / "cloud_mask.py"), init_globals={"snakemake": snakemake})
    finally:  # log_to replaced the root handlers with the job's log file
        for handler in logging.getLogger().handlers:
            handler.close()
    with stack.open(out, required=("cloud_probability", "cloud_mask")) as result:
        assert result["cloud_mask"].values.all()
        assert result.attrs["tile_id"] == "x0001_y0002"
    assert "s2cloudless on 2 frames" in log.read_text()
