"""Gross exposure of the whole portfolio: every account's position notional, summed in the
portfolio's currency, divided by the summed equity (or, with a limit in money, the sum
itself). An account's own counterpart is `leverage`."""

from __future__ import annotations

from typing import ClassVar

from riskd.breakers.base import Breaker, BreakerConfig, Context, RatioOrMoney, Resume
from riskd.breakers.exposure import format_multiple, gross_share
from riskd.domain import Reading, Remedy


class GrossExposureConfig(BreakerConfig):
    money: ClassVar[bool] = True
    portfolio_only: ClassVar[bool] = True

    limit: RatioOrMoney = 3.0
    warn_at: RatioOrMoney | None = None
    action: Remedy = Remedy.REDUCE
    resume: Resume = "1h"


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    return gross_share("gross_exposure", context, config, "no good read of every account to sum")


BREAKER = Breaker(
    "gross_exposure",
    "every account's position notional summed, divided by the summed equity",
    GrossExposureConfig,
    evaluate,
    format_multiple,
)
