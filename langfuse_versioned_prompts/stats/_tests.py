"""Statistical tests on sufficient statistics: Welch, two proportions, Holm, SRM, sample size.

Methods (each checked against scipy, statsmodels or gbstats in the golden tests):

- Welch t-test with the Welch-Satterthwaite df; CI of the difference on the t distribution with the
  same df; relative lift CI by the delta method (as gbstats' ``difference_type="relative"``);
  Hedges' g with the Hedges-Olkin normal-approximation CI.
- Two proportions: z-test with the pooled variance (statsmodels ``proportions_ztest``), Wald CI of
  the difference (``confint_proportions_2indep(method="wald")``), delta-method lift CI on the
  normal distribution, Cohen's h with its arcsine-scale CI, Wilson CI for each rate.
- Holm step-down adjustment; SRM by Pearson's chi-square goodness of fit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

from ._errors import ConfigurationError, check_confidence
from ._model import Comparison, Interval, SRMCheck
from ._sufficient import MeanStats, ProportionStats

__all__ = [
    "SRM_THRESHOLD",
    "holm_adjust",
    "mean_ci",
    "proportions_test",
    "srm_check",
    "welch_test",
]

SRM_THRESHOLD = 0.001
"""An SRM chi-square p-value below this flags the experiment."""

_DESIGN_POWER = 0.8
"""Power used for the minimum detectable effect reported with every comparison."""

_NORMAL = NormalDist()


def _scipy_stats() -> Any:
    """``scipy.stats``, imported on first use, or an ImportError naming the extra to install."""
    try:
        import scipy.stats
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "langfuse_versioned_prompts.stats needs scipy for this test: "
            "pip install 'langfuse-versioned-prompts[stats]'"
        ) from exc
    return scipy.stats


def _z(confidence: float) -> float:
    """Two-sided normal critical value."""
    return _NORMAL.inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def _normal_p(z: float) -> float:
    """Two-sided normal p-value, exact in the far tail."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def _around(center: float, half: float) -> Interval:
    return (center - half, center + half)


def _ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or None when zero or not finite."""
    if denominator == 0.0:
        return None
    try:
        value = numerator / denominator
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _lift_ci(lift: float | None, mc: float, mt: float, vc: float, vt: float, crit: float) -> Interval | None:
    """Delta-method CI of ``mt / mc - 1`` given the variances of the two means."""
    if lift is None:
        return None
    try:
        ratio = mt / mc
        half = crit * math.sqrt(vt + vc * ratio * ratio) / abs(mc)
    except (OverflowError, ZeroDivisionError):
        return None
    return _around(lift, half) if math.isfinite(half) and half > 0.0 else None


def _finite(**fields: Any) -> Comparison:
    """A Comparison whose non-finite numbers (overflow at extreme inputs) become None, noted."""
    lost: list[str] = []
    for key, value in list(fields.items()):
        if key == "notes":
            continue
        bad = (isinstance(value, float) and not math.isfinite(value)) or (
            isinstance(value, tuple) and not all(math.isfinite(x) for x in value)
        )
        if bad:
            fields[key] = None
            lost.append(key)
    if lost:
        note = f"not computable at this numeric range (overflow): {', '.join(lost)}"
        fields["notes"] = (*fields.get("notes", ()), note)
    return Comparison(**fields)


def _empty_note(control_name: str, control_n: int, variant_name: str, variant_n: int) -> str:
    empty = [name for name, n in ((control_name, control_n), (variant_name, variant_n)) if n == 0]
    verb = "have" if len(empty) > 1 else "has"
    return f"{' and '.join(repr(e) for e in empty)} {verb} no scores: nothing to compare"


def welch_test(
    control: MeanStats,
    treatment: MeanStats,
    *,
    confidence: float = 0.95,
    control_name: str = "control",
    variant_name: str = "treatment",
) -> Comparison:
    """Welch's unequal-variance t-test of ``treatment - control``, with CIs and Hedges' g.

    >>> r = welch_test(MeanStats.of([1, 2, 3, 4]), MeanStats.of([3, 4, 5, 6, 7]))
    >>> round(r.difference, 3), round(r.p_value, 4)
    (2.5, 0.0349)
    """
    confidence = check_confidence(confidence)
    base: dict[str, Any] = {"variant": variant_name, "control": control_name, "test": "welch_t"}
    nc, nt = control.n, treatment.n
    if nc == 0 or nt == 0:
        return _finite(**base, notes=(_empty_note(control_name, nc, variant_name, nt),))
    notes: list[str] = []
    mc, mt = control.mean, treatment.mean
    diff = mt - mc
    lift = _ratio(diff, mc)
    if lift is None:
        notes.append(f"control {control_name!r} has mean 0 (or too near 0): no relative lift")
    elif mc < 0.0:
        notes.append(
            f"control {control_name!r} has a negative mean ({mc:.4g}): the relative lift is difference / "
            f"control mean, so it has the opposite sign of the difference; relative to |control mean| "
            f"it is {-lift:+.1%}"
        )
    if nc < 2 or nt < 2:
        few = [repr(name) for name, n in ((control_name, nc), (variant_name, nt)) if n < 2]
        notes.append(
            f"{' and '.join(few)} {'have' if len(few) > 1 else 'has'} a single score: "
            "a variance, and so a test, needs at least 2 per variant"
        )
        return _finite(**base, difference=diff, lift=lift, notes=tuple(notes))
    vc = control.m2 / (nc - 1) / nc
    vt = treatment.m2 / (nt - 1) / nt
    se2 = vc + vt
    if se2 <= 0.0:
        notes.append(
            "both variants have zero variance (all scores equal within each variant): "
            "the difference is exact, but no test or interval is possible"
        )
        return _finite(**base, difference=diff, lift=lift, notes=tuple(notes))
    for name, v in ((control_name, vc), (variant_name, vt)):
        if v == 0.0:
            notes.append(f"{name!r} has zero variance (every score equal)")
    sps = _scipy_stats()
    se = math.sqrt(se2)
    rc, rt = vc / max(vc, vt), vt / max(vc, vt)  # scaled so squares cannot underflow
    df = (rc + rt) ** 2 / (rc * rc / (nc - 1) + rt * rt / (nt - 1))
    t = diff / se
    p = float(min(1.0, 2.0 * sps.t.sf(abs(t), df)))
    crit = float(sps.t.ppf(1.0 - (1.0 - confidence) / 2.0, df))
    lift_ci = _lift_ci(lift, mc, mt, vc, vt, crit)
    if lift is not None and abs(mc) <= crit * math.sqrt(vc):
        notes.append(
            f"the mean of control {control_name!r} is not clearly away from 0: "
            "the relative lift and its interval are unstable"
        )
    # Hedges' g: Cohen's d on the pooled sample sd, small-sample corrected.
    pooled_sd = math.sqrt((control.m2 + treatment.m2) / (nc + nt - 2))
    g = (1.0 - 3.0 / (4.0 * (nc + nt) - 9.0)) * diff / pooled_sd
    se_g = math.sqrt((nc + nt) / (nc * nt) + g * g / (2.0 * (nc + nt)))
    z = _z(confidence)
    return _finite(
        **base,
        difference=diff,
        ci=_around(diff, crit * se),
        lift=lift,
        lift_ci=lift_ci,
        statistic=t,
        df=df,
        p_value=p,
        p_value_adjusted=p,
        significant=p < 1.0 - confidence,
        effect_size=g,
        effect_size_ci=_around(g, z * se_g),
        effect_size_name="hedges_g",
        se=se,
        mde=(z + _NORMAL.inv_cdf(_DESIGN_POWER)) * se,
        notes=tuple(notes),
    )


def proportions_test(
    control: ProportionStats,
    treatment: ProportionStats,
    *,
    confidence: float = 0.95,
    control_name: str = "control",
    variant_name: str = "treatment",
) -> Comparison:
    """Two-proportion z-test of ``treatment - control`` with Wald CI, lift CI and Cohen's h.

    >>> r = proportions_test(ProportionStats(200, 40), ProportionStats(200, 62))
    >>> round(r.difference, 2), round(r.p_value, 4)
    (0.11, 0.0116)
    """
    confidence = check_confidence(confidence)
    base: dict[str, Any] = {
        "variant": variant_name,
        "control": control_name,
        "test": "two_proportion_z",
        "effect_size_name": "cohens_h",
    }
    nc, nt = control.n, treatment.n
    if nc == 0 or nt == 0:
        return _finite(**base, notes=(_empty_note(control_name, nc, variant_name, nt),))
    notes: list[str] = []
    pc, pt = control.mean, treatment.mean
    diff = pt - pc
    lift: float | None = diff / pc if pc > 0 else None
    if lift is None:
        notes.append(f"control {control_name!r} has no successes: the relative lift is undefined")
    h = 2.0 * math.asin(math.sqrt(pt)) - 2.0 * math.asin(math.sqrt(pc))
    z = _z(confidence)
    h_ci = _around(h, z * math.sqrt(1.0 / nc + 1.0 / nt))
    pooled = (control.successes + treatment.successes) / (nc + nt)
    se0 = math.sqrt(pooled * (1.0 - pooled) * (1.0 / nc + 1.0 / nt))
    if se0 == 0.0:
        outcome = "true" if pooled == 1.0 else "false"
        notes.append(f"every score is {outcome} in both variants: there is no difference to test")
        return _finite(
            **base, difference=diff, lift=lift, effect_size=h, effect_size_ci=h_ci,
            notes=tuple(notes),
        )  # fmt: skip
    for name, stats in ((control_name, control), (variant_name, treatment)):
        if min(stats.successes, stats.n - stats.successes) < 5:
            notes.append(
                f"{name!r} has fewer than 5 successes or failures: the normal approximation "
                "is rough (an exact test would be safer)"
            )
    stat = diff / se0
    p = min(1.0, _normal_p(stat))
    se = math.sqrt(pc * (1.0 - pc) / nc + pt * (1.0 - pt) / nt)
    ci: Interval | None = None
    lift_ci: Interval | None = None
    if se > 0.0:
        ci = _around(diff, z * se)
        if (p < 1.0 - confidence) == (ci[0] <= 0.0 <= ci[1]):
            notes.append(
                "the pooled z-test and the Wald interval disagree at this confidence level (a borderline result)"
            )
    else:
        notes.append(
            "each variant is all true or all false: the Wald interval would have zero width, so no interval is given"
        )
    if lift is not None:
        lift_ci = _lift_ci(lift, pc, pt, pc * (1.0 - pc) / nc, pt * (1.0 - pt) / nt, z)
    return _finite(
        **base,
        difference=diff,
        ci=ci,
        lift=lift,
        lift_ci=lift_ci,
        statistic=stat,
        p_value=p,
        p_value_adjusted=p,
        significant=p < 1.0 - confidence,
        effect_size=h,
        effect_size_ci=h_ci,
        se=se if se > 0.0 else se0,
        mde=(z + _NORMAL.inv_cdf(_DESIGN_POWER)) * (se if se > 0.0 else se0),
        notes=tuple(notes),
    )


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values, in input order; ``None`` entries stay ``None``.

    >>> holm_adjust([0.01, None, 0.04, 0.03])
    [0.03, None, 0.06, 0.06]
    """
    for p in p_values:
        if p is not None and not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
            raise ConfigurationError(f"p-values must lie in [0, 1], got {p!r}")
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    order = [i for _, i in sorted(present)]
    m = len(order)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        p = p_values[i]
        assert p is not None  # filtered above
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def srm_check(
    observed: Mapping[str, int],
    weights: Mapping[str, float] | None = None,
    *,
    threshold: float = SRM_THRESHOLD,
) -> SRMCheck:
    """Chi-square test of the observed units per variant against the configured weights.

    Equal weights by default; flagged when ``p < threshold`` (0.001).

    >>> srm_check({"A": 5000, "B": 5400}).flagged
    True
    """
    names = list(observed)
    weights = dict.fromkeys(names, 1.0) if weights is None else dict(weights)
    if set(weights) != set(names):
        raise ConfigurationError(f"weights name the variants {sorted(weights)}, but the data has {sorted(names)}")
    total_weight = math.fsum(weights.values())
    if any(not math.isfinite(w) or w < 0 for w in weights.values()) or not total_weight > 0:
        raise ConfigurationError(f"weights must be finite, >= 0 and sum to > 0, got {weights}")
    share = {name: weights[name] / total_weight for name in names}
    total = sum(observed.values())
    notes: list[str] = []
    base: dict[str, Any] = {
        "observed": dict(observed), "expected_share": share, "threshold": threshold,
    }  # fmt: skip
    if total == 0 or len(names) < 2:
        notes.append("fewer than two variants with units: no sample-ratio check")
        return SRMCheck(**base, chi2=None, df=None, p_value=None, flagged=False, notes=tuple(notes))
    impossible = [n for n in names if share[n] == 0.0 and observed[n] > 0]
    if impossible:
        notes.append(f"{', '.join(map(repr, impossible))} got units but has weight 0")
        return SRMCheck(**base, chi2=math.inf, df=None, p_value=0.0, flagged=True, notes=tuple(notes))
    cells = [(observed[n], total * share[n]) for n in names if share[n] > 0.0]
    df = len(cells) - 1
    if df < 1:
        notes.append("only one variant has weight: no sample-ratio check")
        return SRMCheck(**base, chi2=None, df=None, p_value=None, flagged=False, notes=tuple(notes))
    chi2 = math.fsum((o - e) ** 2 / e for o, e in cells)
    p = float(_scipy_stats().chi2.sf(chi2, df))
    if min(e for _, e in cells) < 5:
        notes.append("an expected count is below 5: the chi-square check is unreliable")
    if p < threshold:
        observed_text = ", ".join(f"{n}={observed[n]}" for n in names)
        expected_text = ", ".join(f"{n}={share[n]:.1%}" for n in names)
        notes.append(
            f"sample ratio mismatch (p={p:.2g}): observed {observed_text} against the expected "
            f"split {expected_text}; assignment or logging is broken, so the comparison is not "
            "trustworthy"
        )
    return SRMCheck(**base, chi2=chi2, df=df, p_value=p, flagged=p < threshold, notes=tuple(notes))


def mean_ci(stats: MeanStats | ProportionStats, confidence: float = 0.95) -> Interval | None:
    """CI of one variant's mean: t interval, or Wilson for a rate; None when not computable."""
    confidence = check_confidence(confidence)
    if isinstance(stats, ProportionStats):
        if stats.n == 0:
            return None
        z = _z(confidence)
        n, p = stats.n, stats.mean
        denominator = 1.0 + z * z / n
        center = (p + z * z / (2 * n)) / denominator
        half = z / denominator * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n))
        return _around(center, half)
    if stats.n < 2:
        return None
    sd = stats.sd
    assert sd is not None  # n >= 2
    if sd == 0.0:
        return (stats.mean, stats.mean)
    crit = float(_scipy_stats().t.ppf(1.0 - (1.0 - confidence) / 2.0, stats.n - 1))
    return _around(stats.mean, crit * sd / math.sqrt(stats.n))
