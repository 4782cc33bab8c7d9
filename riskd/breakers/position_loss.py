"""Position loss: one position's unrealized loss as a share of account equity, or with a
limit written in money, as an amount.

Its natural action is `close`, which closes only the losing position.
"""

from __future__ import annotations

from typing import ClassVar

from riskd.breakers.base import Breaker, BreakerConfig, Context, PercentOrMoney, judge, no_data
from riskd.domain import Reading, Remedy, Status
from riskd.units import format_percent


class PositionLossConfig(BreakerConfig):
    per_position: ClassVar[bool] = True
    money: ClassVar[bool] = True

    limit: PercentOrMoney = 0.03
    warn_at: PercentOrMoney | None = None
    action: Remedy = Remedy.CLOSE


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    snapshot, equity = context.snapshot, context.equity
    if snapshot is None or equity is None:
        return (no_data("position_loss", config, "no good snapshot to measure position losses"),)
    if not snapshot.positions:
        return (_flat(config),)
    if config.currency:
        describe = config.describer(format_percent)
        return tuple(
            judge("position_loss", max(0.0, -position.unrealized_pnl), config, describe, position.key)
            for position in snapshot.positions
        )
    if equity <= 0:
        return (no_data("position_loss", config, "equity is zero or negative, so a share of it means nothing"),)
    return tuple(
        judge("position_loss", max(0.0, -position.unrealized_pnl) / equity, config, format_percent, position.key)
        for position in snapshot.positions
    )


def _flat(config: BreakerConfig) -> Reading:
    return Reading("position_loss", Status.OK, 0.0, config.limit, config.warning_level, "no open positions", currency=config.currency)


BREAKER = Breaker(
    "position_loss",
    "one position's unrealized loss as a share of equity; `close` closes that position",
    PositionLossConfig,
    evaluate,
)
