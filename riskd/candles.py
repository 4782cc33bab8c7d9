"""Market data as one immutable value: every cached symbol's candles, aligned in time.

The market-data job builds it from the cache between ticks; the breakers and the
analytics only read it. Building it does the alignment once (a row per candle time,
a column per symbol, NaN where a candle is missing, the returns stored column by
column), so a tick that judges fifty positions only picks columns. The arrays are made read-only, which keeps the value
frozen in fact and not just in name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Mapping

import numpy as np

from riskd.domain import frozen_mapping


def _read_only(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    return values


@dataclass(frozen=True, slots=True)
class MarketData:
    """Candles of one timeframe for a set of symbols, on one shared timeline.

    `times` holds candle open times (epoch ms, ascending); `opens`, `highs`, `lows` and
    `closes` are `len(times)` × `len(symbols)` with NaN where a symbol has no candle.
    """

    interval_ms: int
    symbols: tuple[str, ...] = ()
    times: np.ndarray = field(default_factory=lambda: _read_only(np.empty(0, dtype=np.int64)))
    opens: np.ndarray = field(default_factory=lambda: _read_only(np.empty((0, 0))))
    highs: np.ndarray = field(default_factory=lambda: _read_only(np.empty((0, 0))))
    lows: np.ndarray = field(default_factory=lambda: _read_only(np.empty((0, 0))))
    closes: np.ndarray = field(default_factory=lambda: _read_only(np.empty((0, 0))))
    returns: np.ndarray = field(default_factory=lambda: _read_only(np.empty((0, 0))))
    """Simple close-to-close returns, row i from candle i-1 to i; NaN unless both exist
    and are one interval apart (row 0 is always NaN)."""
    benchmark: str | None = None
    fetched_at: datetime | None = None
    columns: Mapping[str, int] = field(default_factory=frozen_mapping)

    def column(self, symbol: str) -> int | None:
        return self.columns.get(symbol)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self.columns


Row = tuple[int, float, float, float, float, float]
"""One candle as stored and as ccxt returns it: open time (ms), open, high, low, close, volume."""


def market_data(
    rows: Mapping[str, Iterable[Row]],
    interval_ms: int,
    benchmark: str | None = None,
    fetched_at: datetime | None = None,
) -> MarketData:
    """Align each symbol's candles on the union of their open times."""
    series = {symbol: np.asarray(list(candles), dtype=float).reshape(-1, 6) for symbol, candles in rows.items()}
    symbols = tuple(symbol for symbol, values in series.items() if len(values))
    if not symbols:
        return MarketData(interval_ms, benchmark=benchmark, fetched_at=fetched_at)
    times = np.unique(np.concatenate([series[symbol][:, 0].astype(np.int64) for symbol in symbols]))
    shape = (len(times), len(symbols))
    opens, highs, lows, closes = (np.full(shape, np.nan) for _ in range(4))
    for column, symbol in enumerate(symbols):
        values = series[symbol]
        at = np.searchsorted(times, values[:, 0].astype(np.int64))
        opens[at, column], highs[at, column], lows[at, column], closes[at, column] = values[:, 1:5].T
    returns = np.full(shape, np.nan)
    consecutive = np.diff(times) == interval_ms
    with np.errstate(divide="ignore", invalid="ignore"):
        returns[1:][consecutive] = closes[1:][consecutive] / closes[:-1][consecutive] - 1.0
    returns[~np.isfinite(returns)] = np.nan
    returns = np.asfortranarray(returns)  # column by column: a book picks its symbols' columns
    return MarketData(
        interval_ms,
        symbols,
        _read_only(times),
        *(_read_only(values) for values in (opens, highs, lows, closes, returns)),
        benchmark=benchmark,
        fetched_at=fetched_at,
        columns=frozen_mapping({symbol: index for index, symbol in enumerate(symbols)}),
    )


EMPTY = MarketData(60_000)
"""No market data at all: every market breaker reads "cannot measure"."""
