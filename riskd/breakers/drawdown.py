"""Drawdown: how far equity (unrealized PnL included) has fallen from its peak."""

from __future__ import annotations

from riskd.breakers.base import Breaker, BreakerConfig, Context, judge, no_data
from riskd.domain import Reading, Remedy
from riskd.units import Percent, format_percent


class DrawdownConfig(BreakerConfig):
    limit: Percent = 0.10
    warn_at: Percent | None = None
    action: Remedy = Remedy.FLATTEN


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    equity, peak = context.equity, context.state.peak_equity
    if equity is None:
        return (no_data("drawdown", config, "no good snapshot to measure drawdown"),)
    if peak is None or peak <= 0:
        return (no_data("drawdown", config, "no positive peak equity recorded yet"),)
    value = max(0.0, (peak - equity) / peak)
    return (judge("drawdown", value, config, format_percent),)


BREAKER = Breaker(
    "drawdown",
    "equity's fall from its peak, unrealized PnL included, as a share of the peak",
    DrawdownConfig,
    evaluate,
)
