"""Leverage: gross notional of all positions divided by equity, or with a limit written in
money, the gross notional itself."""

from __future__ import annotations

from typing import ClassVar

from riskd.breakers.base import Breaker, BreakerConfig, Context, RatioOrMoney, Resume
from riskd.breakers.exposure import format_multiple, gross_share
from riskd.domain import Reading, Remedy


class LeverageConfig(BreakerConfig):
    money: ClassVar[bool] = True

    limit: RatioOrMoney = 5.0
    warn_at: RatioOrMoney | None = None
    action: Remedy = Remedy.REDUCE
    resume: Resume = "1h"


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    return gross_share("leverage", context, config, "no good snapshot to measure leverage")


BREAKER = Breaker(
    "leverage",
    "gross notional of all positions divided by equity",
    LeverageConfig,
    evaluate,
    format_multiple,
)
