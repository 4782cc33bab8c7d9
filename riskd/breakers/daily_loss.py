"""Daily loss: how much equity has been lost since the day's reset time (UTC), as a share of
the day-start equity or, with a limit written in money, as an amount."""

from __future__ import annotations

from typing import ClassVar

from riskd.breakers.base import NEXT_DAY, Breaker, BreakerConfig, Context, PercentOrMoney, Resume, judge, no_data
from riskd.domain import Reading, Remedy
from riskd.units import format_percent


class DailyLossConfig(BreakerConfig):
    money: ClassVar[bool] = True

    limit: PercentOrMoney = 0.05
    warn_at: PercentOrMoney | None = None
    action: Remedy = Remedy.HALT
    resume: Resume = NEXT_DAY


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    equity, start = context.equity, context.state.day_start_equity
    if equity is None:
        return (no_data("daily_loss", config, "no good snapshot to measure the day's loss"),)
    if start is None or start <= 0:
        return (no_data("daily_loss", config, "no positive equity recorded at the day's start"),)
    lost = max(0.0, start - equity)
    value = lost if config.currency else lost / start
    return (judge("daily_loss", value, config, config.describer(format_percent)),)


BREAKER = Breaker(
    "daily_loss",
    "equity lost since the day's reset time, as a share of the day-start equity",
    DailyLossConfig,
    evaluate,
)
