"""Concentration: the largest single position's notional as a share of equity (or, with a
limit written in money, the notional itself)."""

from __future__ import annotations

from typing import ClassVar

from riskd.breakers.base import Breaker, BreakerConfig, Context, ShareOrMoney, no_data
from riskd.breakers.exposure import share_of_equity
from riskd.domain import Reading, Remedy
from riskd.units import format_percent


class ConcentrationConfig(BreakerConfig):
    money: ClassVar[bool] = True

    limit: ShareOrMoney = 1.5
    warn_at: ShareOrMoney | None = None
    action: Remedy = Remedy.ALERT


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    snapshot = context.snapshot
    if snapshot is None or snapshot.equity is None:
        return (no_data("concentration", config, "no good snapshot to measure concentration"),)
    largest = max((position.notional for position in snapshot.positions), default=0.0)
    return (share_of_equity("concentration", largest, snapshot, config, format_percent),)


BREAKER = Breaker(
    "concentration",
    "the largest position's notional as a share of equity",
    ConcentrationConfig,
    evaluate,
)
