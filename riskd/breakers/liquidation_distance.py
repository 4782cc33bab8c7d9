"""Liquidation distance: how near a position's mark price is to its liquidation price.

Lower is worse. Positions without a liquidation price (spot holdings, or futures with
more margin than they can lose) cannot be liquidated and are not judged.
"""

from __future__ import annotations

from typing import ClassVar

from riskd.breakers.base import Breaker, BreakerConfig, Context, Resume, judge, no_data
from riskd.domain import Reading, Remedy, Status
from riskd.units import Percent, format_percent


class LiquidationDistanceConfig(BreakerConfig):
    higher_is_worse: ClassVar[bool] = False
    per_position: ClassVar[bool] = True

    limit: Percent = 0.10
    warn_at: Percent | None = None
    action: Remedy = Remedy.REDUCE
    resume: Resume = "1h"


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    snapshot = context.snapshot
    if snapshot is None or not snapshot.ok:
        return (no_data("liquidation_distance", config, "no good snapshot to measure liquidation distance"),)
    readings = tuple(
        judge(
            "liquidation_distance",
            abs(position.mark_price - position.liquidation_price) / position.mark_price,
            config,
            format_percent,
            position.key,
        )
        for position in snapshot.positions
        if position.liquidation_price and position.mark_price
    )
    if readings:
        return readings
    reason = "no open position has a liquidation price"
    return (Reading("liquidation_distance", Status.OK, None, config.limit, config.warning_level, reason),)


BREAKER = Breaker(
    "liquidation_distance",
    "distance from mark price to liquidation price, as a share of the mark",
    LiquidationDistanceConfig,
    evaluate,
)
