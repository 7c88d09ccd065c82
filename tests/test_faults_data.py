"""Bad input, at the level of one stage: a clear error naming the tile and file, or a defined, tested behaviour.

Damaged tile files and band files, frames and pixels without valid observations, faulty reference polygons,
bands with NaN/inf/out-of-range values, unsorted or duplicate timestamps, missing bands and wrong data types.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import runpy
import sys
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from rasterio.transform import from_origin
from sentinelhub_standin import Scene, serve
from shapely.geometry import Polygon, box

from landcover import stack
from landcover.classes import EOLEARN_CLASSES
from landcover.clouds import cloud_masks
from landcover.features import date_grid, tile_features
from landcover.grid import tile_grid
from landcover.ingest import IngestError
from landcover.ingest.eopatch import read_eopatch
from landcover.ingest.local_l1c import read_l1c_tile
from landcover.ingest.sentinelhub import download_tile, sentinelhub_config
from landcover.maps import merge_tiles, write_class_geotiff
from landcover.model import predict_tile, train_model
from landcover.sampling import sample_pixels

REPO = Path(__file__).resolve().parents[1]
TILE = "x0457_y5097"
GRID = tile_grid(TILE, 640, 10, "EPSG:32633")  # 64 x 64 px
BANDS = ["B02", "B03", "B04", "B08", "B11", "B12"]
INDICES = ["NDVI", "NDWI", "NORM"]
DATES = date_grid("2017-01-01", "2017-12-31", 30)


def raw_stack(n_times=6, seed=0, grid=GRID) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    bands = rng.integers(200, 4000, (n_times, grid.height, grid.width, 13), dtype=np.uint16)
    times = np.datetime64("2017-01-05T10:00") + np.arange(n_times) * np.timedelta64(40, "D")
    return stack.new_stack(bands, np.ones(bands.shape[:3], bool), times, stack.L1C_BANDS, grid)


def clear_sky(raw: xr.Dataset) -> xr.Dataset:
    mask = np.zeros((raw.sizes["time"], raw.sizes["y"], raw.sizes["x"]), dtype=bool)
    ds = xr.Dataset(
        {"cloud_mask": (("time", "y", "x"), mask), "cloud_probability": (("time", "y", "x"), mask.astype(np.float32))},
        coords={"time": raw["time"].values},
    )
    return stack.with_grid(ds, stack.grid_of(raw))


@pytest.fixture
def run_script(tmp_path):
    """Run scripts/<name>.py as Snakemake would; returns its log's text (the job's log file)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, sys.excepthook

    def run(name, **sections):
        log = tmp_path / "logs" / f"{name}.log"
        snakemake = SimpleNamespace(
            log=[str(log)],
            threads=1,
            wildcards=SimpleNamespace(tile=TILE),
            **{k: SimpleNamespace(**v) for k, v in sections.items()},
        )
        runpy.run_path(str(REPO / "scripts" / f"{name}.py"), init_globals={"snakemake": snakemake})
        return log.read_text()

    yield run
    for handler in root.handlers:
        if handler not in saved[0]:
            handler.close()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    sys.excepthook = saved[2]  # log_to logs uncaught errors to the job's log


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if ".tmp-" in p.name or ".scratch-" in p.name)


# --- damaged tile files and band files ------------------------------------------------------------------------


def test_truncated_stack_fails_the_job_naming_file_and_cause(tmp_path, run_script):
    path = tmp_path / "stacks" / f"{TILE}.nc"
    stack.write(raw_stack(), path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 3 // 4])
    out = tmp_path / "clouds" / f"{TILE}.nc"
    params = {"resolution_m": 80, "threshold": 0.4, "average_over": 2, "dilation_size": 1}
    with pytest.raises(stack.StackError, match=rf"stacks/{TILE}\.nc: cannot be read as a tile file .*truncated file"):
        run_script("cloud_mask", input={"stack": str(path)}, output={"clouds": str(out)}, params=params)
    assert not out.exists() and leftovers(tmp_path) == []


def damage_middle(path: Path) -> None:
    """Overwrite bytes in the middle of the file: the header still reads, a compressed chunk does not."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 256] = b"\xff" * 256
    path.write_bytes(bytes(data))


def test_damaged_chunk_is_named_when_it_is_read(tmp_path):
    path = tmp_path / f"{TILE}.nc"
    stack.write(raw_stack(), path)
    damage_middle(path)
    damaged = rf"{TILE}\.nc: variable 'bands' cannot be read, the file is damaged"
    with stack.open(path, required=("bands", "is_data")) as ds, pytest.raises(stack.StackError, match=damaged):
        cloud_masks(
            ds, resolution_m=80, threshold=0.4, average_over=2, dilation_size=1
        )  # the header is intact, a chunk is not


def test_damaged_cloud_file_is_named_by_the_features_stage(tmp_path):
    raw = raw_stack(n_times=40)  # a cloud mask large enough to span several chunks
    path = tmp_path / "clouds" / f"{TILE}.nc"
    clouds = clear_sky(raw).drop_vars("cloud_probability")  # the middle of the file: cloud_mask chunks
    clouds["cloud_mask"][:] = np.random.default_rng(2).random(clouds["cloud_mask"].shape) < 0.5
    stack.write(clouds, path)
    damage_middle(path)
    with stack.open(path) as damaged, pytest.raises(stack.StackError, match=rf"clouds/{TILE}\.nc: variable"):
        tile_features(raw, damaged, BANDS, INDICES, DATES, 0.0)


def l1c_granule(root: Path, when: str = "20170304T100021", dtypes: dict | None = None, values: dict | None = None):
    """One granule of 13 band files (GeoTIFF, 10 m) over GRID and 100 m around it."""
    root.mkdir(parents=True, exist_ok=True)
    left, top = GRID.bounds[0] - 100, GRID.bounds[3] + 100
    for k, band in enumerate(stack.L1C_BANDS):
        dtype = (dtypes or {}).get(band, "uint16")
        dn = np.random.default_rng(k).integers(1000, 3000, (84, 84)).astype(dtype)
        for (row, col), value in (values or {}).get(band, {}).items():
            dn[row, col] = value
        profile = {"driver": "GTiff", "width": 84, "height": 84, "count": 1, "dtype": dtype, "crs": "EPSG:32633"}
        profile.update(transform=from_origin(left, top, 10, 10), tiled=True, blockxsize=16, blockysize=16)
        with rasterio.open(root / f"T33TVM_{when}_{band}.tif", "w", **profile) as dst:
            dst.write(dn, 1)
    return root


def test_truncated_band_file_is_named(tmp_path):
    root = l1c_granule(tmp_path / "l1c")
    broken = root / "T33TVM_20170304T100021_B03.tif"
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size * 3 // 5])  # header intact, blocks cut
    with pytest.raises(IngestError, match=rf"tile {TILE}: {broken}: cannot be read as a raster"):
        read_l1c_tile(root, GRID)


def test_truncated_tile_map_is_named_by_the_merge(tmp_path):
    maps = []
    for i in range(2):
        grid = tile_grid(f"x{457 + i:04d}_y5097", 640, 10, "EPSG:32633")
        labels = np.random.default_rng(i).integers(1, 11, (64, 64), dtype=np.uint8)
        write_class_geotiff(tmp_path / f"{grid.tile_id}.tif", labels, grid, EOLEARN_CLASSES)
        maps.append(tmp_path / f"{grid.tile_id}.tif")
    maps[1].write_bytes(maps[1].read_bytes()[: maps[1].stat().st_size // 2])
    with pytest.raises(ValueError, match=rf"{maps[1].name}: (cannot be read as a GeoTIFF|.*damaged or truncated)"):
        merge_tiles(maps, tmp_path / "out" / "landcover.tif", EOLEARN_CLASSES)
    assert not (tmp_path / "out" / "landcover.tif").exists() and leftovers(tmp_path) == []


# --- frames and pixels without a valid observation -----------------------------------------------------------


def test_pixels_never_valid_are_no_data_in_the_map_and_the_logs_say_so(caplog):
    raw = raw_stack()
    clouds = clear_sky(raw)
    clouds["cloud_mask"][:, :2, :] = True  # two rows clouded all year
    with caplog.at_level(logging.INFO, logger="landcover"):
        features = tile_features(raw, clouds, BANDS, INDICES, DATES, 0.5)
        labels = np.where(np.arange(64)[None, :] < 32, 1, 2).repeat(64, axis=0).astype(np.uint8)
        samples = sample_pixels(labels, features, TILE, seed=1)
        booster, metadata = train_model(samples, EOLEARN_CLASSES, 1, {"num_iterations": 5}, threads=1)
        predicted, confidence = predict_tile(booster, metadata, features)
    assert (features["valid_count"].values[:2] == 0).all() and np.isnan(features["features"].values[:, :2]).all()
    assert (predicted[:2] == 0).all() and (confidence[:2] == 0).all() and (predicted[2:] > 0).all()
    assert len(samples) == 62 * 64  # never-valid pixels are not sampled
    messages = [r.getMessage() for r in caplog.records]
    assert f"tile {TILE}: 128 of 4096 pixels have no valid observation in the kept frames" in " ".join(messages)
    assert (
        f"tile {TILE}: predicted 3968 of 4096 pixels; 128 without a valid observation all year are no data" in messages
    )


# --- reference polygons ----------------------------------------------------------------------------------------


def parcels(crs="EPSG:32633") -> gpd.GeoDataFrame:
    """Two parcels side by side over GRID: class 2 on the left half, class 3 on the right."""
    left, bottom, right, top = GRID.bounds
    middle = (left + right) / 2
    frame = gpd.GeoDataFrame(
        {"lulc_id": [2, 3]},
        geometry=[box(left, bottom, middle, top), box(middle, bottom, right, top)],
        crs="EPSG:32633",
    )
    return frame.to_crs(crs)


@pytest.fixture
def reference_job(tmp_path, run_script):
    """Run scripts/reference.py for GRID on a polygon file; returns (log text, band 1 of the raster)."""
    stack_path = tmp_path / "stacks" / f"{TILE}.nc"
    stack.write(raw_stack(n_times=1), stack_path)

    def run(polygons: gpd.GeoDataFrame | None, class_ids=(1, 2, 3), raw_file: bytes | None = None):
        path = tmp_path / "reference.gpkg"
        path.unlink(missing_ok=True)
        if raw_file is not None:
            path.write_bytes(raw_file)
        else:
            polygons.to_file(path, driver="GPKG", layer="reference")
        out = tmp_path / "reference" / f"{TILE}.tif"
        out.unlink(missing_ok=True)
        log = run_script(
            "reference",
            input={"polygons": str(path), "stack": str(stack_path)},
            output={"reference": str(out)},
            params={"class_attribute": "lulc_id", "class_ids": list(class_ids), "erosion_radius": 1},
        )
        with rasterio.open(out) as src:
            return log, src.read(1)

    return run


def test_reference_in_another_crs_is_reprojected(reference_job):
    _, native = reference_job(parcels())
    _, lonlat = reference_job(parcels("EPSG:4326"))
    assert (native[:, :32] == 2).all() and (native[:, 32:] == 3).all()
    assert (lonlat != native).mean() < 0.02  # pixel centres on the reprojected boundary may flip


def test_invalid_polygon_is_repaired_and_logged(reference_job):
    frame = parcels()
    left, bottom, right, top = GRID.bounds
    bow_tie = Polygon([(left, bottom), (right, top), (right, bottom), (left, top)])  # self-intersecting
    frame.loc[1, "geometry"] = bow_tie
    log, labels = reference_job(frame)
    assert "repaired 1 invalid polygon(s)" in log
    assert (labels == 3).sum() > 1000 and (labels == 2).sum() > 500  # both triangles of the bow tie burn


def test_class_ids_outside_the_configured_classes_are_an_error(reference_job):
    frame = parcels()
    frame.loc[1, "lulc_id"] = 42
    with pytest.raises(ValueError, match=r"reference\.gpkg: attribute 'lulc_id' has class id\(s\) \[42\] outside"):
        reference_job(frame)
    frame["lulc_id"] = frame["lulc_id"].astype(float)
    frame.loc[1, "lulc_id"] = 2.5
    with pytest.raises(ValueError, match=r"'lulc_id' has 1 non-integer value\(s\): 2\.5"):
        reference_job(frame)


def test_empty_or_distant_reference_gives_no_labels(reference_job):
    _, labels = reference_job(parcels().iloc[:0])
    assert (labels == 0).all()
    far = parcels()
    far["geometry"] = far.translate(50_000, 0)
    _, labels = reference_job(far)
    assert (labels == 0).all()


def test_unreadable_reference_or_one_without_crs_is_an_error(reference_job):
    with pytest.raises(ValueError, match=r"reference polygons .*reference\.gpkg: cannot be read"):
        reference_job(None, raw_file=b"not a geopackage")
    with pytest.raises(ValueError, match=r"reference\.gpkg: has no CRS"):
        reference_job(parcels().set_crs(None, allow_override=True))


def test_fewer_than_two_classes_at_training_name_the_tiles_and_settings():
    samples = pd.DataFrame({"tile_id": TILE, "row": np.arange(30), "col": 0, "label": np.uint8(2)})
    samples["B02_2017-01-01"] = np.linspace(0, 1, 30, dtype=np.float32)
    with pytest.raises(
        ValueError, match=r"1 class\(es\) \[2\].*training tiles: x0457_y5097, x0457_y5098.*reference\.path"
    ):
        train_model(samples, EOLEARN_CLASSES, 1, {}, threads=1, training_tiles=[TILE, "x0457_y5098"])


# --- bands: NaN, inf, out of range, timestamps, missing bands, data types ---------------------------------------


def eopatch(root: Path, bands: np.ndarray, timestamps: list[str]) -> Path:
    """A minimal eo-learn >= 1.0 EOPatch folder over GRID: float bands, IS_DATA all true."""
    (root / "data").mkdir(parents=True)
    (root / "mask").mkdir()
    left, bottom, right, top = GRID.bounds
    ring = [[left, bottom], [right, bottom], [right, top], [left, top], [left, bottom]]
    bbox = {
        "type": "Polygon",
        "coordinates": [ring],
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32633"}},
    }
    (root / "bbox.geojson").write_text(json.dumps(bbox))
    (root / "timestamps.json").write_text(json.dumps(timestamps))
    np.save(root / "data" / "BANDS.npy", bands)
    np.save(root / "mask" / "IS_DATA.npy", np.ones((*bands.shape[:3], 1), dtype=bool))
    return root


def test_eopatch_nan_inf_and_out_of_range_reflectance(tmp_path):
    bands = np.full((2, 64, 64, 13), 0.1, dtype=np.float32)
    bands[0, 0, 0, 3] = np.nan
    bands[0, 0, 1, 5] = np.inf
    bands[0, 0, 2, 0] = -np.inf
    bands[0, 0, 3, :] = -0.05  # below 0: clipped
    bands[0, 0, 4, :] = 7.5  # above 6.5535: saturated
    ds = read_eopatch(eopatch(tmp_path / "p", bands, ["2017-03-01T10:00:00", "2017-03-11T10:00:00"]), TILE, "BANDS")
    is_data, values = ds["is_data"].values, ds["bands"].values
    assert not is_data[0, 0, :3].any() and is_data[0, 0, 3:].all() and is_data[1].all()
    assert values[0, 0, 0, 3] == values[0, 0, 1, 5] == values[0, 0, 2, 0] == 0  # not a wrapped NaN
    assert (values[0, 0, 3] == 0).all() and (values[0, 0, 4] == 65535).all() and (values[1] == 1000).all()


def test_float_band_files_with_nan_or_inf_are_no_data_and_mixed_types_read_alike(tmp_path):
    plain = read_l1c_tile(l1c_granule(tmp_path / "plain"), GRID)
    float_b04 = {"B04": "float32"}
    mixed = read_l1c_tile(l1c_granule(tmp_path / "mixed", dtypes=float_b04), GRID)
    xr.testing.assert_identical(mixed, plain)  # a float32 B04 beside uint16 bands changes nothing
    bad = {"B04": {(30, 30): np.nan, (50, 50): np.inf}}  # pixels (20, 20) and (40, 40) of the tile, 10 px inside
    damaged = read_l1c_tile(l1c_granule(tmp_path / "bad", dtypes=float_b04, values=bad), GRID)
    lost = ~damaged["is_data"].values[0]
    assert lost[20, 20] and lost[40, 40] and lost.sum() <= 2 * 4  # bilinear reach: the 2 x 2 around each
    assert (damaged["bands"].values[0][lost] == 0).all()


def test_unsorted_and_duplicate_timestamps_give_the_features_of_sorted_averaged_frames():
    """Sources sort frames by time, but no stage relies on it; frames sharing a timestamp are averaged."""
    raw = raw_stack(n_times=3)
    times = np.datetime64("2017-01-05", "ns") + np.arange(3) * np.timedelta64(40, "D")  # midnight: on the date grid
    bands = raw["bands"].values
    stacked = {
        "sorted": (bands, times),
        "unsorted": (bands[[2, 0, 1]], times[[2, 0, 1]]),
        "duplicate": (np.concatenate([bands, bands[1:2] // 2]), times[[0, 1, 2, 1]]),
    }
    features = {}
    for name, (values, when) in stacked.items():
        ds = stack.new_stack(values, np.ones(values.shape[:3], bool), when, stack.L1C_BANDS, GRID)
        features[name] = tile_features(ds, clear_sky(ds), ["B02"], [], times.astype("datetime64[D]"), 0.5)
    xr.testing.assert_identical(features["unsorted"].drop_attrs(), features["sorted"].drop_attrs())
    b02 = bands[..., 1].astype(np.float32) / 1e4
    averaged = features["duplicate"]["features"].values[..., 0]
    np.testing.assert_allclose(averaged[1], (b02[1] + (bands[1, ..., 1] // 2) / np.float32(1e4)) / 2, rtol=1e-6)
    np.testing.assert_array_equal(averaged[[0, 2]], features["sorted"]["features"].values[[0, 2], ..., 0])
    with pytest.raises(stack.StackError, match=rf"tile {TILE}: 1 acquisition time\(s\) are missing"):
        stack.new_stack(bands, np.ones(bands.shape[:3], bool), [times[0], "NaT", times[2]], stack.L1C_BANDS, GRID)


def test_missing_band_is_an_error_naming_tile_and_band():
    raw = raw_stack().drop_sel(band=["B08", "B11"])
    with pytest.raises(
        stack.StackError, match=rf"tile {TILE}: s2cloudless needs all 13 L1C bands, the stack lacks B08, B11"
    ):
        cloud_masks(raw, resolution_m=80, threshold=0.4, average_over=2, dilation_size=1)
    with pytest.raises(stack.StackError, match=rf"tile {TILE}: bands B08, B11 are needed for the features"):
        tile_features(raw, clear_sky(raw), BANDS, INDICES, DATES, 0.5)


def test_bands_of_another_data_type_are_refused(tmp_path):
    raw = raw_stack()
    with pytest.raises(stack.StackError, match=rf"tile {TILE}: bands must be uint16 .*float32"):
        stack.new_stack(
            raw["bands"].values.astype(np.float32), raw["is_data"].values, raw["time"].values, stack.L1C_BANDS, GRID
        )
    foreign = raw.assign(bands=raw["bands"].astype(np.float32) / 1e4)  # a stack written by another tool
    stack.write(foreign, tmp_path / f"{TILE}.nc")
    with pytest.raises(stack.StackError, match=rf"{TILE}\.nc: bands are float32, the raw stack format holds uint16"):
        stack.open(tmp_path / f"{TILE}.nc")


def test_nan_in_a_precomputed_index_makes_that_observation_invalid():
    raw = raw_stack(n_times=2)
    ndvi = np.full((2, 64, 64, 1), 0.5, dtype=np.float32)
    ndvi[0, 0, 0] = np.nan
    ndvi[1, 0, 0] = np.inf
    ndvi[0, 0, 1] = np.nan
    raw = raw.assign(indices=(("time", "y", "x", "index"), ndvi)).assign_coords(index=["NDVI"])
    features = tile_features(raw, clear_sky(raw), ["B02"], ["NDVI"], DATES, 0.5)
    count = features["valid_count"].values
    assert count[0, 0] == 0 and count[0, 1] == 1 and (count.ravel()[2:] == 2).all()
    assert np.isnan(features["features"].values[:, 0, 0]).all()
    assert (features["features"].sel(feature="NDVI").values[:, 0, 1] == 0.5).all()


# --- a download killed mid-write ------------------------------------------------------------------------------


def test_a_cached_download_cut_short_is_fetched_again(tmp_path, monkeypatch):
    """sentinelhub-py caches responses in place; one without its request.json is a download cut short."""
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the stand-in speaks plain http
    scenes = [Scene(dt.datetime(2017, m, 4, 10, 0, 21, tzinfo=dt.UTC), 5.0) for m in (3, 5)]
    grid = tile_grid("x2326_y25397", 200, 10, "EPSG:32633")
    cache = tmp_path / "cache"
    with serve(scenes) as standin:
        config = sentinelhub_config(standin.base_url, standin.token_url, download_sleep_time=0.01)
        config.sh_client_id, config.sh_client_secret = "test-client", "test-secret"
        first = download_tile(grid, ["2017-01-01", "2017-12-31"], 0.8, cache, config)
        response = min(cache.rglob("response.tiff"))
        response.write_bytes(response.read_bytes()[:100])  # killed mid-write: truncated, no request.json yet
        (response.parent / "request.json").unlink()
        fetched = standin.counts["process"]
        again = download_tile(grid, ["2017-01-01", "2017-12-31"], 0.8, cache, config)
        assert standin.counts["process"] == fetched + 1  # that overpass only
    assert again.identical(first)
