"""``analyze``: per-variant scores or sufficient statistics in, a ``Report`` with a decision out."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from ._collect import Collected, MetricChoice, ScoreCollector, check_metric, check_per
from ._errors import ConfigurationError, check_confidence
from ._model import Comparison, MetricKind, SRMCheck, VariantSummary
from ._report import Report, format_ci, format_number, format_p
from ._sufficient import MeanStats, ProportionStats, Stats
from ._tests import holm_adjust, mean_ci, proportions_test, srm_check, welch_test

__all__ = ["analyze", "build_report", "check_weights", "default_control"]

VariantData = Iterable[Any] | MeanStats | ProportionStats
"""One variant: its scores (numbers or booleans) or its sufficient statistics."""

_CONTROL_NAMES = ("control", "baseline", "production", "a")


def default_control(names: Sequence[str]) -> str:
    """Default control: a variant named control/baseline/production/A, else the first."""
    lowered = {name.lower(): name for name in names}
    for candidate in _CONTROL_NAMES:
        if candidate in lowered:
            return lowered[candidate]
    return names[0]


NO_SPLIT_NOTE = "sample ratio not checked: no configured split"


def check_weights(weights: Mapping[str, float] | None, names: Sequence[str]) -> dict[str, float] | None:
    """Configured weights, checked against the variant names; None when no split was configured.

    No weights means no known split: the sample-ratio check is skipped rather than run against an
    assumed equal split.
    """
    if weights is None:
        return None
    if not isinstance(weights, Mapping):
        raise ConfigurationError(f"weights must be a mapping of variant name to weight, got {weights!r}")
    if set(weights) != set(names):
        missing = sorted(set(names) - set(weights))
        extra = sorted(set(weights) - set(names))
        raise ConfigurationError(
            f"weights must name exactly the variants {sorted(names)}: missing {missing}, unknown {extra}"
        )
    checked: dict[str, float] = {}
    for name in names:
        w = weights[name]
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ConfigurationError(f"weight of {name!r} must be a finite number >= 0, got {w!r}")
        checked[name] = float(w)
    if not sum(checked.values()) > 0:
        raise ConfigurationError("weights must sum to more than 0")
    return checked


def analyze(
    data: Mapping[str, VariantData] | ScoreCollector,
    *,
    control: str | None = None,
    users: Mapping[str, Sequence[Hashable | None]] | None = None,
    per: str = "user",
    weights: Mapping[str, float] | None = None,
    confidence: float = 0.95,
    metric: str = "auto",
    higher_is_better: bool = True,
    score: str | None = None,
    experiment: str | None = None,
) -> Report:
    """Compare every variant with ``control`` (default: the first) from scores or statistics.

    Boolean scores get a two-proportion test, numbers a Welch t-test; with ``users`` (ids parallel
    to each variant's scores) each user's scores are averaged first, unless ``per="observation"``.
    ``data`` may also be a ``ScoreCollector`` that scores were streamed into (its ``per`` applies).
    ``weights`` is the configured split: only with it is the sample ratio checked (and a mismatch
    blocks the decision); without it the report notes that the ratio was not checked.

    >>> report = analyze({"A": [3, 4, 5, 4, 3], "B": [5, 6, 5, 6, 7]}, control="A")
    >>> report.winner
    'B'
    """
    if isinstance(data, ScoreCollector):
        return _analyze_collector(
            data, control, users, weights, confidence, metric, higher_is_better, score, experiment
        )
    if not isinstance(data, Mapping) or not data:
        raise ConfigurationError("data must be a non-empty mapping of variant name to scores")
    names = list(data)
    for name in names:
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"variant names must be non-empty strings, got {name!r}")
    confidence = check_confidence(confidence)
    unit = check_per(per)
    chosen = check_metric(metric)
    control = _check_control(control, names)
    weights = check_weights(weights, names)
    raw = [name for name in names if not isinstance(data[name], (MeanStats, ProportionStats))]
    if users is not None:
        _check_users(users, data, raw)
    by_user = unit == "user" and users is not None
    collector = ScoreCollector(raw, per="user" if by_user else "observation")
    for name in raw:
        values = data[name]
        if isinstance(values, (str, bytes, Mapping)):
            raise ConfigurationError(
                f"scores of {name!r} must be a sequence of numbers or booleans, got {type(values).__name__}"
            )
        ids = users.get(name) if users is not None else None
        for i, value in enumerate(values):  # type: ignore[arg-type]  # non-stats narrowed above
            collector.add(name, value, user=ids[i] if ids is not None else None)
    collected = _merge(collector.collect(chosen) if raw else None, data, names, chosen)
    if unit == "user" and not by_user and raw:
        note = "no user ids given: each score is its own unit (pass users= to analyse per user)"
        collected = dataclasses.replace(collected, notes=(note,))
    srm_counts: dict[str, int] | None = None
    if users is not None and not by_user and len(raw) == len(names):
        # per observation, users are still the unit of assignment: count them for the SRM check
        srm_counts = {name: _distinct_units(users[name]) for name in names}
    return build_report(
        collected,
        control=control,
        weights=weights,
        confidence=confidence,
        higher_is_better=higher_is_better,
        score=score,
        experiment=experiment,
        srm_counts=srm_counts,
        srm_note="the sample-ratio check counts distinct users (the unit of assignment), not scores",
    )


def _distinct_units(ids: Sequence[Hashable | None]) -> int:
    """Distinct user ids; a score without one is its own unit."""
    return len({i for i in ids if i is not None}) + sum(1 for i in ids if i is None)


def _analyze_collector(
    collector: ScoreCollector,
    control: str | None,
    users: object,
    weights: Mapping[str, float] | None,
    confidence: float,
    metric: str,
    higher_is_better: bool,
    score: str | None,
    experiment: str | None,
) -> Report:
    names = collector.variants
    if not names:
        raise ConfigurationError("the ScoreCollector has no variants: add scores first")
    if users is not None:
        raise ConfigurationError("users= does not apply to a ScoreCollector: pass user= to its add()")
    confidence = check_confidence(confidence)
    chosen = check_metric(metric)
    collected = collector.collect(chosen)
    checked = check_weights(weights, names)
    if checked is not None and collected.per == "observation" and len(names) > 1:
        note = (
            "the sample-ratio check counts scores: a per-observation ScoreCollector keeps no user ids, "
            "so it can flag variants whose users send more requests (collect per user to count users)"
        )
        collected = dataclasses.replace(collected, notes=(*collected.notes, note))
    return build_report(
        collected,
        control=_check_control(control, names),
        weights=checked,
        confidence=confidence,
        higher_is_better=higher_is_better,
        score=score,
        experiment=experiment,
    )


def _check_control(control: str | None, names: Sequence[str]) -> str:
    if control is None:
        return names[0]
    if control not in names:
        raise ConfigurationError(f"control {control!r} is not one of the variants {list(names)}")
    return control


def _check_users(users: Mapping[str, Sequence[Hashable | None]], data: Mapping[str, Any], raw: Sequence[str]) -> None:
    unknown = sorted(set(users) - set(data))
    if unknown:
        raise ConfigurationError(f"users= names unknown variants {unknown}; variants: {list(data)}")
    missing = [name for name in raw if name not in users]
    if missing:
        raise ConfigurationError(f"users= must give user ids for every variant; missing {missing}")
    for name, ids in users.items():
        if name not in raw:
            raise ConfigurationError(f"variant {name!r} is given as sufficient statistics, which carry no user ids")
        values = data[name]
        if not isinstance(values, Sequence) or len(ids) != len(values):
            raise ConfigurationError(f"users[{name!r}] must be a sequence as long as the scores of {name!r}")


def _merge(
    collected: Collected | None, data: Mapping[str, Any], names: Sequence[str], metric: MetricChoice
) -> Collected:
    """Combine collected raw scores with variants given as sufficient statistics."""
    given = {n: data[n] for n in names if isinstance(data[n], (MeanStats, ProportionStats))}
    if not given and collected is not None:
        return collected
    kinds = {"boolean" if isinstance(s, ProportionStats) else "continuous" for s in given.values()}
    if collected is not None and any(collected.observations.values()):
        kinds.add(collected.kind)
    if metric == "boolean" and "continuous" in kinds:
        raise ConfigurationError("metric='boolean' but some variants hold numeric statistics")
    kind: MetricKind = "continuous" if metric == "continuous" or "continuous" in kinds else "boolean"
    if metric == "auto" and len(kinds) > 1:
        raise ConfigurationError(
            "variants mix boolean and numeric data; pass metric='continuous' to treat booleans as 0/1 numbers"
        )
    stats: dict[str, Stats] = {}
    observations: dict[str, int] = {}
    for name in names:
        item = given.get(name)
        if item is None:
            assert collected is not None  # every other variant was collected
            item = collected.stats[name]
            observations[name] = collected.observations[name]
        else:
            observations[name] = item.n
        if kind == "continuous" and isinstance(item, ProportionStats):
            item = item.to_mean_stats()
        stats[name] = item
    if collected is None:
        return Collected(kind, "user", stats, observations)
    return Collected(kind, collected.per, stats, observations, collected.warnings, collected.notes)


def build_report(
    collected: Collected,
    *,
    control: str,
    weights: Mapping[str, float] | None,
    confidence: float,
    higher_is_better: bool = True,
    score: str | None = None,
    experiment: str | None = None,
    source: Mapping[str, int] | None = None,
    warnings: Sequence[str] = (),
    srm_counts: Mapping[str, int] | None = None,
    srm_note: str | None = None,
) -> Report:
    """Run the tests on collected statistics and assemble the report.

    The sample-ratio check runs only against configured ``weights``; with None it is skipped and
    noted. ``srm_counts`` (units assigned per variant, e.g. users, scored or not) replaces the
    analysed units in that check when the caller knows them; ``srm_note`` then says what they count.
    """
    names = list(collected.stats)
    total_weight = sum(weights.values()) if weights is not None else None
    summaries = tuple(
        _summary(
            name,
            collected,
            weights[name] / total_weight if weights is not None and total_weight else None,
            name == control,
            confidence,
        )
        for name in names
    )
    comparisons = [_compare(collected, control, name, confidence) for name in names if name != control]
    adjusted = holm_adjust([c.p_value for c in comparisons])
    alpha = 1.0 - confidence
    comparisons = [
        dataclasses.replace(c, p_value_adjusted=p, significant=p is not None and p < alpha)
        for c, p in zip(comparisons, adjusted, strict=True)
    ]
    notes = list(collected.notes)
    all_warnings = [*collected.warnings, *warnings]
    if len(comparisons) > 1:
        notes.append(
            f"p-values are Holm-adjusted across the {len(comparisons)} comparisons with control; "
            "intervals are per comparison"
        )
    srm: SRMCheck | None = None
    if len(names) < 2:
        all_warnings.append(f"only one variant ({names[0]!r}): nothing to compare")
    elif weights is None:
        notes.append(f"{NO_SPLIT_NOTE}; give the configured weights (weights=, --weights or an Experiment) to check it")
    else:
        observed = dict(srm_counts) if srm_counts is not None else {s.name: s.n for s in summaries}
        srm = srm_check(observed, weights)
        if srm_counts is not None:
            notes.append(srm_note or "the sample-ratio check counts every assigned unit, scored or not")
        if srm.flagged or any("unreliable" in n for n in srm.notes):
            all_warnings.extend(srm.notes)
    decision, winner = _decide(comparisons, srm, control, higher_is_better, collected)
    return Report(
        control=control,
        metric=collected.kind,
        per=collected.per,
        confidence=confidence,
        variants=summaries,
        comparisons=tuple(comparisons),
        srm=srm,
        decision=decision,
        winner=winner,
        warnings=tuple(all_warnings),
        notes=tuple(notes),
        experiment=experiment,
        score=score,
        higher_is_better=higher_is_better,
        source=dict(source or {}),
        stats=dict(collected.stats),
    )


def _summary(
    name: str, collected: Collected, share: float | None, is_control: bool, confidence: float
) -> VariantSummary:
    stats = collected.stats[name]
    boolean = isinstance(stats, ProportionStats)
    sd = stats.sd if isinstance(stats, MeanStats) else None
    if boolean and stats.n:
        sd = math.sqrt(stats.mean * (1.0 - stats.mean))
    return VariantSummary(
        name=name,
        n=stats.n,
        observations=collected.observations.get(name, stats.n),
        mean=stats.mean if stats.n else None,
        sd=sd,
        ci=mean_ci(stats, confidence),
        successes=stats.successes if isinstance(stats, ProportionStats) else None,
        expected_share=share,
        is_control=is_control,
    )


def _compare(collected: Collected, control: str, name: str, confidence: float) -> Comparison:
    a, b = collected.stats[control], collected.stats[name]
    if isinstance(a, ProportionStats) and isinstance(b, ProportionStats):
        return proportions_test(a, b, confidence=confidence, control_name=control, variant_name=name)
    a = a.to_mean_stats() if isinstance(a, ProportionStats) else a
    b = b.to_mean_stats() if isinstance(b, ProportionStats) else b
    return welch_test(a, b, confidence=confidence, control_name=control, variant_name=name)


def _decide(
    comparisons: Sequence[Comparison],
    srm: SRMCheck | None,
    control: str,
    higher_is_better: bool,
    collected: Collected,
) -> tuple[str, str | None]:
    """A one-paragraph decision and the winning variant, if any."""
    if not comparisons:
        return "nothing to compare: the data has a single variant", None
    if srm is not None and srm.flagged:
        return (
            f"do not decide: sample ratio mismatch (p={format_p(srm.p_value)}); the split of "
            "units does not match the configured weights, so fix assignment or logging first",
            None,
        )
    tested = [c for c in comparisons if c.p_value is not None]
    untested = [c for c in comparisons if c.p_value is None]
    skipped = "".join(f"; {c.variant} not tested: {c.notes[0]}" for c in untested if c.notes)
    if not tested:
        return f"cannot decide{skipped}", None
    control_stats = collected.stats[control]
    control_mean = control_stats.mean if control_stats.n else None
    sign = 1.0 if higher_is_better else -1.0
    better = [c for c in tested if c.significant and sign * (c.difference or 0.0) > 0]
    worse = [c for c in tested if c.significant and sign * (c.difference or 0.0) < 0]
    adjusted = " (Holm-adjusted)" if len(tested) > 1 else ""
    if better:
        best = max(better, key=lambda c: sign * (c.difference or 0.0))
        return (
            f"{best.variant} beats {control}: {_effect_text(best, control_mean)}, "
            f"p={format_p(best.p_value_adjusted)}{adjusted}{skipped}",
            best.variant,
        )
    if worse:
        names = ", ".join(c.variant for c in worse)
        winner = control if len(worse) == len(comparisons) else None
        return (
            f"keep {control}: {names} {'is' if len(worse) == 1 else 'are'} significantly worse "
            f"({'; '.join(f'{c.variant}: {_effect_text(c, control_mean)}' for c in worse)}){skipped}",
            winner,
        )
    mde = max((c.mde for c in tested if c.mde is not None), default=None)
    detectable = (
        f"; with this sample only differences beyond ±{format_number(mde)} are reliably "
        "detected (80% power), so keep the control or collect more data"
        if mde is not None
        else ""
    )
    return f"no significant difference from {control}{detectable}{skipped}", None


def _effect_text(c: Comparison, control_mean: float | None) -> str:
    text = f"difference {format_number(c.difference, signed=True)}"
    if c.ci is not None:
        text += f" (CI {format_ci(c.ci)})"
    if c.lift is not None:
        text += f", lift {c.lift:+.1%}"
        if control_mean is not None and control_mean < 0:
            # difference / control mean flips sign; difference / |control mean| reads the right way
            text += f" of a negative control mean ({-c.lift:+.1%} of |control mean|)"
    return text
