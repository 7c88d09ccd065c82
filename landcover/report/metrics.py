"""The figures of metrics.json: the map on every labelled pixel of the test tiles (the headline), the model on
the sampled eroded interior (second), the synthetic truth score, the caveats, the frames dropped and the software.

The headline reads the test tiles' map files back and compares them with the rasterised reference (band 1 of
`reference/<tile>.tif`, boundaries included), as `tools.accuracy` does on the real patch: a map is judged on all of
its pixels. Every labelled pixel counts: one the map leaves as no data is a wrong one, and pixels predicted as a
class absent from the reference are kept (unlike the eo-learn notebook, which drops them and flatters the scores).
The scores are scikit-learn's; the area estimates with confidence intervals are `landcover.area`'s.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from sklearn import metrics as skm

from landcover import stack
from landcover.classes import NO_DATA, LandCoverClass
from landcover.model import class_ids

CLASS_VALUES = 256  # uint8 class ids: every count table is CLASS_VALUES x CLASS_VALUES
MIN_CLASS_PIXELS = 50  # below this many test pixels, a class's scores are anecdotes, not estimates
HEADLINE = "every labelled pixel of the test tiles: the map files against the rasterised reference (band 1)"
SAMPLED = "the sampled test pixels of the eroded reference (band 2): the model on pure interior pixels"


def confusion_counts(reference: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Pixels per (reference class, predicted class): a 256 x 256 table of uint8 class ids, no data (0) included."""
    reference, predicted = np.ravel(reference).astype(np.int64), np.ravel(predicted).astype(np.int64)
    if reference.shape != predicted.shape:
        raise ValueError(f"reference and prediction differ in size: {reference.size} and {predicted.size} pixels")
    pairs = np.bincount(reference * CLASS_VALUES + predicted, minlength=CLASS_VALUES**2)
    if pairs.size > CLASS_VALUES**2:
        raise ValueError(f"class ids must lie in 0..{CLASS_VALUES - 1}")
    return pairs.reshape(CLASS_VALUES, CLASS_VALUES)


def scores(reference: np.ndarray, predicted: np.ndarray, sample_weight=None) -> dict:
    """OA, Cohen's kappa, weighted and macro F1, the confusion matrix, per-class precision/recall/F1/support and the
    majority class's share of `predicted` on the labelled pixels of `reference` (scikit-learn).

    Reference no data (0) is not scored; a prediction of no data is a wrong one, not a class. The classes (`labels`)
    are those of the reference and the predictions: one with no true or no predicted pixel counts, scored 0.
    `per_class` is the F1 of each reference class."""
    reference, predicted = np.ravel(reference), np.ravel(predicted)
    labelled = reference != NO_DATA
    y_true, y_pred = reference[labelled], predicted[labelled]
    weight = None if sample_weight is None else np.ravel(sample_weight)[labelled]
    if len(y_true) == 0:
        raise ValueError("no labelled pixel to score")
    labels = np.setdiff1d(np.union1d(y_true, y_pred), [NO_DATA])
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, sample_weight=weight, zero_division=0
    )
    one_class = np.unique(np.concatenate([y_true, y_pred])).size < 2  # kappa is 0/0: reported as None
    # kappa over every value, no data included, so that an unmapped pixel is a disagreement
    kappa = None if one_class else float(skm.cohen_kappa_score(y_true, y_pred, sample_weight=weight))
    true_pixels = np.bincount(y_true.astype(np.int64), weights=weight)
    return {
        "pixels": int(true_pixels.sum()),
        "oa": float(skm.accuracy_score(y_true, y_pred, sample_weight=weight)),
        "kappa": kappa,
        "f1_weighted": float(np.average(f1, weights=support)),
        "f1_macro": float(f1.mean()),
        "per_class": {int(c): float(f) for c, f, n in zip(labels, f1, support) if n > 0},
        "majority": float(true_pixels.max() / true_pixels.sum()),
        "labels": labels,
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels, sample_weight=weight),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support.astype(np.int64),
    }


def counts_scores(counts: np.ndarray) -> dict:
    """`scores` of a (reference, predicted) count table (`confusion_counts`): each pair once, weighted by its count."""
    reference, predicted = np.nonzero(counts)
    return scores(reference, predicted, sample_weight=counts[reference, predicted])


def class_names(classes: tuple[LandCoverClass, ...], ids) -> list[str]:
    by_id = {c.id: c.name for c in classes}
    unknown = [int(i) for i in ids if int(i) not in by_id]
    if unknown:
        raise ValueError(f"class ids {unknown} are not configured classes")
    return [by_id[int(i)] for i in ids]


def _normalised(matrix: np.ndarray, totals: np.ndarray, axis: int) -> list:
    with np.errstate(invalid="ignore", divide="ignore"):
        share = matrix / np.expand_dims(totals, axis)
    return np.nan_to_num(share).tolist()


def _section(result: dict, classes: tuple[LandCoverClass, ...], auc: dict | None = None) -> dict:
    """A `scores` result as metrics.json writes it: headline figures, per class, the confusion matrices."""
    labels, cm = result["labels"], result["confusion_matrix"]
    names = class_names(classes, labels)
    return {
        "overall_accuracy": result["oa"],
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
            }
            | ({} if auc is None else {"roc_auc": auc.get(int(label))})  # None: not a model class, or one-sided
            for i, (label, name) in enumerate(zip(labels, names))
        ],
        "confusion_matrix": {
            "labels": labels.astype(int).tolist(),
            "names": names,
            "counts": cm.tolist(),
            "normalised_by_true": _normalised(cm, result["support"], 1),  # a row's unmapped pixels count too
            "normalised_by_predicted": _normalised(cm, cm.sum(axis=0), 0),
        },
    }


def roc_curves(
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


def sampled_scores(
    samples: pd.DataFrame, proba: np.ndarray, metadata: dict, classes: tuple[LandCoverClass, ...]
) -> dict:
    """metrics.json's `sampled_interior`: every sampled test pixel's label against the model's most probable class."""
    y_true = samples["label"].to_numpy()
    if len(y_true) == 0:
        raise ValueError("the test tiles hold no samples: nothing to validate the model on")
    y_pred = class_ids(metadata)[proba.argmax(axis=1)]
    auc = {class_id: auc for class_id, (_, _, auc) in roc_curves(y_true, proba, metadata).items()}
    return {
        "what": SAMPLED,
        "test_pixels": len(y_true),
        "test_tiles": {str(k): int(v) for k, v in samples["tile_id"].value_counts().sort_index().items()},
        **_section(scores(y_true, y_pred), classes, auc),
    }


def _read_pair(map_path, reference_path) -> tuple[np.ndarray, np.ndarray]:
    """A tile's map and its rasterised reference (band 1), refused unless they share a grid."""
    with rasterio.open(map_path) as map_src, rasterio.open(reference_path) as reference_src:
        if (map_src.shape, map_src.crs) != (reference_src.shape, reference_src.crs) or not (
            map_src.transform.almost_equals(reference_src.transform)
        ):
            raise ValueError(f"{map_path}: its grid differs from the reference raster {reference_path}")
        return map_src.read(1), reference_src.read(1)


def map_reference_counts(map_paths, reference_paths) -> tuple[np.ndarray, dict[str, dict]]:
    """Pixels per (reference class, map class) over the test tiles (`confusion_counts`), and per tile how many.

    Every pixel the register labels (band 1: rasterised, not eroded, so boundaries count); labelled pixels the
    map leaves as no data are in column 0 and counted per tile apart."""
    if len(map_paths) != len(reference_paths):
        raise ValueError(f"{len(map_paths)} test maps but {len(reference_paths)} reference rasters")
    counts = np.zeros((CLASS_VALUES, CLASS_VALUES), dtype=np.int64)
    tiles = {}
    for map_path, reference_path in zip(map_paths, reference_paths):
        mapped, reference = _read_pair(map_path, reference_path)
        tile_counts = confusion_counts(reference, mapped)
        counts += tile_counts
        tiles[Path(map_path).stem] = {
            "pixels": int(tile_counts[1:].sum()),
            "labelled_without_map_class": int(tile_counts[1:, NO_DATA].sum()),
        }
    return counts, tiles


def map_scores(counts: np.ndarray, tiles: dict, classes: tuple[LandCoverClass, ...]) -> dict:
    """metrics.json's headline: the map on every labelled pixel of the test tiles (`map_reference_counts`)."""
    if counts[1:].sum() == 0:
        raise ValueError(f"the test tiles {', '.join(tiles)} hold no labelled pixel: nothing to validate the map on")
    return {
        "what": HEADLINE,
        "test_pixels": int(counts[1:].sum()),
        "unmapped_pixels": int(counts[1:, NO_DATA].sum()),
        "test_tiles": {tile: t["pixels"] for tile, t in tiles.items()},
        **_section(counts_scores(counts), classes),
    }


def caveats(metrics: dict) -> list[str]:
    """Plain sentences for each way the test tiles cannot carry the report's figures."""
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
            f"The test tiles hold one reference class only ({present[0]['name']}): overall accuracy says "
            "nothing about confusion between classes."
        )
    for c in present:
        if c["support"] < MIN_CLASS_PIXELS:
            found.append(
                f"{c['name']}: {c['support']} labelled test pixels (fewer than {MIN_CLASS_PIXELS}): its precision, "
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
                f"{missed} labelled test pixels have no map class (no data): they count as errors in the headline "
                "scores, and the area estimate leaves them out."
            )
    return found


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


def score_against_truth(map_paths, truth_paths) -> dict:
    """Accuracy and weighted F1 of predicted tile maps against the synthetic generator's true land cover.

    Pixels the map leaves as no data are not scored; their share is reported."""
    if len(map_paths) != len(truth_paths):
        raise ValueError(f"{len(map_paths)} maps but {len(truth_paths)} truth files")
    counts = np.zeros((CLASS_VALUES, CLASS_VALUES), dtype=np.int64)
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
        tile_counts = confusion_counts(truth, prediction)
        tile_counts[:, NO_DATA] = 0  # unmapped pixels are not scored here
        counts += tile_counts
        pixels += prediction.size
        no_data += int((prediction == NO_DATA).sum())
        n_scored = int(tile_counts[1:].sum())
        tiles[grid.tile_id or Path(truth_path).stem] = {
            "overall_accuracy": float(tile_counts.trace() / n_scored) if n_scored else None,
            "scored_pixels": n_scored,
            "no_data_share": float((prediction == NO_DATA).mean()),
        }
    if counts[1:].sum() == 0:
        raise ValueError("no pixel is both predicted and in the truth: nothing to score")
    result = counts_scores(counts)
    return {
        "overall_accuracy": result["oa"],
        "f1_weighted": result["f1_weighted"],
        "scored_pixels": int(counts[1:].sum()),
        "no_data_share": no_data / pixels,
        "tiles": tiles,
    }
