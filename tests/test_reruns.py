"""Only what changed reruns: `snakemake -n` on copies of a completed 2 x 2 run."""

import re
import shutil
from collections import defaultdict

import pytest
from conftest import TINY_TEST_TILE, TINY_TILES, snakemake, tiny_config, write_config

pytestmark = pytest.mark.slow

TILE_CHAIN = {"cloud_mask", "features", "reference", "sample", "predict"}
# a tile's own inputs; its spatial context (on by default) also reads its neighbours' features (its halo)
OWN_CHAIN = {"cloud_mask", "features", "reference"}
TRAINING_TILE = TINY_TILES[0]


def planned(workdir, *args) -> dict[str, set[str]]:
    """Rule -> tiles (or {""} for whole-area rules) that a dry run would execute."""
    run = snakemake(workdir, "-n", *args)
    jobs = defaultdict(set)
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", run.stdout):
        match = re.match(r"(?:local)?rule (\w+):", block)
        if match:
            tile = re.search(r"wildcards: tile=(\S+)", block)
            jobs[match.group(1)].add(tile.group(1) if tile else "")
    jobs.pop("all", None)
    return dict(jobs)


def replace_stack(workdir, tile):
    """A new download of one tile: same name, new file."""
    path = workdir / "results" / "stacks" / f"{tile}.nc"
    shutil.copyfile(path, path.with_suffix(".new"))
    path.with_suffix(".new").replace(path)


def test_a_complete_run_plans_nothing(run_copy):
    assert planned(run_copy) == {}


def test_replaced_test_tile_reruns_its_chain_and_its_neighbours_context(run_copy):
    replace_stack(run_copy, TINY_TEST_TILE)
    jobs = planned(run_copy)
    for rule in OWN_CHAIN:
        assert jobs[rule] == {TINY_TEST_TILE}, rule
    # every tile of the 2 x 2 grid touches it: their halos changed, so their samples, the model and the maps too
    for rule in ("context", "sample", "predict"):
        assert jobs[rule] == set(TINY_TILES), rule
    assert "synthesize_tile" not in jobs
    assert {"train", "merge", "report", "score_truth"} <= set(jobs)


def test_replaced_training_tile_retrains_and_repredicts(run_copy):
    replace_stack(run_copy, TRAINING_TILE)
    jobs = planned(run_copy)
    for rule in OWN_CHAIN:
        assert jobs[rule] == {TRAINING_TILE}, rule
    assert jobs["train"] == {""}
    assert jobs["predict"] == set(TINY_TILES)  # a new model predicts every tile again


def test_added_tiles_run_their_chain_and_their_neighbours_context(run_copy):
    added = ["x0459_y5097", "x0459_y5098"]
    config = tiny_config(synthetic={"tiles_x": 3}, split={"test_tiles": [TINY_TEST_TILE, *added]})
    write_config(run_copy, config)
    jobs = planned(run_copy)
    for rule in OWN_CHAIN | {"synthesize_tile"}:
        assert jobs[rule] == set(added), rule
    # the column beside them gets a halo where the area's edge was; untouched tiles keep theirs
    assert jobs["context"] == {*added, "x0458_y5097", "x0458_y5098"}
    assert "x0457_y5097" not in jobs["sample"] and "x0457_y5098" not in jobs["sample"]
    assert {"train", "merge", "grid", "report"} <= set(jobs)  # x0458_y5097 trains: its halo changed


def test_report_setting_reruns_the_report_only(run_copy):
    write_config(run_copy, tiny_config(report={"dpi": 60}))
    jobs = planned(run_copy)
    # the figures drawn at that dpi, and the viewer that shows them
    assert set(jobs) == {"report", "plot_tile", "class_evolution", "tile_figures", "viewer"}


def test_date_grid_change_reruns_features_to_maps(run_copy):
    write_config(run_copy, tiny_config(dates={"step_days": 20}))
    jobs = planned(run_copy)
    for rule in ("features", "context", "sample", "predict"):
        assert jobs[rule] == set(TINY_TILES), rule
    assert {"train", "report", "merge"} <= set(jobs)
    assert "cloud_mask" not in jobs and "synthesize_tile" not in jobs
