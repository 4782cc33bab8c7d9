"""Flash crash: a held symbol's price swings by more than a share within a few minutes.

The swing is the distance from the highest to the lowest price in the window, as a
share of the highest, over the cached candles and the positions' mark prices read
this tick, so a crash between two market-data refreshes is seen at tick speed. The
account is judged on the held symbol that swung most, in one reading that names it.
"""

from __future__ import annotations

import warnings
from datetime import timedelta

import numpy as np

from riskd.breakers.base import Breaker, BreakerConfig, Context, Reading, Resume, no_data
from riskd.breakers.priced import flat, fresh, window_rows, worded
from riskd.domain import Remedy
from riskd.units import Duration, Percent, format_percent


class FlashCrashConfig(BreakerConfig):
    limit: Percent = 0.10
    warn_at: Percent | None = None
    action: Remedy = Remedy.HALT
    resume: Resume = "30m"
    window: Duration = timedelta(minutes=5)


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    assert isinstance(config, FlashCrashConfig)
    missing = fresh("flash_crash", context, config)
    if missing is not None:
        return (missing,)
    if not context.snapshot.positions:
        return (flat("flash_crash", config),)
    market, within = context.market, format_window(config.window)
    marks: dict[str, list[float]] = {}
    for position in context.snapshot.positions:
        marks.setdefault(position.symbol, []).extend([position.mark_price] if position.mark_price else [])
    priced = [symbol for symbol in marks if symbol in market]
    rows, columns = window_rows(context, config.window), [market.columns[symbol] for symbol in priced]
    # Every held symbol at once: the window's highest and lowest price, ±inf for none.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a symbol without a candle in the window
        highs = np.nanmax(market.highs[rows][:, columns], axis=0, initial=-np.inf)
        lows = np.nanmin(market.lows[rows][:, columns], axis=0, initial=np.inf)
    blind = [f"no prices of {symbol} within the last {within}" for symbol in marks if symbol not in market]
    swings = {}
    for index, symbol in enumerate(priced):
        if not np.isfinite(highs[index]):  # no candle in the window: a mark price alone shows no swing
            blind.append(f"no prices of {symbol} within the last {within}")
            continue
        top, bottom = max([float(highs[index]), *marks[symbol]]), min([float(lows[index]), *marks[symbol]])
        swings[symbol] = (top - bottom) / top
    worst = max(swings, key=swings.__getitem__, default=None)
    if worst is None or blind and swings[worst] < config.limit:
        return (no_data("flash_crash", config, "; ".join(blind)),)  # part unseen: never OK
    return (worded("flash_crash", f"price swing of {worst} within {within}", swings[worst], config, format_percent),)


def format_window(window: timedelta) -> str:
    minutes = window.total_seconds() / 60
    return f"{minutes:g} minutes" if minutes != 1 else "1 minute"


BREAKER = Breaker(
    "flash_crash",
    "a held symbol's swing from high to low within a few minutes, as a share of the high",
    FlashCrashConfig,
    evaluate,
)
