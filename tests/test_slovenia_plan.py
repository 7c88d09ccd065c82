"""`snakemake -n` on the country configuration plans the whole Slovenia grid, quickly."""

import re
import time

import pytest
import yaml
from conftest import REPO, example_config, snakemake, write_config

from landcover import resources

pytestmark = pytest.mark.realdata


def test_slovenia_plans_every_tile(real_data, tmp_path):
    config = example_config("slovenia")
    config["area"]["aoi"] = str(real_data / "slovenia" / "svn_border.geojson")
    reference = tmp_path / "reference.gpkg"
    reference.touch()  # the user's land-use register; a dry run only needs it to exist
    config["reference"]["path"] = str(reference)
    write_config(tmp_path, config)
    started = time.monotonic()
    run = snakemake(tmp_path, "-n", "--quiet", "rules")
    assert time.monotonic() - started < 60
    counts = {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", run.stdout, re.MULTILINE)}
    assert 250 <= counts["download_sentinelhub"] <= 275
    for rule in ("cloud_mask", "features", "reference", "sample", "predict"):
        assert counts[rule] == counts["download_sentinelhub"], rule
    assert counts["train"] == counts["compile_model"] == counts["merge"] == counts["report"] == 1  # one compile, shared


PER_TILE = ("cloud_mask", "features", "predict", "sample", "train")


def asked_memory(dry_run: str) -> dict[str, int]:
    jobs = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: .*?mem_mb=(\d+)", dry_run, re.MULTILINE)
    return {rule: int(mem_mb) for rule, mem_mb in jobs if rule in PER_TILE}


def test_jobs_ask_for_the_memory_measured_for_their_tile_size_and_samples(real_data, tmp_path):
    """10 km tiles: the peaks `make bench` measured (workflow/resources.yaml) through landcover.resources, before
    the stacks exist (the measured frame count); the default 2.5 km tiles: the same formula, mostly the floors."""
    config = example_config("slovenia")
    config["area"]["aoi"] = str(real_data / "slovenia" / "svn_border.geojson")
    reference = tmp_path / "country" / "reference.gpkg"
    reference.parent.mkdir()
    reference.touch()
    config["reference"]["path"] = str(reference)
    write_config(tmp_path / "country", config)
    dry_run = snakemake(tmp_path / "country", "-n")
    country = asked_memory(dry_run.stdout)
    # the Sentinel Hub cost, before any request
    assert re.search(r"Sentinel Hub plan: 2\d\d tiles, .* requests, [\d,]+ PU", dry_run.stdout + dry_run.stderr)
    table = resources.load_table(REPO / "workflow" / "resources.yaml")
    # 10 km tiles without a margin: the default methods have no spatial context (docs/selection.md)
    assert config["features"]["context_sigmas"] == []
    expected = {
        job: resources.memory_request(resources.tile_peak_mb(table["tile_jobs"][job], 1000**2, columns=23 * 9), 1000)
        for job in ("cloud_mask", "features", "predict", "sample")
    }
    assert {job: country[job] for job in expected} == expected
    # train: about 180 training tiles (70 % of the ~260), each tile's samples lowered to fit the 12 GB budget, of
    # 23 dates x 9 features, then their temporal statistics when they are on
    assert config["sampling"]["train_memory_mb"] == 12000
    columns = 23 * 9 + (9 * (5 + 22) if config["features"]["temporal_stats"] else 0)
    assert resources.train_columns(config) == columns
    assert country["train"] <= 12000
    expected = set()
    for n in range(170, 191):  # the training tiles the split gives the ~262 tiles
        samples = n * resources.samples_per_tile(config, table["train"], n, 1e6)
        expected.add(resources.memory_request(resources.train_peak_mb(table["train"], samples, columns), 2000))
    assert country["train"] in expected
    per_tile = resources.samples_per_tile(config, table["train"], 180, 1e6)
    # the budget or the cap, whichever is lower
    assert 1000 <= per_tile <= config["sampling"]["max_samples"]

    write_config(tmp_path / "default", yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    default = asked_memory(snakemake(tmp_path / "default", "-n").stdout)
    small = {  # 2.5 km tiles: the libraries dominate, so most jobs ask for the floor
        job: resources.memory_request(resources.tile_peak_mb(table["tile_jobs"][job], 250**2, columns=23 * 9), 1000)
        for job in PER_TILE
        if job != "train"
    }
    assert default == {**small, "train": 2000}
    assert min(small.values()) == 1000
