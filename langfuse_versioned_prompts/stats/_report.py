"""The ``Report``: results per variant and per comparison, a plain-text table, dict, and plot."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._model import Comparison, Interval, MetricKind, Per, SRMCheck, VariantSummary, jsonable
from ._sufficient import Stats

__all__ = ["Report", "format_ci", "format_number", "format_p", "table_rows"]


def _style(magnitude: float) -> str:
    """Format spec giving about four significant digits for numbers of this size."""
    if magnitude == 0:
        return ".4f"
    if magnitude >= 1e5 or magnitude < 1e-4:
        return ".3e"
    return f".{min(6, max(1, 3 - math.floor(math.log10(magnitude))))}f"


def format_number(x: float | None, *, signed: bool = False, like: float | None = None) -> str:
    """About four significant digits (as many decimals as ``like`` needs); ``n/a`` for None."""
    if x is None or not math.isfinite(x):
        return "n/a"
    sign = "+" if signed else ""
    return f"{x:{sign}{_style(abs(x if like is None else like))}}"


def format_ci(ci: Interval | None, *, percent: bool = False) -> str:
    """``[low, high]`` with the same decimals on both ends, or ``n/a``."""
    if ci is None:
        return "n/a"
    if percent:
        return f"[{ci[0]:+.1%}, {ci[1]:+.1%}]"
    like = max(abs(ci[0]), abs(ci[1]))
    return f"[{format_number(ci[0], like=like)}, {format_number(ci[1], like=like)}]"


def format_p(p: float | None) -> str:
    """p-value with four decimals, ``<0.0001`` below that."""
    if p is None:
        return "n/a"
    return "<0.0001" if p < 1e-4 else f"{p:.4f}"


@dataclasses.dataclass(frozen=True)
class Report:
    """The outcome of an A/B analysis; ``print(report)`` shows a table, ``to_dict()`` the data.

    >>> from langfuse_versioned_prompts import stats
    >>> report = stats.analyze({"A": [3, 4, 5, 4], "B": [5, 6, 5, 7]}, control="A")
    >>> report.comparison("B").significant
    True
    """

    control: str
    metric: MetricKind
    per: Per
    confidence: float
    variants: tuple[VariantSummary, ...]
    comparisons: tuple[Comparison, ...]
    srm: SRMCheck | None
    decision: str
    winner: str | None
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    experiment: str | None = None
    score: str | None = None
    higher_is_better: bool = True
    source: Mapping[str, int] = dataclasses.field(default_factory=dict)
    stats: Mapping[str, Stats] = dataclasses.field(default_factory=dict)

    def variant(self, name: str) -> VariantSummary:
        """The summary of one variant (KeyError if unknown)."""
        for summary in self.variants:
            if summary.name == name:
                return summary
        raise KeyError(name)

    def comparison(self, name: str) -> Comparison:
        """The comparison of one variant with control (KeyError if unknown or the control)."""
        for comparison in self.comparisons:
            if comparison.variant == name:
                return comparison
        raise KeyError(name)

    @property
    def all_warnings(self) -> tuple[str, ...]:
        """Report warnings followed by every comparison's notes, prefixed with its variant."""
        per_comparison = tuple(f"{c.variant} vs {c.control}: {note}" for c in self.comparisons for note in c.notes)
        return (*self.warnings, *per_comparison)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (no NaN: missing values are None)."""
        data: dict[str, Any] = jsonable(self)
        data["all_warnings"] = list(self.all_warnings)
        return data

    def plot(self, path: str | Path) -> Path:
        """Write a PNG: each variant's mean with its CI, and each lift with its CI."""
        from ._plot import plot_report

        return plot_report(self, Path(path))

    @property
    def data_line(self) -> str:
        """What was read from Langfuse (empty for data given directly)."""
        src = self.source
        if "traces" not in src:
            return ""
        return (
            f"Data: {src['traces']} traces in the experiment; {src.get('scores_read', 0)} scores read, "
            f"{src.get('scores_joined', 0)} joined to a variant, {src.get('scores_unjoined', 0)} on other traces, "
            f"{src.get('scores_skipped', 0)} skipped"
        )

    @property
    def title(self) -> str:
        """One line naming the experiment, score, unit and confidence."""
        parts = ["A/B report"]
        if self.experiment:
            parts.append(f"experiment {self.experiment!r}")
        if self.score:
            parts.append(f"score {self.score!r}")
        kind = "boolean, two-proportion z-test" if self.metric == "boolean" else "Welch t-test"
        return f"{', '.join(parts)} ({kind}, per {self.per}, {self.confidence:.0%} confidence)"

    def __str__(self) -> str:
        headers, rows = table_rows(self)
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

        def line(cells: list[str]) -> str:
            return "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()

        out = [self.title, line(headers), line(["-" * w for w in widths])]
        out.extend(line(r) for r in rows)
        if self.data_line:
            out.append(self.data_line)
        if self.srm is not None and self.srm.p_value is not None:
            state = "MISMATCH" if self.srm.flagged else "ok"
            out.append(f"Sample ratio check: chi2={self.srm.chi2:.3f}, p={format_p(self.srm.p_value)} ({state})")
        out.append(f"Decision: {self.decision}")
        warnings = self.all_warnings
        if warnings:
            out.append("Warnings:")
            out.extend(f"  - {w}" for w in warnings)
        if self.notes:
            out.append("Notes:")
            out.extend(f"  - {n}" for n in self.notes)
        return "\n".join(out)


def table_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """Column headers and one row of formatted cells per variant (control first)."""
    level = f"{report.confidence:.0%} CI"
    effect = "Cohen's h" if report.metric == "boolean" else "Hedges' g"
    mean_header = "rate" if report.metric == "boolean" else "mean"
    headers = [
        "variant",
        "n",
        "scores",
        mean_header,
        level,
        "diff",
        level,
        "lift",
        level,
        "p",
        "p adj",
        effect,
    ]
    ordered = sorted(report.variants, key=lambda s: not s.is_control)
    rows: list[list[str]] = []
    for s in ordered:
        cells = [
            s.name + (" (control)" if s.is_control else ""),
            str(s.n),
            str(s.observations),
            format_number(s.mean),
            format_ci(s.ci),
        ]
        if s.is_control:
            cells.extend([""] * 7)
        else:
            c = report.comparison(s.name)
            cells.extend(
                [
                    format_number(c.difference, signed=True),
                    format_ci(c.ci),
                    "n/a" if c.lift is None else f"{c.lift:+.1%}",
                    format_ci(c.lift_ci, percent=True),
                    format_p(c.p_value),
                    format_p(c.p_value_adjusted) + (" *" if c.significant else ""),
                    format_number(c.effect_size, signed=True),
                ]
            )
        rows.append(cells)
    return headers, rows
