"""Risk figures from an account's history: returns, volatility, drawdown, VaR, stress.

Pure functions of numbers (numpy and pandas do the arithmetic), used by the daily
report. They never act: the breakers decide, these describe. pandas is imported here
only, so a daemon that never reports does not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from riskd.domain import Position, Side

SHOCKS = (-0.30, -0.20, -0.10, 0.10, 0.20)
"""Price moves of every position at once for the stress test."""


@dataclass(frozen=True, slots=True)
class Figures:
    """What an equity history says, in fractions of equity (0.05 is 5 %)."""

    samples: int
    max_drawdown: float | None
    volatility: float | None
    var_95: float | None
    expected_shortfall_95: float | None


def equity_series(points: Iterable[tuple[datetime, float]]) -> pd.Series:
    """Equity in time order, one value per moment, invalid values dropped."""
    frame = pd.DataFrame(list(points), columns=["at", "equity"])
    if frame.empty:
        return pd.Series(dtype=float)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame = frame.dropna().drop_duplicates("at", keep="last").sort_values("at")
    series = frame.set_index("at")["equity"].astype(float)
    return series[np.isfinite(series)]


def max_drawdown(equity: pd.Series) -> float | None:
    """The largest fall from a running peak, as a share of that peak."""
    positive = equity[equity > 0]
    if positive.empty:
        return None
    peaks = positive.cummax()
    return float(((peaks - positive) / peaks).max())


def returns(equity: pd.Series, every: str = "5min") -> pd.Series:
    """Simple returns of equity resampled to regular steps (last value in each step)."""
    regular = equity[equity > 0].resample(every).last().dropna()
    return regular.pct_change().dropna()


def value_at_risk(step_returns: pd.Series, level: float = 0.95) -> tuple[float | None, float | None]:
    """Historical VaR and expected shortfall at `level`, as positive losses per step."""
    values = step_returns.to_numpy(dtype=float)
    if values.size < 20:
        return None, None
    cutoff = float(np.quantile(values, 1 - level))
    tail = values[values <= cutoff]
    return max(0.0, -cutoff), max(0.0, -float(tail.mean()))


def volatility(step_returns: pd.Series, steps_per_day: float) -> float | None:
    """Daily volatility from per-step returns (square-root-of-time scaling)."""
    if len(step_returns) < 2:
        return None
    return float(step_returns.std(ddof=1) * np.sqrt(steps_per_day))


def figures(points: Iterable[tuple[datetime, float]], every: str = "5min") -> Figures:
    """Everything the report says about one account's equity history."""
    equity = equity_series(points)
    if equity.empty:
        return Figures(0, None, None, None, None)
    step_returns = returns(equity, every)
    steps_per_day = pd.Timedelta("1D") / pd.Timedelta(every)
    var, shortfall = value_at_risk(step_returns)
    return Figures(
        samples=len(equity),
        max_drawdown=max_drawdown(equity),
        volatility=volatility(step_returns, steps_per_day),
        var_95=var,
        expected_shortfall_95=shortfall,
    )


def stress(positions: Sequence[Position], equity: float, shocks: Sequence[float] = SHOCKS) -> dict[float, float]:
    """Equity after every price moves by each shock at once, positions held as they are.

    Longs gain with the move and shorts lose; a position without a mark price is valued
    by its notional.
    """
    signed = np.array([p.notional if p.side is Side.LONG else -p.notional for p in positions], dtype=float)
    return {shock: float(equity + signed.sum() * shock) for shock in shocks}
