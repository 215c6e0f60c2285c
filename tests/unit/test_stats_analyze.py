"""``stats.analyze`` and the Report: decisions, per-user analysis, degenerate data, bad input."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from langfuse_versioned_prompts import ConfigurationError, LVPError, stats
from langfuse_versioned_prompts.stats import MeanStats, ProportionStats

A = [3.0, 4.0, 5.0, 4.0, 3.0, 4.0, 4.0, 3.0]
B = [5.0, 6.0, 5.0, 6.0, 7.0, 5.0, 6.0, 6.0]


def no_nan(value: Any) -> bool:
    """True when no float in a nested JSON-like value is NaN or infinite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(no_nan(v) for v in value.values())
    if isinstance(value, list):
        return all(no_nan(v) for v in value)
    return True


def test_two_variants_give_a_winner_a_table_and_json() -> None:
    report = stats.analyze({"A": A, "B": B}, control="A", score="helpfulness")
    assert report.winner == "B"
    assert report.decision.startswith("B beats A")
    assert report.metric == "continuous"
    comparison = report.comparison("B")
    ref = sps.ttest_ind(B, A, equal_var=False)
    assert comparison.p_value == pytest.approx(ref.pvalue)
    assert comparison.significant
    text = str(report)
    assert "A (control)" in text and "Hedges' g" in text and "Decision: B beats A" in text
    data = report.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["comparisons"][0]["variant"] == "B"
    assert data["stats"]["A"]["n"] == len(A)


def test_control_defaults_to_the_first_variant() -> None:
    report = stats.analyze({"B": B, "A": A})
    assert report.control == "B"
    assert report.winner == "B" and report.decision.startswith("keep B: A is significantly worse")


def test_lower_is_better_flips_the_decision() -> None:
    report = stats.analyze({"A": B, "B": A}, higher_is_better=False)
    assert report.winner == "B"


def test_no_difference_reports_the_detectable_effect() -> None:
    rng = np.random.default_rng(7)
    report = stats.analyze({"A": rng.normal(0, 1, 50), "B": rng.normal(0, 1, 50)})
    assert report.winner is None
    assert "no significant difference" in report.decision
    assert "80% power" in report.decision
    mde = report.comparison("B").mde
    assert mde is not None and 0.3 < mde < 0.9


def test_per_user_averages_each_user_first() -> None:
    scores = {"A": [1.0, 1.0, 1.0, 5.0, 3.0], "B": [4.0, 4.0, 5.0, 5.0]}
    users = {"A": ["u1", "u1", "u1", "u2", "u3"], "B": ["u4", "u5", "u6", "u6"]}
    per_user = stats.analyze(scores, users=users)
    assert per_user.per == "user"
    assert per_user.variant("A").n == 3 and per_user.variant("A").observations == 5
    assert per_user.variant("A").mean == pytest.approx((1 + 5 + 3) / 3)
    per_obs = stats.analyze(scores, users=users, per="observation")
    assert per_obs.per == "observation" and per_obs.variant("A").n == 5
    assert per_obs.variant("A").mean == pytest.approx(11 / 5)


def test_without_user_ids_each_score_is_a_unit_and_that_is_said() -> None:
    report = stats.analyze({"A": A, "B": B})
    assert report.per == "observation"
    assert any("no user ids given" in n for n in report.notes)


def test_booleans_use_the_two_proportion_test() -> None:
    a = [True] * 40 + [False] * 160
    b = [True] * 62 + [False] * 138
    report = stats.analyze({"A": a, "B": b})
    assert report.metric == "boolean"
    c = report.comparison("B")
    assert c.test == "two_proportion_z" and c.effect_size_name == "cohens_h"
    assert c.p_value == pytest.approx(0.011611406, abs=1e-8)
    assert report.variant("B").successes == 62
    assert "rate" in str(report) and "Cohen's h" in str(report)


def test_sufficient_statistics_can_be_given_directly() -> None:
    direct = stats.analyze({"A": MeanStats.of(A), "B": MeanStats.of(B)})
    raw = stats.analyze({"A": A, "B": B})
    assert direct.comparison("B").p_value == pytest.approx(raw.comparison("B").p_value)
    boolean = stats.analyze({"A": ProportionStats(200, 40), "B": ProportionStats(200, 62)})
    assert boolean.metric == "boolean"
    mixed = stats.analyze({"A": ProportionStats(4, 2), "B": [0.5, 0.25, 1.0]}, metric="continuous")
    assert mixed.metric == "continuous"


def test_three_variants_are_holm_corrected() -> None:
    rng = np.random.default_rng(11)
    data = {
        "A": rng.normal(0.0, 1.0, 80),
        "B": rng.normal(0.35, 1.0, 80),
        "C": rng.normal(0.1, 1.0, 80),
        "D": rng.normal(0.5, 1.0, 80),
    }
    report = stats.analyze(data, control="A")
    raw = [report.comparison(n).p_value for n in "BCD"]
    _, expected, _, _ = multipletests(raw, method="holm")
    adjusted = [report.comparison(n).p_value_adjusted for n in "BCD"]
    assert adjusted == pytest.approx(list(expected))
    assert all(
        report.comparison(n).significant == (p is not None and p < 0.05) for n, p in zip("BCD", adjusted, strict=True)
    )
    assert any("Holm" in n for n in report.notes)


def test_sample_ratio_mismatch_blocks_the_decision() -> None:
    rng = np.random.default_rng(3)
    report = stats.analyze({"A": rng.normal(0, 1, 1000), "B": rng.normal(1, 1, 1300)}, weights={"A": 1, "B": 1})
    assert report.srm is not None and report.srm.flagged
    assert report.winner is None and report.decision.startswith("do not decide")
    assert any("sample ratio mismatch" in w for w in report.warnings)
    # the same counts are fine when the configured split is 10:13
    weighted = stats.analyze({"A": rng.normal(0, 1, 1000), "B": rng.normal(1, 1, 1300)}, weights={"A": 10, "B": 13})
    assert weighted.srm is not None and not weighted.srm.flagged and weighted.winner == "B"


def test_without_weights_an_unequal_split_is_not_checked_and_does_not_block_the_decision() -> None:
    rng = np.random.default_rng(5)
    data = {"A": rng.normal(0, 1, 900), "B": rng.normal(1, 1, 100)}
    report = stats.analyze(data, control="A")
    assert report.srm is None
    assert report.winner == "B" and report.decision.startswith("B beats A")
    assert any(n.startswith("sample ratio not checked: no configured split") for n in report.notes)
    assert all(v.expected_share is None for v in report.variants)
    assert "Sample ratio check" not in str(report)
    json.dumps(report.to_dict(), allow_nan=False)
    # a ScoreCollector without weights: not checked either
    collector = stats.ScoreCollector(per="observation")
    for name, values in data.items():
        for value in values:
            collector.add(name, float(value))
    assert stats.analyze(collector).srm is None
    # with a configured equal split the same data is a mismatch and blocks the decision
    weighted = stats.analyze(data, control="A", weights={"A": 1, "B": 1})
    assert weighted.srm is not None and weighted.srm.flagged
    assert weighted.winner is None and weighted.decision.startswith("do not decide: sample ratio mismatch")
    assert weighted.variant("A").expected_share == 0.5
    assert not any("sample ratio not checked" in n for n in weighted.notes)


def test_per_observation_srm_counts_distinct_users_not_scores() -> None:
    # 60 users per variant; B's users send three requests each, A's one
    scores = {"A": [3.0 + (i % 5) / 4 for i in range(60)], "B": [3.5 + (i % 7) / 6 for i in range(180)]}
    users = {"A": [f"a{i}" for i in range(60)], "B": [f"b{i // 3}" for i in range(180)]}
    report = stats.analyze(scores, users=users, per="observation", weights={"A": 1, "B": 1})
    assert report.per == "observation" and report.variant("B").n == 180
    assert report.srm is not None and dict(report.srm.observed) == {"A": 60, "B": 60}
    assert not report.srm.flagged and report.winner == "B"
    assert any("counts distinct users" in n for n in report.notes)
    # scores without a user id each count as their own unit
    anonymous = stats.analyze(
        {"A": [1.0, 2.0, 3.0], "B": [2.0, 3.0, 4.0]},
        users={"A": ["u", "u", None], "B": [None, None, "v"]},
        per="observation",
        weights={"A": 1, "B": 1},
    )
    assert anonymous.srm is not None and dict(anonymous.srm.observed) == {"A": 2, "B": 3}


def test_a_negative_control_mean_explains_the_sign_of_the_lift() -> None:
    a = [-2.1, -1.9, -2.0, -2.2, -1.8, -2.0, -2.1, -1.9]
    b = [-1.0, -0.9, -1.1, -1.0, -0.8, -1.2, -1.0, -1.0]
    report = stats.analyze({"A": a, "B": b}, control="A")
    c = report.comparison("B")
    assert c.difference is not None and c.difference > 0 and c.lift is not None and c.lift < 0
    assert c.lift == pytest.approx(c.difference / np.mean(a))  # the value keeps its definition
    assert report.decision.startswith("B beats A")
    assert "of a negative control mean" in report.decision
    assert f"{-c.lift:+.1%} of |control mean|" in report.decision
    assert any("negative mean" in w and "opposite sign" in w for w in report.all_warnings)
    assert "negative mean" in str(report)
    positive = stats.analyze({"A": A, "B": B})
    assert not any("negative" in w for w in positive.all_warnings) and "negative" not in positive.decision


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"A": [], "B": [1.0, 2.0]}, "'A' has no scores"),
        ({"A": [1.0], "B": [1.0, 2.0]}, "single score"),
        ({"A": [2.0, 2.0, 2.0], "B": [3.0, 3.0]}, "zero variance"),
        ({"A": [math.nan, math.nan], "B": [1.0, 2.0]}, "dropped"),
        ({"A": [0.0, 0.0, 1.0, -1.0], "B": [1.0, 2.0, 3.0]}, "no relative lift"),
        ({"A": [False] * 5, "B": [False] * 7}, "every score is false"),
        ({"A": [False] * 10, "B": [True] * 10}, "all true or all false"),
        ({"A": [True, False, True], "B": [True, True, False, True]}, "fewer than 5"),
        ({"A": [1.0, 2.0]}, "only one variant"),
    ],
)
def test_degenerate_data_explains_itself(data: dict[str, list[Any]], expected: str) -> None:
    report = stats.analyze(data)
    assert any(expected in w for w in report.all_warnings), report.all_warnings
    payload = report.to_dict()
    assert no_nan(payload)
    json.dumps(payload, allow_nan=False)
    assert str(report)


def test_an_untestable_comparison_says_why_in_the_decision() -> None:
    report = stats.analyze({"A": [2.0, 2.0], "B": [3.0, 3.0]})
    c = report.comparison("B")
    assert c.difference == 1.0 and c.p_value is None and c.ci is None and not c.significant
    assert report.decision.startswith("cannot decide") and "zero variance" in report.decision


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()), max_size=12),
    st.lists(st.floats(min_value=-1e300, max_value=1e300), max_size=12),
    st.floats(min_value=0.5, max_value=0.999),
)
def test_any_scores_give_a_report_without_nan(a: list[float | None], b: list[float], confidence: float) -> None:
    report = stats.analyze({"A": a, "B": b}, confidence=confidence)
    payload = report.to_dict()
    assert no_nan(payload)
    json.dumps(payload, allow_nan=False)
    assert report.decision


@settings(max_examples=100, deadline=None)
@given(st.lists(st.booleans(), max_size=15), st.lists(st.booleans(), max_size=15))
def test_any_booleans_give_a_report_without_nan(a: list[bool], b: list[bool]) -> None:
    payload = stats.analyze({"A": a, "B": b}).to_dict()
    assert no_nan(payload)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"control": "Z"}, "control 'Z' is not one of"),
        ({"weights": {"A": 1.0}}, "missing \\['B'\\]"),
        ({"weights": {"A": 1.0, "B": 1.0, "C": 1.0}}, "unknown \\['C'\\]"),
        ({"weights": {"A": -1.0, "B": 1.0}}, "weight of 'A'"),
        ({"weights": {"A": 0.0, "B": 0.0}}, "sum to more than 0"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0.0}, "confidence"),
        ({"confidence": 95}, "confidence"),
        ({"confidence": "0.95"}, "confidence"),
        ({"per": "session"}, "per must be"),
        ({"metric": "ratio"}, "metric must be"),
        ({"users": {"A": ["u1"], "B": ["u2"]}}, "as long as"),
        ({"users": {"A": ["u"] * 8}}, "missing \\['B'\\]"),
        ({"users": {"A": ["u"] * 8, "B": ["u"] * 8, "Z": []}}, "unknown variants"),
    ],
)
def test_bad_input_is_a_configuration_error(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        stats.analyze({"A": A, "B": B}, **kwargs)
    assert isinstance(info.value, ValueError) and isinstance(info.value, LVPError)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"A": "12345", "B": B},
        {"A": ["good", "bad"], "B": B},
        {"A": [True, False], "B": MeanStats.of(B)},
        {"": A, "B": B},
    ],
)
def test_bad_data_is_a_configuration_error(data: Any) -> None:
    with pytest.raises(ConfigurationError):
        stats.analyze(data)


def test_report_plot_writes_a_png(tmp_path: Path) -> None:
    report = stats.analyze({"A": A, "B": B, "C": [4.0, 4.5, 5.0, 4.0]}, score="helpfulness")
    path = report.plot(tmp_path / "sub" / "ab.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    degenerate = stats.analyze({"A": [], "B": [1.0]})
    assert degenerate.plot(tmp_path / "empty.png").stat().st_size > 0


def test_seed_compatible_function_keeps_the_seed_keys() -> None:
    result = stats.analyze_ab_results(A, B)
    for key in ("control_mean", "treatment_mean", "p_value", "significant", "effect_size", "recommendation"):
        assert key in result
    assert result["recommendation"] == "treatment" and result["significant"] is True
    assert result["control_mean"] == pytest.approx(np.mean(A))
    assert result["p_value"] == pytest.approx(sps.ttest_ind(A, B, equal_var=False).pvalue)
    # population std (the seed's bug) would give a different effect size
    wrong = (np.mean(B) - np.mean(A)) / math.sqrt(
        ((len(A) - 1) * np.std(A) ** 2 + (len(B) - 1) * np.std(B) ** 2) / (len(A) + len(B) - 2)
    )
    assert result["effect_size"] != pytest.approx(wrong)
    assert stats.analyze_ab_results(B, A)["recommendation"] == "control"


def test_seed_function_uses_the_asked_confidence() -> None:
    rng = np.random.default_rng(21)
    a, b = rng.normal(0, 1, 60), rng.normal(0.45, 1, 60)
    p = sps.ttest_ind(a, b, equal_var=False).pvalue
    assert 0.01 < p < 0.05
    assert stats.analyze_ab_results(a, b, confidence=0.95)["significant"] is True
    assert stats.analyze_ab_results(a, b, confidence=0.99)["significant"] is False
    with pytest.raises(ConfigurationError):
        stats.analyze_ab_results(a, b, confidence=1.5)


def test_seed_function_on_degenerate_data() -> None:
    result = stats.analyze_ab_results([], [1.0])
    assert result["p_value"] is None and result["effect_size"] is None
    assert result["control_mean"] is None and result["recommendation"] == "control"
    assert result["warnings"]
    same = stats.analyze_ab_results([2.0, 2.0], [2.0, 2.0])
    assert same["p_value"] is None and "zero variance" in same["recommendation_reason"]


def test_required_sample_size_rejects_bad_input() -> None:
    with pytest.raises(ConfigurationError):
        stats.required_sample_size(0.1)
    with pytest.raises(ConfigurationError):
        stats.required_sample_size(0.1, sd=1.0, base_rate=0.5)
    with pytest.raises(ConfigurationError):
        stats.required_sample_size(0.0, sd=1.0)
    with pytest.raises(ConfigurationError):
        stats.required_sample_size(0.6, base_rate=0.5)
    with pytest.raises(ConfigurationError):
        stats.required_sample_size(0.1, sd=1.0, alpha=1.2)
    with pytest.raises(ConfigurationError):
        stats.required_sample_size(0.1, sd=-1.0)


def test_srm_check_edge_cases() -> None:
    assert stats.srm_check({"A": 0, "B": 0}).p_value is None
    impossible = stats.srm_check({"A": 10, "B": 3}, {"A": 1.0, "B": 0.0})
    assert impossible.flagged and impossible.p_value == 0.0
    small = stats.srm_check({"A": 2, "B": 3})
    assert any("unreliable" in n for n in small.notes)
    with pytest.raises(ConfigurationError):
        stats.srm_check({"A": 10}, {"B": 1.0})


def test_holm_rejects_bad_p_values() -> None:
    with pytest.raises(ConfigurationError):
        stats.holm_adjust([0.5, 1.5])


def test_public_names_are_pinned() -> None:
    assert sorted(stats.__all__) == [
        "Comparison",
        "ExperimentNotFoundError",
        "MeanStats",
        "ProportionStats",
        "Report",
        "SRMCheck",
        "ScoreCollector",
        "ScoreNotFoundError",
        "VariantSummary",
        "analyze",
        "analyze_ab_results",
        "from_langfuse",
        "holm_adjust",
        "parse_time",
        "proportions_test",
        "required_sample_size",
        "srm_check",
        "welch_test",
    ]


def test_importing_stats_does_not_import_scipy_numpy_or_matplotlib() -> None:
    code = (
        "import sys; import langfuse_versioned_prompts.stats as s; "
        "s.required_sample_size(0.1, sd=1.0); "
        "s.proportions_test(s.ProportionStats(10, 3), s.ProportionStats(10, 6)); "
        "print(sorted(m for m in ('scipy', 'numpy', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_plotting_leaves_pyplot_and_the_backend_alone(tmp_path: Path) -> None:
    code = (
        "import sys, matplotlib; before = matplotlib.rcParams._get('backend'); "
        "from langfuse_versioned_prompts import stats; "
        "stats.analyze({'A': [1.0, 2.0, 3.0], 'B': [2.0, 3.0, 4.0]}).plot(sys.argv[1]); "
        "print('matplotlib.pyplot' in sys.modules, matplotlib.rcParams._get('backend') == before)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "p.png")], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False True"


def test_missing_scipy_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    with pytest.raises(ImportError, match=r"pip install 'langfuse-versioned-prompts\[stats\]'"):
        stats.welch_test(MeanStats.of(A), MeanStats.of(B))


def test_a_score_collector_can_be_analysed_directly() -> None:
    collector = stats.ScoreCollector(per="user")
    for i, (a, b) in enumerate(zip(A, B, strict=True)):
        collector.add("A", a, user=f"a{i % 4}")
        collector.add("B", b, user=f"b{i % 4}")
    report = stats.analyze(collector, control="A", weights={"A": 1, "B": 1})
    assert report.per == "user" and report.variant("A").n == 4 and report.variant("A").observations == 8
    with pytest.raises(ConfigurationError, match="users= does not apply"):
        stats.analyze(collector, users={"A": []})
    with pytest.raises(ConfigurationError, match="no variants"):
        stats.analyze(stats.ScoreCollector())


@pytest.mark.parametrize(
    "module",
    [
        "langfuse_versioned_prompts.stats",
        "langfuse_versioned_prompts.stats._analyze",
        "langfuse_versioned_prompts.stats._collect",
        "langfuse_versioned_prompts.stats._langfuse",
        "langfuse_versioned_prompts.stats._power",
        "langfuse_versioned_prompts.stats._report",
        "langfuse_versioned_prompts.stats._seed",
        "langfuse_versioned_prompts.stats._sufficient",
        "langfuse_versioned_prompts.stats._tests",
    ],
)
def test_docstring_examples(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_the_example_runs_offline_on_labelled_simulated_data(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "ab_analysis.py"
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # the example writes its plot to the temp dir
    out = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, check=True, timeout=120, env=env
    )
    assert out.stdout.startswith("SIMULATED DATA")
    assert "Decision:" in out.stdout
    plot = next(line for line in out.stdout.splitlines() if line.startswith("Plot written to "))
    path = Path(plot.removeprefix("Plot written to "))
    assert path.parent == tmp_path and path.read_bytes()[:4] == b"\x89PNG"
