"""Margin ratio: the venue's own account-level measure of how near liquidation is.

Maintenance margin as a share of the margin balance (Binance's totalMaintMargin over
totalMarginBalance, Bybit's accountMMRate, OKX's mmr over adjEq, Bitget's
crossedRiskRate, Gate's maintenance margin over its equity); at 100 % the venue
liquidates. It is the honest guard for cross and unified accounts, whose positions
often have no liquidation price of their own. An account without derivatives positions
has no margin at risk; one with positions on a venue that reports no ratio reads
`no_data`.
"""

from __future__ import annotations

from riskd.breakers.base import Breaker, BreakerConfig, Context, Resume, judge, no_data, nothing_to_judge
from riskd.domain import Reading, Remedy
from riskd.units import Percent, format_percent


class MarginRatioConfig(BreakerConfig):
    limit: Percent = 0.5
    warn_at: Percent | None = None
    action: Remedy = Remedy.REDUCE
    resume: Resume = "1h"


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    snapshot = context.snapshot
    if snapshot is None or not snapshot.ok:
        return (no_data("margin_ratio", config, "no good snapshot to measure the margin ratio"),)
    if snapshot.margin_ratio is not None:
        return (judge("margin_ratio", snapshot.margin_ratio, config, format_percent),)
    if any(position.kind != "spot" for position in snapshot.positions):
        return (no_data("margin_ratio", config, "the venue reports no account margin ratio for this account"),)
    reason = "no margin in use: no derivatives position is open"
    return (nothing_to_judge("margin_ratio", config, reason),)


BREAKER = Breaker(
    "margin_ratio",
    "the venue's maintenance margin as a share of the margin balance (liquidation at 100%)",
    MarginRatioConfig,
    evaluate,
)
