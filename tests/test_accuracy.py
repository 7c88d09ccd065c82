"""The default synthetic area, end to end: the map is scored against the generator's true land cover."""

import json
from contextlib import ExitStack

import pytest
from conftest import default_config, snakemake, write_config

from landcover import stack
from landcover.model import load_samples
from tools.calibration import COMMAND, plain, single_date_accuracies

pytestmark = pytest.mark.slow


def _run(tmp_path_factory, name, config):
    workdir = tmp_path_factory.mktemp(name)
    write_config(workdir, {**config, "keep_intermediates": True})  # the tests read the features back
    snakemake(workdir, timeout=2400)
    return workdir, config


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory):
    return _run(tmp_path_factory, "plain-run", plain(default_config()))


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    return _run(tmp_path_factory, "default-run", default_config())


def _truth_scores(workdir) -> dict:
    return json.loads((workdir / "results" / "report" / "truth_scores.json").read_text())


# The default area's calibration (issue 20, section 3), as `python -m tools.calibration` prints it: that command draws
# the area and runs the same plain chain in one process. The area is deterministic, so each value is asserted with
# 0.005 of slack, beside the band it must lie in.
PLAIN_TRUTH_OA = 0.9120  # band 0.85-0.92: the plain method on every pixel of the test tiles
PLAIN_INTERIOR_GAP = 0.0567  # band 0.03-0.08: interior (the truth eroded) minus all pixels
LARGEST_CLASS_SHARE = 0.5386  # at most 0.60
BEST_SINGLE_DATE_OA = 0.8160  # the series must beat the best single date by 0.04
SLACK = 0.005


def test_the_plain_method_is_judged_fairly(plain_run):
    workdir, _ = plain_run
    oa = _truth_scores(workdir)["overall_accuracy"]
    print(f"\nplain method, test tiles vs truth: overall accuracy {oa:.4f} ({COMMAND}: {PLAIN_TRUTH_OA})")
    assert 0.85 <= oa <= 0.92
    assert oa == pytest.approx(PLAIN_TRUTH_OA, abs=SLACK)


@pytest.mark.timeout(5400)  # its setup runs two workflows, each allowed 2400 s on a busy machine
@pytest.mark.xfail(
    strict=True,
    reason="the defaults chosen on synthetic seeds 101-103 (docs/selection.md: the plain chain with 60 rounds) score "
    "0.9073 against plain's 100 rounds 0.9120 on this seed, which the selection never read; the goal stands",
)
def test_the_workflow_beats_the_plain_method_on_the_truth(plain_run, default_run):
    """The workflow's defaults above the plain method (LightGBM's 100 rounds) on every pixel of the test tiles.
    Only above: issue 11 asked for 3 points, which no selected default has reached here."""
    ours, baseline = (_truth_scores(run[0])["overall_accuracy"] for run in (default_run, plain_run))
    print(f"\nworkflow {ours:.4f} vs plain {baseline:.4f} against the truth")
    assert ours > baseline


def test_boundaries_cost_the_map_three_to_eight_points(plain_run):
    workdir, _ = plain_run
    scores = _truth_scores(workdir)
    interior = scores["interior"]
    print(
        f"\ninterior accuracy {interior['overall_accuracy']:.4f} on {100 * interior['share_of_scored']:.1f}% of the "
        f"pixels, all pixels {scores['overall_accuracy']:.4f}: gap {scores['interior_gap']:.4f}"
    )
    assert 0.03 <= scores["interior_gap"] <= 0.08
    assert scores["interior_gap"] == pytest.approx(PLAIN_INTERIOR_GAP, abs=SLACK)
    assert 0.78 < interior["share_of_scored"] < 0.88


def test_no_class_carries_the_score(plain_run):
    workdir, _ = plain_run
    shares = _truth_scores(workdir)["true_class_shares"]
    print(f"\ntrue class shares of the test pixels: {shares}")
    assert max(shares.values()) <= 0.6
    assert max(shares.values()) == pytest.approx(LARGEST_CLASS_SHARE, abs=SLACK)
    assert sum(share > 0.01 for share in shares.values()) >= 6


def test_the_time_series_beats_the_best_single_date(plain_run):
    """The plain method on the whole series against the same method on each date alone, every pixel of the test
    tiles against the truth: no single date may carry the map (issue 20)."""
    workdir, config = plain_run
    meta = json.loads((workdir / "results" / "model" / "model.json").read_text())
    train = load_samples([workdir / "results" / "samples" / f"{t}.parquet" for t in meta["training_tiles"]])
    test_tiles = config["split"]["test_tiles"]
    truths, features = {}, {}
    with ExitStack() as opened:
        for tile in test_tiles:
            with stack.open(workdir / "results" / "truth" / f"{tile}.nc", ("land_cover",)) as truth:
                truths[tile] = truth["land_cover"].values
            features[tile] = opened.enter_context(
                stack.open(workdir / "results" / "features" / f"{tile}.nc", ("features", "valid_count"))
            )
        singles = single_date_accuracies(train, features, truths, config, threads=2)
    best = max(singles, key=singles.get)
    series = _truth_scores(workdir)["overall_accuracy"]
    print(f"\ntime series {series:.4f} vs best single date {best} {singles[best]:.4f} (against the truth)")
    assert series >= singles[best] + 0.04
    assert singles[best] == pytest.approx(BEST_SINGLE_DATE_OA, abs=SLACK)
