"""Area estimates and accuracy with confidence intervals: the stratified estimator of Olofsson et al. 2014.

Olofsson, Foody, Herold, Stehman, Woodcock, Wulder (2014), "Good practices for estimating area and
assessing accuracy of land change", Remote Sensing of Environment 148, 42-57; equations 2-10.
The map classes are the strata: each class's mapped share W_i weights what the sample says about
its pixels, so a class the map over- or under-states is corrected by its confusion row. Plain
numpy; the caller counts the sample (rows = map class, columns = reference class) and the map.
"""

from __future__ import annotations

import numpy as np

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
