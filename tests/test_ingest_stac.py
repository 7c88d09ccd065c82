"""The STAC source against a stand-in STAC API on 127.0.0.1 serving L2A COGs made from the synthetic area.

Checked against the synthetic truth the COGs encode: bands exactly (every processing baseline's radiometry),
SCL and probability cloud masks, HTTP range reads only, errors that name the asset; and the whole workflow,
whose features agree with the L1C path's (synthetic source, s2cloudless masks) on the same truth."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import TINY_TILES, snakemake, tiny_config, write_config
from stac_standin import COLLECTION, scene_classification, stac_standin, write_catalogue
from synthetic_products import synthesize_area, tiny_grids, write_aoi_and_reference

from landcover import stack
from landcover.grid import crop_to_tile
from landcover.ingest import IngestError
from landcover.ingest import stac as stac_source
from landcover.ingest.stac import SCL_INVALID, read_stac_tile, search_items

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
