"""The stratified area estimator against Olofsson et al. (2014)'s worked example, a census and a simulation."""

from __future__ import annotations

import numpy as np
import pytest

from landcover.area import stratified_estimate

# Olofsson et al. 2014, Remote Sensing of Environment 148, section 5 and Table 8: rows = map class,
# columns = reference class (deforestation, forest gain, stable forest, stable non-forest), 30 m pixels.
TABLE_8_COUNTS = [[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]]
TABLE_8_MAPPED = [200_000, 150_000, 3_200_000, 6_450_000]
HECTARES_30M = 0.09


def test_olofsson_2014_worked_example():
    result = stratified_estimate(TABLE_8_COUNTS, TABLE_8_MAPPED, HECTARES_30M)

    np.testing.assert_allclose(result["area_ha"], [21_158, 11_686, 285_770, 581_386], atol=0.5)
    np.testing.assert_allclose(result["area_ci_ha"], [6_158, 3_756, 15_510, 16_282], atol=0.5)
    assert result["overall_accuracy"] == pytest.approx(0.9465, abs=5e-5)
    assert result["overall_accuracy_ci"] == pytest.approx(0.0185, abs=5e-5)
    np.testing.assert_allclose(result["users_accuracy"], [0.88, 0.733, 0.927, 0.963], atol=5e-4)
    np.testing.assert_allclose(result["producers_accuracy"], [0.75, 0.85, 0.93, 0.96], atol=5e-3)  # section 5.1
    assert result["total_area_ha"] == pytest.approx(900_000) and result["assessed_share"] == 1.0
    assert result["area_ha"].sum() == pytest.approx(900_000)


def test_a_census_gives_the_reference_areas_exactly_with_no_interval():
    """Every pixel sampled: the estimate is the reference's own area and accuracy (n_i - 1 -> the census)."""
    rng = np.random.default_rng(0)
    mapped = rng.choice(4, size=20_000, p=[0.5, 0.3, 0.15, 0.05])
    reference = np.where(rng.random(20_000) < 0.8, mapped, rng.choice(5, size=20_000))
    counts = np.zeros((5, 5))
    np.add.at(counts, (mapped, reference), 1)
    result = stratified_estimate(counts, np.bincount(mapped, minlength=5), 1.0)

    np.testing.assert_allclose(result["area_ha"], np.bincount(reference, minlength=5))
    assert result["overall_accuracy"] == pytest.approx((mapped == reference).mean())
    producers = [((mapped == c) & (reference == c)).sum() / (reference == c).sum() for c in range(5)]
    np.testing.assert_allclose(result["producers_accuracy"], producers)
    assert np.isnan(result["users_accuracy"][4])  # class 4 is never mapped: not a stratum


def test_intervals_cover_the_true_area_about_95_percent_of_the_time():
    """Repeated stratified samples of a known population: each 95 % interval (area, producer's and overall
    accuracy, eq. 5, 7, 10) holds the truth 92-98 % of the time."""
    rng = np.random.default_rng(1)
    mapped = rng.choice(3, size=200_000, p=[0.7, 0.2, 0.1])
    confusion = np.array([[0.9, 0.07, 0.03], [0.15, 0.8, 0.05], [0.1, 0.2, 0.7]])
    reference = np.empty_like(mapped)
    for m in range(3):
        where = mapped == m
        reference[where] = rng.choice(3, size=where.sum(), p=confusion[m])
    true_area = np.bincount(reference, minlength=3)
    true_overall = (mapped == reference).mean()
    strata = [np.flatnonzero(mapped == m) for m in range(3)]
    mapped_pixels = np.bincount(mapped, minlength=3)
    true_producers = [((mapped == c) & (reference == c)).sum() / (reference == c).sum() for c in range(3)]
    covered_area, covered_producers, covered_overall, repeats = np.zeros(3), np.zeros(3), 0, 800
    for _ in range(repeats):
        counts = np.zeros((3, 3))
        for m, size in zip(range(3), (300, 250, 250)):
            drawn = reference[rng.choice(strata[m], size=size, replace=False)]
            counts[m] = np.bincount(drawn, minlength=3)
        result = stratified_estimate(counts, mapped_pixels, 1.0)
        covered_area += np.abs(result["area_ha"] - true_area) <= result["area_ci_ha"]
        covered_producers += np.abs(result["producers_accuracy"] - true_producers) <= result["producers_accuracy_ci"]
        covered_overall += abs(result["overall_accuracy"] - true_overall) <= result["overall_accuracy_ci"]
    for covered in (covered_area, covered_producers):
        assert ((0.92 <= covered / repeats) & (covered / repeats <= 0.98)).all(), covered / repeats
    assert 0.92 <= covered_overall / repeats <= 0.98


def test_a_stratum_with_too_few_sample_pixels_is_left_out_and_said_so():
    counts = np.array([[40, 2, 0], [1, 0, 0], [3, 1, 30]])
    result = stratified_estimate(counts, [500, 100, 400], 1.0)
    assert result["assessed"].tolist() == [True, False, True]
    assert result["assessed_share"] == pytest.approx(0.9) and result["total_area_ha"] == pytest.approx(900)
    assert result["area_ha"].sum() == pytest.approx(900)
    assert np.isnan(result["users_accuracy"][1]) and np.isnan(result["users_accuracy_ci"][1])


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="no mapped pixel"):
        stratified_estimate([[5, 1], [2, 3]], [10, 0], 1.0)
    with pytest.raises(ValueError, match="nothing to estimate"):
        stratified_estimate([[1, 0], [0, 1]], [10, 10], 1.0)
    with pytest.raises(ValueError, match="square"):
        stratified_estimate([[1, 0, 0], [0, 1, 0]], [10, 10], 1.0)
