"""Only what changed reruns: `snakemake -n` on copies of a completed 2 x 2 run."""

import re
import shutil
from collections import defaultdict

import pytest
from conftest import TINY_TEST_TILE, TINY_TILES, snakemake, tiny_config, write_config

pytestmark = pytest.mark.slow

# a tile's own chain, with the default methods (spatial context on): each job reads its own tile's files only
TILE_CHAIN = {"cloud_mask", "features", "reference", "sample", "predict", "true_colour"}
# what the merged map feeds: the whole-area outputs that follow any tile's map (the reference check reads every map)
MERGE_AND_AFTER = {"merge", "score_truth", "reference_check", "report", "viewer"}
TRAINING_TILE = TINY_TILES[0]


def jobs_and_inputs(workdir, *args) -> list[tuple[str, str, list[str]]]:
    """(rule, tile or "", input paths) of each job of a dry run."""
    run = snakemake(workdir, "-n", *args)
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", run.stdout):
        match = re.match(r"(?:local)?rule (\w+):", block)
        if match:
            tile = re.search(r"wildcards: tile=(\S+)", block)
            inputs = re.search(r"^\s+input: (.+)$", block, re.MULTILINE)
            jobs.append((match.group(1), tile.group(1) if tile else "", inputs.group(1).split(", ") if inputs else []))
    return jobs


def planned(workdir, *args) -> dict[str, set[str]]:
    """Rule -> tiles (or {""} for whole-area rules) that a dry run would execute."""
    jobs = defaultdict(set)
    for rule, tile, _ in jobs_and_inputs(workdir, *args):
        jobs[rule].add(tile)
    jobs.pop("all", None)
    return dict(jobs)


def replace_stack(workdir, tile):
    """A new download of one tile: same name, new file."""
    path = workdir / "results" / "stacks" / f"{tile}.nc"
    shutil.copyfile(path, path.with_suffix(".new"))
    path.with_suffix(".new").replace(path)


def test_no_per_tile_job_reads_another_tiles_files(run_copy):
    """Every job of the whole DAG (--forceall) that works on one tile reads files of that tile only, besides the
    model that every map is predicted with: a damaged tile cannot hold back another's chain."""
    jobs = jobs_and_inputs(run_copy, "--forceall")
    per_tile = [(rule, tile, inputs) for rule, tile, inputs in jobs if tile]
    assert {rule for rule, _, _ in per_tile} >= TILE_CHAIN | {"synthesize_tile"}
    assert {tile for _, tile, _ in per_tile} == set(TINY_TILES)
    shared = {"results/model/model.txt", "results/model/model.json"}
    for rule, tile, inputs in per_tile:
        for path in inputs:
            named = {other for other in TINY_TILES if other in path}
            assert named == {tile} or path in shared, f"rule {rule} of tile {tile} reads {path}"
    # the check sees inputs: the whole-area jobs read every tile's files
    merge = next(inputs for rule, _, inputs in jobs if rule == "merge")
    assert {tile for tile in TINY_TILES if any(tile in path for path in merge)} == set(TINY_TILES)


def test_a_complete_run_plans_nothing(run_copy):
    assert planned(run_copy) == {}


def test_replaced_test_tile_reruns_only_its_chain_and_the_merge(run_copy):
    replace_stack(run_copy, TINY_TEST_TILE)
    assert planned(run_copy) == {rule: {TINY_TEST_TILE} for rule in TILE_CHAIN} | {r: {""} for r in MERGE_AND_AFTER}


def test_replaced_training_tile_retrains_and_repredicts(run_copy):
    replace_stack(run_copy, TRAINING_TILE)
    jobs = planned(run_copy)
    own = TILE_CHAIN - {"predict"} | {"tile_figures", "plot_tile"}  # the report pictures this tile
    assert jobs == (
        {rule: {TRAINING_TILE} for rule in own}
        | {"predict": set(TINY_TILES)}  # a new model predicts every tile again
        | {rule: {""} for rule in MERGE_AND_AFTER | {"train", "class_evolution"}}
    )


def test_added_test_tiles_run_their_chain_and_the_merge_only(run_copy):
    added = ["x0459_y5097", "x0459_y5098"]
    config = tiny_config(synthetic={"tiles_x": 3}, split={"test_tiles": [TINY_TEST_TILE, *added]})
    write_config(run_copy, config)
    jobs = planned(run_copy)
    # the tiles beside them keep their files: their margins were read from the source, not from a neighbour
    new = TILE_CHAIN | {"synthesize_tile", "synthesize_reference"}
    assert jobs == {rule: set(added) for rule in new} | {rule: {""} for rule in MERGE_AND_AFTER | {"grid"}}


def test_figure_resolution_reruns_the_figures_and_the_viewer_only(run_copy):
    write_config(run_copy, tiny_config(report={"dpi": 60}))
    jobs = planned(run_copy)
    # the figures drawn at that dpi, and the viewer that shows them
    assert set(jobs) == {"report", "plot_tile", "class_evolution", "tile_figures", "viewer"}


def test_date_grid_change_reruns_features_to_maps(run_copy):
    write_config(run_copy, tiny_config(dates={"step_days": 20}))
    jobs = planned(run_copy)
    for rule in ("features", "sample", "predict"):
        assert jobs[rule] == set(TINY_TILES), rule
    assert {"train", "report", "merge"} <= set(jobs)
    assert "cloud_mask" not in jobs and "synthesize_tile" not in jobs
