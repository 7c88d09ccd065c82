"""The seed's explanatory figures: features per class through the year, interpolation, negative buffer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from test_maps import PNG, stack_file, tile_grid

from landcover import stack
from landcover.classes import EOLEARN_CLASSES
from landcover.features import tile_features
from landcover.figures import class_evolution, interpolation_stack, negative_buffer, pick_frames


def samples_table(path, seed: int) -> pd.DataFrame:
    """Two classes, NDVI and B04 on three dates, as the sample rule writes them."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([1, 5], 50).astype(np.uint8)
    table = {"tile_id": "t", "row": np.arange(100), "col": np.arange(100), "label": labels}
    for day in ("2017-01-01", "2017-01-17", "2017-02-02"):
        table[f"B04_{day}"] = rng.random(100).astype(np.float32)
        table[f"NDVI_{day}"] = (labels == 1) * 0.6 + rng.random(100).astype(np.float32) * 0.1
        table[f"NDVI_g1_{day}"] = rng.random(100).astype(np.float32)  # a spatial-context column: not plotted
    table["NDVI_max"] = rng.random(100).astype(np.float32)  # a temporal statistic: not plotted
    frame = pd.DataFrame(table)
    frame.to_parquet(path)
    return frame


def test_class_evolution_plots_each_class_mean_and_range(tmp_path):
    tables = [samples_table(tmp_path / f"{i}.parquet", i) for i in range(2)]
    stats = class_evolution(
        [tmp_path / "0.parquet", tmp_path / "1.parquet"], EOLEARN_CLASSES, ["NDVI", "B04"], tmp_path / "e.png", 40
    )
    assert (tmp_path / "e.png").read_bytes()[:8] == PNG
    both = pd.concat(tables)
    row = stats.query("`class` == 'water' and feature == 'NDVI'").iloc[1]
    values = both.loc[both["label"] == 5, "NDVI_2017-01-17"]
    assert row["mean"] == pytest.approx(values.mean(), rel=1e-6) and row["pixels"] == 100
    assert row["p10"] == pytest.approx(np.percentile(values, 10), rel=1e-6)
    assert set(stats["class"]) == {"cultivated land", "water"} and len(stats) == 2 * 2 * 3
    with pytest.raises(ValueError, match="0.parquet: samples hold no feature.s. NDWI"):
        class_evolution([tmp_path / "0.parquet"], EOLEARN_CLASSES, ["NDWI"], tmp_path / "x.png", 40)


def test_pick_frames_spreads_over_the_year():
    times = np.arange("2017-01-01", "2017-12-31", 5, dtype="datetime64[D]").astype("datetime64[ns]")
    frames = pick_frames(times, 5)
    assert frames[0] == 0 and frames[-1] == len(times) - 1 and len(frames) == 5
    assert np.all(np.diff(frames) >= len(times) // 5)
    assert list(pick_frames(times[:2], 5)) == [0, 1]


def test_negative_buffer_counts_the_labelled_pixels_before_and_after(tmp_path):
    grid = tile_grid(3, 4, size=40)
    before = np.zeros((40, 40), np.uint8)
    before[5:35, 5:35] = 2
    after = np.zeros_like(before)
    after[6:34, 6:34] = 2
    profile = {"driver": "GTiff", "width": 40, "height": 40, "dtype": "uint8", "crs": grid.crs}
    with rasterio.open(tmp_path / "ref.tif", "w", count=2, transform=grid.transform, **profile) as dst:
        dst.write(np.stack([before, after]))
    counts = negative_buffer(tmp_path / "ref.tif", EOLEARN_CLASSES, tmp_path / "b.png", 40)
    assert counts == {"before": 900, "after": 784}
    assert (tmp_path / "b.png").read_bytes()[:8] == PNG
    with rasterio.open(tmp_path / "one.tif", "w", count=1, transform=grid.transform, **profile) as dst:
        dst.write(before, 1)
    with pytest.raises(ValueError, match="one.tif: a reference raster holds"):
        negative_buffer(tmp_path / "one.tif", EOLEARN_CLASSES, tmp_path / "c.png", 40)


def test_interpolation_stack_shows_raw_frames_and_interpolated_dates(tmp_path):
    grid = tile_grid(7, 8, size=30)
    stack_file(tmp_path / "stack.nc", grid)
    with stack.open(tmp_path / "stack.nc") as raw:
        cloud_mask = stack.load(raw["bands"].sel(band="B02")) > 2000
        clouds = xr.Dataset({"cloud_mask": (("time", "y", "x"), cloud_mask)}, coords={"time": raw["time"]})
        dates = {"start": "2017-01-01", "end": "2017-12-31", "step_days": 16}
        features = tile_features(
            raw, clouds, bands=["B02", "B03", "B04"], indices=["NDVI"], dates=dates, valid_coverage_threshold=0.6
        )
        shown = interpolation_stack(raw, clouds, features, tmp_path / "i.png", 40)
    # targets 04-01, 05-06 12h, 06-10, 07-15 18h, 08-20: 05-06 is nearest 04-01 again, 07-10 is nearest to none
    assert shown == ["2017-04-01", "2017-06-30", "2017-07-20", "2017-08-20"]
    assert (tmp_path / "i.png").read_bytes()[:8] == PNG


def index_only_stack(grid) -> xr.Dataset:
    """Three acquisitions of NDVI and no bands, as an EOPatch source brings them."""
    times = np.array(["2017-03-01", "2017-06-01", "2017-09-01"], dtype="datetime64[ns]")
    shape = (3, grid.height, grid.width)
    ndvi = np.random.default_rng(2).uniform(-0.2, 0.9, (*shape, 1)).astype(np.float32)
    raw = stack.new_stack(np.zeros((*shape, 0), np.uint16), np.ones(shape, bool), times, [], grid)
    return raw.assign(indices=(("time", "y", "x", "index"), ndvi)).assign_coords(index=["NDVI"], band=np.array([], str))


def test_interpolation_stack_of_an_index_only_stack(tmp_path):
    """A source that brings NDVI and no bands (an EOPatch) shows its own NDVI before and after."""
    raw = index_only_stack(tile_grid(7, 8, size=20))
    clouds = xr.Dataset({"cloud_mask": (("time", "y", "x"), np.zeros((3, 20, 20), bool))}, coords={"time": raw.time})
    dates = {"start": "2017-01-01", "end": "2017-12-31", "step_days": 16}
    features = tile_features(raw, clouds, bands=[], indices=["NDVI"], dates=dates, valid_coverage_threshold=0.8)
    assert interpolation_stack(raw, clouds, features, tmp_path / "i.png", 40) == [
        "2017-03-01",
        "2017-06-01",
        "2017-09-01",
    ]
    assert (tmp_path / "i.png").read_bytes()[:8] == PNG
