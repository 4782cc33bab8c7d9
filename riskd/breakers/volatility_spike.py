"""Volatility spike: a held symbol's short-window volatility against its own baseline.

Markets that suddenly move several times faster than usual are where stops slip and
liquidations cascade. Each held symbol is judged on its own, so `close` can close it.
The baseline is the long window before the short one, so a spike does not raise its
own yardstick.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, ClassVar

import numpy as np
from pydantic import Field

from riskd.breakers.base import ActionName, Breaker, BreakerConfig, Context, Reading, no_data
from riskd.breakers.leverage import format_multiple
from riskd.breakers.priced import flat, fresh, steps, window_rows, worded
from riskd.units import Duration, Ratio

FILLED = 0.5
"""A window needs returns for at least half its candles to be measured."""


class VolatilitySpikeConfig(BreakerConfig):
    per_position: ClassVar[bool] = True

    limit: Ratio = 3.0
    warn_at: Ratio | None = None
    action: ActionName = "alert"
    short_window: Duration = timedelta(minutes=15)
    long_window: Duration = timedelta(hours=6)
    samples: Annotated[int, Field(ge=2)] = 5
    """The fewest returns either window may be measured on."""


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    assert isinstance(config, VolatilitySpikeConfig)
    missing = fresh("volatility_spike", context, config)
    if missing is not None:
        return (missing,)
    if not context.snapshot.positions:
        return (flat("volatility_spike", config),)
    recent = window_rows(context, config.short_window)
    before = window_rows(context, config.short_window + config.long_window)
    before = before[before < (recent[0] if recent.size else len(context.market.times))]
    short_needed = max(config.samples, int(steps(config.short_window, context) * FILLED))
    long_needed = max(config.samples, int(steps(config.long_window, context) * FILLED))
    return tuple(
        _judge(context, config, position.symbol, position.key, recent, before, short_needed, long_needed)
        for position in context.snapshot.positions
    )


def _judge(
    context: Context,
    config: VolatilitySpikeConfig,
    symbol: str,
    key: str,
    recent: np.ndarray,
    before: np.ndarray,
    short_needed: int,
    long_needed: int,
) -> Reading:
    column = context.market.column(symbol)
    if column is None:
        return no_data("volatility_spike", config, f"no candles for {symbol}", key)
    returns = context.market.returns[:, column]
    short, long = returns[recent], returns[before]
    short, long = short[~np.isnan(short)], long[~np.isnan(long)]
    if short.size < short_needed or long.size < long_needed:
        return no_data(
            "volatility_spike",
            config,
            f"{symbol} has {short.size} of {short_needed} recent and {long.size} of {long_needed} baseline returns",
            key,
        )
    baseline = float(long.std(ddof=1))
    if baseline <= 0:
        return no_data("volatility_spike", config, f"{symbol}'s price did not move in the baseline window", key)
    ratio = float(short.std(ddof=1)) / baseline
    subject = f"volatility of {symbol} over {_words(config.short_window)} against its {_words(config.long_window)} baseline"
    return worded("volatility_spike", subject, ratio, config, format_multiple, key)


def _words(window: timedelta) -> str:
    minutes = window.total_seconds() / 60
    return f"{minutes / 60:g}h" if minutes >= 60 else f"{minutes:g}m"


BREAKER = Breaker(
    "volatility_spike",
    "a held symbol's short-window volatility as a multiple of its long-window baseline",
    VolatilitySpikeConfig,
    evaluate,
    format_multiple,
)
