"""The configuration is checked before any job runs, with messages that name the setting; a config names
only what differs from the schema's defaults, and a new area's config inherits nothing from the demo."""

import copy
import json
from pathlib import Path

import pytest
import yaml
from conftest import default_config, snakemake
from snakemake.utils import validate

from landcover.config import ConfigError, check, config_readme, undescribed_keys

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


@pytest.fixture
def config():
    return default_config()


def test_default_config_is_valid(config):
    validate(copy.deepcopy(config), SCHEMA)
    check(config)


def test_a_config_naming_only_its_source_gets_every_other_setting_from_the_schema():
    config = {"area": {"source": "synthetic"}}
    validate(config, SCHEMA)
    check(config)
    assert config["split"]["test_tiles"] == [] and config["report"]["plot_tiles"] == []
    assert config["clouds"] == {"resolution_m": 80, "threshold": 0.4, "average_over": 2, "dilation_size": 1}
    assert [c["id"] for c in config["classes"]] == list(range(1, 11))


def test_the_demo_config_holds_only_what_differs_from_the_defaults():
    demo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    defaults = {"area": {"source": demo["area"]["source"]}}
    validate(defaults, SCHEMA)
    same = [
        f"{section}.{key}"
        for section, values in demo.items()
        if isinstance(values, dict) and section != "synthetic"
        for key, value in values.items()
        if key != "source" and defaults[section].get(key) == value
    ]
    assert not same, f"config/config.yaml repeats schema defaults: {same}"


def test_every_schema_key_is_described_and_listed_in_config_readme():
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    assert undescribed_keys(schema) == []
    assert (REPO / "config" / "README.md").read_text() == config_readme(SCHEMA), (
        "config/README.md is stale: run `make docs`"
    )


def test_relative_input_paths_that_do_not_exist_are_named_with_the_working_directory(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config["area"].update(source="sentinelhub", aoi="my-area.geojson")
    config["reference"]["path"] = "ref.gpkg"
    with pytest.raises(ConfigError, match=f"area.aoi: my-area.geojson does not exist .*{tmp_path}"):
        check(config)


FIVE_LINES = """\
area: {source: synthetic, tile_size_m: 1000}
synthetic: {origin: [503000, 5201000], tiles_x: 2, tiles_y: 2, acquisitions: 40}
reference: {erosion_radius: 1}
sampling: {max_samples: 2000}
model: {params: {num_iterations: 30}}
"""


@pytest.mark.slow
def test_a_five_line_config_for_a_new_area_runs_from_another_directory(tmp_path):
    """Run where the demo config sits in the working directory (its test tiles lie outside this grid):
    a --configfile must not inherit them, and needs nothing from the checkout's working directory."""
    workdir = tmp_path / "run"
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "config.yaml").write_text((REPO / "config" / "config.yaml").read_text())
    area = tmp_path / "elsewhere" / "area.yaml"
    area.parent.mkdir()
    area.write_text(FIVE_LINES)
    assert len(FIVE_LINES.splitlines()) == 5
    snakemake(workdir, "--configfile", str(area))
    metrics = json.loads((workdir / "results" / "report" / "metrics.json").read_text())
    assert metrics["overall_accuracy"] > 0.5
    assert (workdir / "results" / "landcover.tif").stat().st_size > 0
    assert not (workdir / "results" / "plots").exists()  # the demo's plot_tiles did not leak


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
        (lambda c: c["predict"].update(compile="yes"), "yes"),
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


def test_the_area_grid_is_derived_without_writing_into_the_config(config, tmp_path):
    """The demo's 3 x 3 synthetic tiles of 2.5 km from its origin, in EPSG:32633 while area.crs stays null; an AOI
    in lon/lat gets the UTM zone of its centroid (33N at 14.5 E); EOPatches bring their own grid."""
    import geopandas as gpd
    import shapely

    from landcover.config import area_crs, area_grid

    before = copy.deepcopy(config)
    grid = area_grid(config)
    assert config == before and config["area"]["crs"] is None
    assert area_crs(config, grid) == "EPSG:32633"
    assert list(grid.tile_id) == [f"x{ix:04d}_y{iy:04d}" for ix in (183, 184, 185) for iy in (2039, 2040, 2041)]
    assert grid.total_bounds.tolist() == [457500, 5097500, 465000, 5105000]

    aoi = tmp_path / "aoi.geojson"
    gpd.GeoDataFrame(geometry=[shapely.box(14.45, 46.0, 14.55, 46.05)], crs="EPSG:4326").to_file(aoi)
    real = {"area": {**config["area"], "source": "local_l1c", "aoi": str(aoi), "tile_size_m": 10000}}
    assert area_crs(real, area_grid(real)) == "EPSG:32633" and len(area_grid(real)) >= 1
    real["area"]["crs"] = "EPSG:3794"
    assert area_crs(real, area_grid(real)) == "EPSG:3794"
    with pytest.raises(ConfigError, match="eopatch"):
        area_grid({"area": {**config["area"], "source": "eopatch"}})


def test_landcover_grid_takes_its_defaults_from_the_schema(tmp_path, capsys):
    import geopandas as gpd
    import shapely

    from landcover import cli

    aoi = tmp_path / "aoi.geojson"
    gpd.GeoDataFrame(geometry=[shapely.box(14.45, 46.0, 14.55, 46.05)], crs="EPSG:4326").to_file(aoi)
    assert cli.main(["grid", str(aoi), "-o", str(tmp_path / "grid.gpkg")]) == 0
    defaults = {"area": {"source": "synthetic"}}
    validate(defaults, SCHEMA)
    area = defaults["area"]
    assert f"of {area['tile_size_m']:g} m in EPSG:32633" in capsys.readouterr().out
    grid = gpd.read_file(tmp_path / "grid.gpkg")
    assert (grid.geometry.area == area["tile_size_m"] ** 2).all()
