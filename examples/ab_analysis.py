"""Offline A/B analysis of SIMULATED helpfulness scores: plan, analyse, plot.

Every number below is simulated with a seeded numpy Generator: 600 users are assigned to the
variants of an experiment with the library's sticky assignment, each user sends a few requests,
and each request gets a made-up 1-5 "helpfulness" score (variant B is simulated slightly better).
Nothing here reads Langfuse; with real data use ``stats.from_langfuse(...)`` or
``lvp ab report --experiment analyzer-v2 --score helpfulness``.

Run: python examples/ab_analysis.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from langfuse_versioned_prompts import Experiment, Variant, stats

SEED = 20250131
EXPERIMENT = Experiment("analyzer-v2", [Variant("A", version=1), Variant("B", version=2)])
TRUE_MEAN = {"A": 3.6, "B": 3.8}  # simulated ground truth
USER_SD, NOISE_SD = 0.6, 0.8


def simulate(rng: np.random.Generator, users: int = 600) -> stats.ScoreCollector:
    """Stream simulated scores into sufficient statistics, one request at a time."""
    collector = stats.ScoreCollector(["A", "B"], per="user")
    for i in range(users):
        user = f"user-{i}"
        variant = EXPERIMENT.assign(user).name
        user_effect = rng.normal(0.0, USER_SD)
        for _ in range(rng.integers(1, 6)):  # 1-5 requests per user
            score = float(np.clip(rng.normal(TRUE_MEAN[variant] + user_effect, NOISE_SD), 1.0, 5.0))
            collector.add(variant, score, user=user)
    return collector


def main() -> None:
    rng = np.random.default_rng(SEED)
    print("SIMULATED DATA - not real Langfuse scores\n")

    needed = stats.required_sample_size(0.2, sd=0.8, alpha=0.05, power=0.8)
    print(f"Plan: to detect +0.2 helpfulness (sd 0.8) at alpha 0.05 with 80% power: {needed} users per variant\n")

    collector = simulate(rng)
    report = stats.analyze(collector, control="A", weights=EXPERIMENT.weights, score="helpfulness (simulated)")
    print(report)

    plot_path = Path(tempfile.gettempdir()) / "lvp-ab-example.png"  # one file, replaced on each run
    report.plot(plot_path)
    print(f"\nPlot written to {plot_path}")

    b = report.comparison("B")
    print(f"\nFor code: B - A = {b.difference:+.3f}, 95% CI {b.ci}, p = {b.p_value:.4g}, winner = {report.winner}")

    # The seed's function, computed correctly (Welch, sample sd), on per-request scores.
    per_request = {name: rng.normal(TRUE_MEAN[name], 0.9, 200) for name in ("A", "B")}
    legacy = stats.analyze_ab_results(per_request["A"], per_request["B"])
    print(
        f"analyze_ab_results: p = {legacy['p_value']:.4g}, effect size (Cohen's d) = "
        f"{legacy['effect_size']:.3f}, recommendation = {legacy['recommendation']!r}"
    )


if __name__ == "__main__":
    main()
