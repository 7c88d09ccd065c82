"""The validation report's figures (the rule's `report/<name>.png`): confusion matrices of the map on every
labelled test pixel, the training class frequencies, ROC curves and feature importance of the model on the sampled
test pixels, and the mapped against the estimated area."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from landcover.classes import LandCoverClass
from landcover.report.metrics import class_names, roc_curves


def confusion_figure(metrics: dict, normalised_by: str) -> Figure:
    """The headline's confusion matrix normalised by the true ("true") or the predicted ("predicted") class."""
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
    ax.set_xlabel("map class")
    ax.set_ylabel("reference class")
    ax.set_title(f"Every labelled test pixel, normalised by {normalised_by} class")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return fig


def frequencies_figure(train_labels: np.ndarray, classes: tuple[LandCoverClass, ...]) -> Figure:
    """Training pixels per class, in the class colours."""
    ids, counts = np.unique(np.asarray(train_labels), return_counts=True)
    by_id = {c.id: c for c in classes}
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    ax.bar(class_names(classes, ids), counts, color=[by_id[int(i)].colour for i in ids], edgecolor="black")
    ax.set_ylabel("training pixels")
    ax.set_title("Class frequencies of the training set")
    ax.tick_params(axis="x", labelrotation=45)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    return fig


def roc_figure(y_true: np.ndarray, proba: np.ndarray, metadata: dict, classes: tuple[LandCoverClass, ...]) -> Figure:
    """One-vs-rest ROC curve and AUC of every model class present in the sampled test pixels."""
    by_id = {c.id: c for c in classes}
    fig = Figure(figsize=(7, 6))
    ax = fig.add_subplot()
    for class_id, (fpr, tpr, auc) in roc_curves(np.asarray(y_true), proba, metadata).items():
        label = f"{by_id[class_id].name} (AUC {auc:.3f})"
        ax.plot(fpr, tpr, color=by_id[class_id].colour, label=label, linewidth=1.5)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curves on the sampled test pixels, one class against the rest")
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
    figures = {
        "confusion_true": confusion_figure(metrics, "true"),
        "confusion_predicted": confusion_figure(metrics, "predicted"),
        "class_frequencies": frequencies_figure(train_labels, classes),
        "roc": roc_figure(test_samples["label"].to_numpy(), proba, metadata, classes),
        "feature_importance": importance_figure(booster, metadata),
    }
    if metrics.get("area_estimate"):
        figures["area"] = area_figure(metrics["area_estimate"], classes)
    return figures
