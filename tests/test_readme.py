"""The README's figures are written by commands: each generated block is present, and the ones that need no
run are current."""

import re

from conftest import REPO

from tools.readme import plan_block, replace_block

README = (REPO / "README.md").read_text()


def block(name: str) -> str:
    found = re.search(rf"<!-- {name}:start -->\n(.*?)<!-- {name}:end -->", README, re.DOTALL)
    assert found, f"README.md has no {name} block"
    return found.group(1)


def test_sentinelhub_plan_block_is_what_landcover_plan_prints_now():
    assert block("plan") == plan_block(), "README.md's plan block is stale: run `make docs`"
    assert re.search(r"Sentinel Hub plan: 2\d\d tiles, .* [\d,]+ PU", block("plan"))


def test_blocks_written_by_the_benchmark_and_the_accuracy_bench_hold_their_figures():
    assert re.search(r"workflow \(\d+ jobs\) and its report took [\d.]+ min", block("demo"))
    assert "Slovenia 2017 as `config/slovenia.yaml` runs it" in block("bench")
    assert re.search(r"\| \*\*mean\*\* \| \| \*\*0\.\d+\*\*", block("accuracy"))
    assert re.search(r"seed 2017: precision [\d.]+, recall [\d.]+, top 10 [\d.]+", block("reference-qa"))
    assert re.search(r"Real patch: \d+ of \d+ runs .* airport", block("reference-qa"))


def test_replace_block_names_a_missing_block():
    assert replace_block("a\n<!-- x:start -->\nold\n<!-- x:end -->\n", "x", "new\n").count("new") == 1
    try:
        replace_block("no block", "y", "new\n", "README.md")
    except ValueError as err:
        assert "README.md: no <!-- y:start -->" in str(err)
    else:
        raise AssertionError("a missing block was not reported")
