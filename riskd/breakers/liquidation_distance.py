"""Liquidation distance: how near a position's mark price is to its liquidation price.

Lower is worse. Spot holdings cannot be liquidated, nor can a position the venue
reports a liquidation price of 0 for (Binance's way of saying so, read as 0.0 by the
adapter): neither is judged. A position without any liquidation price (cross and unified
margin on Bybit, OKX, Bitget) cannot be measured and reads `no_data`, never healthy;
the account-level `margin_ratio` breaker guards such accounts.
"""

from __future__ import annotations

from typing import ClassVar

from riskd.breakers.base import Breaker, BreakerConfig, Context, Resume, judge, no_data, nothing_to_judge
from riskd.domain import Reading, Remedy
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
    readings = []
    for position in snapshot.positions:
        if position.kind == "spot" or position.liquidation_price == 0.0:
            continue
        if position.liquidation_price is None or not position.mark_price:
            why = f"{position.key} has no liquidation price from the venue, so its distance cannot be measured"
            readings.append(no_data("liquidation_distance", config, why, position.key))
            continue
        distance = abs(position.mark_price - position.liquidation_price) / position.mark_price
        readings.append(judge("liquidation_distance", distance, config, format_percent, position.key))
    if readings:
        return tuple(readings)
    reason = "no open position can be liquidated"
    return (nothing_to_judge("liquidation_distance", config, reason),)


BREAKER = Breaker(
    "liquidation_distance",
    "distance from mark price to liquidation price, as a share of the mark",
    LiquidationDistanceConfig,
    evaluate,
)
