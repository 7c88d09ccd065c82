"""`snakemake -n` on the country configuration plans the whole Slovenia grid, quickly."""

import re
import time

import pytest
import yaml
from conftest import REPO, snakemake, write_config

pytestmark = pytest.mark.realdata


def test_slovenia_plans_every_tile(shared_data, tmp_path):
    config = yaml.safe_load((REPO / "config" / "slovenia.yaml").read_text())
    config["area"]["aoi"] = str(shared_data / "slovenia" / "svn_border.geojson")
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
    assert counts["train"] == counts["merge"] == counts["report"] == 1
