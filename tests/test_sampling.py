import logging
import runpy
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
import xarray as xr
from test_context import whole_tile_context

from landcover import stack
from landcover.context import context_names, halo_pixels
from landcover.grid import crop_to_tile, tile_grid, with_margin
from landcover.reference import read_labels
from landcover.sampling import feature_columns, sample_pixels

REPO = Path(__file__).resolve().parents[1]
DATES = np.array(["2017-01-01", "2017-01-17", "2017-02-02", "2017-02-18"], dtype="datetime64[ns]")
FEATURES = ["B02", "NDVI", "NORM"]
TILE = "x2300_y25500"
GRID = tile_grid(TILE, 300, 10, "EPSG:32633")  # 30 x 30 pixels
TALL = stack.TileGrid(TILE, GRID.crs, GRID.transform, 150, 30)  # spans three row blocks of 64


def make_features(grid=TALL, seed=0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    shape = (len(DATES), grid.height, grid.width, len(FEATURES))
    values = rng.random(shape, dtype=np.float32)
    valid = rng.integers(0, 5, (grid.height, grid.width)).astype(np.uint16)
    values[:, valid == 0, :] = np.nan
    ds = xr.Dataset(
        {"features": (("date", "y", "x", "feature"), values), "valid_count": (("y", "x"), valid)},
        coords={"date": DATES, "feature": FEATURES},
    )
    return stack.with_grid(ds, grid)


def make_labels(grid=TALL, seed=0) -> np.ndarray:
    return (
        np.random.default_rng(seed + 1)
        .choice([0, 1, 2, 5], (grid.height, grid.width), p=[0.3, 0.5, 0.15, 0.05])
        .astype(np.uint8)
    )


def test_feature_columns_are_date_major():
    assert feature_columns(DATES[:2], ["B02", "NDVI"]) == [
        "B02_2017-01-01",
        "NDVI_2017-01-01",
        "B02_2017-01-17",
        "NDVI_2017-01-17",
    ]


def test_columns_and_values():
    features, labels = make_features(), make_labels()
    table = sample_pixels(labels, features, TILE, seed=1, max_samples=500)
    assert list(table.columns) == ["tile_id", "row", "col", "label"] + feature_columns(DATES, FEATURES)
    assert len(table) == 500 and (table.tile_id == TILE).all()
    assert table.label.dtype == np.uint8
    assert all(table[c].dtype == np.float32 for c in table.columns[4:])
    assert table.row.max() >= 128  # the samples reach the last row block
    cube = features["features"].values
    for row in table.itertuples(index=False):
        expected = cube[:, row.row, row.col, :].reshape(-1)  # (date, feature), C order
        np.testing.assert_array_equal(np.array(row[4:], dtype=np.float32), expected)
        assert row.label == labels[row.row, row.col]
    assert list(table.index) == list(range(len(table)))
    assert table[["row", "col"]].apply(tuple, axis=1).is_monotonic_increasing


def test_no_data_and_invalid_pixels_are_excluded():
    features, labels = make_features(), make_labels()
    table = sample_pixels(labels, features, TILE, seed=1, max_samples=None)
    valid = features["valid_count"].values
    usable = (labels > 0) & (valid > 0)
    assert len(table) == usable.sum()
    assert usable[table.row, table.col].all()
    assert not table.iloc[:, 4:].isna().any().any()


def test_reproducible_per_tile():
    features, labels = make_features(), make_labels()
    first = sample_pixels(labels, features, TILE, seed=42, max_samples=300)
    sample_pixels(labels, features, "x0001_y0001", seed=42, max_samples=300)  # another tile in between
    pd.testing.assert_frame_equal(first, sample_pixels(labels, features, TILE, seed=42, max_samples=300))
    other_seed = sample_pixels(labels, features, TILE, seed=43, max_samples=300)
    other_tile = sample_pixels(labels, features, "x2300_y25501", seed=42, max_samples=300)
    assert not np.array_equal(first[["row", "col"]].values, other_seed[["row", "col"]].values)
    assert not np.array_equal(first[["row", "col"]].values, other_tile[["row", "col"]].values)


def test_fraction_and_caps():
    features, labels = make_features(), make_labels()
    usable = (labels > 0) & (features["valid_count"].values > 0)
    counts = {c: int((usable & (labels == c)).sum()) for c in (1, 2, 5)}
    half = sample_pixels(labels, features, TILE, seed=1, fraction=0.5, max_samples=10)  # fraction wins
    assert len(half) == round(0.5 * usable.sum())
    capped = sample_pixels(labels, features, TILE, seed=1, max_samples=None, per_class_cap=200)
    assert capped.label.value_counts().to_dict() == {c: min(n, 200) for c, n in counts.items()}
    both = sample_pixels(labels, features, TILE, seed=1, max_samples=250, per_class_cap=200)
    assert len(both) == 250 and both.label.value_counts().max() <= 200
    small = sample_pixels(labels, features, TILE, seed=1, max_samples=10**6)
    assert len(small) == usable.sum()


def test_empty_tile_gives_an_empty_table():
    features = make_features()
    table = sample_pixels(np.zeros((150, 30), np.uint8), features, TILE, seed=1)
    assert table.empty
    assert list(table.columns) == ["tile_id", "row", "col", "label"] + feature_columns(DATES, FEATURES)


def test_bad_input():
    features, labels = make_features(), make_labels()
    with pytest.raises(ValueError, match=f"tile {TILE}: labels have shape"):
        sample_pixels(labels[:10], features, TILE, seed=1)
    with pytest.raises(ValueError, match="fraction"):
        sample_pixels(labels, features, TILE, seed=1, fraction=1.5)
    with pytest.raises(ValueError, match="valid_count"):
        sample_pixels(labels, features.drop_vars("valid_count"), TILE, seed=1)


def test_any_dimension_order_and_dtype_gives_the_same_samples():
    features, labels = make_features(), make_labels()
    expected = sample_pixels(labels, features, TILE, seed=2, max_samples=400)
    other = features.assign(features=features["features"].astype(np.float64).transpose("y", "feature", "x", "date"))
    pd.testing.assert_frame_equal(sample_pixels(labels, other, TILE, seed=2, max_samples=400), expected)


def test_lazy_file_gives_the_same_samples(tmp_path):
    features, labels = make_features(), make_labels()
    stack.write(features, tmp_path / "features.nc")
    with stack.open(tmp_path / "features.nc") as lazy:
        from_file = sample_pixels(labels, lazy, TILE, seed=3, max_samples=400)
        in_memory = lazy.load()
    pd.testing.assert_frame_equal(from_file, sample_pixels(labels, in_memory, TILE, seed=3, max_samples=400))


# --- the three scripts, chained as Snakemake runs them ---------------------------------------


@pytest.fixture
def run_script():
    root = logging.getLogger()
    saved = root.handlers[:], root.level

    def run(name, **sections):
        namespace = {key: SimpleNamespace(**value) for key, value in sections.items() if key != "log"}
        snakemake = SimpleNamespace(log=[str(sections["log"])], **namespace)
        runpy.run_path(str(REPO / "scripts" / f"{name}.py"), init_globals={"snakemake": snakemake}, run_name="__main__")

    yield run
    for handler in root.handlers:
        if handler not in saved[0]:
            handler.close()
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_scripts_grid_reference_sample(tmp_path, run_script):
    x0, y0 = GRID.bounds[:2]
    run_script(
        "grid",
        params={
            "area": {
                "source": "synthetic",
                "aoi": None,
                "crs": "EPSG:32633",
                "tile_size_m": 300,
                "resolution_m": 10,
                "tiles": [],
            },
            "synthetic": {"origin": [x0, y0], "tiles_x": 1, "tiles_y": 1},
        },
        output={"grid": str(tmp_path / "grid.gpkg")},
        log=tmp_path / "logs" / "grid.log",
    )
    assert list(gpd.read_file(tmp_path / "grid.gpkg").tile_id) == [TILE]

    times = DATES[:2]
    raw = stack.new_stack(np.zeros((2, 30, 30, 1), np.uint16), np.ones((2, 30, 30), bool), times, ["B02"], GRID)
    stack.write(raw, tmp_path / "stack.nc")
    polygons = gpd.GeoDataFrame(
        {"lulc_id": [1, 2]},
        geometry=[shapely.box(x0 + 1, y0 + 1, x0 + 151, y0 + 299), shapely.box(x0 + 151, y0 + 1, x0 + 299, y0 + 299)],
        crs="EPSG:32633",
    ).to_crs("EPSG:4326")
    polygons.to_file(tmp_path / "reference.gpkg")
    run_script(
        "reference",
        wildcards={"tile": TILE},
        input={"polygons": str(tmp_path / "reference.gpkg"), "stack": str(tmp_path / "stack.nc")},
        output={"reference": str(tmp_path / "reference" / f"{TILE}.tif")},
        params={"class_attribute": "lulc_id", "class_ids": list(range(1, 11)), "erosion_radius": 1},
        log=tmp_path / "logs" / "reference.log",
    )
    with rasterio.open(tmp_path / "reference" / f"{TILE}.tif") as src:
        reference, eroded = src.read()
    assert (reference[:, :15] == 1).all() and (reference[:, 15:] == 2).all()
    assert (eroded[:, 14:16] == 0).all() and (eroded[:, :14] == 1).all() and (eroded[:, 16:] == 2).all()
    assert "class 1: 450 pixels, 420 after erosion" in (tmp_path / "logs" / "reference.log").read_text()

    stack.write(make_features(GRID), tmp_path / "features.nc")
    with stack.open(tmp_path / "features.nc") as stored:
        features = stored.load()
    run_script(
        "sample",
        wildcards={"tile": TILE},
        input={"features": str(tmp_path / "features.nc"), "reference": str(tmp_path / "reference" / f"{TILE}.tif")},
        output={"samples": str(tmp_path / "samples" / f"{TILE}.parquet")},
        params={"seed": 42, "max_samples": 100, "fraction": None, "per_class_cap": None, "context_sigmas": []},
        log=tmp_path / "logs" / "sample.log",
    )
    samples = pd.read_parquet(tmp_path / "samples" / f"{TILE}.parquet")
    expected = sample_pixels(read_labels(tmp_path / "reference" / f"{TILE}.tif", GRID), features, TILE, 42, 100)
    pd.testing.assert_frame_equal(samples, expected)
    assert set(samples.label) == {1, 2}
    assert "100 samples" in (tmp_path / "logs" / "sample.log").read_text()


def test_context_columns_are_the_whole_tile_context_at_the_sampled_pixels():
    """Sampling with spatial context on a tile grown by its margin: the columns are context_names' in order, the
    values those of the whole-tile reference (test_context.whole_tile_context) at the sampled pixels."""
    sigmas = [1.0, 2.0]
    margin = halo_pixels(sigmas)
    grown_grid = stack.TileGrid(TILE, GRID.crs, GRID.transform, TALL.height + 2 * margin, TALL.width + 2 * margin)
    features = with_margin(make_features(grown_grid), margin)
    labels = make_labels()  # on the tile
    table = sample_pixels(labels, features, TILE, seed=4, max_samples=600, sigmas=sigmas)
    names = context_names(FEATURES, sigmas)
    assert list(table.columns[4:]) == feature_columns(DATES, names)
    reference = whole_tile_context(features, sigmas)["features"].values[:, margin:-margin, margin:-margin]
    assert table.row.max() >= 128 and len(table) == 600
    expected = reference[:, table.row.to_numpy(), table.col.to_numpy(), :]  # (date, sample, feature)
    got = table.iloc[:, 4:].to_numpy().reshape(len(table), len(DATES), len(names)).transpose(1, 0, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert (labels[table.row, table.col] == table.label).all()
    # the same pixels are chosen as without context: the columns are added, not the sample changed
    plain = sample_pixels(labels, crop_to_tile(features), TILE, seed=4, max_samples=600)
    pd.testing.assert_frame_equal(plain[["row", "col", "label"]], table[["row", "col", "label"]])
