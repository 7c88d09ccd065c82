"""Validation metrics (checked against scikit-learn on the same pixels), report figures, scoring against the
synthetic truth."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from affine import Affine
from conftest import REPO, TINY_TEST_TILE, TINY_TILES, snakemake
from rasterio.crs import CRS
from sklearn import metrics as skm

from landcover import stack
from landcover.area import area_estimate, mapped_pixels
from landcover.classes import EOLEARN_CLASSES
from landcover.maps import write_class_geotiff
from landcover.model import predict_proba, train_model
from landcover.raster_io import save_png
from landcover.report.figures import area_figure, report_figures
from landcover.report.metrics import (
    caveats,
    confusion_counts,
    frames_dropped,
    map_reference_counts,
    map_scores,
    sampled_scores,
    score_against_truth,
    scores,
    software,
)
from landcover.report.page import summary_html, write_report
from landcover.sampling import feature_columns
from landcover.stack import TileGrid

MODEL_CLASSES = [1, 2, 3, 4]  # 4 is never a true test label; 9 is a test label the model does not know
TEST_LABELS = [1, 2, 3, 9]


def metadata_for(ids):
    by_id = {c.id: c for c in EOLEARN_CLASSES}
    return {"classes": [{"id": i, "name": by_id[i].name, "colour": by_id[i].colour} for i in ids]}


def random_predictions(n: int, seed: int):
    """Test samples and class probabilities that agree with the labels more often than not, with tied scores."""
    rng = np.random.default_rng(seed)
    y_true = rng.choice(TEST_LABELS, size=n, p=[0.4, 0.3, 0.2, 0.1])
    raw = rng.random((n, len(MODEL_CLASSES)))
    for column, class_id in enumerate(MODEL_CLASSES):
        raw[y_true == class_id, column] += 0.7
    proba = np.round(raw / raw.sum(axis=1, keepdims=True), 2)  # rounding makes ties
    samples = pd.DataFrame({"tile_id": rng.choice(["a", "b"], size=n), "label": y_true.astype(np.uint8)})
    return samples, proba


def test_metrics_equal_scikit_learns_and_no_test_pixel_is_dropped():
    samples, proba = random_predictions(2000, seed=0)
    y_true = samples["label"].to_numpy()
    y_pred = np.array(MODEL_CLASSES)[proba.argmax(axis=1)]
    assert (y_pred == 4).any() and (y_true == 9).any()  # the cases the eo-learn notebook drops
    metrics = sampled_scores(samples, proba, metadata_for(MODEL_CLASSES), EOLEARN_CLASSES)

    labels = [1, 2, 3, 4, 9]
    assert metrics["test_pixels"] == 2000 and sum(metrics["test_tiles"].values()) == 2000
    assert metrics["confusion_matrix"]["labels"] == labels
    assert metrics["overall_accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    assert metrics["f1_weighted"] == pytest.approx(skm.f1_score(y_true, y_pred, average="weighted"), abs=1e-12)
    assert metrics["f1_macro"] == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12
    )
    assert metrics["kappa"] == pytest.approx(skm.cohen_kappa_score(y_true, y_pred), abs=1e-12)
    precision, recall, f1, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    per_class = metrics["classes"]
    np.testing.assert_allclose([c["precision"] for c in per_class], precision, atol=1e-12)
    np.testing.assert_allclose([c["recall"] for c in per_class], recall, atol=1e-12)
    np.testing.assert_allclose([c["f1"] for c in per_class], f1, atol=1e-12)
    assert [c["support"] for c in per_class] == support.tolist()
    assert [c["name"] for c in per_class] == ["cultivated land", "forest", "grassland", "shrubland", "bareland"]
    cm = metrics["confusion_matrix"]
    np.testing.assert_array_equal(cm["counts"], skm.confusion_matrix(y_true, y_pred, labels=labels))
    np.testing.assert_allclose(
        cm["normalised_by_true"], skm.confusion_matrix(y_true, y_pred, labels=labels, normalize="true")
    )
    np.testing.assert_allclose(
        cm["normalised_by_predicted"], skm.confusion_matrix(y_true, y_pred, labels=labels, normalize="pred")
    )
    for column, class_id in enumerate(MODEL_CLASSES[:3]):
        expected = skm.roc_auc_score(y_true == class_id, proba[:, column])
        assert per_class[column]["roc_auc"] == pytest.approx(expected, abs=1e-12)
    assert per_class[3]["roc_auc"] is None and per_class[4]["roc_auc"] is None  # no positives / not a model class
    json.dumps(metrics, allow_nan=False)


def test_an_empty_test_set_is_refused():
    samples = pd.DataFrame({"tile_id": [], "label": np.array([], dtype=np.uint8)})
    with pytest.raises(ValueError, match="no samples"):
        sampled_scores(samples, np.zeros((0, 4)), metadata_for(MODEL_CLASSES), EOLEARN_CLASSES)


def test_report_writes_metrics_and_every_figure(tmp_path):
    rng = np.random.default_rng(2)
    dates = np.array(["2017-01-01", "2017-01-17", "2017-02-02"], dtype="datetime64[D]")
    features = ["B02", "NDVI"]
    labels = rng.choice([1, 2, 5], size=300).astype(np.uint8)
    values = (labels[:, None] * 0.1 + rng.normal(0, 0.1, (300, 6))).astype(np.float32)
    samples = pd.concat(
        [
            pd.DataFrame({"tile_id": "t", "row": np.arange(300), "col": 0, "label": labels}),
            pd.DataFrame(values, columns=feature_columns(dates, features)),
        ],
        axis=1,
    )
    booster, metadata = train_model(samples[:200], EOLEARN_CLASSES, 1, {"num_iterations": 10}, threads=1)
    test = samples[200:].reset_index(drop=True)
    proba = predict_proba(booster, metadata, test)
    predicted = np.array([c["id"] for c in metadata["classes"]])[proba.argmax(axis=1)]
    counts = confusion_counts(test["label"].to_numpy(), predicted)
    metrics = map_scores(counts, {"t": {"pixels": 100, "labelled_without_map_class": 0}}, EOLEARN_CLASSES)
    metrics["sampled_interior"] = sampled_scores(test, proba, metadata, EOLEARN_CLASSES)
    figures = report_figures(booster, metadata, metrics, test, proba, samples["label"][:200], EOLEARN_CLASSES)
    write_report(metrics, figures, tmp_path / "report", dpi=40)

    names = {"confusion_true", "confusion_predicted", "class_frequencies", "roc", "feature_importance"}
    assert set(figures) == names
    for name in names:
        assert (tmp_path / "report" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "report" / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted(
        [f"{n}.png" for n in names] + ["metrics.json", "summary.html"]
    )


def test_score_against_truth_equals_scikit_learn_on_the_mapped_pixels(tmp_path):
    rng = np.random.default_rng(3)
    map_paths, truth_paths, truths, predictions = [], [], [], []
    for index in range(2):
        grid = TileGrid(f"x000{index}_y0000", CRS.from_epsg(32633), Affine(10, 0, 1000 * index, 0, -10, 0), 12, 9)
        truth = rng.choice([1, 2, 3], size=(12, 9)).astype(np.uint8)
        prediction = np.where(rng.random((12, 9)) < 0.7, truth, rng.choice([1, 2, 3, 4], size=(12, 9))).astype(np.uint8)
        prediction[:2] = 0  # no data
        truth_ds = stack.with_grid(xr.Dataset({"land_cover": (("y", "x"), truth)}), grid)
        stack.write(truth_ds, tmp_path / f"{grid.tile_id}.nc")
        write_class_geotiff(tmp_path / f"{grid.tile_id}.tif", prediction, grid, EOLEARN_CLASSES)
        map_paths.append(tmp_path / f"{grid.tile_id}.tif")
        truth_paths.append(tmp_path / f"{grid.tile_id}.nc")
        truths.append(truth.ravel())
        predictions.append(prediction.ravel())
    scores = score_against_truth(map_paths, truth_paths)

    y_true, y_pred = np.concatenate(truths), np.concatenate(predictions)
    mapped = y_pred > 0
    assert scores["overall_accuracy"] == pytest.approx(skm.accuracy_score(y_true[mapped], y_pred[mapped]))
    assert scores["f1_weighted"] == pytest.approx(skm.f1_score(y_true[mapped], y_pred[mapped], average="weighted"))
    assert scores["no_data_share"] == pytest.approx(2 / 12)
    assert scores["scored_pixels"] == mapped.sum()
    assert set(scores["tiles"]) == {"x0000_y0000", "x0001_y0000"}

    with pytest.raises(ValueError, match="x0000_y0000.tif.*differs"):
        score_against_truth(map_paths, truth_paths[::-1])


def write_tile(path, labels: np.ndarray, index: int) -> None:
    grid = TileGrid(f"x000{index}_y0000", CRS.from_epsg(32633), Affine(10, 0, 1000 * index, 0, -10, 0), *labels.shape)
    write_class_geotiff(path, labels.astype(np.uint8), grid, EOLEARN_CLASSES)


def test_area_estimate_from_maps_equals_the_estimator_on_hand_counted_pixels(tmp_path):
    """Map classes counted on the merged map, (map, reference) pairs on the test tiles, both in hectares."""
    rng = np.random.default_rng(4)
    reference = rng.choice([0, 1, 2, 3], size=(2, 20, 30), p=[0.1, 0.5, 0.3, 0.1])
    mapped = np.where(rng.random((2, 20, 30)) < 0.8, reference, rng.choice([1, 2, 5], size=(2, 20, 30)))
    mapped[mapped == 3] = 1  # grassland is in the reference only, water (5) in the map only
    mapped[0, :3] = 0  # no data in the map
    paths = {}
    for index in range(2):
        paths[index] = (tmp_path / f"map{index}.tif", tmp_path / f"ref{index}.tif")
        write_tile(paths[index][0], mapped[index], index)
        write_tile(paths[index][1], reference[index], index)
    counts, tiles = map_reference_counts([p[0] for p in paths.values()], [p[1] for p in paths.values()])
    assert counts[1:].sum() == (reference > 0).sum() and counts[1, 2] == ((mapped == 2) & (reference == 1)).sum()
    assert tiles["map0"]["labelled_without_map_class"] == ((mapped[0] == 0) & (reference[0] > 0)).sum()

    write_tile(tmp_path / "merged.tif", np.concatenate([mapped[0], mapped[1], np.full((5, 30), 2)]), 0)
    per_class, pixel_ha = mapped_pixels(tmp_path / "merged.tif")
    assert pixel_ha == pytest.approx(0.01)  # 10 m pixels
    assert per_class[2] == (mapped == 2).sum() + 150 and per_class[0] == (mapped == 0).sum()

    estimate = area_estimate(counts, per_class, pixel_ha, EOLEARN_CLASSES, tiles)
    by_name = {c["name"]: c for c in estimate["classes"]}
    assert set(by_name) == {"cultivated land", "forest", "grassland", "water"}
    assert by_name["grassland"]["mapped_area_ha"] == 0 and by_name["grassland"]["users_accuracy"] is None
    assert by_name["water"]["test_pixels_referenced_as"] == 0 and by_name["water"]["producers_accuracy"] is None
    total = sum(c["estimated_area_ha"] for c in estimate["classes"])
    assert total == pytest.approx(per_class[1:].sum() * 0.01)
    assert by_name["forest"]["mapped_area_ha"] == pytest.approx(per_class[2] * 0.01)
    assert any("not a probability sample of the ground" in note for note in estimate["notes"])
    json.dumps(estimate, allow_nan=False)
    save_png(area_figure(estimate, EOLEARN_CLASSES), tmp_path / "area.png", 40)
    assert (tmp_path / "area.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_test_tiles_that_cannot_carry_their_figures_say_so():
    """The case of issue 11: 19 test pixels of one class on one tile printed "overall accuracy 1.0", no warning."""
    counts = np.zeros((256, 256), dtype=np.int64)
    counts[2, 2] = 19
    metrics = map_scores(counts, {"t": {"pixels": 19, "labelled_without_map_class": 0}}, EOLEARN_CLASSES)
    estimate_counts = counts.copy()
    estimate_counts[1, 1] = 1
    mapped = np.zeros(256, dtype=np.int64)
    mapped[[1, 2]] = 500, 4000
    metrics["area_estimate"] = area_estimate(
        estimate_counts, mapped, 0.01, EOLEARN_CLASSES, {"t": {"pixels": 20, "labelled_without_map_class": 0}}
    )
    found = caveats(metrics)
    assert metrics["overall_accuracy"] == 1.0 and metrics["kappa"] is None  # kappa is 0/0 with one class
    assert any(c.startswith("Only one test tile (t)") for c in found)
    assert any("one reference class only (forest)" in c for c in found)
    assert any(c.startswith("forest: 19 labelled test pixels (fewer than 50)") for c in found)
    assert any(c.startswith("cultivated land: mapped on 5.0 ha but 1 test pixels") for c in found)
    cultivated = next(c for c in metrics["area_estimate"]["classes"] if c["id"] == 1)
    assert cultivated[
        "estimated_area_ha"
    ] is None and "<td>cultivated land</td><td>5.0</td><td>n/a</td>" in summary_html(metrics)
    assert "What the test tiles cannot carry" in summary_html(metrics | {"caveats": found})


def test_confusion_counts_equal_scikit_learns_matrix():
    rng = np.random.default_rng(7)
    reference, predicted = rng.integers(0, 256, 5000), rng.integers(0, 256, 5000)
    expected = skm.confusion_matrix(reference, predicted, labels=np.arange(256))
    np.testing.assert_array_equal(confusion_counts(reference.astype(np.uint8), predicted.astype(np.uint8)), expected)


def test_the_headline_is_the_map_on_every_labelled_test_pixel_as_scikit_learn_scores_them(tmp_path):
    """Map files read back against band 1 of the reference; an unmapped labelled pixel is a wrong one, a class only
    mapped is kept; kappa, F1 and the per-class figures equal scikit-learn's on the same pixels."""
    rng = np.random.default_rng(8)
    reference = rng.choice([0, 1, 2, 3], size=(2, 20, 30), p=[0.2, 0.4, 0.3, 0.1])
    mapped = np.where(rng.random((2, 20, 30)) < 0.7, reference, rng.choice([0, 1, 2, 5], size=(2, 20, 30)))
    mapped[reference == 0] = rng.choice([1, 2], size=(reference == 0).sum())  # unlabelled pixels never count
    mapped[0, :2] = 0
    maps, references = [], []
    for index in range(2):
        maps.append(tmp_path / f"map{index}.tif")
        references.append(tmp_path / f"ref{index}.tif")
        write_tile(maps[-1], mapped[index], index)
        write_tile(references[-1], reference[index], index)
    counts, tiles = map_reference_counts(maps, references)
    metrics = map_scores(counts, tiles, EOLEARN_CLASSES)

    labelled = reference > 0
    y_true, y_pred = reference[labelled], mapped[labelled]
    labels = [1, 2, 3, 5]  # the reference's and the map's classes; no data is an error, not a class
    assert metrics["test_pixels"] == labelled.sum() and metrics["unmapped_pixels"] == (y_pred == 0).sum() > 0
    assert metrics["overall_accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-12)
    assert metrics["kappa"] == pytest.approx(skm.cohen_kappa_score(y_true, y_pred), abs=1e-12)
    for average in ("weighted", "macro"):
        expected = skm.f1_score(y_true, y_pred, labels=labels, average=average, zero_division=0)
        assert metrics[f"f1_{average}"] == pytest.approx(expected, abs=1e-12)
    precision, recall, f1, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    assert [c["id"] for c in metrics["classes"]] == labels
    np.testing.assert_allclose([c["precision"] for c in metrics["classes"]], precision, atol=1e-12)
    np.testing.assert_allclose([c["recall"] for c in metrics["classes"]], recall, atol=1e-12)
    np.testing.assert_allclose([c["f1"] for c in metrics["classes"]], f1, atol=1e-12)
    assert [c["support"] for c in metrics["classes"]] == support.tolist()
    cm = skm.confusion_matrix(y_true, y_pred, labels=labels)
    np.testing.assert_array_equal(metrics["confusion_matrix"]["counts"], cm)
    with np.errstate(invalid="ignore"):
        by_true = np.nan_to_num(cm / support[:, None])  # class 5 is only mapped: its row is empty
    np.testing.assert_allclose(metrics["confusion_matrix"]["normalised_by_true"], by_true)
    assert tiles["map0"]["labelled_without_map_class"] == ((mapped[0] == 0) & labelled[0]).sum()

    plain = scores(reference, mapped)  # the same on the arrays, as tools.accuracy calls it
    assert plain["oa"] == metrics["overall_accuracy"] and plain["pixels"] == labelled.sum()
    assert plain["majority"] == pytest.approx(np.bincount(y_true).max() / len(y_true))
    assert set(plain["per_class"]) == {1, 2, 3}


def test_frames_dropped_per_reason_are_summed_over_tiles(tmp_path):
    records = [
        {"tile": "a", "kept": 60, "dropped": {"cloud cover above threshold": 8, "band decoded to no data": 1}},
        {"tile": "b", "kept": 55, "dropped": {"cloud cover above threshold": 12, "outside the swath": 3}},
    ]
    paths = []
    for record in records:
        paths.append(tmp_path / f"{record['tile']}.json")
        paths[-1].write_text(json.dumps(record))
    frames = frames_dropped(paths)
    assert frames["kept"] == 115
    assert frames["dropped"] == {
        "band decoded to no data": 1,
        "cloud cover above threshold": 20,
        "outside the swath": 3,
    }
    assert frames["tiles"]["a"]["dropped"]["band decoded to no data"] == 1
    page = summary_html(
        {
            "test_pixels": 1,
            "unmapped_pixels": 0,
            "test_tiles": {"a": 1},
            "overall_accuracy": 1,
            "f1_weighted": 1,
            "f1_macro": 1,
            "kappa": None,
        }
        | {"frames": frames}
    )
    assert "<td>band decoded to no data</td><td>1</td>" in page

    (tmp_path / "bad.json").write_text(json.dumps({"tile": "c", "kept": 3}))
    with pytest.raises(ValueError, match="bad.json: not a frame record"):
        frames_dropped([tmp_path / "bad.json"])


def test_software_names_the_lock_files_hash_or_its_absence(tmp_path):
    lock = tmp_path / "requirements.lock.txt"
    assert software({"lightgbm_version": "4.6.0"}, lock)["lock_file_sha256"] is None
    lock.write_text("numpy==2.2.0\n")
    found = software({"lightgbm_version": "4.6.0"}, lock)
    assert found == {
        "lightgbm": "4.6.0",
        "lock_file": "requirements.lock.txt",
        "lock_file_sha256": hashlib.sha256(b"numpy==2.2.0\n").hexdigest(),
    }


def report_variable(page: str, name: str):
    """A JSON value the Snakemake report embeds as `<script id="..."> var <name> = ...`."""
    start = re.search(rf'<script id="[\w-]+">\s*var {name} = ', page).end()
    return json.JSONDecoder().raw_decode(page, start)[0]


@pytest.mark.slow
def test_snakemake_report_holds_every_output_with_its_caption_and_the_validation_summary(completed_run, tmp_path):
    """`snakemake --report`, as `make demo` ends: every output of the run, a caption each, grouped by stage."""
    out = tmp_path / "report.html"
    snakemake(completed_run, "--report", str(out))
    page = out.read_text()
    results = report_variable(page, "results")
    categories = report_variable(page, "categories")

    report_dir = "results/report"
    expected = {str(p.relative_to(completed_run)) for p in (completed_run / report_dir).iterdir()}
    expected |= {"results/landcover.tif", "results/landcover_preview.png", f"results/plots/{TINY_TILES[0]}.png"}
    assert expected <= set(results) and f"{report_dir}/area.png" in expected
    for path, entry in results.items():  # every output in the report, also other stages', has a caption
        assert len(entry["caption"]) > 50, f"{path} has no caption"
    assert f"Tile {TINY_TILES[0]}" in results[f"results/plots/{TINY_TILES[0]}.png"]["caption"]
    assert {"Validation", "Map", "Tiles"} <= set(categories)
    assert {"Summary", "Area estimates", "Confusion matrices", "Synthetic truth", "Reference check"} <= set(
        categories["Validation"]
    )
    assert "Olofsson" in results[f"{report_dir}/area.png"]["caption"]
    assert TINY_TEST_TILE in report_variable(page, "workflow_desc")

    data_uri = results[f"{report_dir}/summary.html"]["data_uri"]
    summary = base64.b64decode(data_uri.split("base64,", 1)[1]).decode()
    metadata = json.loads((completed_run / "results" / "model" / "model.json").read_text())
    assert f"LightGBM {metadata['lightgbm_version']}" in summary
    lock = REPO / "requirements.lock.txt"
    assert (hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else "absent") in summary
    assert f"Only one test tile ({TINY_TEST_TILE})" in summary  # the tiny run has one test tile
    # the headline is the map on every labelled test pixel, read back here and scored by scikit-learn
    metrics = json.loads((completed_run / report_dir / "metrics.json").read_text())
    with rasterio.open(completed_run / "results" / "maps" / f"{TINY_TEST_TILE}.tif") as src:
        mapped = src.read(1)
    with rasterio.open(completed_run / "results" / "reference" / f"{TINY_TEST_TILE}.tif") as src:
        reference = src.read(1)
    labelled = reference > 0
    assert metrics["test_pixels"] == labelled.sum()
    assert metrics["overall_accuracy"] == pytest.approx(skm.accuracy_score(reference[labelled], mapped[labelled]))
    assert metrics["kappa"] == pytest.approx(skm.cohen_kappa_score(reference[labelled], mapped[labelled]))
    assert f"overall accuracy <b>{metrics['overall_accuracy']:.3f}</b>" in summary.split("Sampled eroded interior")[0]
    sampled = metrics["sampled_interior"]
    assert sampled["overall_accuracy"] != metrics["overall_accuracy"] and "Sampled eroded interior" in summary
    truth = json.loads((completed_run / report_dir / "truth_scores.json").read_text())
    assert metrics["truth"] == truth and f"<b>{truth['overall_accuracy']:.3f}</b>" in summary
    check = metrics["reference_check"]
    assert len(check["worst"]) == min(20, check["polygons"]) and "airport" in summary
    assert f"{check['flagged']:,} of {check['polygons']:,} reference polygons" in summary
    assert "not a probability sample of the ground" in summary
    assert metrics["caveats"] and all(html.escape(c) in summary for c in metrics["caveats"])
    estimate = metrics["area_estimate"]
    assert sum(c["estimated_area_ha"] or 0 for c in estimate["classes"]) == pytest.approx(
        estimate["assessed_share"] * estimate["mapped_area_ha"]
    )
    assert 0.5 < estimate["overall_accuracy"] <= 1 and 0 < estimate["overall_accuracy_ci95"] < 0.1
    frames = metrics["frames"]  # every tile's features job counts its frames (issue 15)
    assert set(frames["tiles"]) == set(TINY_TILES) and frames["kept"] > 0 and sum(frames["dropped"].values()) > 0
    assert f"{frames['kept']:,} frames kept over {len(TINY_TILES)} tiles" in summary
    for reason, count in frames["dropped"].items():
        assert f"<td>{html.escape(reason)}</td><td>{count:,}</td>" in summary
