"""What the synthetic area is calibrated on, beside the map's accuracy on all pixels of the test tiles.

The interior is the truth eroded class by class with the reference's erosion radius: pixels whose
true class fills their neighbourhood. The gap between the accuracy there and on all pixels is what
mixed boundary pixels cost a map; the true class shares tell whether one class could carry the score.
"""

from __future__ import annotations

import numpy as np
import rasterio

from landcover import stack
from landcover.classes import NO_DATA
from landcover.reference import erode


def interior_and_shares(map_paths, truth_paths, erosion_radius: int) -> dict:
    """Accuracy on the interior pixels and the true class shares of all scored pixels.

    Scored pixels are those the map labels (as in `landcover.report.metrics.score_against_truth`, which also
    checks that map and truth share a grid)."""
    if len(map_paths) != len(truth_paths):
        raise ValueError(f"{len(map_paths)} maps but {len(truth_paths)} truth files")
    counts = np.zeros(256, dtype=np.int64)
    correct = interior = 0
    for map_path, truth_path in zip(map_paths, truth_paths):
        with stack.open(truth_path, required=("land_cover",)) as truth_ds:
            truth = stack.load(truth_ds["land_cover"].transpose("y", "x")).astype(np.uint8)
        with rasterio.open(map_path) as src:
            prediction = src.read(1)
        scored = (prediction != NO_DATA) & (truth != NO_DATA)
        counts += np.bincount(truth[scored], minlength=256)
        inside = scored & (erode(truth, erosion_radius) != NO_DATA)
        correct += int((prediction[inside] == truth[inside]).sum())
        interior += int(inside.sum())
    if interior == 0:
        raise ValueError("no interior pixel is predicted: nothing to score")
    return {
        "interior": {
            "overall_accuracy": correct / interior,
            "scored_pixels": interior,
            "share_of_scored": interior / int(counts.sum()),
            "erosion_radius": int(erosion_radius),
        },
        "true_class_shares": {str(c): float(counts[c] / counts.sum()) for c in np.flatnonzero(counts)},
    }
