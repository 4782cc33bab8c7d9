"""Time limits for tests, scaled to how fast this machine runs right now.

Some promises are about time ("an alert within 2 s", "SIGTERM exits within 10 s").
On a shared CI machine that is itself running two or three times slower than usual,
such a limit measures the machine, not riskd. Each limit is multiplied by SLOWNESS:
1 on a machine as fast as the one the limits were written on, more on a slower one,
never less. It is measured once per test session with a fixed piece of Python work.
"""

from __future__ import annotations

import time

REFERENCE = 0.25
"""Seconds the work below takes on the reference machine (2 vCPUs, CPython 3.11): 0.20 to 0.25."""


def _measure() -> float:
    best = float("inf")
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for number in range(2_000_000):
            total += number
        best = min(best, time.perf_counter() - started)
    return best


SLOWNESS = max(1.0, _measure() / REFERENCE)


def limit(seconds: float) -> float:
    """`seconds` on the reference machine, as long as the same work takes here."""
    return seconds * SLOWNESS
