"""Sufficient statistics: summable in any order and partition, precise at large offsets."""

from __future__ import annotations

import itertools
import math
import statistics
from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langfuse_versioned_prompts import ConfigurationError
from langfuse_versioned_prompts.stats import (
    MeanStats,
    ProportionStats,
    ScoreCollector,
    proportions_test,
    welch_test,
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def partitions(values: list[float], cuts: list[int], order: list[int]) -> list[MeanStats]:
    """Split ``values`` at ``cuts``, then shuffle the parts by ``order``."""
    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})
    parts = [MeanStats.of(values[a:b]) for a, b in itertools.pairwise(bounds)]
    ranked = sorted(range(len(parts)), key=lambda i: order[i % len(order)] if order else i)
    return [parts[i] for i in ranked]


def close(a: MeanStats, b: MeanStats) -> bool:
    scale = max(1.0, abs(a.mean), abs(b.mean))
    return (
        a.n == b.n
        and math.isclose(a.mean, b.mean, rel_tol=1e-9, abs_tol=1e-9 * scale)
        and math.isclose(a.m2, b.m2, rel_tol=1e-7, abs_tol=1e-6 * scale * scale)
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(finite, min_size=0, max_size=60),
    st.lists(st.integers(min_value=0, max_value=100), max_size=8),
    st.lists(st.integers(), max_size=8),
)
def test_adding_in_any_partition_and_order_gives_the_same_statistics(
    values: list[float], cuts: list[int], order: list[int]
) -> None:
    whole = MeanStats.of(values)
    merged = reduce(lambda a, b: a + b, partitions(values, cuts, order), MeanStats())
    assert close(merged, whole)
    streamed = reduce(lambda s, v: s.add(v), values, MeanStats())
    assert close(streamed, whole)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(finite, min_size=2, max_size=40),
    st.lists(finite, min_size=2, max_size=40),
    st.lists(st.integers(min_value=0, max_value=100), max_size=5),
)
def test_the_welch_result_does_not_depend_on_how_statistics_were_summed(
    a: list[float], b: list[float], cuts: list[int]
) -> None:
    direct = welch_test(MeanStats.of(a), MeanStats.of(b))
    summed = welch_test(
        reduce(lambda x, y: x + y, partitions(a, cuts, [])),
        reduce(lambda x, y: x + y, partitions(b, cuts[::-1], [])),
    )
    assert (direct.p_value is None) == (summed.p_value is None)
    if direct.p_value is not None and summed.p_value is not None:
        assert summed.p_value == pytest.approx(direct.p_value, rel=1e-6, abs=1e-9)


@given(st.lists(st.booleans(), max_size=80), st.lists(st.integers(0, 80), max_size=6))
def test_proportions_sum_exactly_in_any_partition(values: list[bool], cuts: list[int]) -> None:
    bounds = sorted({0, len(values), *(c % (len(values) + 1) for c in cuts)})
    parts = [ProportionStats.of(values[x:y]) for x, y in itertools.pairwise(bounds)]
    assert reduce(lambda x, y: y + x, reversed(parts), ProportionStats()) == ProportionStats.of(values)


@given(
    st.lists(st.booleans(), min_size=1, max_size=50),
    st.lists(st.booleans(), min_size=1, max_size=50),
)
def test_proportions_test_is_a_function_of_the_counts_only(a: list[bool], b: list[bool]) -> None:
    first = proportions_test(ProportionStats.of(a), ProportionStats.of(b))
    shuffled = proportions_test(ProportionStats.of(a[::-1]), ProportionStats.of(sorted(b)))
    assert first == shuffled


def test_mean_and_variance_match_the_statistics_module() -> None:
    values = [2.5, 3.0, 4.25, 1.0, 3.5]
    s = MeanStats.of(values)
    assert s.n == 5
    assert s.mean == pytest.approx(statistics.fmean(values))
    assert s.variance == pytest.approx(statistics.variance(values))
    assert s.sd == pytest.approx(statistics.stdev(values))
    assert s.sum == pytest.approx(sum(values))
    assert s.sum_squares == pytest.approx(sum(v * v for v in values))


def test_large_offsets_keep_their_variance() -> None:
    offset = 1e9
    values = [offset + x for x in (1.0, 2.0, 3.0, 4.0)]
    merged = MeanStats.of(values[:1]) + MeanStats.of(values[1:3]) + MeanStats().add(values[3])
    assert merged.variance == pytest.approx(5 / 3, rel=1e-9)
    assert MeanStats.of(values).variance == pytest.approx(5 / 3, rel=1e-12)


def test_from_sums_round_trips_the_gbstats_triple() -> None:
    s = MeanStats.of([1.0, 2.0, 4.0])
    again = MeanStats.from_sums(s.n, s.sum, s.sum_squares)
    assert again.n == 3 and again.mean == pytest.approx(s.mean) and again.m2 == pytest.approx(s.m2)
    assert MeanStats.from_sums(0, 0.0, 0.0) == MeanStats()


def test_small_samples_have_no_variance() -> None:
    assert MeanStats().variance is None
    assert MeanStats.of([3.0]).variance is None and MeanStats.of([3.0]).sd is None
    assert ProportionStats().variance is None


@pytest.mark.parametrize(
    "build",
    [
        lambda: MeanStats(-1, 0.0, 0.0),
        lambda: MeanStats(2, math.nan, 0.0),
        lambda: MeanStats(2, 1.0, -5.0),
        lambda: MeanStats(0, 1.0, 0.0),
        lambda: MeanStats(1, 1.0, 2.0),
        lambda: MeanStats(2, "1", 0.0),  # type: ignore[arg-type]  # bad input on purpose
        lambda: ProportionStats(3, 4),
        lambda: ProportionStats(-1, 0),
        lambda: ProportionStats(2.5, 1),  # type: ignore[arg-type]  # bad input on purpose
        lambda: MeanStats.of([1.0, math.nan]),
    ],
)
def test_invalid_statistics_are_configuration_errors(build: object) -> None:
    with pytest.raises(ConfigurationError):
        build()  # type: ignore[operator]


def test_proportion_stats_seen_as_numbers() -> None:
    p = ProportionStats.of([True, False, True, True])
    as_numbers = p.to_mean_stats()
    direct = MeanStats.of([1.0, 0.0, 1.0, 1.0])
    assert as_numbers.n == direct.n
    assert as_numbers.mean == pytest.approx(direct.mean)
    assert as_numbers.m2 == pytest.approx(direct.m2)


def test_collector_averages_each_user_first() -> None:
    c = ScoreCollector(per="user")
    for user, value in [("u1", 1.0), ("u1", 3.0), ("u1", 5.0), ("u2", 10.0)]:
        c.add("A", value, user=user)
    collected = c.collect()
    assert collected.stats["A"] == MeanStats.of([3.0, 10.0])
    assert collected.observations["A"] == 4


def test_collector_per_observation_ignores_users() -> None:
    c = ScoreCollector(per="observation")
    for user, value in [("u1", 1.0), ("u1", 3.0), ("u2", 5.0)]:
        c.add("A", value, user=user)
    assert c.collect().stats["A"] == MeanStats.of([1.0, 3.0, 5.0])


def test_collector_drops_and_reports_missing_values() -> None:
    c = ScoreCollector(per="observation")
    for value in [1.0, math.nan, None, math.inf, 2.0]:
        c.add("A", value)
    collected = c.collect()
    assert collected.stats["A"].n == 2
    assert any("3 missing or non-finite" in w for w in collected.warnings)


def test_collector_reports_anonymous_and_shared_users() -> None:
    c = ScoreCollector(per="user")
    c.add("A", 1.0, user="u1")
    c.add("B", 2.0, user="u1")
    c.add("B", 3.0)
    collected = c.collect()
    assert any("no user id" in w for w in collected.warnings)
    assert any("more than one variant" in w for w in collected.warnings)
    assert collected.stats["B"].n == 2


def test_collector_booleans_per_user() -> None:
    single = ScoreCollector(per="user")
    for i, value in enumerate([True, False, True]):
        single.add("A", value, user=f"u{i}")
    once = single.collect()
    assert once.kind == "boolean" and once.stats["A"] == ProportionStats(3, 2)

    repeated = ScoreCollector(per="user")
    for user, value in [("u1", True), ("u1", False), ("u2", True)]:
        repeated.add("A", value, user=user)
    rates = repeated.collect()
    assert rates.kind == "continuous"
    assert rates.stats["A"] == MeanStats.of([0.5, 1.0])
    assert any("success rate" in n for n in rates.notes)


def test_collector_rejects_non_numbers_and_bad_metric() -> None:
    c = ScoreCollector()
    with pytest.raises(ConfigurationError):
        c.add("A", "good")
    c.add("A", 0.5)
    with pytest.raises(ConfigurationError, match="metric='boolean'"):
        c.collect("boolean")
    with pytest.raises(ConfigurationError):
        c.collect("ratio")  # type: ignore[arg-type]  # bad input on purpose
    with pytest.raises(ConfigurationError):
        ScoreCollector(per="session")  # type: ignore[arg-type]  # bad input on purpose
