"""The workflow on the real eo-learn EOPatch (NDVI only), trained and tested on different halves, judged against a
plain LightGBM computed in the same run on the same frames (tools.accuracy, `make accuracy`)."""

import json

import numpy as np
import pytest
import rasterio
from conftest import example_config, snakemake, write_config

from landcover.ingest.eopatch import read_eopatch_reference
from landcover.stack import TileGrid
from tools.accuracy import SPLITS, WORKFLOW, Bench, scores

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


@pytest.fixture(scope="module")
def bench(real_data) -> Bench:
    return Bench(threads=2)


@pytest.mark.parametrize("split", SPLITS, ids=[s[0].replace(", ", "-").replace(" ", "_") for s in SPLITS])
def test_the_workflow_scores_at_least_the_plain_baseline_on_every_labelled_test_pixel(bench, split):
    ours, plain = bench.run(split, WORKFLOW), bench.baseline(split)
    print(
        f"\n{split[0]}: workflow {ours['all']['oa']:.3f}, plain {plain['all']['oa']:.3f} on {ours['all']['pixels']} "
        f"labelled test pixels (interior: {ours['interior']['oa']:.3f} / {plain['interior']['oa']:.3f})"
    )
    assert ours["all"]["pixels"] == plain["all"]["pixels"] > ours["interior"]["pixels"] > 0
    assert ours["all"]["oa"] >= plain["all"]["oa"]
    assert ours["all"]["oa"] > ours["all"]["majority"] + 0.05


def test_the_snakemake_run_makes_the_benchs_map(real_data, bench, tmp_path):
    """The bench's figure is the workflow's: a Snakemake run (train left, test right) maps the test half exactly as
    the bench does, so its all-pixel accuracy is the bench's."""
    test_tile = "TestEOPatch_r0_c1"
    config = example_config("eopatch")
    config["eopatch"]["path"] = str(real_data / "eolearn-testeopatch")
    config["split"]["test_tiles"] = [test_tile]
    config["report"]["plot_tiles"] = [test_tile]
    write_config(tmp_path, config)
    snakemake(tmp_path)

    results = tmp_path / config["results"]
    with rasterio.open(results / "maps" / f"{test_tile}.tif") as src:
        predicted = src.read(1)
        grid_transform, crs = src.transform, src.crs
    grid = TileGrid(test_tile, crs, grid_transform, *predicted.shape)
    reference = read_eopatch_reference(real_data / "eolearn-testeopatch" / "TestEOPatch", grid)
    ours = scores(reference, predicted)
    assert ours["oa"] == pytest.approx(bench.run(SPLITS[0], WORKFLOW)["all"]["oa"], abs=1e-12)
    model = json.loads((results / "model" / "model.json").read_text())
    assert model["training_tiles"] == ["TestEOPatch_r0_c0"] and model["temporal_stats"]
    assert "(a 9 px margin)" in (tmp_path / "logs" / "ingest_eopatch" / f"{test_tile}.log").read_text()
    assert (results / "landcover.tif").exists() and np.isfinite(ours["f1_weighted"])
