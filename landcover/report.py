"""Validation of the model on the test tiles' samples: metrics.json and the report's figures.

Every test pixel counts: unlike the eo-learn notebook, pixels predicted as a class that is absent
from the test labels are kept (they are errors, and dropping them would flatter the scores).
The scores are scikit-learn's; the area estimates with confidence intervals are `landcover.area`'s.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import rasterio
from matplotlib.figure import Figure
from sklearn import metrics as skm

from landcover import area, stack
from landcover.atomic import atomic_path
from landcover.classes import NO_DATA, LandCoverClass
from landcover.model import class_ids
from landcover.raster_io import save_png

log = logging.getLogger(__name__)


def scores(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray, sample_weight=None) -> dict:
    """Accuracy, Cohen's kappa, confusion matrix, per-class precision/recall/F1/support and macro/weighted F1.

    Every class in `labels` counts, also one with no true or no predicted pixel (scored 0)."""
    cm = skm.confusion_matrix(y_true, y_pred, labels=labels, sample_weight=sample_weight)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, sample_weight=sample_weight, zero_division=0
    )
    one_class = np.unique(np.concatenate([y_true, y_pred])).size < 2  # kappa is 0/0: reported as None
    kappa = None if one_class else skm.cohen_kappa_score(y_true, y_pred, labels=labels, sample_weight=sample_weight)
    support = cm.sum(axis=1)
    return {
        "confusion_matrix": cm,
        "overall_accuracy": float(skm.accuracy_score(y_true, y_pred, sample_weight=sample_weight)),
        "kappa": None if kappa is None else float(kappa),
        "f1_macro": float(f1.mean()),
        "f1_weighted": float(np.average(f1, weights=support)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support.astype(np.int64),
    }


def _roc_curves(
    y_true: np.ndarray, proba: np.ndarray, metadata: dict
) -> dict[int, tuple[np.ndarray, np.ndarray, float]]:
    """One-vs-rest (fpr, tpr, AUC) of the model's classes that have both positives and negatives in the test set."""
    curves = {}
    for column, class_id in enumerate(class_ids(metadata)):
        positive = y_true == class_id
        if 0 < positive.sum() < len(positive):
            fpr, tpr, _ = skm.roc_curve(positive, proba[:, column])
            curves[int(class_id)] = (fpr, tpr, float(skm.roc_auc_score(positive, proba[:, column])))
    return curves


def _names(classes: tuple[LandCoverClass, ...], ids) -> list[str]:
    by_id = {c.id: c.name for c in classes}
    unknown = [int(i) for i in ids if int(i) not in by_id]
    if unknown:
        raise ValueError(f"class ids {unknown} are not configured classes")
    return [by_id[int(i)] for i in ids]


def evaluate(samples: pd.DataFrame, proba: np.ndarray, metadata: dict, classes: tuple[LandCoverClass, ...]) -> dict:
    """metrics.json: every test pixel's true label against the model's most probable class (`proba` rows)."""
    y_true = samples["label"].to_numpy()
    if len(y_true) == 0:
        raise ValueError("the test tiles hold no samples: nothing to validate the model on")
    y_pred = class_ids(metadata)[proba.argmax(axis=1)]
    labels = np.union1d(y_true, y_pred)
    result = scores(y_true, y_pred, labels)
    cm = result["confusion_matrix"]
    auc = {class_id: auc for class_id, (_, _, auc) in _roc_curves(y_true, proba, metadata).items()}
    names = _names(classes, labels)
    return {
        "test_pixels": len(y_true),
        "test_tiles": {str(k): int(v) for k, v in samples["tile_id"].value_counts().sort_index().items()},
        "overall_accuracy": result["overall_accuracy"],
        "kappa": result["kappa"],
        "f1_weighted": result["f1_weighted"],
        "f1_macro": result["f1_macro"],
        "classes": [
            {
                "id": int(label),
                "name": name,
                "precision": float(result["precision"][i]),
                "recall": float(result["recall"][i]),
                "f1": float(result["f1"][i]),
                "support": int(result["support"][i]),
                "roc_auc": auc.get(int(label)),  # None: not a model class, or no positives/negatives
            }
            for i, (label, name) in enumerate(zip(labels, names))
        ],
        "confusion_matrix": {
            "labels": labels.astype(int).tolist(),
            "names": names,
            "counts": cm.tolist(),
            "normalised_by_true": skm.confusion_matrix(y_true, y_pred, labels=labels, normalize="true").tolist(),
            "normalised_by_predicted": skm.confusion_matrix(y_true, y_pred, labels=labels, normalize="pred").tolist(),
        },
    }


def confusion_figure(metrics: dict, normalised_by: str) -> Figure:
    """Confusion matrix normalised by the true ("true") or the predicted ("predicted") class."""
    matrix = np.array(metrics["confusion_matrix"][f"normalised_by_{normalised_by}"])
    names = metrics["confusion_matrix"]["names"]
    size = 2.5 + 0.6 * len(names)
    fig = Figure(figsize=(size + 1, size))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(
            col, row, f"{value:.2f}", ha="center", va="center", fontsize=8, color="white" if value > 0.5 else "black"
        )
    ticks = np.arange(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right")
    ax.set_yticks(ticks, names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix, normalised by {normalised_by} class")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig


def frequencies_figure(train_labels: np.ndarray, classes: tuple[LandCoverClass, ...]) -> Figure:
    """Training pixels per class, in the class colours."""
    ids, counts = np.unique(np.asarray(train_labels), return_counts=True)
    by_id = {c.id: c for c in classes}
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    ax.bar(_names(classes, ids), counts, color=[by_id[int(i)].colour for i in ids], edgecolor="black")
    ax.set_ylabel("training pixels")
    ax.set_title("Class frequencies of the training set")
    ax.tick_params(axis="x", labelrotation=45)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    return fig


def roc_figure(y_true: np.ndarray, proba: np.ndarray, metadata: dict, classes: tuple[LandCoverClass, ...]) -> Figure:
    """One-vs-rest ROC curve and AUC of every model class present in the test set."""
    by_id = {c.id: c for c in classes}
    fig = Figure(figsize=(7, 6))
    ax = fig.add_subplot()
    for class_id, (fpr, tpr, auc) in _roc_curves(np.asarray(y_true), proba, metadata).items():
        label = f"{by_id[class_id].name} (AUC {auc:.3f})"
        ax.plot(fpr, tpr, color=by_id[class_id].colour, label=label, linewidth=1.5)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curves, one class against the rest")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def importance_figure(booster: lgb.Booster, metadata: dict) -> Figure:
    """LightGBM gain importance of each (date, feature) input (temporal statistics, when used, follow them)."""
    dates, features = metadata["dates"], metadata["features"]
    gain = booster.feature_importance(importance_type="gain")[: len(dates) * len(features)]
    gain = gain.reshape(len(dates), len(features))
    fig = Figure(figsize=(2 + 0.6 * len(features), 1.5 + 0.25 * len(dates)))
    ax = fig.add_subplot()
    image = ax.imshow(gain, aspect="auto", cmap="viridis")
    ax.set_xticks(np.arange(len(features)), features, rotation=45, ha="right")
    ax.set_yticks(np.arange(len(dates)), dates)
    ax.set_title("Feature importance (LightGBM gain)")
    fig.colorbar(image, ax=ax, label="gain")
    return fig


def report_figures(
    booster: lgb.Booster,
    metadata: dict,
    metrics: dict,
    test_samples: pd.DataFrame,
    proba: np.ndarray,
    train_labels: np.ndarray,
    classes: tuple[LandCoverClass, ...],
) -> dict[str, Figure]:
    """The report's figures by output name (the rule's `report/<name>.png`)."""
    return {
        "confusion_true": confusion_figure(metrics, "true"),
        "confusion_predicted": confusion_figure(metrics, "predicted"),
        "class_frequencies": frequencies_figure(train_labels, classes),
        "roc": roc_figure(test_samples["label"].to_numpy(), proba, metadata, classes),
        "feature_importance": importance_figure(booster, metadata),
    }


def write_report(metrics: dict, figures: dict[str, Figure], outdir, dpi: int = 110) -> None:
    """metrics.json, summary.html and one `<name>.png` per figure in `outdir`."""
    outdir = Path(outdir)
    with atomic_path(outdir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    with atomic_path(outdir / "summary.html") as tmp:
        tmp.write_text(summary_html(metrics))
    for name, fig in figures.items():
        save_png(fig, outdir / f"{name}.png", dpi)


MIN_CLASS_PIXELS = 50  # below this many test pixels, a class's scores are anecdotes, not estimates


def pixel_area_ha(src: rasterio.DatasetReader) -> float:
    """One pixel's area in hectares; a map in degrees has no constant pixel area, so it is refused."""
    if src.crs is None or not src.crs.is_projected:
        raise ValueError(f"{src.name}: CRS {src.crs} is not a projected one; pixel areas need metres")
    _, metres_per_unit = src.crs.linear_units_factor
    return abs(src.transform.determinant) * metres_per_unit**2 / 10_000


def mapped_pixels(path) -> tuple[np.ndarray, float]:
    """Pixels per class id (256 counts, index 0 is no data) of a class map, read block by block, and a pixel's ha."""
    counts = np.zeros(256, dtype=np.int64)
    with rasterio.open(path) as src:
        for _, window in src.block_windows(1):
            counts += np.bincount(src.read(1, window=window).ravel(), minlength=256)
        return counts, pixel_area_ha(src)


def map_reference_counts(map_paths, reference_paths) -> tuple[np.ndarray, dict[str, int]]:
    """Pixels per (map class, reference class) over the test tiles, and per tile how many there are.

    Every pixel the register labels (band 1: rasterised, not eroded, so boundaries count) and the
    map classifies; labelled pixels the map leaves as no data are counted per tile apart."""
    if len(map_paths) != len(reference_paths):
        raise ValueError(f"{len(map_paths)} test maps but {len(reference_paths)} reference rasters")
    counts = np.zeros((256, 256), dtype=np.int64)
    tiles = {}
    for map_path, reference_path in zip(map_paths, reference_paths):
        with rasterio.open(map_path) as map_src, rasterio.open(reference_path) as reference_src:
            if (map_src.shape, map_src.crs) != (reference_src.shape, reference_src.crs) or not (
                map_src.transform.almost_equals(reference_src.transform)
            ):
                raise ValueError(f"{map_path}: its grid differs from the reference raster {reference_path}")
            mapped, reference = map_src.read(1), reference_src.read(1)
        labelled = reference != NO_DATA
        both = labelled & (mapped != NO_DATA)
        counts += np.bincount(mapped[both].astype(np.int64) * 256 + reference[both], minlength=256 * 256).reshape(
            256, 256
        )
        tiles[Path(map_path).stem] = {
            "pixels": int(both.sum()),
            "labelled_without_map_class": int((labelled & ~both).sum()),
        }
    return counts, tiles


def _number(value) -> float | None:
    return None if value is None or np.isnan(value) else float(value)


def area_estimate(counts: np.ndarray, mapped: np.ndarray, pixel_ha: float, classes, tiles: dict) -> dict:
    """metrics.json's `area_estimate`: Olofsson et al. (2014) with the map classes as strata, 95 % intervals.

    `counts` rows are map classes, columns reference classes (`map_reference_counts`); `mapped` the
    whole map's pixels per class (`mapped_pixels`)."""
    ids = np.union1d(np.flatnonzero(mapped[1:]) + 1, np.flatnonzero(counts.sum(axis=0) + counts.sum(axis=1)))
    estimate = area.stratified_estimate(counts[np.ix_(ids, ids)], mapped[ids], pixel_ha)
    map_sample, reference_sample = counts[np.ix_(ids, ids)].sum(axis=1), counts[np.ix_(ids, ids)].sum(axis=0)
    unassessed = mapped[ids] * ~estimate["assessed"]
    return {
        "method": "stratified estimator of Olofsson et al. (2014), map classes as strata, 95 % confidence intervals",
        "sample": "every pixel of the test tiles that the reference labels (rasterised, not eroded) and the map classifies",
        "test_tiles": tiles,
        "sample_pixels": int(map_sample.sum()),
        "pixel_area_ha": pixel_ha,
        "mapped_area_ha": float(mapped[1:].sum() * pixel_ha),
        "assessed_share": estimate["assessed_share"],
        "overall_accuracy": estimate["overall_accuracy"],
        "overall_accuracy_ci95": estimate["overall_accuracy_ci"],
        "classes": [
            {
                "id": int(class_id),
                "name": name,
                "mapped_area_ha": float(estimate["mapped_area_ha"][i]),
                # a map class left out of the strata: its own pixels are not assessed, so no estimate
                "estimated_area_ha": _number(estimate["area_ha"][i]) if unassessed[i] == 0 else None,
                "estimated_area_ci95_ha": _number(estimate["area_ci_ha"][i]) if unassessed[i] == 0 else None,
                "users_accuracy": _number(estimate["users_accuracy"][i]),
                "users_accuracy_ci95": _number(estimate["users_accuracy_ci"][i]),
                "producers_accuracy": _number(estimate["producers_accuracy"][i]),
                "producers_accuracy_ci95": _number(estimate["producers_accuracy_ci"][i]),
                "test_pixels_mapped_as": int(map_sample[i]),
                "test_pixels_referenced_as": int(reference_sample[i]),
                "assessed": bool(estimate["assessed"][i]),
            }
            for i, (class_id, name) in enumerate(zip(ids, _names(classes, ids)))
        ],
        "counts": {
            "labels": ids.tolist(),
            "rows": "map class",
            "columns": "reference class",
            "counts": counts[np.ix_(ids, ids)].tolist(),
        },
        "notes": [
            (
                "The reference is the land-use register, not the ground: a sample of the register is not a "
                "probability sample of the ground, so every estimate is only as good as the register."
            ),
            (
                f"The test pixels are the whole of {len(tiles)} test tile(s), a cluster sample of the area rather "
                "than a random one: the intervals treat pixels as independent draws within each map class, so "
                "the true uncertainty is larger, the more so the fewer the test tiles."
            ),
        ],
    }


def caveats(metrics: dict) -> list[str]:
    """Plain sentences for each way the test sample cannot carry the report's figures."""
    found = []
    tiles = metrics["test_tiles"]
    if len(tiles) == 1:
        found.append(
            f"Only one test tile ({next(iter(tiles))}): every figure describes that tile, not the area, and "
            "its pixels are neighbours rather than independent draws."
        )
    present = [c for c in metrics["classes"] if c["support"] > 0]
    if len(present) == 1:
        found.append(
            f"The test sample holds one reference class only ({present[0]['name']}): overall accuracy says "
            "nothing about confusion between classes."
        )
    for c in present:
        if c["support"] < MIN_CLASS_PIXELS:
            found.append(
                f"{c['name']}: {c['support']} test pixels (fewer than {MIN_CLASS_PIXELS}): its precision, "
                "recall and F1 are not reliable."
            )
    estimate = metrics.get("area_estimate")
    if estimate:
        for c in estimate["classes"]:
            if c["mapped_area_ha"] > 0 and not c["assessed"]:
                found.append(
                    f"{c['name']}: mapped on {c['mapped_area_ha']:,.1f} ha but {c['test_pixels_mapped_as']} test "
                    f"pixels are mapped as it: its area cannot be estimated, and the estimates cover only "
                    f"{100 * estimate['assessed_share']:.1f} % of the mapped area."
                )
            elif c["assessed"] and c["test_pixels_mapped_as"] < MIN_CLASS_PIXELS:
                found.append(
                    f"{c['name']}: {c['test_pixels_mapped_as']} test pixels mapped as it (fewer than "
                    f"{MIN_CLASS_PIXELS}): its user's accuracy and estimated area are not reliable."
                )
        missed = sum(t["labelled_without_map_class"] for t in estimate["test_tiles"].values())
        if missed:
            found.append(
                f"{missed} labelled test pixels have no map class (no data): the area estimate leaves them out."
            )
    return found


def area_figure(estimate: dict, classes: tuple[LandCoverClass, ...]) -> Figure:
    """Mapped area beside the estimated area and its 95 % interval, per class."""
    by_id = {c.id: c for c in classes}
    rows = [c for c in estimate["classes"] if c["estimated_area_ha"] is not None or c["mapped_area_ha"] > 0]
    position = np.arange(len(rows))
    fig = Figure(figsize=(8, 1.5 + 0.5 * len(rows)))
    ax = fig.add_subplot()
    colours = [by_id[c["id"]].colour for c in rows]
    ax.barh(position - 0.2, [c["mapped_area_ha"] for c in rows], 0.4, color=colours, alpha=0.45, label="mapped")
    ax.barh(
        position + 0.2,
        [c["estimated_area_ha"] or 0 for c in rows],
        0.4,
        xerr=[c["estimated_area_ci95_ha"] or 0 for c in rows],
        color=colours,
        edgecolor="black",
        capsize=3,
        label="estimated, 95 % interval",
    )
    ax.set_yticks(position, [c["name"] for c in rows])
    ax.invert_yaxis()
    ax.set_xlabel("area (ha)")
    ax.set_title(
        f"Mapped and estimated area (Olofsson et al. 2014); overall accuracy "
        f"{estimate['overall_accuracy']:.3f} +/- {estimate['overall_accuracy_ci95']:.3f}"
    )
    ax.legend(loc="lower right", fontsize=8)
    return fig


def frames_dropped(paths) -> dict:
    """Frames kept and dropped per reason over all tiles, from each tile's `frames/<tile>.json`."""
    kept, dropped, tiles = 0, {}, {}
    for path in paths:
        try:
            record = json.loads(Path(path).read_text())
            tile, tile_kept = str(record["tile"]), int(record["kept"])
            tile_dropped = {str(reason): int(count) for reason, count in record["dropped"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(
                f"{path}: not a frame record {{tile, kept, dropped: {{reason: count}}}} ({err!r})"
            ) from err
        kept += tile_kept
        for reason, count in tile_dropped.items():
            dropped[reason] = dropped.get(reason, 0) + count
        tiles[tile] = {"kept": tile_kept, "dropped": tile_dropped}
    return {"kept": kept, "dropped": dict(sorted(dropped.items())), "tiles": tiles}


def software(metadata: dict, lock_file) -> dict:
    """The LightGBM version that trained the model and the sha256 of the environment's lock file (None: absent)."""
    lock_file = Path(lock_file)
    digest = hashlib.sha256(lock_file.read_bytes()).hexdigest() if lock_file.is_file() else None
    return {"lightgbm": metadata.get("lightgbm_version"), "lock_file": lock_file.name, "lock_file_sha256": digest}


def _cell(value, ci=None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    text = f"{value:,.{digits}f}"
    return text if ci is None else f"{text} &plusmn; {ci:,.{digits}f}"


def summary_html(metrics: dict) -> str:
    """The validation report in words and tables: what the figures cannot say (caveats, intervals, data loss)."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Validation summary</title>",
        (
            "<style>body{font-family:sans-serif;max-width:60em}td,th{padding:2px 8px;text-align:right}"
            "td:first-child,th:first-child{text-align:left}.caveat{color:#a00}</style></head><body>"
        ),
        "<h1>Validation summary</h1>",
        (
            f"<p>{metrics['test_pixels']:,} sampled test pixels on {len(metrics['test_tiles'])} test tile(s): "
            f"overall accuracy {metrics['overall_accuracy']:.3f}, weighted F1 {metrics['f1_weighted']:.3f}, "
            f"macro F1 {metrics['f1_macro']:.3f}, kappa {_cell(metrics['kappa'])}.</p>"
        ),
    ]
    found = metrics.get("caveats") or []
    parts.append("<h2>What this test sample cannot carry</h2>")
    parts.append(
        "<ul>" + "".join(f"<li class='caveat'>{esc(c)}</li>" for c in found) + "</ul>"
        if found
        else "<p>Nothing: every class has at least 50 test pixels, on more than one test tile.</p>"
    )
    estimate = metrics.get("area_estimate")
    if estimate:
        parts += [
            "<h2>Area estimates and accuracy, 95 % confidence intervals</h2>",
            (
                f"<p>{esc(estimate['method'])}; sample: {esc(estimate['sample'])} ({estimate['sample_pixels']:,} "
                f"pixels). Overall accuracy {_cell(estimate['overall_accuracy'], estimate['overall_accuracy_ci95'])}"
                f" over {100 * estimate['assessed_share']:.1f} % of the mapped area "
                f"({estimate['mapped_area_ha']:,.0f} ha).</p>"
            ),
            (
                "<table><tr><th>class</th><th>mapped (ha)</th><th>estimated (ha)</th><th>user's accuracy</th>"
                "<th>producer's accuracy</th><th>test pixels mapped as</th><th>referenced as</th></tr>"
            ),
        ]
        for c in estimate["classes"]:
            parts.append(
                f"<tr><td>{esc(c['name'])}</td><td>{c['mapped_area_ha']:,.1f}</td>"
                f"<td>{_cell(c['estimated_area_ha'], c['estimated_area_ci95_ha'], 1)}</td>"
                f"<td>{_cell(c['users_accuracy'], c['users_accuracy_ci95'])}</td>"
                f"<td>{_cell(c['producers_accuracy'], c['producers_accuracy_ci95'])}</td>"
                f"<td>{c['test_pixels_mapped_as']:,}</td><td>{c['test_pixels_referenced_as']:,}</td></tr>"
            )
        parts.append("</table><ul>" + "".join(f"<li>{esc(n)}</li>" for n in estimate["notes"]) + "</ul>")
    frames = metrics.get("frames")
    parts.append("<h2>Frames dropped</h2>")
    if frames is None:
        parts.append("<p>Not recorded: this run's features rule writes no frame records.</p>")
    else:
        rows = "".join(f"<tr><td>{esc(r)}</td><td>{n:,}</td></tr>" for r, n in frames["dropped"].items())
        parts.append(
            f"<p>{frames['kept']:,} frames kept over {len(frames['tiles'])} tiles.</p>"
            f"<table><tr><th>reason</th><th>frames dropped</th></tr>{rows or '<tr><td>none</td><td>0</td></tr>'}"
            "</table>"
        )
    soft = metrics.get("software")
    if soft:
        lock = soft["lock_file_sha256"] or "absent"
        parts.append(
            f"<h2>Software</h2><p>LightGBM {esc(str(soft['lightgbm']))}; {esc(soft['lock_file'])} sha256 "
            f"<code>{esc(lock)}</code></p>"
        )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def score_against_truth(map_paths, truth_paths) -> dict:
    """Accuracy and weighted F1 of predicted tile maps against the synthetic generator's true land cover.

    Pixels the map leaves as no data are not scored; their share is reported."""
    if len(map_paths) != len(truth_paths):
        raise ValueError(f"{len(map_paths)} maps but {len(truth_paths)} truth files")
    cm = np.zeros((256, 256), dtype=np.int64)
    tiles = {}
    pixels = no_data = 0
    for map_path, truth_path in zip(map_paths, truth_paths):
        with stack.open(truth_path, required=("land_cover",)) as truth_ds:
            truth = stack.load(truth_ds["land_cover"].transpose("y", "x")).astype(np.uint8)
            grid = stack.grid_of(truth_ds)
        with rasterio.open(map_path) as src:
            prediction = src.read(1)
            transform = src.transform
        if prediction.shape != truth.shape or not transform.almost_equals(grid.transform):
            raise ValueError(
                f"{map_path}: map grid {prediction.shape} {tuple(transform)[:6]} differs from "
                f"truth {truth_path} {truth.shape} {tuple(grid.transform)[:6]}"
            )
        scored = (prediction != NO_DATA) & (truth != NO_DATA)
        tile_cm = np.bincount(truth[scored].astype(np.int64) * 256 + prediction[scored], minlength=256 * 256)
        cm += tile_cm.reshape(256, 256)
        pixels += prediction.size
        no_data += int((prediction == NO_DATA).sum())
        n_scored = int(scored.sum())
        tiles[grid.tile_id or Path(truth_path).stem] = {
            "overall_accuracy": float(tile_cm.reshape(256, 256).trace() / n_scored) if n_scored else None,
            "scored_pixels": n_scored,
            "no_data_share": float((prediction == NO_DATA).mean()),
        }
    present = np.flatnonzero(cm.sum(axis=0) + cm.sum(axis=1))
    if len(present) == 0:
        raise ValueError("no pixel is both predicted and in the truth: nothing to score")
    truth_ids, map_ids = np.nonzero(cm)  # each (truth, map) pair once, weighted by its pixel count
    result = scores(truth_ids, map_ids, present, sample_weight=cm[truth_ids, map_ids])
    return {
        "overall_accuracy": result["overall_accuracy"],
        "f1_weighted": result["f1_weighted"],
        "scored_pixels": int(cm.sum()),
        "no_data_share": no_data / pixels,
        "tiles": tiles,
    }
