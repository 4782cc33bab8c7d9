"""Positions: how many positions are open at once, against a bot that spreads into every market."""

from __future__ import annotations

from typing import ClassVar

from riskd.breakers.base import Breaker, BreakerConfig, Context, no_data
from riskd.breakers.counts import Count, count_reading, format_count
from riskd.domain import Reading, Remedy


class PositionsConfig(BreakerConfig):
    opt_in: ClassVar[bool] = True

    limit: Count = 10
    warn_at: Count | None = None
    action: Remedy = Remedy.ALERT


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    snapshot = context.snapshot
    if snapshot is None:
        return (no_data("positions", config, "no good snapshot to count positions"),)
    return (count_reading("positions", len(snapshot.positions), config, "open positions"),)


BREAKER = Breaker(
    "positions",
    "how many positions are open at once",
    PositionsConfig,
    evaluate,
    format_count,
)
