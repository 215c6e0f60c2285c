"""Small timing helpers: every figure is a ratio against a baseline run in the same process."""

from __future__ import annotations

import time
from collections.abc import Callable


def per_call(fn: Callable[[], object], *, number: int, repeat: int = 7) -> float:
    """Best-of-``repeat`` seconds per call over ``number`` calls (the least disturbed run)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def compare(
    label: str, ours: Callable[[], object], baseline: Callable[[], object], *, number: int, target: float | None = None
) -> float:
    """Time both, interleaved, and print the ratio ours / baseline."""
    for fn in (ours, baseline):  # warm up
        for _ in range(min(number, 1000)):
            fn()
    ours_s = base_s = float("inf")
    for _ in range(7):  # interleaved, so both see the same machine load
        ours_s = min(ours_s, per_call(ours, number=number, repeat=1))
        base_s = min(base_s, per_call(baseline, number=number, repeat=1))
    ratio = ours_s / base_s
    verdict = "" if target is None else f"  (target <= {target:.2f}x: {'met' if ratio <= target else 'NOT met'})"
    print(f"{label}: {ours_s * 1e6:.2f} us vs {base_s * 1e6:.2f} us = {ratio:.2f}x{verdict}")
    return ratio
