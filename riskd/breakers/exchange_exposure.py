"""Exposure per exchange across the portfolio: the notional held on one venue, over every
account there, as a multiple of the portfolio's equity (or, in money, the sum itself),
so that no single venue's failure can take more than a chosen part of the book.

The portfolio's positions carry their venue and account in front of the symbol
(`binanceusdm main BTC/USDT:USDT`, see `portfolio.combine`); one reading per venue.
"""

from __future__ import annotations

from typing import ClassVar

from riskd.breakers.base import Breaker, BreakerConfig, Context, RatioOrMoney, Resume, no_data
from riskd.breakers.exposure import format_multiple, share_of_equity
from riskd.domain import Reading, Remedy


class ExchangeExposureConfig(BreakerConfig):
    money: ClassVar[bool] = True
    portfolio_only: ClassVar[bool] = True

    limit: RatioOrMoney = 2.0
    warn_at: RatioOrMoney | None = None
    action: Remedy = Remedy.ALERT
    resume: Resume = "1h"


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    snapshot = context.snapshot
    if snapshot is None or snapshot.equity is None:
        return (no_data("exchange_exposure", config, "no good read of every account to sum"),)
    held: dict[str, float] = {}
    for position in snapshot.positions:
        venue = position.symbol.split(" ", 1)[0]
        held[venue] = held.get(venue, 0.0) + position.notional
    readings = []
    for venue, notional in sorted(held.items()):
        reading = share_of_equity("exchange_exposure", notional, snapshot, config, format_multiple)
        readings.append(Reading(
            reading.breaker, reading.status, reading.value, reading.limit, reading.warn_at,
            reading.reason.replace("exchange exposure", f"exposure on {venue}", 1), venue, reading.currency,
        ))
    if not readings:
        return (share_of_equity("exchange_exposure", 0.0, snapshot, config, format_multiple),)
    return tuple(readings)


BREAKER = Breaker(
    "exchange_exposure",
    "the notional held on each exchange, over every account there, divided by the portfolio's equity",
    ExchangeExposureConfig,
    evaluate,
    format_multiple,
)
