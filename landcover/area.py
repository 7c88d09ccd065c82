"""Area estimates and accuracy with confidence intervals: the stratified estimator of Olofsson et al. 2014.

Olofsson, Foody, Herold, Stehman, Woodcock, Wulder (2014), "Good practices for estimating area and
assessing accuracy of land change", Remote Sensing of Environment 148, 42-57; equations 2-10.
The map classes are the strata: each class's mapped share W_i weights what the sample says about
its pixels, so a class the map over- or under-states is corrected by its confusion row. Plain
numpy; the caller counts the sample (rows = map class, columns = reference class) and the map.
`area_estimate` is metrics.json's section, from the test tiles' maps and the merged map.
"""

from __future__ import annotations

import numpy as np
import rasterio

from landcover.classes import NO_DATA
from landcover.report.metrics import CLASS_VALUES, class_names

Z_95 = 1.96  # two-sided 95 % of the normal distribution, rounded as in the paper
MIN_STRATUM_SAMPLE = 2  # a stratum's variance needs n_i - 1 > 0


def stratified_estimate(counts, mapped_pixels, pixel_area_ha: float, z: float = Z_95) -> dict:
    """Estimated area (ha), user's, producer's and overall accuracy, each with its +/- z * SE half-width.

    `counts[i, j]`: sample pixels mapped as class i whose reference class is j (one class order for
    rows and columns); `mapped_pixels[i]`: pixels the map gives class i. Strata with fewer than two
    sample pixels cannot be assessed: they are left out and every estimate covers the assessed
    strata only (`assessed_share` of the mapped area). Undefined values are NaN.
    """
    n = np.asarray(counts, dtype=np.float64)
    mapped = np.asarray(mapped_pixels, dtype=np.float64)
    if n.ndim != 2 or n.shape[0] != n.shape[1] or mapped.shape != (n.shape[0],):
        raise ValueError(f"counts must be square and match mapped_pixels: {n.shape} and {mapped.shape}")
    if (n < 0).any() or (mapped < 0).any():
        raise ValueError("counts and mapped pixels must not be negative")
    sampled = n.sum(axis=1)
    unmapped_but_sampled = (mapped == 0) & (sampled > 0)
    if unmapped_but_sampled.any():
        raise ValueError(
            f"classes at {np.flatnonzero(unmapped_but_sampled).tolist()} hold sample pixels but no mapped pixel"
        )
    assessed = (mapped > 0) & (sampled >= MIN_STRATUM_SAMPLE)
    if not assessed.any():
        raise ValueError(f"no map class holds {MIN_STRATUM_SAMPLE} or more sample pixels: nothing to estimate")

    strata_pixels = np.where(assessed, mapped, 0.0)  # N_i
    total_ha = strata_pixels.sum() * pixel_area_ha
    weight = strata_pixels / strata_pixels.sum()  # W_i
    share = _ratio(n, sampled[:, None]) * assessed[:, None]  # n_ij / n_i.
    dof = np.where(assessed, sampled - 1, np.inf)  # n_i. - 1
    cell_variance = share * (1 - share) / dof[:, None]

    proportion = weight @ share  # p_.j, eq. 9
    proportion_se = np.sqrt((weight**2) @ cell_variance)  # eq. 10
    users = np.where(assessed, np.diag(share), np.nan)  # eq. 2
    users_se = np.sqrt(np.where(assessed, users * (1 - users) / dof, np.nan))  # eq. 6
    overall = float(weight @ np.diag(share))  # eq. 1
    overall_se = float(np.sqrt(weight**2 @ np.diag(cell_variance)))  # eq. 5

    producers = _ratio(weight * np.diag(share), proportion, undefined=np.nan)  # eq. 3
    estimated_pixels = strata_pixels @ share  # N_.j
    own = strata_pixels**2 * (1 - producers) ** 2 * np.diag(cell_variance)
    others = (strata_pixels**2) @ cell_variance - strata_pixels**2 * np.diag(cell_variance)
    producers_se = np.sqrt(_ratio(own + producers**2 * others, estimated_pixels**2, undefined=np.nan))  # eq. 7

    return {
        "assessed": assessed,
        "assessed_share": float(strata_pixels.sum() / mapped.sum()),
        "total_area_ha": float(total_ha),
        "mapped_area_ha": mapped * pixel_area_ha,
        "weight": weight,
        "sample_pixels": sampled.astype(np.int64),
        "area_ha": proportion * total_ha,
        "area_ci_ha": z * proportion_se * total_ha,
        "users_accuracy": users,
        "users_accuracy_ci": z * users_se,
        "producers_accuracy": producers,
        "producers_accuracy_ci": z * producers_se,
        "overall_accuracy": overall,
        "overall_accuracy_ci": z * overall_se,
    }


def _ratio(numerator, denominator, undefined: float = 0.0) -> np.ndarray:
    numerator, denominator = np.broadcast_arrays(np.asarray(numerator, float), np.asarray(denominator, float))
    return np.divide(numerator, denominator, out=np.full(numerator.shape, undefined), where=denominator > 0)


def pixel_area_ha(src: rasterio.DatasetReader) -> float:
    """One pixel's area in hectares; a map in degrees has no constant pixel area, so it is refused."""
    if src.crs is None or not src.crs.is_projected:
        raise ValueError(f"{src.name}: CRS {src.crs} is not a projected one; pixel areas need metres")
    _, metres_per_unit = src.crs.linear_units_factor
    return abs(src.transform.determinant) * metres_per_unit**2 / 10_000


def mapped_pixels(path) -> tuple[np.ndarray, float]:
    """Pixels per class id (256 counts, index 0 is no data) of a class map, read block by block, and a pixel's ha."""
    counts = np.zeros(CLASS_VALUES, dtype=np.int64)
    with rasterio.open(path) as src:
        for _, window in src.block_windows(1):
            counts += np.bincount(src.read(1, window=window).ravel(), minlength=CLASS_VALUES)
        return counts, pixel_area_ha(src)


def _number(value) -> float | None:
    return None if value is None or np.isnan(value) else float(value)


def area_estimate(counts: np.ndarray, mapped: np.ndarray, pixel_ha: float, classes, tiles: dict) -> dict:
    """metrics.json's `area_estimate`: Olofsson et al. (2014) with the map classes as strata, 95 % intervals.

    `counts` rows are reference classes, columns map classes (`landcover.report.metrics.map_reference_counts`;
    pixels without a reference or a map class are left out); `mapped` the whole map's pixels per class
    (`mapped_pixels`)."""
    sample = np.asarray(counts).T.copy()  # rows: map class, as the estimator takes them
    sample[NO_DATA, :] = sample[:, NO_DATA] = 0
    ids = np.union1d(np.flatnonzero(mapped[1:]) + 1, np.flatnonzero(sample.sum(axis=0) + sample.sum(axis=1)))
    sample = sample[np.ix_(ids, ids)]
    estimate = stratified_estimate(sample, mapped[ids], pixel_ha)
    map_sample, reference_sample = sample.sum(axis=1), sample.sum(axis=0)
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
            for i, (class_id, name) in enumerate(zip(ids, class_names(classes, ids)))
        ],
        "counts": {
            "labels": ids.tolist(),
            "rows": "map class",
            "columns": "reference class",
            "counts": sample.tolist(),
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
