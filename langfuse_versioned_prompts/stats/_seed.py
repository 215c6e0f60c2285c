"""``analyze_ab_results``: the seed's function and keys, computed correctly.

The seed used the population standard deviation, an equal-variance t-test and a hard-wired
``p < 0.05`` in its recommendation. Here: sample standard deviations, Welch's t-test, and the
asked confidence level throughout.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ._collect import ScoreCollector
from ._errors import check_confidence
from ._sufficient import MeanStats
from ._tests import welch_test

__all__ = ["analyze_ab_results"]


def analyze_ab_results(
    control_scores: Iterable[float],
    treatment_scores: Iterable[float],
    confidence: float = 0.95,
    *,
    min_effect_size: float = 0.2,
) -> dict[str, Any]:
    """Welch t-test of treatment against control, as a dict with the seed's keys and more.

    Seed keys: ``control_mean``, ``treatment_mean``, ``p_value``, ``significant``,
    ``effect_size`` (Cohen's d on the pooled *sample* sd), ``recommendation`` (``"treatment"``
    when significant at ``confidence`` with ``effect_size > min_effect_size``, else ``"control"``).
    Values that cannot be computed are None and ``warnings`` says why.

    >>> r = analyze_ab_results([3, 4, 5, 4, 3], [5, 6, 5, 6, 7])
    >>> r["recommendation"], round(r["p_value"], 4)
    ('treatment', 0.0054)
    """
    confidence = check_confidence(confidence)
    collector = ScoreCollector(("control", "treatment"), per="observation")
    for name, values in (("control", control_scores), ("treatment", treatment_scores)):
        for value in values:
            collector.add(name, value)
    collected = collector.collect("continuous")
    control, treatment = collected.stats["control"], collected.stats["treatment"]
    assert isinstance(control, MeanStats) and isinstance(treatment, MeanStats)
    result = welch_test(control, treatment, confidence=confidence)
    warnings = [*collected.warnings, *result.notes]

    cohens_d: float | None = None
    if control.n >= 2 and treatment.n >= 2:
        pooled = math.sqrt((control.m2 + treatment.m2) / (control.n + treatment.n - 2))
        if pooled > 0:
            cohens_d = (treatment.mean - control.mean) / pooled
    significant = result.p_value is not None and result.p_value < 1.0 - confidence
    adopt = significant and cohens_d is not None and cohens_d > min_effect_size
    if adopt:
        reason = (
            f"treatment is better at {confidence:.0%} confidence with effect size {cohens_d:.2f} > {min_effect_size}"
        )
    elif result.p_value is None:
        reason = "no test was possible: " + "; ".join(result.notes)
    elif not significant:
        reason = f"no significant difference at {confidence:.0%} confidence"
    elif cohens_d is not None and cohens_d <= 0:
        reason = "treatment is significantly worse"
    else:
        reason = f"significant, but effect size {cohens_d:.2f} <= {min_effect_size}"
    return {
        "control_mean": control.mean if control.n else None,
        "treatment_mean": treatment.mean if treatment.n else None,
        "p_value": result.p_value,
        "significant": significant,
        "effect_size": cohens_d,
        "recommendation": "treatment" if adopt else "control",
        "recommendation_reason": reason,
        "test": "welch_t",
        "confidence": confidence,
        "n_control": control.n,
        "n_treatment": treatment.n,
        "control_sd": control.sd,
        "treatment_sd": treatment.sd,
        "difference": result.difference,
        "ci_low": result.ci[0] if result.ci else None,
        "ci_high": result.ci[1] if result.ci else None,
        "lift": result.lift,
        "lift_ci_low": result.lift_ci[0] if result.lift_ci else None,
        "lift_ci_high": result.lift_ci[1] if result.lift_ci else None,
        "t_statistic": result.statistic,
        "df": result.df,
        "hedges_g": result.effect_size,
        "hedges_g_ci_low": result.effect_size_ci[0] if result.effect_size_ci else None,
        "hedges_g_ci_high": result.effect_size_ci[1] if result.effect_size_ci else None,
        "warnings": warnings,
    }
