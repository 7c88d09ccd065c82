"""EOPatch folders: the real eo-learn test patch, and small patches made from its 13-band reference scenes."""

from __future__ import annotations

import gzip
import json
import runpy
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import load_npy

from landcover import stack
from landcover.grid import crop_to_tile
from landcover.ingest import IngestError
from landcover.ingest.eopatch import (
    eopatch_grid,
    list_tiles,
    parse_tile_id,
    read_eopatch,
    read_eopatch_reference,
    subtile_window,
)
from landcover.stack import L1C_BANDS

pytestmark = pytest.mark.realdata
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def patch(real_data):
    return real_data / "eolearn-testeopatch" / "TestEOPatch"


@pytest.fixture(scope="module")
def raw(patch):
    """The patch's arrays and timestamps read with plain numpy/json, for comparison."""
    return {
        "times": np.array(json.loads((patch / "timestamps.json").read_text()), dtype="datetime64[ns]"),
        "NDVI": load_npy(patch / "data" / "NDVI.npy"),
        "CLP": load_npy(patch / "data" / "CLP.npy"),
        "CLM": load_npy(patch / "mask" / "CLM.npy"),
        "LULC": load_npy(patch / "mask_timeless" / "LULC.npy"),
    }


def test_grid_is_the_bbox_divided_into_the_array_shape(patch):
    grid = eopatch_grid(patch)
    assert (grid.tile_id, grid.height, grid.width) == ("TestEOPatch", 101, 100)
    assert grid.crs.to_epsg() == 32633
    assert grid.transform.a == pytest.approx(9.99479, abs=1e-5)
    assert -grid.transform.e == pytest.approx(9.99745, abs=1e-5)
    np.testing.assert_allclose(
        grid.bounds, (465181.0522318204, 5079244.8912012065, 466180.53145382757, 5080254.63349641)
    )


def test_index_only_patch_round_trips_through_the_tile_format(patch, raw, tmp_path):
    ds = read_eopatch(patch)
    assert ds.sizes == {"time": 68, "y": 101, "x": 100, "band": 0, "index": 1}
    assert ds.attrs["tile_id"] == "TestEOPatch"
    np.testing.assert_array_equal(ds["time"].values, raw["times"])  # already sorted; the 2015-12-08 pair stays
    assert (ds["time"].values.astype("datetime64[D]") == np.datetime64("2015-12-08")).sum() == 2
    np.testing.assert_array_equal(ds["indices"].sel(index="NDVI").values, raw["NDVI"][..., 0])
    np.testing.assert_array_equal(ds["cloud_probability"].values, raw["CLP"][..., 0])
    np.testing.assert_array_equal(ds["cloud_mask"].values, raw["CLM"][..., 0].astype(bool))
    assert ds["is_data"].values.all()

    stack.write(ds, tmp_path / "stack.nc")
    with stack.open(tmp_path / "stack.nc", required=("bands", "is_data", "indices")) as back:
        np.testing.assert_array_equal(back["indices"].values, ds["indices"].values)
        assert back["bands"].shape == (68, 101, 100, 0)
        assert stack.grid_of(back) == eopatch_grid(patch)


def test_cloud_products_can_be_left_out(patch):
    ds = read_eopatch(patch, cloud_products=False, index_features=[])
    assert set(ds.data_vars) == {"bands", "is_data"}


def test_subtiles_cover_the_patch_exactly_once(patch, raw):
    tiles = list_tiles(patch.parent, [2, 3])
    assert tiles == [f"TestEOPatch_r{i}_c{j}" for i in range(2) for j in range(3)]
    full = eopatch_grid(patch)
    seen = np.zeros((full.height, full.width), dtype=int)
    for tile in tiles:
        name, subtile = parse_tile_id(tile, [2, 3])
        ds = read_eopatch(patch.parent / name, tile, subtile=subtile)
        rows, cols = subtile_window(full.height, full.width, subtile)
        seen[rows, cols] += 1
        assert ds.attrs["tile_id"] == tile
        np.testing.assert_array_equal(ds["indices"].values[..., 0], raw["NDVI"][:, rows, cols, 0])
        # Sub-tile pixel centres are the full patch's centres.
        np.testing.assert_allclose(ds["x"].values, full.coords()["x"][cols])
        np.testing.assert_allclose(ds["y"].values, full.coords()["y"][rows])
        reference = read_eopatch_reference(patch, stack.grid_of(ds))
        np.testing.assert_array_equal(reference, raw["LULC"][rows, cols, 0])
    assert (seen == 1).all()


def test_reference_raster_is_uint8_class_ids(patch, raw):
    reference = read_eopatch_reference(patch, eopatch_grid(patch))
    assert reference.dtype == np.uint8
    assert np.bincount(reference.ravel()).tolist() == [155, 11, 7601, 1777, 358, 0, 0, 0, 198]


@pytest.fixture
def band_patch(patch, real_data, tmp_path):
    """A patch of five dates holding the real 13-band L1C reflectances, gzip-compressed, dates unsorted."""
    scenes = load_npy(real_data / "eolearn-testeopatch" / "REFERENCE_SCENES.npy")
    meta = json.loads((real_data / "eolearn-testeopatch" / "REFERENCE_SCENES_dates.json").read_text())
    dates = [s["timestamp"] for s in meta["scenes"]["eolearn_example_data/REFERENCE_SCENES.npy"]]
    out = tmp_path / "patches" / "bands"
    (out / "data").mkdir(parents=True)
    (out / "mask").mkdir()
    shutil.copy(patch / "bbox.geojson", out)
    (out / "timestamps.json").write_text(json.dumps(dates))
    with gzip.open(out / "data" / "BANDS-S2-L1C.npy.gz", "wb") as handle:
        np.save(handle, scenes)
    is_data = np.ones((5, 101, 100, 1), dtype=bool)
    is_data[1, :10] = False
    np.save(out / "mask" / "IS_DATA.npy", is_data)
    return out, scenes, np.array(dates, dtype="datetime64[ns]")


def test_band_feature_scaled_to_uint16_and_sorted_by_time(band_patch):
    path, scenes, dates = band_patch
    ds = read_eopatch(path, "bands", band_feature="data/BANDS-S2-L1C")
    order = np.argsort(dates)
    np.testing.assert_array_equal(ds["time"].values, dates[order])
    assert list(ds["band"].values) == list(L1C_BANDS)
    want = np.clip(np.rint(scenes[order].astype(np.float64) * 10000), 0, 65535).astype(np.uint16)
    np.testing.assert_array_equal(ds["bands"].values, want)
    # Scene 1 (2015-07-31) has no data in its first 10 rows; it is the second frame once sorted.
    assert order[1] == 1
    assert not ds["is_data"].values[1, :10].any() and ds["is_data"].values[1, 10:].all()
    assert np.delete(ds["is_data"].values, 1, axis=0).all()
    assert "indices" not in ds and "cloud_mask" not in ds


def test_band_names_must_match_the_feature(band_patch):
    path, _, _ = band_patch
    with pytest.raises(IngestError, match=r"13 bands but 2 band names"):
        read_eopatch(path, band_feature="BANDS-S2-L1C", band_names=["B04", "B08"])


def test_corrupt_or_missing_files_are_named(band_patch):
    path, _, _ = band_patch
    (path / "data" / "BANDS-S2-L1C.npy.gz").write_bytes(b"\x1f\x8b broken")
    with pytest.raises(IngestError, match=r"BANDS-S2-L1C\.npy\.gz: not a readable \.npy file"):
        read_eopatch(path, band_feature="BANDS-S2-L1C")
    with pytest.raises(IngestError, match=r"feature data/BANDS is missing"):
        read_eopatch(path, band_feature="BANDS")
    (path / "timestamps.json").write_text(json.dumps(["2017-01-01"]))
    with pytest.raises(
        IngestError, match=r"IS_DATA\.npy: shape \(5, 101, 100, 1\) does not match the patch's 1 timestamps"
    ):
        read_eopatch(path)
    (path / "timestamps.json").unlink()
    with pytest.raises(IngestError, match=r"timestamps\.json is missing"):
        read_eopatch(path)


def test_bad_subtile_ids_are_rejected(patch):
    with pytest.raises(IngestError, match=r"sub-tile \(2, 0\) outside the 2 x 2 split"):
        parse_tile_id("TestEOPatch_r2_c0", [2, 2])
    with pytest.raises(IngestError, match="not a sub-tile id"):
        parse_tile_id("TestEOPatch", [2, 2])


def test_script_writes_a_subtile_stack(patch, raw, tmp_path):
    out = tmp_path / "stacks" / "TestEOPatch_r1_c0.nc"
    snakemake = SimpleNamespace(
        wildcards=SimpleNamespace(tile="TestEOPatch_r1_c0"),
        output=SimpleNamespace(stack=str(out)),
        params=SimpleNamespace(
            path=str(patch.parent),
            band_feature=None,
            band_names=[],
            index_features=[],
            subtiles=[2, 2],
            cloud_products=True,
            margin_px=4,
        ),
        log=[str(tmp_path / "log.txt")],
    )
    runpy.run_path(str(REPO / "scripts" / "ingest_eopatch.py"), init_globals={"snakemake": snakemake})
    with stack.open(out, required=("bands", "is_data", "indices", "cloud_mask", "cloud_probability")) as opened:
        assert opened.attrs["tile_id"] == "TestEOPatch_r1_c0" and opened.attrs["margin_px"] == 4
        # the margin comes from the neighbouring sub-tiles (rows 46.., cols ..53); beyond the patch it is no data
        np.testing.assert_array_equal(opened["indices"].values[:, :55, 4:, 0], raw["NDVI"][:, 46:, :54, 0])
        assert not opened["is_data"].values[:, 55:].any() and not opened["is_data"].values[:, :, :4].any()
        ds = crop_to_tile(opened)
        assert stack.grid_of(ds) == eopatch_grid(patch, "TestEOPatch_r1_c0", (1, 0, 2, 2))
        np.testing.assert_array_equal(ds["indices"].values[..., 0], raw["NDVI"][:, 50:, :50, 0])


def _cut(path: Path, out: Path, cols: slice, frames: list[int]) -> None:
    """A patch holding `cols` and `frames` of the patch at `path` (bands and data mask), its bbox cut to match."""
    grid = eopatch_grid(path)
    (out / "data").mkdir(parents=True)
    (out / "mask").mkdir()
    minx = grid.transform.c + cols.start * grid.transform.a
    maxx = grid.transform.c + cols.stop * grid.transform.a
    bbox = json.loads((path / "bbox.geojson").read_text())
    bbox["coordinates"] = [
        [[x, y] for x, y in zip([minx, minx, maxx, maxx, minx], [c[1] for c in bbox["coordinates"][0]])]
    ]
    (out / "bbox.geojson").write_text(json.dumps(bbox))
    times = json.loads((path / "timestamps.json").read_text())
    (out / "timestamps.json").write_text(json.dumps([times[k] for k in frames]))
    with gzip.open(path / "data" / "BANDS-S2-L1C.npy.gz") as handle:
        np.save(out / "data" / "BANDS-S2-L1C.npy", np.load(handle)[frames][:, :, cols])
    np.save(out / "mask" / "IS_DATA.npy", np.load(path / "mask" / "IS_DATA.npy")[frames][:, :, cols])


def test_the_margin_comes_from_neighbouring_patches_on_the_same_dates(band_patch):
    path, _, dates = band_patch
    whole = read_eopatch(path, "bands", band_feature="data/BANDS-S2-L1C")
    root = path.parent / "split"
    _cut(path, root / "west", slice(0, 50), [0, 1, 2, 3, 4])
    _cut(path, root / "east", slice(50, 100), [4, 2, 0, 3])  # another order, and frame 1 missing
    _cut(path, root / "far", slice(90, 100), [0])  # beyond the margin's reach: not read
    west = read_eopatch(root / "west", "west", band_feature="data/BANDS-S2-L1C", margin_px=3)
    assert west.attrs["margin_px"] == 3 and west.sizes["x"] == 56 and west.sizes["y"] == 107
    np.testing.assert_array_equal(west["time"].values, whole["time"].values)
    missing = int(np.flatnonzero(np.argsort(dates) == 1)[0])  # frame 1's place once sorted by time
    expected = whole.isel(x=slice(0, 53)).load()  # the west half and 3 columns of the east
    expected["is_data"][missing, :, 50:] = False  # the east patch has no such frame: no data there
    expected["bands"][missing, :, 50:] = 0
    inside = west.isel(y=slice(3, 104), x=slice(3, 56))
    np.testing.assert_array_equal(inside["bands"].values, expected["bands"].values)
    np.testing.assert_array_equal(inside["is_data"].values, expected["is_data"].values)
    # beyond the patches (above, below, west of them): no data
    assert not west["is_data"].values[:, :3].any() and not west["is_data"].values[:, 104:].any()
    assert not west["is_data"].values[:, :, :3].any() and not west["bands"].values[:, :, :3].any()
    np.testing.assert_array_equal(crop_to_tile(west)["bands"].values, whole["bands"].isel(x=slice(0, 50)).values)
