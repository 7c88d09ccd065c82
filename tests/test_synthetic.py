"""The synthetic area: deterministic, continuous across tiles, realistic enough to stand in for Sentinel-2."""

from __future__ import annotations

import json
import runpy
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pytest
import rasterio.features
import yaml
from affine import Affine
from conftest import REPO, load_npy
from rasterio.crs import CRS
from s2cloudless import S2PixelCloudDetector
from scipy import ndimage

from landcover import stack
from landcover.grid import tile_grid
from landcover.stack import TileGrid
from landcover.synthetic import acquisition_dates, land_cover_truth, synthesize_reference, synthesize_tile
from landcover.synthetic.landscape import landscape
from landcover.synthetic.surface import ENDMEMBERS, SNOW, Surface
from landcover.synthetic.tile import _NOISE_ABS

SEED = 2017
CRS_UTM = CRS.from_epsg(32633)
DEFAULT_TILES = [f"x{ix:04d}_y{iy:04d}" for iy in (2041, 2040, 2039) for ix in (183, 184, 185)]


def small_grid(minx: float, miny: float, pixels: int = 100, tile_id: str = "small") -> TileGrid:
    return TileGrid(tile_id, CRS_UTM, Affine(10.0, 0.0, minx, 0.0, -10.0, miny + 10.0 * pixels), pixels, pixels)


def ndvi(bands: np.ndarray) -> np.ndarray:
    b = bands.astype(np.float32)
    return (b[..., 7] - b[..., 3]) / (b[..., 7] + b[..., 3])


@pytest.fixture(scope="module")
def year_tile():
    """A full year over a 160 x 160 px part of the default area (clouds, clear snowy days, all classes)."""
    grid = small_grid(457900.0, 5099900.0, 160)
    return synthesize_tile(grid, SEED)


def test_same_seed_gives_identical_arrays_and_another_seed_differs():
    grid = small_grid(458000.0, 5098000.0, 48)
    a_stack, a_truth = synthesize_tile(grid, SEED, acquisitions=8)
    b_stack, b_truth = synthesize_tile(grid, SEED, acquisitions=8)
    c_stack, c_truth = synthesize_tile(grid, SEED + 1, acquisitions=8)
    for name in ("bands", "is_data"):
        np.testing.assert_array_equal(a_stack[name].values, b_stack[name].values)
    for name in ("land_cover", "cloud", "shadow", "snow"):
        np.testing.assert_array_equal(a_truth[name].values, b_truth[name].values)
    assert not np.array_equal(a_stack.bands.values, c_stack.bands.values)
    assert not np.array_equal(a_truth.land_cover.values, c_truth.land_cover.values)


def test_stack_and_truth_follow_the_tile_format():
    grid = small_grid(462000.0, 5099000.0, 40)
    raw, truth = synthesize_tile(grid, SEED, acquisitions=10)
    assert raw.bands.dtype == np.uint16 and raw.bands.dims == ("time", "y", "x", "band")
    assert raw.bands.shape == (10, 40, 40, 13)
    assert tuple(raw.band.values) == stack.L1C_BANDS
    assert raw.is_data.dtype == bool
    assert stack.grid_of(raw) == grid and stack.grid_of(truth) == grid
    assert truth.land_cover.dtype == np.uint8 and truth.land_cover.dims == ("y", "x")
    for name in ("cloud", "shadow", "snow"):
        assert truth[name].dtype == bool and truth[name].dims == ("time", "y", "x")
    np.testing.assert_array_equal(truth.time.values, raw.time.values)
    assert (raw.bands.values[raw.is_data.values] > 0).all()
    assert (raw.bands.values[~raw.is_data.values] == 0).all()


def test_tiles_agree_along_their_border():
    left, right = small_grid(459000.0, 5100000.0, 64), small_grid(459640.0, 5100000.0, 64)
    both = TileGrid("both", CRS_UTM, Affine(10.0, 0.0, 459000.0, 0.0, -10.0, 5100640.0), 64, 128)
    l_stack, l_truth = synthesize_tile(left, SEED, acquisitions=12)
    r_stack, r_truth = synthesize_tile(right, SEED, acquisitions=12)
    b_stack, b_truth = synthesize_tile(both, SEED, acquisitions=12)
    # The truth (land cover and what the sky does) does not depend on how the area is cut into tiles.
    for name in ("land_cover", "cloud", "shadow", "snow"):
        joined = np.concatenate([l_truth[name].values, r_truth[name].values], axis=-1)
        np.testing.assert_array_equal(joined, b_truth[name].values)
    # Reflectances differ only by the per-tile sensor noise.
    joined = np.concatenate([l_stack.bands.values, r_stack.bands.values], axis=2).astype(np.float32)
    difference = np.abs(joined - b_stack.bands.values) / stack.REFLECTANCE_SCALE
    assert np.median(difference) < 4 * _NOISE_ABS
    # The landscape is continuous: the columns either side of the border mostly share a class.
    lc = b_truth.land_cover.values
    assert (lc[:, 63] == lc[:, 64]).mean() > 0.8


def test_default_area_has_forest_largest_but_no_class_above_sixty_percent():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    truths = {t: land_cover_truth(tile_grid(t, 2500, 10, "EPSG:32633"), SEED) for t in DEFAULT_TILES}

    def shares(tiles):
        return np.bincount(np.concatenate([truths[t].ravel() for t in tiles]), minlength=11) / (len(tiles) * 250**2)

    area, test = shares(DEFAULT_TILES), shares(config["split"]["test_tiles"])
    assert 0.33 < area[2] < 0.5  # forest
    assert area.argmax() == 2 and area.max() < 0.6 and test.max() < 0.6
    assert (area > 0.001).sum() >= 6
    for cls in (1, 3):  # cultivated land, grassland
        assert 0.12 < area[cls] < 0.35
    for cls in (4, 5, 6, 8):  # shrubland, water, wetlands, artificial surface: a few percent
        assert 0.01 < area[cls] < 0.08
    for truth in truths.values():
        assert (np.bincount(truth.ravel(), minlength=11) > 0.01 * truth.size).sum() >= 3


def test_pixels_along_boundaries_are_mixed():
    """Sub-pixel parcels: every pixel's parts fill it, the true class covers most of it, and about
    a sixth of the pixels hold more than one class."""
    land = landscape(small_grid(458000.0, 5098000.0, 120), SEED)
    parts = land.parts
    pixels = land.land_cover.size
    np.testing.assert_allclose(np.bincount(parts.pixel, weights=parts.share, minlength=pixels), 1.0, rtol=1e-6)
    area = np.zeros((pixels, 11))
    np.add.at(area, (parts.pixel, parts.cover), parts.share)
    np.testing.assert_array_equal(area.argmax(axis=1), land.land_cover.ravel())
    mixed = (area > 0).sum(axis=1) > 1
    assert 0.1 < mixed.mean() < 0.35
    assert 0.2 < area.max(axis=1)[mixed].mean() < 0.9


def test_landscape_drawn_in_strips_is_the_same(monkeypatch):
    """A large tile is drawn a few pixel rows at a time; the cut must not show."""
    from landcover.synthetic import landscape as module

    grid = small_grid(458000.0, 5098000.0, 40)
    whole = landscape(grid, SEED, pad=1)
    monkeypatch.setattr(module, "_STRIP_POINTS", 3000)  # 4 pixel rows per strip
    strips = landscape(grid, SEED, pad=1)
    np.testing.assert_array_equal(whole.land_cover, strips.land_cover)
    for name in module.Components.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(whole.parts, name), getattr(strips.parts, name), err_msg=name)


def test_shore_pixels_blend_water_and_land(year_tile):
    """A pixel part water, part land reflects in the near infrared between open water and dry land."""
    raw, truth = year_tile
    land = landscape(small_grid(457900.0, 5099900.0, 160), SEED)
    water = np.zeros(land.land_cover.size)
    np.add.at(water, land.parts.pixel[land.parts.cover == 5], land.parts.share[land.parts.cover == 5])
    clear = ~(truth.cloud.values | truth.shadow.values | truth.snow.values) & raw.is_data.values
    summer = np.flatnonzero(np.isin(raw.time.dt.month.values, [6, 7, 8]) & (clear.mean(axis=(1, 2)) > 0.9))
    nir = np.median(raw.bands.values[summer, ..., 7].astype(np.float32), axis=0).ravel()
    open_water, dry_land = np.median(nir[water == 1]), np.median(nir[water == 0])
    half = np.median(nir[(water > 0.3) & (water < 0.7)])
    assert (water == 1).sum() > 100 and ((water > 0.3) & (water < 0.7)).sum() > 30
    assert open_water + 0.25 * (dry_land - open_water) < half < open_water + 0.75 * (dry_land - open_water)


def test_spring_comes_later_uphill():
    """Broadleaf leaf-out waits for the warmth: in late April, high stands are less green than low ones."""
    land = landscape(small_grid(459000.0, 5101000.0, 200), SEED)
    model = Surface(land, SEED, 10.0)
    broadleaf = model.fractions(118.0, 0.03)[list(ENDMEMBERS).index("broadleaf")]
    forest = slice(*next((b.start, b.stop) for c, b in model.blocks if c == 2))
    leafy, lag = broadleaf[forest] / (1 - model.conifer[forest] + 1e-6), model.lag[forest]
    low, high = lag < np.percentile(lag, 25), lag > np.percentile(lag, 75)
    assert np.median(lag[high]) - np.median(lag[low]) > 2  # days
    assert np.median(leafy[low]) > np.median(leafy[high]) + 0.1


def test_acquisition_dates_are_about_five_days_apart_with_gaps():
    dates = acquisition_dates(SEED, 2017, 70)
    assert dates.size == 70
    np.testing.assert_array_equal(dates, acquisition_dates(SEED, 2017, 70))
    assert (dates >= np.datetime64("2017-01-01")).all() and (dates < np.datetime64("2018-01-01")).all()
    gaps = np.diff(dates.astype("datetime64[D]")).astype(int)
    assert (gaps > 0).all()
    assert np.median(gaps) == 5
    assert gaps.max() >= 10 and len(set(gaps.tolist())) >= 3
    assert not np.array_equal(dates, acquisition_dates(SEED + 1, 2017, 70))
    with pytest.raises(ValueError, match="acquisitions"):
        acquisition_dates(SEED, 2017, 0)


def test_about_forty_percent_of_dates_are_largely_cloudy(year_tile):
    _, truth = year_tile
    cloudy = truth.cloud.values.mean(axis=(1, 2))
    assert 0.25 < (cloudy > 0.7).mean() < 0.55
    assert (cloudy < 0.05).mean() > 0.2
    assert truth.shadow.values.any() and truth.snow.values.any()


def test_s2cloudless_finds_the_clouds_and_not_the_clear_land(year_tile):
    raw, truth = year_tile
    times = raw.sizes["time"]
    reflectance = raw.bands.values.astype(np.float32) / stack.REFLECTANCE_SCALE
    coarse = reflectance.reshape(times, 20, 8, 20, 8, 13).mean(axis=(2, 4))
    detector = S2PixelCloudDetector(all_bands=True, threshold=0.4, average_over=2, dilation_size=1)
    mask = detector.get_cloud_masks(coarse).astype(bool)
    cloud = truth.cloud.values.reshape(times, 20, 8, 20, 8).mean(axis=(2, 4))
    snow = truth.snow.values.reshape(times, 20, 8, 20, 8).mean(axis=(2, 4))
    near_cloud = np.array([ndimage.binary_dilation(c > 0, iterations=2) for c in cloud])
    clear = ~near_cloud & (raw.is_data.values.reshape(times, 20, 8, 20, 8).all(axis=(2, 4)))
    assert mask[cloud == 1].mean() > 0.9
    assert mask[clear].mean() < 0.05
    snowy = clear & (snow > 0.5)
    assert snowy.sum() > 50 and mask[snowy].mean() < 0.2


def test_snow_and_bright_surfaces_are_not_clouds_to_s2cloudless():
    grounds = [np.array(ENDMEMBERS[n]) for n in ("grass", "dry", "soil_dark", "roof", "gravel", "litter")]
    pixels = [f * SNOW + (1 - f) * g for g in grounds for f in np.linspace(0.3, 1.0, 8)] + grounds
    probability = S2PixelCloudDetector(all_bands=True).get_cloud_probability_maps(
        np.array(pixels, dtype=np.float32)[None, None]
    )
    assert (probability < 0.4).mean() > 0.85


def test_class_ndvi_follows_its_calendar(year_tile):
    raw, truth = year_tile
    clear = ~(truth.cloud.values | truth.shadow.values | truth.snow.values) & raw.is_data.values
    lc = truth.land_cover.values
    index = ndvi(raw.bands.values)
    month = raw.time.dt.month.values

    def median(cls, months, where=True):
        values = [index[k][clear[k] & (lc == cls) & where] for k in np.flatnonzero(np.isin(month, months))]
        return np.array([np.median(v) for v in values if v.size > 20])

    summer, winter, year = [6, 7, 8], [12, 1, 2], list(range(1, 13))
    assert median(1, [5, 6]).max() > 0.6 and median(1, year).min() < 0.3  # crops grow, fields lie bare
    assert np.median(median(2, summer)) > 0.65 and np.median(median(2, winter)) < np.median(median(2, summer)) - 0.1
    assert np.median(median(3, winter)) > 0.35  # meadows stay green under winter
    assert np.median(median(4, winter)) < np.median(median(3, winter))  # shrubs drop their leaves
    # Water away from its banks (the narrow rivers' edge pixels mix with the land).
    assert np.median(median(5, year, where=ndimage.binary_erosion(lc == 5))) < -0.03
    # Built-up pixels mix roofs and roads with gardens and trees: about 0.55 in summer on the real patch.
    assert 0.35 < np.median(median(8, summer)) < np.median(median(3, summer))
    assert np.median(median(8, winter)) < np.median(median(8, summer)) - 0.05


@pytest.mark.realdata
def test_summer_spectra_match_the_real_slovenian_scenes(real_data, year_tile):
    """Class medians of clear July-August pixels against the real 2015 summer scenes of the eo-learn patch."""
    folder = real_data / "eolearn-testeopatch"
    scenes = load_npy(folder / "REFERENCE_SCENES.npy")
    dates = json.loads((folder / "REFERENCE_SCENES_dates.json").read_text())["scenes"]
    clear_scenes = [
        d["scene_index"]
        for d in dates["eolearn_example_data/REFERENCE_SCENES.npy"]
        if d["timestamp"][:10] in ("2015-07-11", "2015-08-30", "2015-09-09")
    ]
    lulc = load_npy(folder / "TestEOPatch" / "mask_timeless" / "LULC.npy")[..., 0]
    raw, truth = year_tile
    clear = ~(truth.cloud.values | truth.shadow.values) & raw.is_data.values
    summer = np.isin(raw.time.dt.month.values, [7, 8])
    reflectance = raw.bands.values / stack.REFLECTANCE_SCALE
    bands = [i for i, b in enumerate(stack.L1C_BANDS) if b not in ("B09", "B10")]
    for cls in (2, 3):  # forest, grassland: the patch's well-sampled classes
        real = np.median(np.concatenate([scenes[i][lulc == cls] for i in clear_scenes]), axis=0)
        ours = np.median(
            np.concatenate(
                [reflectance[k][clear[k] & (truth.land_cover.values == cls)] for k in np.flatnonzero(summer)]
            ),
            axis=0,
        )
        np.testing.assert_allclose(ours[bands], real[bands], rtol=0.25, err_msg=f"class {cls}")
    assert np.median(scenes[[i for i in range(5) if i not in clear_scenes]][..., 1]) > 0.15  # real clouds are bright


@pytest.mark.realdata
def test_thick_clouds_look_like_real_ones(real_data, year_tile):
    """Thick synthetic clouds against the thick pixels of s2cloudless's real test scene, band by band."""
    scene = np.load(real_data / "s2cloudless-scene" / "input_arrays_crop.npz")
    real = scene["s2_im"][0][scene["cl_probs"][0] > 0.95]
    real = real[real[:, 1] > 0.35]
    raw, truth = year_tile
    reflectance = raw.bands.values / stack.REFLECTANCE_SCALE
    ours = reflectance[truth.cloud.values & (reflectance[..., 1] > 0.35)]
    assert len(ours) > 1000
    bands = [i for i, b in enumerate(stack.L1C_BANDS) if b != "B10"]
    low, high = np.percentile(real[:, bands], [10, 90], axis=0)
    median = np.median(ours[:, bands], axis=0)
    assert ((median > low) & (median < high)).all()
    # Spectral shape: each band relative to B02.
    np.testing.assert_allclose(
        np.median(ours[:, bands] / ours[:, [1]], axis=0), np.median(real[:, bands] / real[:, [1]], axis=0), rtol=0.15
    )


def test_reference_is_the_truth_with_a_few_misfiled_parcels():
    grids = [small_grid(461000.0, 5100000.0, 100, "a"), small_grid(462000.0, 5100000.0, 100, "b")]
    polygons = synthesize_reference(grids, SEED)
    # the register's class, and what the generator knows: whether it misfiled the parcel, and its true class
    assert list(polygons.columns) == ["lulc_id", "lulc_name", "misfiled", "true_id", "geometry"]
    assert polygons.crs == CRS_UTM and polygons.geom_type.eq("Polygon").all() and polygons.is_valid.all()
    assert polygons.lulc_id.dtype == np.int64
    assert (polygons.misfiled == (polygons.lulc_id != polygons.true_id)).all() and polygons.misfiled.any()
    names = {1: "cultivated land", 2: "forest", 3: "grassland", 8: "artificial surface"}
    for cls, name in names.items():
        assert set(polygons.lulc_name[polygons.lulc_id == cls]) <= {name}
    # Parcels cut by the border between the two tiles are merged again.
    assert ((polygons.bounds.minx < 462000) & (polygons.bounds.maxx > 462000)).any()
    agree = total = 0
    for grid in grids:
        truth = land_cover_truth(grid, SEED)
        burnt = rasterio.features.rasterize(
            zip(polygons.geometry, polygons.lulc_id), out_shape=truth.shape, transform=grid.transform
        )
        agree += int((burnt == truth).sum())
        total += truth.size
    assert 0.9 < agree / total < 0.995
    assert 0.01 < _misfiled_share(polygons, grids) < 0.12


def _misfiled_share(polygons: gpd.GeoDataFrame, grids: list[TileGrid]) -> float:
    """Share of polygons whose class differs from the truth's majority class inside them."""
    truth = {g.tile_id: land_cover_truth(g, SEED) for g in grids}
    wrong = 0
    for geometry, cls in zip(polygons.geometry, polygons.lulc_id):
        votes = np.zeros(11, dtype=np.int64)
        for g in grids:
            inside = rasterio.features.geometry_mask([geometry], (g.height, g.width), g.transform, invert=True)
            votes += np.bincount(truth[g.tile_id][inside], minlength=11)
        wrong += votes.argmax() != cls
    return wrong / len(polygons)


def test_bad_input_raises_naming_the_tile():
    rotated = TileGrid("x0001_y0001", CRS_UTM, Affine(10.0, 0.0, 0.0, 0.0, 10.0, 0.0), 10, 10)
    with pytest.raises(ValueError, match="x0001_y0001"):
        land_cover_truth(rotated, SEED)
    other = TileGrid("x0002_y0001", CRS.from_epsg(32632), small_grid(0, 0, 10).transform, 10, 10)
    with pytest.raises(ValueError, match="x0002_y0001"):
        synthesize_reference([small_grid(0, 0, 10, "x0001_y0001"), other], SEED)


def _run_script(path, **snakemake):
    runpy.run_path(path, init_globals={"snakemake": SimpleNamespace(**snakemake)})


def test_scripts_write_the_tile_and_the_register(tmp_path):
    params = {"tile_size_m": 480, "resolution_m": 10, "crs": "EPSG:32633", "seed": SEED}
    tile = "x0960_y10630"
    _run_script(
        "scripts/synthesize_tile.py",
        wildcards=SimpleNamespace(tile=tile),
        params=SimpleNamespace(**params, year=2017, acquisitions=6, margin_px=3),
        output=SimpleNamespace(stack=str(tmp_path / "stack.nc"), truth=str(tmp_path / "truth.nc")),
        log=[str(tmp_path / "tile.log")],
    )
    with stack.open(tmp_path / "stack.nc", required=("bands", "is_data")) as raw:
        assert raw.attrs["tile_id"] == tile and raw.bands.shape == (6, 54, 54, 13)  # the tile and its margin
        assert raw.attrs["margin_px"] == 3
    with stack.open(tmp_path / "truth.nc", required=("land_cover", "cloud", "shadow", "snow")) as truth:
        assert truth.sizes["time"] == 6 and truth.sizes["y"] == truth.sizes["x"] == 48  # the tile only
    _run_script(
        "scripts/synthesize_reference.py",
        wildcards=SimpleNamespace(tile=tile),
        params=SimpleNamespace(**params, tiles=[tile]),
        output=SimpleNamespace(reference=str(tmp_path / "reference.gpkg")),
        log=[str(tmp_path / "reference.log")],
    )
    polygons = gpd.read_file(tmp_path / "reference.gpkg", layer="reference")
    assert set(polygons.columns) == {"lulc_id", "lulc_name", "misfiled", "true_id", "geometry"} and len(polygons) > 0
    assert tile in (tmp_path / "tile.log").read_text()
    assert "polygons" in (tmp_path / "reference.log").read_text()


def test_the_calibration_command_lists_the_area_and_scores_like_scikit_learn():
    """tools/calibration.py draws the tiles the workflow lists and counts accuracy as the truth scores do."""
    from sklearn.metrics import accuracy_score

    from tools.calibration import area_tiles, default_config, truth_accuracy

    assert sorted(area_tiles(default_config())) == sorted(DEFAULT_TILES)
    generator = np.random.default_rng(0)
    maps = {t: generator.integers(0, 4, (20, 30)).astype(np.uint8) for t in "ab"}
    truths = {t: generator.integers(0, 4, (20, 30)).astype(np.uint8) for t in "ab"}
    scored = {t: (maps[t] > 0) & (truths[t] > 0) for t in "ab"}
    expected = accuracy_score(
        np.concatenate([truths[t][scored[t]] for t in "ab"]), np.concatenate([maps[t][scored[t]] for t in "ab"])
    )
    assert truth_accuracy(maps, truths) == pytest.approx(expected)
