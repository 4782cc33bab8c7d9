"""Market data: candles fetched through ccxt apart from the ticks, and cached in SQLite.

The market breakers must never wait on the network, so a scheduled job per account
fetches OHLCV for every symbol the account holds and a benchmark, incrementally from
the last cached candle, stores it, prunes what is older than `keep`, and builds the
immutable `MarketData` that the following ticks read. A failed fetch leaves the cache
as it was and the data's time unchanged: once that is stale the market breakers read
"cannot measure", never a calm market.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Callable, Iterable

from riskd.candles import MarketData, market_data
from riskd.config import MarketDataSettings
from riskd.exchange import ExchangeAdapter, explain
from riskd.store import Store

log = logging.getLogger("riskd.market_data")

TIMEFRAMES = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000}
PAGE = 1000
"""Candles asked for per request: the most Binance spot gives (futures give 1500)."""
PAGES = 3
"""Requests per symbol per refresh at most; a longer gap is caught up over the next refreshes."""


def milliseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class MarketFeed:
    """One account's candles: `refresh` fetches and caches them, `current` is what ticks read."""

    def __init__(
        self, account: str, adapter: ExchangeAdapter, store: Store, settings: MarketDataSettings, clock: Callable[[], datetime]
    ):
        self.account, self.adapter, self.store, self.settings, self.clock = account, adapter, store, settings, clock
        self.interval = TIMEFRAMES[settings.timeframe]
        self.current = MarketData(self.interval)
        self.requested: frozenset[str] = frozenset()
        self.refreshing = False

    def wants(self, held: Iterable[str]) -> bool:
        """Whether a symbol is held that the last refresh did not ask for (and none is running)."""
        return not self.refreshing and not set(held) <= self.requested

    async def refresh(self, held: Iterable[str]) -> MarketData:
        """Fetch what is new for every held symbol and the benchmark, cache it, rebuild `current`.

        The data counts as fetched now only when every held symbol's fetch succeeded.
        """
        self.refreshing = True
        try:
            now = self.clock()
            symbols = sorted(set(held))
            self.requested = frozenset(symbols)
            benchmark = await self._benchmark()
            wanted = symbols + ([benchmark] if benchmark and benchmark not in symbols else [])
            fetched = await asyncio.gather(*(self._fetch(symbol, now) for symbol in wanted))
            oldest = milliseconds(now - self.settings.keep)
            self.store.prune_candles(oldest)
            complete = all(ok for symbol, ok in zip(wanted, fetched) if symbol in symbols)
            self.current = market_data(
                self.store.candles(self.account, self.settings.timeframe, wanted, oldest),
                self.interval,
                benchmark,
                now if complete else self.current.fetched_at,
            )
            return self.current
        finally:
            self.refreshing = False

    async def _benchmark(self) -> str | None:
        """The benchmark's symbol on this account's market, if the exchange lists it."""
        name = self.settings.benchmark
        if not name:
            return None
        if "/" in name:
            return name
        quote = self.adapter.quote
        try:
            await self.adapter.load()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("%s: market data: cannot load the markets: %s", self.account, explain(error))
            return None
        symbol = f"{name}/{quote}:{quote}" if self.adapter.futures else f"{name}/{quote}"
        return symbol if symbol in (self.adapter.client.markets or {}) else None

    async def _fetch(self, symbol: str, now: datetime) -> bool:
        """New candles of one symbol into the cache, from the last cached one (which may
        have been still open) or `history` ago; False when the exchange failed."""
        timeframe = self.settings.timeframe
        earliest = milliseconds(now - self.settings.history)
        last = self.store.last_candle_time(self.account, symbol, timeframe)
        since = max(last, earliest) if last is not None else earliest
        try:
            for _ in range(PAGES):
                rows = await self.adapter.candles(symbol, timeframe, since, PAGE)
                self.store.record_candles(self.account, symbol, timeframe, rows)
                if len(rows) < PAGE:
                    break
                since = int(rows[-1][0]) + self.interval
            return True
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("%s: market data for %s not fetched: %s", self.account, symbol, explain(error))
            return False
