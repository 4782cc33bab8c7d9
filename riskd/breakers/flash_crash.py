"""Flash crash: a held symbol's price swings by more than a share within a few minutes.

The swing is the distance from the highest to the lowest price in the window, as a
share of the highest, over the cached candles and the position's mark price read
this tick, so a crash between two market-data refreshes is seen at tick speed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

import numpy as np

from riskd.breakers.base import ActionName, Breaker, BreakerConfig, Context, Reading, Resume, no_data
from riskd.breakers.priced import flat, fresh, window_rows, worded
from riskd.units import Duration, Percent, format_percent


class FlashCrashConfig(BreakerConfig):
    per_position: ClassVar[bool] = True

    limit: Percent = 0.10
    warn_at: Percent | None = None
    action: ActionName = "halt"
    resume: Resume = "30m"
    window: Duration = timedelta(minutes=5)


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    assert isinstance(config, FlashCrashConfig)
    missing = fresh("flash_crash", context, config)
    if missing is not None:
        return (missing,)
    if not context.snapshot.positions:
        return (flat("flash_crash", config),)
    rows = window_rows(context, config.window)
    readings = []
    for position in context.snapshot.positions:
        column = context.market.column(position.symbol)
        highs = context.market.highs[rows, column] if column is not None else np.empty(0)
        lows = context.market.lows[rows, column] if column is not None else np.empty(0)
        prices = np.concatenate([highs, lows, [position.mark_price] if position.mark_price else []])
        prices = prices[np.isfinite(prices)]
        if prices.size < 2:
            why = f"no prices of {position.symbol} within the last {format_window(config.window)}"
            readings.append(no_data("flash_crash", config, why, position.key))
            continue
        top = float(prices.max())
        swing = (top - float(prices.min())) / top
        subject = f"price swing of {position.symbol} within {format_window(config.window)}"
        readings.append(worded("flash_crash", subject, swing, config, format_percent, position.key))
    return tuple(readings)


def format_window(window: timedelta) -> str:
    minutes = window.total_seconds() / 60
    return f"{minutes:g} minutes" if minutes != 1 else "1 minute"


BREAKER = Breaker(
    "flash_crash",
    "a held symbol's swing from high to low within a few minutes, as a share of the high",
    FlashCrashConfig,
    evaluate,
)
