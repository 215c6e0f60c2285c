"""Golden values: our statistics equal scipy, statsmodels and gbstats on the same data (5 decimals),
and fixed decimals on a small dataset so a change of method cannot pass unnoticed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportion_effectsize,
    proportions_ztest,
)

from langfuse_versioned_prompts import stats
from langfuse_versioned_prompts.stats import MeanStats, ProportionStats

# A small fixed dataset (helpfulness scores 1-5 of two prompt versions).
CONTROL = [3.0, 4.0, 2.0, 5.0, 3.0, 4.0, 3.0, 2.0, 4.0, 3.0, 5.0, 3.0]
TREATMENT = [4.0, 5.0, 4.0, 3.0, 5.0, 4.0, 5.0, 4.0, 3.0, 5.0]

PLACES = 5


def welch() -> stats.Comparison:
    return stats.welch_test(MeanStats.of(CONTROL), MeanStats.of(TREATMENT), confidence=0.95)


def gb_mean(values: list[float]) -> SampleMeanStatistic:
    s = MeanStats.of(values)
    return SampleMeanStatistic(n=s.n, sum=s.sum, sum_squares=s.sum_squares)


def test_welch_equals_scipy_ttest_ind_unequal_variance() -> None:
    ours = welch()
    ref = sps.ttest_ind(TREATMENT, CONTROL, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-10)
    assert ours.p_value == pytest.approx(ref.pvalue, abs=1e-10)
    assert ours.df == pytest.approx(ref.df, abs=1e-10)
    assert ours.ci is not None
    assert round(ours.ci[0], PLACES) == round(ci.low, PLACES)
    assert round(ours.ci[1], PLACES) == round(ci.high, PLACES)


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.99])
def test_welch_ci_follows_the_confidence_level(confidence: float) -> None:
    ours = stats.welch_test(MeanStats.of(CONTROL), MeanStats.of(TREATMENT), confidence=confidence)
    ci = sps.ttest_ind(TREATMENT, CONTROL, equal_var=False).confidence_interval(confidence)
    assert ours.ci == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_welch_absolute_and_relative_equal_gbstats() -> None:
    ours = welch()
    absolute = TwoSidedTTest(
        gb_mean(CONTROL), gb_mean(TREATMENT), FrequentistConfig(difference_type="absolute")
    ).compute_result()
    relative = TwoSidedTTest(
        gb_mean(CONTROL), gb_mean(TREATMENT), FrequentistConfig(difference_type="relative")
    ).compute_result()
    assert ours.difference is not None and ours.ci is not None
    assert round(ours.difference, PLACES) == round(absolute.expected, PLACES)
    assert [round(x, PLACES) for x in ours.ci] == [round(x, PLACES) for x in absolute.ci]
    assert round(ours.p_value or 0, PLACES) == round(absolute.p_value, PLACES)
    assert ours.lift is not None and ours.lift_ci is not None
    assert round(ours.lift, PLACES) == round(relative.expected, PLACES)
    assert [round(x, PLACES) for x in ours.lift_ci] == [round(x, PLACES) for x in relative.ci]


def test_welch_on_a_large_random_sample_equals_scipy_and_gbstats() -> None:
    rng = np.random.default_rng(20250131)
    a = rng.normal(0.70, 0.20, 5000)
    b = rng.normal(0.72, 0.25, 4000)
    ours = stats.welch_test(MeanStats.of(a), MeanStats.of(b))
    ref = sps.ttest_ind(b, a, equal_var=False)
    gb = TwoSidedTTest(
        gb_mean(list(a)), gb_mean(list(b)), FrequentistConfig(difference_type="absolute")
    ).compute_result()
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-7)
    assert round(ours.p_value or 0, PLACES) == round(gb.p_value, PLACES)
    assert ours.ci == pytest.approx(tuple(gb.ci), abs=1e-7)


def test_hedges_g_fixed_decimals_and_cohens_d_by_hand() -> None:
    c, t = np.array(CONTROL), np.array(TREATMENT)
    pooled = math.sqrt(((len(c) - 1) * c.var(ddof=1) + (len(t) - 1) * t.var(ddof=1)) / (len(c) + len(t) - 2))
    d = (t.mean() - c.mean()) / pooled
    j = 1 - 3 / (4 * (len(c) + len(t)) - 9)
    ours = welch()
    assert ours.effect_size == pytest.approx(j * d, abs=1e-12)
    assert round(ours.effect_size or 0, PLACES) == 0.82925
    assert ours.effect_size_ci is not None
    assert [round(x, PLACES) for x in ours.effect_size_ci] == [-0.04499, 1.7035]


def test_small_dataset_fixed_decimals() -> None:
    r = welch()
    assert r.ci is not None and r.lift_ci is not None
    assert round(r.difference or 0, PLACES) == 0.78333
    assert round(r.statistic or 0, PLACES) == 2.05767
    assert round(r.df or 0, PLACES) == 19.96558
    assert round(r.p_value or 0, PLACES) == 0.05292
    assert [round(x, PLACES) for x in r.ci] == [-0.01086, 1.57752]
    assert round(r.lift or 0, PLACES) == 0.22927
    assert [round(x, PLACES) for x in r.lift_ci] == [-0.03491, 0.49345]


def test_two_proportions_equal_statsmodels() -> None:
    control, treatment = ProportionStats(400, 92), ProportionStats(380, 115)
    ours = stats.proportions_test(control, treatment)
    z, p = proportions_ztest([115, 92], [380, 400])
    low, high = confint_proportions_2indep(115, 380, 92, 400, method="wald", compare="diff")
    assert round(ours.statistic or 0, PLACES) == round(z, PLACES)
    assert round(ours.p_value or 0, PLACES) == round(p, PLACES)
    assert ours.ci is not None
    assert [round(x, PLACES) for x in ours.ci] == [round(low, PLACES), round(high, PLACES)]
    h = proportion_effectsize(115 / 380, 92 / 400)
    assert round(ours.effect_size or 0, PLACES) == round(h, PLACES)
    # fixed decimals
    assert round(ours.difference or 0, PLACES) == 0.07263
    assert round(ours.p_value or 0, PLACES) == 0.02166
    assert [round(x, PLACES) for x in ours.ci] == [0.01071, 0.13455]


def test_two_proportions_equal_gbstats_on_a_large_sample() -> None:
    # gbstats uses a t distribution with Welch df; at this n it equals the normal to 5 decimals.
    control, treatment = ProportionStats(250_000, 25_000), ProportionStats(250_000, 25_900)
    ours = stats.proportions_test(control, treatment)
    gb_a = ProportionStatistic(n=control.n, sum=control.successes)
    gb_b = ProportionStatistic(n=treatment.n, sum=treatment.successes)
    absolute = TwoSidedTTest(gb_a, gb_b, FrequentistConfig(difference_type="absolute")).compute_result()
    relative = TwoSidedTTest(gb_a, gb_b, FrequentistConfig(difference_type="relative")).compute_result()
    assert ours.ci is not None and ours.lift_ci is not None
    assert [round(x, PLACES) for x in ours.ci] == [round(x, PLACES) for x in absolute.ci]
    assert round(ours.lift or 0, PLACES) == round(relative.expected, PLACES)
    assert [round(x, PLACES) for x in ours.lift_ci] == [round(x, PLACES) for x in relative.ci]


def test_variant_cis_equal_scipy_t_interval_and_statsmodels_wilson() -> None:
    s = MeanStats.of(CONTROL)
    low, high = sps.t.interval(0.95, s.n - 1, loc=s.mean, scale=sps.sem(CONTROL))
    ours = stats.analyze({"A": CONTROL, "B": TREATMENT}).variant("A").ci
    assert ours == pytest.approx((low, high), abs=1e-10)
    wilson = stats.analyze({"A": [True] * 30 + [False] * 70, "B": [True] * 40 + [False] * 60})
    low, high = proportion_confint(30, 100, alpha=0.05, method="wilson")
    assert wilson.variant("A").ci == pytest.approx((low, high), abs=1e-10)


def test_holm_equals_statsmodels() -> None:
    p = [0.01, 0.04, 0.03, 0.2, 0.0001]
    _, expected, _, _ = multipletests(p, method="holm")
    assert stats.holm_adjust(p) == pytest.approx(list(expected), abs=1e-12)


def test_srm_equals_scipy_chisquare() -> None:
    observed = {"A": 5000, "B": 5210, "C": 4890}
    weights = {"A": 1.0, "B": 1.0, "C": 1.0}
    check = stats.srm_check(observed, weights)
    ref = sps.chisquare([5000, 5210, 4890])
    assert check.chi2 == pytest.approx(ref.statistic, abs=1e-9)
    assert check.p_value == pytest.approx(ref.pvalue, abs=1e-12)
    assert not check.flagged
    weighted = stats.srm_check({"A": 9000, "B": 1200}, {"A": 0.9, "B": 0.1})
    ref = sps.chisquare([9000, 1200], f_exp=[10200 * 0.9, 10200 * 0.1])
    assert weighted.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert weighted.flagged


@pytest.mark.parametrize(("mde", "sd"), [(0.1, 1.0), (0.25, 0.8), (2.0, 10.0)])
def test_sample_size_continuous_equals_statsmodels(mde: float, sd: float) -> None:
    ref = NormalIndPower().solve_power(effect_size=mde / sd, alpha=0.05, power=0.8)
    assert stats.required_sample_size(mde, sd=sd) == math.ceil(ref)


@pytest.mark.parametrize(("base", "mde"), [(0.1, 0.02), (0.5, 0.05), (0.3, -0.05)])
def test_sample_size_boolean_equals_statsmodels(base: float, mde: float) -> None:
    h = proportion_effectsize(base + mde, base)
    ref = NormalIndPower().solve_power(effect_size=h, alpha=0.05, power=0.9)
    assert stats.required_sample_size(mde, base_rate=base, power=0.9) == math.ceil(ref)


def test_sample_size_fixed_values() -> None:
    assert stats.required_sample_size(0.1, sd=1.0) == 1570
    assert stats.required_sample_size(0.05, base_rate=0.5) == 1565
    # Bonferroni split over 3 comparisons needs more users.
    assert stats.required_sample_size(0.1, sd=1.0, comparisons=3) > 1570


def test_seed_function_equals_scipy_welch() -> None:
    result = stats.analyze_ab_results(CONTROL, TREATMENT)
    ref = sps.ttest_ind(TREATMENT, CONTROL, equal_var=False)
    assert result["p_value"] == pytest.approx(ref.pvalue, abs=1e-12)
    c, t = np.array(CONTROL), np.array(TREATMENT)
    pooled = math.sqrt(((len(c) - 1) * c.var(ddof=1) + (len(t) - 1) * t.var(ddof=1)) / (len(c) + len(t) - 2))
    assert result["effect_size"] == pytest.approx((t.mean() - c.mean()) / pooled, abs=1e-12)
    assert round(result["effect_size"], PLACES) == 0.86199
