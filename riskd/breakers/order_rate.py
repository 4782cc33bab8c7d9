"""Order rate: how many new orders riskd saw appear in the last minute, against a bot in a loop.

An order is new when a snapshot shows it and the one before did not (the engine keeps
the ids it has seen, with when, in `AccountState.orders_seen`). Orders open when riskd
first looks at an account are not counted as arrivals, and an order placed and filled
between two ticks is never seen: the rate is a floor, not the exchange's own count.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from riskd.breakers.base import Breaker, BreakerConfig, Context, Resume, no_data
from riskd.breakers.counts import Count, count_reading, format_count
from riskd.domain import Reading, Remedy

WINDOW = timedelta(minutes=1)
"""The rate is counted over this much time."""


class OrderRateConfig(BreakerConfig):
    opt_in: ClassVar[bool] = True

    limit: Count = 60
    warn_at: Count | None = None
    action: Remedy = Remedy.HALT
    resume: Resume = "15m"
    confirm: int = 1


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    if context.snapshot is None:
        return (no_data("order_rate", config, "no good snapshot to see new orders in"),)
    return (count_reading("order_rate", arrivals(context), config, "new orders in the last minute"),)


def arrivals(context: Context) -> int:
    """Orders first seen within the last WINDOW."""
    return sum(1 for seen in context.state.orders_seen.values() if seen is not None and context.now - seen < WINDOW)


BREAKER = Breaker(
    "order_rate",
    "new orders seen per minute",
    OrderRateConfig,
    evaluate,
    format_count,
)
