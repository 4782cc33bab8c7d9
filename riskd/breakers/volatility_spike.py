"""Volatility spike: the held symbol whose short-window volatility is the most above its baseline.

Markets that suddenly move several times faster than usual are where stops slip and
liquidations cascade. Each held symbol is measured against its own baseline, the long
window before the short one (so a spike does not raise its own yardstick); the account
is judged on the worst, in one reading that names it, so a market-wide spike is one
alert, not one per position.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import numpy as np
from pydantic import Field

from riskd.breakers.base import Breaker, BreakerConfig, Context, Reading, no_data
from riskd.breakers.exposure import format_multiple
from riskd.breakers.priced import flat, fresh, steps, window_rows, worded
from riskd.domain import Remedy
from riskd.units import Duration, Ratio

FILLED = 0.5
"""A window needs returns for at least half its candles to be measured."""


class VolatilitySpikeConfig(BreakerConfig):
    limit: Ratio = 3.0
    warn_at: Ratio | None = None
    action: Remedy = Remedy.ALERT
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
    market = context.market
    recent = window_rows(context, config.short_window)
    before = window_rows(context, config.short_window + config.long_window)
    before = before[before < (recent[0] if recent.size else len(market.times))]
    short_needed = max(config.samples, int(steps(config.short_window, context) * FILLED))
    long_needed = max(config.samples, int(steps(config.long_window, context) * FILLED))
    symbols = list(dict.fromkeys(position.symbol for position in context.snapshot.positions))
    unpriced = [symbol for symbol in symbols if symbol not in market]
    priced = [symbol for symbol in symbols if symbol in market]
    columns = [market.columns[symbol] for symbol in priced]
    # Every held symbol at once: NaN-aware counts and spreads of both windows.
    (recent_counts, spreads), (baseline_counts, baselines) = _spread(market.returns[recent][:, columns]), _spread(market.returns[before][:, columns])
    blind = [f"no candles for {symbol}" for symbol in unpriced]
    ratios = {}
    for index, symbol in enumerate(priced):
        if recent_counts[index] < short_needed or baseline_counts[index] < long_needed:
            blind.append(
                f"{symbol} has {recent_counts[index]} of {short_needed} recent and "
                f"{baseline_counts[index]} of {long_needed} baseline returns"
            )
        elif not baselines[index] > 0:
            blind.append(f"{symbol}'s price did not move in the baseline window")
        else:
            ratios[symbol] = float(spreads[index] / baselines[index])
    worst = max(ratios, key=ratios.__getitem__, default=None)
    if worst is None or blind and ratios[worst] < config.limit:
        return (no_data("volatility_spike", config, "; ".join(blind)),)  # part unseen: never OK
    subject = f"volatility of {worst} over {_words(config.short_window)} against its {_words(config.long_window)} baseline"
    return (worded("volatility_spike", subject, ratios[worst], config, format_multiple),)


def _spread(returns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: how many returns are known, and their sample standard deviation (NaN
    with fewer than two), skipping the missing ones."""
    known = ~np.isnan(returns)
    counts = known.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        deviations = np.where(known, returns - np.where(known, returns, 0.0).sum(axis=0) / counts, 0.0)
        return counts, np.sqrt((deviations * deviations).sum(axis=0) / (counts - 1))


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
