"""Drawdown: how far equity (unrealized PnL included) has fallen from its peak, as a share
of the peak or, with a limit written in money, as an amount."""

from __future__ import annotations

from typing import ClassVar

from riskd.breakers.base import Breaker, BreakerConfig, Context, PercentOrMoney, judge, no_data
from riskd.domain import Reading, Remedy
from riskd.units import format_percent


class DrawdownConfig(BreakerConfig):
    money: ClassVar[bool] = True

    limit: PercentOrMoney = 0.10
    warn_at: PercentOrMoney | None = None
    action: Remedy = Remedy.FLATTEN


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    equity, peak = context.equity, context.state.peak_equity
    if equity is None:
        return (no_data("drawdown", config, "no good snapshot to measure drawdown"),)
    if peak is None or peak <= 0:
        return (no_data("drawdown", config, "no positive peak equity recorded yet"),)
    lost = max(0.0, peak - equity)
    value = lost if config.currency else lost / peak
    return (judge("drawdown", value, config, config.describer(format_percent)),)


BREAKER = Breaker(
    "drawdown",
    "equity's fall from its peak, unrealized PnL included, as a share of the peak",
    DrawdownConfig,
    evaluate,
)
