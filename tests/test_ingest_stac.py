"""The STAC source against a stand-in STAC API on 127.0.0.1 serving L2A COGs made from the synthetic area.

Checked against the synthetic truth the COGs encode: bands exactly (every processing baseline's radiometry),
SCL and probability cloud masks, HTTP range reads only, errors that name the asset; and the whole workflow,
whose features agree with the L1C path's (synthetic source, s2cloudless masks) on the same truth."""

from __future__ import annotations

import logging
import sys
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from conftest import TINY_TILES, snakemake, tiny_config, write_config
from stac_standin import COLLECTION, mosaic, scene_classification, stac_standin, write_catalogue, write_item
from synthetic_products import synthesize_area, tiny_grids, write_aoi_and_reference

from landcover import stack
from landcover.grid import crop_to_tile
from landcover.ingest import IngestError
from landcover.ingest import stac as stac_source
from landcover.ingest.checked import warp_band
from landcover.ingest.stac import (
    IMPLAUSIBLY_DARK,
    PLAUSIBLE_MEDIAN_MIN,
    SCL_INVALID,
    read_stac_tile,
    search_items,
    url_signer,
)

FRAMES = list(range(0, 70, 10))
BANDS = ["B02", "B04", "B08", "B11"]
YEAR = ["2017-01-01", "2017-12-31"]


@pytest.fixture(scope="module")
def area():
    return synthesize_area(tiny_config(), acquisitions=70)


@pytest.fixture
def server(area, tmp_path):
    with stac_standin(tmp_path / "catalogue") as standin:
        standin.items = write_catalogue(tmp_path / "catalogue", standin.url, area, FRAMES)
        yield standin


def expected_cloud(area, frame: int, grid, classes=SCL_INVALID) -> np.ndarray:
    """SCL's `classes` at 20 m, seen on the 10 m tile (nearest) as the source reads them."""
    scl = np.repeat(np.repeat(scene_classification(area, frame)[::2, ::2], 2, axis=0), 2, axis=1)
    row = round((5099000 - grid.bounds[3]) / 10)
    col = round((grid.bounds[0] - 457000) / 10)
    return np.isin(scl[row : row + grid.height, col : col + grid.width], classes)


def test_search_pages_through_the_api_and_filters_time_and_cloud_cover(server, monkeypatch):
    grid = tiny_grids()[0]
    monkeypatch.setattr(stac_source, "PAGE_SIZE", 3)  # 7 items: three pages
    items = search_items(server.url, COLLECTION, grid, YEAR)
    assert [item.id for item in items] == sorted(item["id"] for item in server.items)
    summer = search_items(server.url, COLLECTION, grid, ["2017-06-01", "2017-08-31"])
    assert summer and all("201706" <= item.id.split("_")[2] <= "20170831" for item in summer)
    clear = search_items(server.url, COLLECTION, grid, YEAR, max_cloud_cover=10)
    assert clear and all(item.properties["eo:cloud_cover"] <= 10 for item in clear) and len(clear) < len(items)


def test_bands_and_scl_masks_match_the_truth_for_every_baseline_and_only_ranges_are_read(server, area):
    grid = tiny_grids()[1]
    ds = read_stac_tile(search_items(server.url, COLLECTION, grid, YEAR), grid, BANDS)
    raw, _ = area[grid.tile_id]
    assert len(ds["time"]) == len(FRAMES)  # baselines 05.09, 04.00, 02.14 in turn
    columns = [list(raw["band"].values).index(band) for band in BANDS]
    for k, frame in enumerate(FRAMES):
        is_data = raw["is_data"].values[frame]
        assert np.array_equal(ds["is_data"].values[k], is_data)
        assert np.array_equal(ds["bands"].values[k][is_data], raw["bands"].values[frame][..., columns][is_data])
        assert np.array_equal(ds["cloud_mask"].values[k], expected_cloud(area, frame, grid) & is_data)
    assert ds["cloud_mask"].values.any() and ds.attrs["cloud_mask_source"] == "scl"
    assert all(was_range for _, was_range, _ in server.requests), "a COG was fetched whole"
    served = sum(size for _, _, size in server.requests)
    files = sum(p.stat().st_size for p in server.folder.rglob("*.tif") if p.stem in [*BANDS, "SCL"])
    assert served < files  # a quarter of the area: only the tile's COG blocks (and headers)


def test_probability_masks_where_the_source_carries_a_cloud_probability(server, area):
    grid = tiny_grids()[2]
    items = search_items(server.url, COLLECTION, grid, YEAR)
    ds = read_stac_tile(items, grid, BANDS, cloud_mask="probability", probability_asset="CLD")
    cloudy = [expected_cloud(area, frame, grid, classes=[9]) for frame in FRAMES]  # CLD: 100 % where SCL is 9
    assert ds["cloud_mask"].values.any() and ds.attrs["cloud_mask_source"] == "probability:CLD"
    assert all(np.array_equal(ds["cloud_mask"].values[k], cloudy[k] & ds["is_data"].values[k]) for k in range(7))


def test_a_missing_or_damaged_cog_raises_naming_tile_and_url(server):
    grid = tiny_grids()[3]
    items = search_items(server.url, COLLECTION, grid, YEAR)
    item = items[1]
    cog = server.folder / item.id / "B04.tif"
    cog.write_bytes(cog.read_bytes()[: cog.stat().st_size // 2])
    with pytest.raises(IngestError, match=rf"tile {grid.tile_id}: .*{item.id}/B04.tif: cannot be read"):
        read_stac_tile(items, grid, BANDS)
    cog.unlink()
    with pytest.raises(IngestError, match=rf"tile {grid.tile_id}: .*{item.id}/B04.tif"):
        read_stac_tile(items, grid, BANDS)


def tile_offset(grid) -> tuple[int, int]:
    """The tile's first row and column in the stand-in's mosaic of the area."""
    return round((5099000 - grid.bounds[3]) / 10), round((grid.bounds[0] - 457000) / 10)


def test_any_grid_is_read_a_tile_with_a_margin_reaching_past_the_area(server, area):
    tile = tiny_grids()[0]
    margin = 20
    grid = stack.TileGrid(
        tile.tile_id,
        tile.crs,
        tile.transform @ Affine.translation(-margin, -margin),
        tile.height + 2 * margin,
        tile.width + 2 * margin,
    )
    ds = read_stac_tile(search_items(server.url, COLLECTION, grid, YEAR), grid, BANDS)
    row, col = tile_offset(tile)
    for k, frame in enumerate(FRAMES):
        padded = [np.pad(mosaic(area, name, frame)[0], [(margin, margin)] * 2 + [(0, 0)] * (name == "bands"))
                  for name in ("bands", "is_data")]  # fmt: skip
        window = np.s_[row : row + grid.height, col : col + grid.width]
        truth, is_data = padded[0][window][..., [stack.L1C_BANDS.index(band) for band in BANDS]], padded[1][window]
        assert np.array_equal(ds["is_data"].values[k], is_data)
        assert np.array_equal(ds["bands"].values[k][is_data], truth[is_data])
    # The tile is the area's south-western one: its northern margin is the neighbour's, its western one outside.
    assert ds["is_data"].values[:, :margin].any() and not ds["is_data"].values[:, :, :margin].any()


def test_items_above_max_cloud_cover_are_logged_and_items_without_a_count_are_kept(server, caplog):
    grid = tiny_grids()[0]
    server.items[0]["properties"].pop("eo:cloud_cover")
    with caplog.at_level(logging.INFO, logger="landcover.ingest.stac"):
        items = search_items(server.url, COLLECTION, grid, YEAR, max_cloud_cover=10)
    cloudy = [item["id"] for item in server.items[1:] if item["properties"]["eo:cloud_cover"] > 10]
    assert cloudy and server.items[0]["id"] in [item.id for item in items]
    assert not {item.id for item in items} & set(cloudy)
    assert f"{len(cloudy)} of {len(server.items)} items left out" in caplog.text
    assert all(item_id in caplog.text for item_id in cloudy)
    assert f"have no eo:cloud_cover, kept (cloud cover unknown): {server.items[0]['id']}" in caplog.text


def test_raster_bands_with_a_scale_only_take_the_offset_from_the_processing_baseline(server, area):
    grid = tiny_grids()[0]
    server.items = [write_item(server.folder, server.url, area, 20, "04.00", raster=("scale",))]
    assert "offset" not in server.items[0]["assets"]["B04"]["raster:bands"][0]
    ds = read_stac_tile(search_items(server.url, COLLECTION, grid, YEAR), grid, BANDS)
    raw, _ = area[grid.tile_id]
    columns = [list(raw["band"].values).index(band) for band in BANDS]
    is_data = raw["is_data"].values[20]
    assert np.array_equal(ds["bands"].values[0][is_data], raw["bands"].values[20][..., columns][is_data])


def darkest_clear_median(area, grid, frame: int) -> float:
    """The median reflectance of the tile's clear pixels in its darkest band of BANDS, from the synthetic truth."""
    raw, truth = area[grid.tile_id]
    clear = raw["is_data"].values[frame] & ~truth["cloud"].values[frame] & ~truth["shadow"].values[frame]
    if clear.sum() < stac_source.MIN_CLEAR_PIXELS:
        return np.nan
    values = raw["bands"].sel(band=BANDS).values[frame][clear] / stack.REFLECTANCE_SCALE
    return float(np.median(values, axis=0).min())


def test_an_item_whose_offset_is_applied_twice_is_left_out_naming_it(server, area, caplog):
    grid = tiny_grids()[0]
    dark = [frame for frame in FRAMES if darkest_clear_median(area, grid, frame) - 0.1 < PLAUSIBLE_MEDIAN_MIN - 0.01]
    assert dark, "no frame of the synthetic area is dark enough to tell an offset applied twice"
    # Earth Search issue 71: the DN already hold the offset, raster:bands asks for it once more.
    mislabelled = write_item(server.folder, server.url, area, dark[0], "05.09", offset_in_dn=False)
    server.items = [mislabelled, *(item for item in server.items if item["id"] != mislabelled["id"])]
    with caplog.at_level(logging.WARNING, logger="landcover.ingest.stac"):
        ds = read_stac_tile(search_items(server.url, COLLECTION, grid, YEAR), grid, BANDS)
    assert f"item {mislabelled['id']} left out" in caplog.text and "BOA offset applied twice" in caplog.text
    assert len(ds["time"]) == len(FRAMES) - 1 and ds.attrs["dropped_frames"] == f'{{"{IMPLAUSIBLY_DARK}": 1}}'
    # The same frame labelled right is kept (the other frames' items, every baseline, pass the check).
    server.items = [write_item(server.folder, server.url, area, dark[0], "05.09", mislabelled["id"] + "_fixed")]
    assert len(read_stac_tile(search_items(server.url, COLLECTION, grid, YEAR), grid, BANDS)["time"]) == 1


def test_same_day_duplicates_read_the_newest_baseline_first_and_older_ones_only_over_its_gaps(
    server, area, monkeypatch
):
    grid = tiny_grids()[1]
    frame, raw = 20, area[grid.tile_id][0]
    _, col = tile_offset(grid)
    day = f"{pd.Timestamp(raw['time'].values[frame]):%Y%m%d}"
    # The older granule's DN carry a +1000 its labels do not subtract: its pixels read 0.1 brighter.
    older = write_item(server.folder, server.url, area, frame, "02.14", f"S2A_33TVM_{day}_0_L2A", offset_in_dn=True)
    newer = write_item(server.folder, server.url, area, frame, "05.09", f"S2A_33TVM_{day}_1_L2A")
    server.items = [older, newer]
    ds = read_stac_tile(search_items(server.url, COLLECTION, grid, YEAR), grid, BANDS)
    assert not [path for path, _, _ in server.requests if older["id"] in path], "the older granule was read"
    truth = raw["bands"].sel(band=BANDS).values[frame]
    is_data = raw["is_data"].values[frame]
    assert np.array_equal(ds["bands"].values[0][is_data], truth[is_data])

    shape = mosaic(area, "is_data", frame)[0].shape
    keep = np.zeros(shape, dtype=bool)
    keep[:, : col + 60] = True  # a newer granule leaving the tile's 40 eastern columns without data
    newer = write_item(server.folder, server.url, area, frame, "05.09", f"S2A_33TVM_{day}_2_L2A", keep=keep)
    server.items = [older, newer]
    windows = []

    def recording_warp_band(src, window_grid, **kwargs):
        windows.append((src.name.rsplit("/", 2)[-2], window_grid.width, window_grid.height))
        return warp_band(src, window_grid, **kwargs)

    monkeypatch.setattr(stac_source, "warp_band", recording_warp_band)
    ds = read_stac_tile(search_items(server.url, COLLECTION, grid, YEAR), grid, BANDS)
    gap = np.zeros_like(is_data)
    gap[:, 60:] = True
    assert np.array_equal(ds["is_data"].values[0], is_data)
    assert np.array_equal(ds["bands"].values[0][is_data & ~gap], truth[is_data & ~gap])
    assert np.array_equal(ds["bands"].values[0][is_data & gap], truth[is_data & gap] + 1000)
    assert set(windows) == {(newer["id"], 100, 100), (older["id"], 40, 100)}  # the older one over the gap only


@pytest.fixture
def planetary_computer_standin(server, monkeypatch):
    """planetary-computer's signing, its token API and blob storage played by the stand-in."""
    import planetary_computer.sas
    import planetary_computer.settings

    monkeypatch.setattr(planetary_computer.sas, "BLOB_STORAGE_DOMAIN", urlparse(server.url).netloc)
    monkeypatch.setattr(planetary_computer.settings.Settings.get(), "sas_url", f"{server.url}/sas")
    monkeypatch.setattr(planetary_computer.sas, "TOKEN_CACHE", {})
    return server


def test_urls_are_signed_at_read_time_and_an_expired_token_is_renewed(planetary_computer_standin, area, caplog):
    server, grid = planetary_computer_standin, tiny_grids()[2]
    items = search_items(server.url, COLLECTION, grid, YEAR)
    assert all("?" not in asset.href for item in items for asset in item.assets.values()), "signed at search"
    unsigned = read_stac_tile(items, grid, BANDS)
    server.token_uses = 6  # a token outlives one COG's reads but not an item's: it expires mid-item
    server.requests[:] = []
    with caplog.at_level(logging.INFO, logger="landcover.ingest.stac"):
        signed = read_stac_tile(items, grid, BANDS, signer=url_signer("planetary_computer"))
    assert server.refused and {status for _, status in server.refused} == {403}
    assert len(server.tokens) > len(items) and "refused (403): signing it afresh" in caplog.text
    assert all(np.array_equal(signed[name].values, unsigned[name].values) for name in ("bands", "is_data"))


def test_signing_without_planetary_computer_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "planetary_computer", None)
    monkeypatch.setitem(sys.modules, "planetary_computer.sas", None)
    with pytest.raises(IngestError, match=r"planetary-computer package, the optional extra `pip install \.\[pc\]`"):
        url_signer("planetary_computer")
    with pytest.raises(IngestError, match="stac.sign must be null or planetary_computer"):
        url_signer("aws")


@pytest.mark.parametrize("status", [403, 500])
def test_a_refused_or_failing_cog_raises_naming_tile_url_and_status(server, monkeypatch, status):
    monkeypatch.setitem(stac_source.GDAL_HTTP, "GDAL_HTTP_RETRY_DELAY", 0.1)
    grid = tiny_grids()[3]
    items = search_items(server.url, COLLECTION, grid, YEAR)
    path = urlparse(stac_source._asset(items[2], "B08").href).path
    server.faults[path] = [status] * 20
    with pytest.raises(IngestError, match=rf"tile {grid.tile_id}: .*{items[2].id}/B08.tif.*{status}"):
        read_stac_tile(items, grid, BANDS)
    if status == 500:  # retried by GDAL (GDAL_HTTP_MAX_RETRY): a passing failure is read through
        assert len(server.refused) == 1 + stac_source.GDAL_HTTP["GDAL_HTTP_MAX_RETRY"]
        later = items[3:]  # GDAL remembers the URL that failed
        server.faults[urlparse(stac_source._asset(later[1], "B08").href).path], server.refused[:] = [500], []
        assert len(read_stac_tile(later, grid, BANDS)["time"]) == len(later) and len(server.refused) == 1


def test_unknown_band_or_cloud_mask_is_an_error():
    grid = tiny_grids()[0]
    with pytest.raises(IngestError, match="B10"):
        read_stac_tile([], grid, ["B10"])
    with pytest.raises(IngestError, match="probability_asset"):
        read_stac_tile([], grid, ["B04"], cloud_mask="probability")


# The L2A path's features against the L1C path's (synthetic source, s2cloudless) on the same truth: the bands are
# identical, only the cloud masks differ (SCL from the truth against s2cloudless's estimate), so over the pixels
# both paths observe, NDVI agrees to within these bounds (measured on the 4 tiny tiles x 23 dates: 94 % of values
# within 1e-4, the rest where the masks differ; mean |difference| 0.0015, 99th percentile 0.042).
NDVI_MEAN_TOLERANCE = 0.005
NDVI_P99_TOLERANCE = 0.1
NDVI_AGREEING_SHARE = 0.9  # of values within 1e-4 (float rounding of the same observations)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="issue 20's recalibrated synthetic area (more snow and frost in winter) makes the L2A path's SCL masks and "
    "the L1C path's s2cloudless masks disagree more: mean NDVI |L2A - L1C| 0.0099 against 0.005, while 88.7 % of the "
    "values agree within 1e-4 (the same pixels read); the same on the synth branch alone (0.0100). Strict: when the "
    "masks agree again this fails and becomes an ordinary test",
)
def test_the_stac_source_runs_the_whole_workflow_and_agrees_with_the_l1c_path(area, completed_run, tmp_path):
    config = tiny_config()
    aoi, reference = write_aoi_and_reference(tmp_path / "inputs", config)
    with stac_standin(tmp_path / "catalogue") as server:
        server.items = write_catalogue(tmp_path / "catalogue", server.url, area, list(range(70)))
        config["area"].update(source="stac", aoi=str(aoi))
        config["stac"] = {"url": server.url, "collection": COLLECTION, "time_range": YEAR}
        config["reference"]["path"] = str(reference)
        write_config(tmp_path / "run", config)
        snakemake(tmp_path / "run")
    results = tmp_path / "run" / "results"
    assert (results / "landcover.tif").exists() and (results / "report" / "metrics.json").exists()
    log = (tmp_path / "run" / "logs" / "ingest_stac" / f"{TINY_TILES[0]}.log").read_text()
    assert "cloud masks from the Scene Classification Layer" in log
    differences = []
    for tile in TINY_TILES:
        with (
            stack.open(results / "features" / f"{tile}.nc") as l2a,
            stack.open(completed_run / "results" / "features" / f"{tile}.nc") as l1c,
        ):
            # on the tile: the margins reach beyond the catalogue's area, where the L2A source has no data
            ndvi = [crop_to_tile(ds)["features"].sel(feature="NDVI").values for ds in (l2a, l1c)]
        both = np.isfinite(ndvi[0]) & np.isfinite(ndvi[1])
        assert both.mean() > 0.9
        differences.append(np.abs(ndvi[0] - ndvi[1])[both])
    differences = np.concatenate(differences)
    mean, p99, agreeing = differences.mean(), np.quantile(differences, 0.99), (differences <= 1e-4).mean()
    print(f"NDVI |L2A - L1C|: mean {mean:.4f}, 99th percentile {p99:.4f}, within 1e-4 {agreeing:.1%}")
    assert mean <= NDVI_MEAN_TOLERANCE and p99 <= NDVI_P99_TOLERANCE and agreeing >= NDVI_AGREEING_SHARE
