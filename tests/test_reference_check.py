"""Reference QA (landcover.report.reference_check): per polygon, the share of its mapped pixels the map gives another
class with high confidence, checked pixel by pixel against masks of each polygon drawn on its own; precision and
recall of the flagged polygons against the synthetic register's known errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import geopandas as gpd
import numpy as np
import pytest
import rasterio.features
from affine import Affine
from rasterio.crs import CRS
from scipy.stats import binomtest
from shapely.geometry import box

from landcover.classes import EOLEARN_CLASSES
from landcover.maps import write_class_geotiff, write_confidence_geotiff
from landcover.report.reference_check import LAYER, check_tiles, detection, measured, summary, write
from landcover.stack import TileGrid

GRID = TileGrid("x0001_y0000", CRS.from_epsg(32633), Affine(10, 0, 1000, 0, -10, 400), 40, 60)
SETTINGS = {"high_confidence": 80, "flag_share": 0.5, "min_pixels": 10}


def polygons() -> gpd.GeoDataFrame:
    """Six boxes across the tile; the register misfiled the second and the fifth."""
    shapes = [box(1000 + 100 * i, 0, 1100 + 100 * i, 400) for i in range(6)]
    return gpd.GeoDataFrame(
        {
            "lulc_id": [1, 2, 3, 2, 1, 5],
            "misfiled": [False, True, False, False, True, False],
            "true_id": [1, 3, 3, 2, 2, 5],
        },
        geometry=shapes,
        crs="EPSG:32633",
    )


def write_inputs(tmp_path, seed=0):
    """A map that follows the truth with a confidence that is high where it is right, random elsewhere."""
    rng = np.random.default_rng(seed)
    frame = polygons()
    truth = rasterio.features.rasterize(
        zip(frame.geometry, frame["true_id"]), out_shape=(GRID.height, GRID.width), transform=GRID.transform
    ).astype(np.uint8)
    labels = np.where(rng.random(truth.shape) < 0.85, truth, rng.choice([1, 2, 3], size=truth.shape)).astype(np.uint8)
    labels[:3] = 0  # no data
    confidence = np.where(labels == truth, rng.integers(70, 101, truth.shape), rng.integers(30, 90, truth.shape))
    confidence = np.where(labels > 0, confidence, 0).astype(np.uint8)
    paths = {"map": tmp_path / "map.tif", "confidence": tmp_path / "confidence.tif", "polygons": tmp_path / "ref.gpkg"}
    write_class_geotiff(paths["map"], labels, GRID, EOLEARN_CLASSES)
    write_confidence_geotiff(paths["confidence"], confidence, GRID)
    frame.to_file(paths["polygons"], driver="GPKG")
    return paths, frame, labels, confidence


def test_each_polygons_scores_equal_a_count_over_its_own_mask(tmp_path):
    paths, frame, labels, confidence = write_inputs(tmp_path)
    table = check_tiles([{"tile": GRID.tile_id, **paths}], EOLEARN_CLASSES, "lulc_id", **SETTINGS)

    assert table["rank"].tolist() == list(range(1, 7))
    assert table["score"].is_monotonic_decreasing
    for _, row in table.iterrows():
        inside = rasterio.features.geometry_mask(
            [frame.geometry[row["source_fid"] - 1]], (GRID.height, GRID.width), GRID.transform, invert=True
        )  # GeoPackage fids count from 1
        mapped = inside & (labels > 0)
        other = mapped & (labels != row["class_id"]) & (confidence >= 80)
        values, counts = np.unique(labels[mapped], return_counts=True)
        preferred = values[counts.argmax()]
        assert row["pixels"] == mapped.sum()
        assert row["other_share"] == pytest.approx(other.sum() / mapped.sum())
        assert row["map_class"] == preferred
        assert row["map_confidence"] == pytest.approx(confidence[mapped & (labels == preferred)].mean())
        assert row["flagged"] == (other.sum() / mapped.sum() >= 0.5)
        interval = binomtest(int(other.sum()), int(mapped.sum())).proportion_ci(method="wilson")
        assert row["score"] == pytest.approx(interval.low)
    assert set(table.loc[table["flagged"], "source_fid"]) == {2, 5}  # the two misfiled boxes

    found = detection(table)
    assert found == {
        "polygons": 6,
        "misfiled": 2,
        "flagged": 2,
        "flagged_and_misfiled": 2,
        "precision": 1.0,
        "recall": 1.0,
        "top": 2,
        "precision_top": 1.0,
    }


def test_written_ranked_with_a_qgis_style_and_summarised_for_the_report(tmp_path):
    paths, *_ = write_inputs(tmp_path)
    table = check_tiles([{"tile": GRID.tile_id, **paths}], EOLEARN_CLASSES, "lulc_id", **SETTINGS)
    write(table, tmp_path / "reference_check.gpkg", EOLEARN_CLASSES)
    read = gpd.read_file(tmp_path / "reference_check.gpkg", layer=LAYER)
    assert read["rank"].tolist() == table["rank"].tolist() and read.crs == table.crs
    style = ET.parse(tmp_path / "reference_check.qml").getroot()
    rules = style.findall("renderer-v2/rules/rule")
    assert style.find("renderer-v2").get("type") == "RuleRenderer" and len(rules) == 2 * 10  # 10 classes
    assert rules[0].get("filter") == '"map_class" = 1 AND "flagged" = 1'
    found = summary(read, SETTINGS)
    assert found["flagged"] == 2 and found["worst"][0]["rank"] == 1 and "airport" in found["note"]
    json.dumps(found, allow_nan=False)


def test_a_raster_reference_is_checked_by_its_runs_of_one_class(tmp_path):
    paths, frame, labels, _ = write_inputs(tmp_path)
    reference = rasterio.features.rasterize(
        zip(frame.geometry, frame["lulc_id"]), out_shape=(GRID.height, GRID.width), transform=GRID.transform
    ).astype(np.uint8)
    write_class_geotiff(tmp_path / "reference.tif", reference, GRID, EOLEARN_CLASSES)
    tile = {"tile": GRID.tile_id, "map": paths["map"], "confidence": paths["confidence"]}
    table = check_tiles([tile | {"reference": tmp_path / "reference.tif"}], EOLEARN_CLASSES, "lulc_id", **SETTINGS)
    assert len(table) == 6 and table["pixels"].sum() == (labels > 0).sum()  # six runs: neighbours differ in class
    with pytest.raises(ValueError, match="no `misfiled` column"):
        detection(table)


TOP = 10  # issue 20's goal: precision >= 0.8 among the top-ranked flagged polygons


@pytest.mark.slow
def test_a_tiny_run_measures_its_flagged_polygons_against_the_registers_errors(completed_run):
    """The synthetic register records which polygons it misfiled; the report measures the check against it."""
    report = completed_run / "results" / "report"
    found = measured(report / "reference_check.gpkg", top=TOP)
    assert found["top"] == TOP and 0 <= found["precision_top"] <= 1, found
    assert 0 < found["recall"] <= 1 and found["flagged_and_misfiled"] <= found["flagged"], found
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["reference_check"]["detection"] == measured(report / "reference_check.gpkg")


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="issue 20's goal is not met: among the top 10 flagged polygons of the tiny run, fewer than 8 are misfiled "
    "(0.4 here with the earlier defaults; make accuracy's run of this area with the default methods, which leave "
    "spatial context off where this run turns it on: 0.6 on seed 2017, 0.5 on 2018). The map, "
    "not the ranking: the test tile's first kept acquisition (22 January) is snowy and held flat back to 1 January, "
    "which the model reads as water (its truth OA 0.72; 0.49 with the earlier defaults), and the training tiles' map "
    "learned their misfiled labels. `python -m tools.accuracy --only reference-qa` measures both seeds",
)
def test_the_top_ranked_flagged_polygons_of_a_tiny_run_are_the_registers_errors(completed_run):
    """The map's test tile finds the misfiled polygons (the training tiles' map has learned part of them, which lowers
    the recall: the check is sharpest where the model did not train)."""
    found = measured(completed_run / "results" / "report" / "reference_check.gpkg", top=TOP)
    assert found["precision_top"] >= 0.8, found


def test_the_accuracy_reference_qa_rows_are_measured_and_picture_the_top_flagged(tmp_path):
    """`python -m tools.accuracy --only reference-qa`'s rows on a small area: the synthetic row is `measured()` of the
    run's check, the real rows count the flagged polygons and picture the top ones."""
    from tools.accuracy import QA_TEST_TILE, QA_TOP, real_rows, synthetic_rows

    paths, _, labels, _ = write_inputs(tmp_path)
    table = check_tiles([{"tile": GRID.tile_id, **paths}], EOLEARN_CLASSES, "lulc_id", **SETTINGS)
    report = tmp_path / "results" / "report"
    report.mkdir(parents=True)
    write(table, report / "reference_check.gpkg", EOLEARN_CLASSES)
    (report / "truth_scores.json").write_text(json.dumps({"tiles": {QA_TEST_TILE: {"overall_accuracy": 0.9}}}))
    found = measured(report / "reference_check.gpkg", top=QA_TOP)
    row = synthetic_rows({7: tmp_path / "results"})[-1]
    assert row == (
        f"| 7 | {found['polygons']} | {found['misfiled']} | {found['flagged']} | {found['flagged_and_misfiled']} | "
        f"{found['precision']:.2f} | {found['recall']:.2f} | **{found['precision_top']:.2f}** ({found['top']} flagged) "
        "| 0.900 |"
    )

    ndvi = np.linspace(0, 1, labels.size).reshape(labels.shape)
    lines = real_rows(table, ndvi, labels, GRID.transform, tmp_path / "pictures")
    assert lines[0].startswith(f"Real patch: **{int(table['flagged'].sum())} of {len(table)}**")
    pictured = sorted(p.name for p in (tmp_path / "pictures").glob("*.png"))
    assert pictured == sorted(f"rank{r}.png" for r in table.loc[table["flagged"], "rank"].head(5))
    assert all(f"(pictures/{name})" in "\n".join(lines) for name in pictured)
