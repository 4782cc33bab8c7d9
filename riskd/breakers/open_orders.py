"""Open orders: how many orders are open at once, against a runaway bot that keeps placing them.

With `action: cancel` the newest orders beyond the limit are cancelled and trading goes
on; with `halt` the account is halted. Reduce-only orders (a position's stops and
take-profits) count, but are never the ones cancelled.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import ClassVar

from riskd.breakers.base import Breaker, BreakerConfig, Context, Resume, no_data
from riskd.breakers.counts import Count, count_reading, format_count
from riskd.domain import Order, Reading, Remedy

OLDEST = datetime.min.replace(tzinfo=timezone.utc)


class OpenOrdersConfig(BreakerConfig):
    names_orders: ClassVar[bool] = True
    opt_in: ClassVar[bool] = True

    limit: Count = 50
    warn_at: Count | None = None
    action: Remedy = Remedy.CANCEL
    resume: Resume = "1h"
    confirm: int = 1


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    snapshot = context.snapshot
    if snapshot is None:
        return (no_data("open_orders", config, "no good snapshot to count open orders"),)
    count = len(snapshot.orders)
    excess = newest(snapshot.orders, count - int(config.limit)) if count > config.limit else ()
    return (count_reading("open_orders", count, config, "open orders", excess),)


def newest(orders: tuple[Order, ...], count: int) -> tuple[str, ...]:
    """The ids of the `count` most recently placed orders that could add exposure.

    Orders are ordered by when the exchange says they were placed; those it gives no
    time for keep the order the exchange listed them in.
    """
    cancellable = [order for order in orders if not order.reduce_only]
    ordered = sorted(cancellable, key=lambda order: order.opened_at or OLDEST)
    return tuple(order.id for order in ordered[max(0, len(ordered) - count):]) if count > 0 else ()


BREAKER = Breaker(
    "open_orders",
    "how many orders are open at once; `cancel` cancels the newest beyond the limit",
    OpenOrdersConfig,
    evaluate,
    format_count,
)
