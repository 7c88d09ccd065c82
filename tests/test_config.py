"""The configuration is checked before any job runs, with messages that name the setting."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

from landcover.config import ConfigError, check

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


@pytest.fixture
def config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_default_config_is_valid(config):
    validate(copy.deepcopy(config), SCHEMA)
    check(config)


@pytest.mark.parametrize(
    "edit, named",
    [
        (lambda c: c.update(unknown_key=1), "unknown_key"),
        (lambda c: c["area"].update(tile_size_m="big"), "big"),
        (lambda c: c["area"].update(source="landsat"), "landsat"),
        (lambda c: c["clouds"].update(threshold=1.5), "1.5"),
        (lambda c: c["features"].update(indices=["EVI"]), "EVI"),
        (lambda c: c["classes"][0].update(colour="yellow"), "yellow"),
        (lambda c: c["sampling"].update(fraction=0), "0"),
    ],
)
def test_schema_rejects_bad_values(config, edit, named):
    edit(config)
    with pytest.raises(Exception, match=named):
        validate(config, SCHEMA)


def test_date_grid_ending_before_it_starts(config):
    config["dates"].update(start="2017-12-31", end="2017-01-01")
    with pytest.raises(ConfigError, match="dates.end"):
        check(config)


def test_duplicate_class_ids(config):
    config["classes"].append(dict(config["classes"][0]))
    with pytest.raises(ConfigError, match="duplicate class ids"):
        check(config)


def test_real_source_needs_an_aoi(config):
    config["area"]["source"] = "sentinelhub"
    with pytest.raises(ConfigError, match="area.aoi"):
        check(config)
