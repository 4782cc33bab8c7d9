"""Leverage: gross notional of all positions divided by equity, or with a limit written in
money, the gross notional itself."""

from __future__ import annotations

from typing import ClassVar

from riskd.breakers.base import Breaker, BreakerConfig, Context, RatioOrMoney, Resume, no_data
from riskd.breakers.exposure import share_of_equity
from riskd.domain import Reading, Remedy


class LeverageConfig(BreakerConfig):
    money: ClassVar[bool] = True

    limit: RatioOrMoney = 5.0
    warn_at: RatioOrMoney | None = None
    action: Remedy = Remedy.REDUCE
    resume: Resume = "1h"


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    snapshot = context.snapshot
    if snapshot is None or snapshot.equity is None:
        return (no_data("leverage", config, "no good snapshot to measure leverage"),)
    return (share_of_equity("leverage", snapshot.gross_notional, snapshot, config, format_multiple),)


def format_multiple(value: float) -> str:
    return f"{value:.2f}x"


BREAKER = Breaker(
    "leverage",
    "gross notional of all positions divided by equity",
    LeverageConfig,
    evaluate,
    format_multiple,
)
