"""Exposure as a multiple of equity, or in money, shared by the leverage, gross_exposure,
exchange_exposure and concentration breakers."""

from __future__ import annotations

from typing import Callable

from riskd.breakers.base import BreakerConfig, Context, judge, no_data
from riskd.domain import Reading, Snapshot, Status
from riskd.units import format_money


def share_of_equity(
    name: str, amount: float, snapshot: Snapshot, config: BreakerConfig, describe: Callable[[float], str]
) -> Reading:
    """Judge `amount / equity`, or `amount` itself when the limit is in money; open exposure
    on zero or negative equity is a breach of a share of it."""
    if config.currency:
        return judge(name, amount, config, config.describer(describe))
    equity = snapshot.equity or 0.0
    if amount <= 0:
        return judge(name, 0.0, config, describe)
    if equity <= 0:
        reason = (
            f"{name.replace('_', ' ')} is unbounded: equity is {format_money(equity, snapshot.quote)} "
            f"while {format_money(amount, snapshot.quote)} of positions are open"
        )
        return Reading(name, Status.BREACHED, None, config.limit, config.warning_level, reason)
    return judge(name, amount / equity, config, describe)


def gross_share(name: str, context: Context, config: BreakerConfig, missing: str) -> tuple[Reading, ...]:
    """The snapshot's gross notional judged by `share_of_equity` (an account's leverage, the
    portfolio's gross exposure); `no_data` saying `missing` without a snapshot with equity."""
    snapshot = context.snapshot
    if snapshot is None or snapshot.equity is None:
        return (no_data(name, config, missing),)
    return (share_of_equity(name, snapshot.gross_notional, snapshot, config, format_multiple),)


def format_multiple(value: float) -> str:
    return f"{value:.2f}x"
