"""PNG plot of a report, drawn on matplotlib's Agg canvas without touching global state."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._report import Report

__all__ = ["plot_report"]


def _matplotlib() -> tuple[Any, Any]:
    """``Figure`` and the Agg canvas class, or an ImportError naming the extra."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("report.plot needs matplotlib: pip install 'langfuse-versioned-prompts[stats]'") from exc
    return Figure, FigureCanvasAgg


def plot_report(report: Report, path: Path) -> Path:
    """Left: mean and CI per variant. Right: lift (or difference) vs control with its CI."""
    figure_class, canvas_class = _matplotlib()
    figure = figure_class(figsize=(10, 0.6 * max(3, len(report.variants)) + 1.6), dpi=110)
    canvas_class(figure)  # attaches an Agg canvas: no pyplot, no global backend change
    left, right = figure.subplots(1, 2)
    level = f"{report.confidence:.0%} CI"

    names = [s.name for s in report.variants]
    ys = list(range(len(names)))[::-1]
    for y, s in zip(ys, report.variants, strict=True):
        color = "tab:gray" if s.is_control else "tab:blue"
        if s.mean is None:
            left.text(0.5, y, f"{s.name}: no data", transform=left.get_yaxis_transform(), ha="center")
            continue
        low, high = s.ci if s.ci is not None else (s.mean, s.mean)
        left.errorbar([s.mean], [y], xerr=[[s.mean - low], [high - s.mean]], fmt="o", color=color, capsize=4)
    left.set_ylim(-0.6, len(names) - 0.4)
    left.set_yticks(ys, [f"{n}{' (control)' if n == report.control else ''}" for n in names])
    unit = "rate" if report.metric == "boolean" else "mean"
    left.set_xlabel(f"{report.score or 'score'} {unit} per {report.per} ({level})")
    left.set_title("Variants")

    use_lift = all(c.lift is not None for c in report.comparisons if c.difference is not None)
    scale = 100.0 if use_lift else 1.0
    right.axvline(0.0, color="black", linewidth=0.8)
    rows = list(report.comparisons)
    cys = list(range(len(rows)))[::-1]
    for y, c in zip(cys, rows, strict=True):
        point = c.lift if use_lift else c.difference
        interval = c.lift_ci if use_lift else c.ci
        if point is None:
            right.text(0.02, y, f"{c.variant}: n/a", transform=right.get_yaxis_transform())
            continue
        color = "tab:green" if c.significant else "tab:orange"
        low, high = interval if interval is not None else (point, point)
        right.errorbar(
            [point * scale],
            [y],
            xerr=[[(point - low) * scale], [(high - point) * scale]],
            fmt="o",
            color=color,
            capsize=4,
        )
    right.set_ylim(-0.6, max(1, len(rows)) - 0.4)
    right.set_yticks(cys, [f"{c.variant} vs {c.control}" for c in rows])
    right.set_xlabel(f"{'lift %' if use_lift else 'difference'} ({level})")
    right.set_title("Against control" + (" (green: significant)" if rows else ": nothing to compare"))
    title = report.title
    figure.suptitle(title if len(title) < 110 else title[:107] + "...", fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path
