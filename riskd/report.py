"""The daily risk report's market figures: exposure, leverage, VaR and ES, correlation, stress.

Built from the store alone (the positions last read, the candles cached for the
account's venue, found from its configuration without a request) with the
settings of the `var` and `stress_loss` breakers, so `riskd report` in another process
says what the running daemon's breakers see. Loaded only when a report is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Mapping, Sequence

import numpy as np

from riskd.analytics import (
    Book,
    Risk,
    StressResult,
    average_correlation,
    book,
    correlation_matrix,
    net_exposures,
)
from riskd.breakers import BREAKERS
from riskd.candles import market_data
from riskd.config import Settings
from riskd.domain import Position
from riskd.market_data import TIMEFRAMES, market_venue, milliseconds
from riskd.store import Store


@dataclass(frozen=True, slots=True)
class MarketRisk:
    """What the positions held now risk. `missing` says why VaR and correlation are absent."""

    exposures: Mapping[str, float]
    gross: float
    leverage: float | None
    risk: Risk | None
    shortfall_measure: bool
    correlation: float | None
    stress: tuple[StressResult, ...]
    missing: str | None = None


def market_risk(store: Store, settings: Settings, account: str, positions: Sequence[Position], equity: float | None, now: datetime) -> MarketRisk:
    """The figures of `positions` (as stored: a hedge-mode position's symbol carries its side)."""
    positions = [replace(position, symbol=_market(position.symbol)) for position in positions]
    configs = settings.breakers_for(account)
    var = configs.get("var") or BREAKERS["var"].config()
    stress = configs.get("stress_loss") or BREAKERS["stress_loss"].config()
    exposures = {symbol: value for symbol, value in net_exposures(positions).items() if value}
    gross = float(sum(abs(value) for value in exposures.values()))
    leverage = gross / equity if equity and equity > 0 else None
    interval = TIMEFRAMES[settings.market_data.timeframe]
    quote = settings.accounts[account].quote
    benchmark = _benchmark(settings.market_data.benchmark, quote)
    since = milliseconds(now - max(var.window, stress.window, timedelta(0)))
    venue = market_venue(account, settings.accounts[account])  # where the daemon cached the account's candles
    rows = store.candles(venue, settings.market_data.timeframe, [*exposures, *benchmark], since)
    named = next((symbol for symbol in benchmark if rows.get(symbol)), None)
    market = market_data(rows, interval, named, now)
    held = book(positions, market, max(1, int(var.window.total_seconds() * 1000 // interval)))
    missing = None
    if held.unpriced:
        missing = f"no cached candles for {', '.join(held.unpriced)}"
    elif held.symbols and held.samples < var.samples:
        missing = f"only {held.samples} cached returns of the {var.samples} needed"
    if missing or equity is None:
        symbols = tuple(exposures)
        bare = Book(symbols, np.array([exposures[s] for s in symbols], dtype=float), np.empty((0, len(symbols))), 86_400_000 / interval)
        results = tuple(result for result in stress.results(bare, equity or 0.0) if result.scenario != "correlation 1")  # needs history
        return MarketRisk(exposures, gross, leverage, None, var.measure == "es", None, results, missing or "no equity read yet")
    correlation = average_correlation(correlation_matrix(held.returns), held.exposures)
    return MarketRisk(exposures, gross, leverage, var.risk(held), var.measure == "es", correlation, stress.results(held, equity))


def _market(symbol: str) -> str:
    """The market of a stored position: `BTC/USDT:USDT:LONG` (hedge mode) is `BTC/USDT:USDT`."""
    market, _, side = symbol.rpartition(":")
    return market if market and side in ("LONG", "SHORT") else symbol


def _benchmark(name: str | None, quote: str) -> tuple[str, ...]:
    """The benchmark's possible symbols: as written when it is one, else futures then spot."""
    if not name:
        return ()
    return (name,) if "/" in name else (f"{name}/{quote}:{quote}", f"{name}/{quote}")
