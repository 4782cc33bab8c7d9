"""What the market breakers share: the positions priced on fresh market data, or why not.

A market breaker that cannot measure must say so, never read as healthy: no good
snapshot, no market data yet, market data gone stale, a held symbol without candles
and a history too short for the figure are each a plain "cannot measure" reading.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Callable

import numpy as np

from riskd.analytics import Book
from riskd.breakers.base import BreakerConfig, Context, judge, no_data
from riskd.domain import Reading, Status

STALE_AFTER = timedelta(minutes=15)
"""Market data older than this is not believed: the refresh job has been failing."""


def steps(window: timedelta, context: Context) -> int:
    """How many candles of the market data's interval fit in `window` (at least one)."""
    return max(1, int(window.total_seconds() * 1000 // context.market.interval_ms))


def fresh(name: str, context: Context, config: BreakerConfig) -> Reading | None:
    """A "cannot measure" reading when there is no usable snapshot or market data, else None."""
    market = context.market
    if context.snapshot is None or context.equity is None:
        return no_data(name, config, f"no good snapshot to measure {name.replace('_', ' ')}")
    if market.fetched_at is None:
        return no_data(name, config, "no market data fetched yet")
    age = context.now - market.fetched_at
    if age > STALE_AFTER:
        return no_data(name, config, f"market data is {int(age.total_seconds() // 60)} minutes old")
    return None


def priced_book(name: str, context: Context, config: BreakerConfig, window: timedelta, samples: int) -> Book | Reading:
    """The positions with `window` of aligned returns, or a "cannot measure" reading."""
    missing = fresh(name, context, config)
    if missing is not None:
        return missing
    if context.equity <= 0:
        return no_data(name, config, "equity is zero or negative, so a share of it means nothing")
    held = context.book.recent(steps(window, context))
    if held.unpriced:
        return no_data(name, config, f"no candles for {', '.join(held.unpriced)}")
    if held.symbols and held.samples < samples:
        return no_data(name, config, f"only {held.samples} returns of the {samples} needed")
    return held


def flat(name: str, config: BreakerConfig) -> Reading:
    """The reading of a per-position breaker on an account with nothing open; its reason
    names what is watched, as it may be the sentence that clears the breaker's breach."""
    subject = name.replace("_", " ")
    return Reading(name, Status.OK, 0.0, config.limit, config.warning_level, f"no open positions to watch for a {subject}")


def window_rows(context: Context, window: timedelta) -> np.ndarray:
    """Indices of the market data's rows whose candle opened within `window` before now
    (after now - window): a 15-minute window holds fifteen one-minute candles."""
    since = (context.now - window).timestamp() * 1000
    return np.flatnonzero(context.market.times > since)


def worded(
    name: str, subject: str, value: float, config: BreakerConfig, describe: Callable[[float], str], symbol: str | None = None
) -> Reading:
    """`judge`, with the reason's subject in words fuller than the breaker's name."""
    reading = judge(name, value, config, describe, symbol)
    plain = f"{name.replace('_', ' ')} of {symbol}" if symbol else name.replace("_", " ")
    reason = subject + reading.reason.removeprefix(plain)
    return Reading(name, reading.status, value, reading.limit, reading.warn_at, reason, symbol, reading.currency)
