"""Order size: the notional of open orders against a limit in money (`2000 USDT`).

The orders over the limit are named, so the default `cancel` cancels those and nothing
else; the account is only halted when `action: halt` says so. An order without a price
(a market order still open) cannot be valued and is left out; reduce-only orders can
only shrink a position and are left out too.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from riskd.breakers.base import Breaker, BreakerConfig, Context, MoneyOnly, Resume, judge, no_data
from riskd.domain import Reading, Remedy


class OrderSizeConfig(BreakerConfig):
    money: ClassVar[bool] = True
    only_money: ClassVar[bool] = True
    names_orders: ClassVar[bool] = True
    opt_in: ClassVar[bool] = True

    limit: MoneyOnly
    warn_at: MoneyOnly | None = None
    action: Remedy = Remedy.CANCEL
    resume: Resume = "1h"
    confirm: int = 1


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    snapshot = context.snapshot
    if snapshot is None:
        return (no_data("order_size", config, "no good snapshot to measure open orders"),)
    sized = [(order, order.notional) for order in snapshot.orders if not order.reduce_only and order.notional is not None]
    largest = max((notional for _, notional in sized), default=0.0)
    reading = judge("order_size", largest, config, config.describer(str))
    over = tuple(order.id for order, notional in sized if notional >= config.limit)
    return (replace(reading, order_ids=over),)


BREAKER = Breaker(
    "order_size",
    "the largest open order's notional, in money; `cancel` cancels the orders over the limit",
    OrderSizeConfig,
    evaluate,
    lambda value: f"{value:,.2f}",
)
