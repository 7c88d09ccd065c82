"""Validation of the model on the test tiles' samples: metrics.json and the report's figures.

Every test pixel counts: unlike the eo-learn notebook, pixels predicted as a class that is absent
from the test labels are kept (they are errors, and dropping them would flatter the scores).
Metrics are computed from the confusion matrix here and tested against scikit-learn's.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import rasterio
from matplotlib.figure import Figure

from landcover import stack
from landcover.atomic import atomic_path
from landcover.classes import NO_DATA, LandCoverClass
from landcover.maps import save_png
from landcover.model import class_ids

log = logging.getLogger(__name__)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class, both in `labels` (sorted) order."""
    k = len(labels)
    true_index = np.searchsorted(labels, y_true)
    pred_index = np.searchsorted(labels, y_pred)
    return np.bincount(true_index * k + pred_index, minlength=k * k).reshape(k, k)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's zero_division=0)."""
    return np.divide(numerator, denominator, out=np.zeros(np.shape(numerator)), where=denominator > 0)


def scores(cm: np.ndarray) -> dict:
    """Accuracy, Cohen's kappa, per-class precision/recall/F1/support and macro/weighted F1 of a confusion matrix."""
    cm = cm.astype(np.float64)
    total = cm.sum()
    true_counts, pred_counts, hits = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
    precision, recall = _ratio(hits, pred_counts), _ratio(hits, true_counts)
    f1 = _ratio(2 * precision * recall, precision + recall)
    accuracy = hits.sum() / total
    expected = (true_counts * pred_counts).sum() / total**2
    return {
        "overall_accuracy": float(accuracy),
        "kappa": float((accuracy - expected) / (1 - expected)) if expected < 1 else None,  # one class only
        "f1_macro": float(f1.mean()),
        "f1_weighted": float((f1 * true_counts).sum() / true_counts.sum()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": true_counts.astype(np.int64),
    }


def roc_curve(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at every distinct score threshold, from (0, 0)."""
    order = np.argsort(-score, kind="mergesort")
    score, positive = score[order], positive[order]
    last_of_threshold = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    true_pos = np.cumsum(positive)[last_of_threshold]
    false_pos = last_of_threshold + 1 - true_pos
    return np.r_[0, false_pos] / false_pos[-1], np.r_[0, true_pos] / true_pos[-1]


def _roc_curves(y_true: np.ndarray, proba: np.ndarray, metadata: dict) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """One-vs-rest curves of the model's classes that have both positives and negatives in the test set."""
    curves = {}
    for column, class_id in enumerate(class_ids(metadata)):
        positive = y_true == class_id
        if 0 < positive.sum() < len(positive):
            curves[int(class_id)] = roc_curve(positive, proba[:, column])
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
    cm = confusion_matrix(y_true, y_pred, labels)
    result = scores(cm)
    auc = {
        class_id: float(np.trapezoid(tpr, fpr)) for class_id, (fpr, tpr) in _roc_curves(y_true, proba, metadata).items()
    }
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
            "normalised_by_true": _ratio(cm, cm.sum(axis=1, keepdims=True)).tolist(),
            "normalised_by_predicted": _ratio(cm, cm.sum(axis=0, keepdims=True)).tolist(),
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
    for class_id, (fpr, tpr) in _roc_curves(np.asarray(y_true), proba, metadata).items():
        label = f"{by_id[class_id].name} (AUC {np.trapezoid(tpr, fpr):.3f})"
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
    """metrics.json and one `<name>.png` per figure in `outdir`."""
    outdir = Path(outdir)
    with atomic_path(outdir / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    for name, fig in figures.items():
        save_png(fig, outdir / f"{name}.png", dpi)


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
    result = scores(cm[np.ix_(present, present)])
    return {
        "overall_accuracy": result["overall_accuracy"],
        "f1_weighted": result["f1_weighted"],
        "scored_pixels": int(cm.sum()),
        "no_data_share": no_data / pixels,
        "tiles": tiles,
    }
