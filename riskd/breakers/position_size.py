"""Position size: each position's notional against a limit in money (`5000 USDT`).

Per position, so `close` or `reduce` act on the one that is too large.
"""

from __future__ import annotations

from typing import ClassVar

from riskd.breakers.base import Breaker, BreakerConfig, Context, MoneyOnly, judge, no_data
from riskd.domain import Reading, Remedy, Status


class PositionSizeConfig(BreakerConfig):
    per_position: ClassVar[bool] = True
    money: ClassVar[bool] = True
    only_money: ClassVar[bool] = True
    opt_in: ClassVar[bool] = True

    limit: MoneyOnly
    warn_at: MoneyOnly | None = None
    action: Remedy = Remedy.ALERT


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    snapshot = context.snapshot
    if snapshot is None:
        return (no_data("position_size", config, "no good snapshot to measure positions"),)
    if not snapshot.positions:
        reason = "no open positions"
        return (Reading("position_size", Status.OK, 0.0, config.limit, config.warning_level, reason, currency=config.currency),)
    describe = config.describer(str)
    return tuple(judge("position_size", position.notional, config, describe, position.key) for position in snapshot.positions)


BREAKER = Breaker(
    "position_size",
    "each position's notional, in money",
    PositionSizeConfig,
    evaluate,
    lambda value: f"{value:,.2f}",
)
