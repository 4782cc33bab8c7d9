"""Market data: candles fetched through ccxt apart from the ticks, and cached in SQLite, once per venue.

The market breakers must never wait on the network, so a scheduled job per venue
fetches OHLCV for every symbol its accounts hold and their benchmark, incrementally
from the last cached candle, stores it, prunes what is older than `keep`, and builds
the immutable `MarketData` that the following ticks read. Candles are public: every
account on one venue sees the same ones, so they are fetched, cached and held in
memory once for all of them (a copy per account cost memory and CPU for nothing).
Each account reads that one value through a view sharing its arrays, with its own
benchmark and its own fetch time: a failed fetch of a symbol the account holds
leaves that time unchanged, and once it is stale the account's market breakers read
"cannot measure", never a calm market, whatever the venue's other accounts hold.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

from riskd import wording
from riskd.budget import venue_key
from riskd.candles import MarketData, market_data
from riskd.config import AccountConfig, MarketDataSettings
from riskd.exchange import ExchangeAdapter, build_client, explain
from riskd.store import Store

log = logging.getLogger("riskd.market_data")

TIMEFRAMES = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000}
PAGE = 1000
"""Candles asked for per request: the most Binance spot gives (futures give 1500)."""
PAGES = 3
"""Requests per symbol per refresh at most; a longer gap is caught up over the next refreshes."""


def milliseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def market_venue(name: str, account: AccountConfig, client: Any | None = None) -> str:
    """The venue whose public candles `account` sees: the key its candles are fetched,
    cached and shared under.

    It is the ccxt class, its market type and the hosts its data comes from (budget's
    venue key without the proxy: another IP sees the same candles, while a testnet, a
    demo on the same hosts (OKX's and Bitget's) or another simulator is another market). An `exchange: sim` account has an embedded
    exchange of its own, on a port chosen at start, so its venue is the account itself.
    `client` is the account's ccxt client when one is at hand (the daemon's); without
    it one is built, which makes no request, so `riskd report` finds the daemon's
    candles from the configuration alone.
    """
    if account.is_sim:
        return f"sim:{name}"
    exchange, market_type, hosts, demo, _proxies = venue_key(client if client is not None else build_client(account))
    where = hosts[0] if len(hosts) == 1 else hashlib.sha256(" ".join(hosts).encode()).hexdigest()[:16]
    return f"{exchange}:{market_type}{':demo' if demo else ''}@{where}"  # short: it is in every cached candle's row


@dataclass(frozen=True, slots=True)
class Member:
    """One account of a venue as a refresh sees it: its adapter, and the symbols it holds."""

    adapter: ExchangeAdapter
    held: frozenset[str]


class MarketFeed:
    """One venue's candles: `refresh` fetches and caches them for every account there,
    `current(account)` is what that account's ticks read."""

    def __init__(self, venue: str, store: Store, settings: MarketDataSettings, clock: Callable[[], datetime]):
        self.venue, self.store, self.settings, self.clock = venue, store, settings, clock
        self.interval = TIMEFRAMES[settings.timeframe]
        self.empty = MarketData(self.interval)
        self.views: dict[str, MarketData] = {}
        """Per account, its view of the one value that holds every symbol fetched for the venue."""
        self.requested: dict[str, frozenset[str]] = {}
        """Per account, the symbols the last refresh asked for on its behalf."""
        self._running: asyncio.Future | None = None

    def current(self, account: str) -> MarketData:
        """What `account`'s ticks judge on: nothing before its first refresh."""
        return self.views.get(account, self.empty)

    @property
    def refreshing(self) -> bool:
        return self._running is not None

    def wants(self, account: str, held: Iterable[str]) -> bool:
        """Whether `account` holds a symbol the last refresh did not ask for on its behalf (and none is running)."""
        return not self.refreshing and not set(held) <= self.requested.get(account, frozenset())

    async def refresh(self, members: Mapping[str, Member]) -> None:
        """Fetch what is new for every symbol the venue's accounts hold and their benchmarks,
        cache it, and rebuild what each account reads.

        A refresh asked for while one runs waits for that one instead of fetching the same
        candles again: the tick that saw a new symbol and the scheduled job coalesce.
        """
        if self._running is not None:
            await asyncio.shield(self._running)
            return
        self._running = asyncio.get_running_loop().create_future()
        try:
            await self._refresh(members)
        finally:
            self._running.set_result(None)
            self._running = None

    async def _refresh(self, members: Mapping[str, Member]) -> None:
        # The fetches go through the first member's client (by name) that the venue lets
        # read: they all share the venue's budget, so which one spends it does not matter.
        # It is chosen afresh at every refresh, never kept, so an account removed by a
        # reload (its client closed) is simply not among the members the next time.
        readers = [members[name].adapter for name in sorted(members) if not members[name].adapter.budget.holding()]
        if not readers:
            if members:
                held_for = min(member.adapter.budget.holding() for member in members.values())
                log.info("%s: market data not fetched: %s", self.venue, wording.reads_held(held_for))
            return
        reader, now = readers[0], self.clock()
        listed = await self._markets(reader)
        benchmarks = {name: self._benchmark(member.adapter.quote, reader.futures, listed) for name, member in members.items()}
        held = sorted(set().union(*(member.held for member in members.values())))
        wanted = held + sorted({symbol for symbol in benchmarks.values() if symbol} - set(held))
        fetched = dict(zip(wanted, await asyncio.gather(*(self._fetch(reader, symbol, now) for symbol in wanted))))
        oldest = milliseconds(now - self.settings.keep)
        self.store.prune_candles(oldest)
        shared = market_data(self.store.candles(self.venue, self.settings.timeframe, wanted, oldest), self.interval)
        # The data counts as fetched now for an account only when every symbol it holds was
        # fetched; else it keeps the time of its last complete refresh, which ages into
        # "cannot measure" (breakers/priced.py), whatever the other accounts hold.
        views: dict[str, MarketData] = {}
        alike: dict[tuple[str | None, datetime | None], MarketData] = {}
        for name, member in members.items():
            complete = all(fetched[symbol] for symbol in member.held)
            key = (benchmarks[name], now if complete else self.current(name).fetched_at)
            if key not in alike:  # accounts with the same benchmark and time share one view
                alike[key] = replace(shared, benchmark=key[0], fetched_at=key[1])  # the arrays are shared, not copied
            views[name] = alike[key]
        self.views, self.requested = views, {name: member.held for name, member in members.items()}

    async def _markets(self, reader: ExchangeAdapter) -> Mapping[str, Any]:
        """The venue's markets as `reader` has loaded them; none when they cannot be loaded."""
        if not self.settings.benchmark or "/" in self.settings.benchmark:
            return {}
        try:
            await reader.load()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("%s: market data: cannot load the markets: %s", self.venue, explain(error))
            return {}
        return reader.client.markets or {}

    def _benchmark(self, quote: str, futures: bool | None, listed: Mapping[str, Any]) -> str | None:
        """The benchmark's symbol in an account's quote on the venue, if the venue lists it."""
        name = self.settings.benchmark
        if not name:
            return None
        if "/" in name:
            return name
        symbol = f"{name}/{quote}:{quote}" if futures else f"{name}/{quote}"
        return symbol if symbol in listed else None

    async def _fetch(self, reader: ExchangeAdapter, symbol: str, now: datetime) -> bool:
        """New candles of one symbol into the cache, from the last cached one (which may
        have been still open) or `history` ago; False when the exchange failed."""
        timeframe = self.settings.timeframe
        earliest = milliseconds(now - self.settings.history)
        last = self.store.last_candle_time(self.venue, symbol, timeframe)
        since = max(last, earliest) if last is not None else earliest
        try:
            for _ in range(PAGES):
                rows = await reader.candles(symbol, timeframe, since, PAGE)
                self.store.record_candles(self.venue, symbol, timeframe, rows)
                if len(rows) < PAGE:
                    break
                since = int(rows[-1][0]) + self.interval
            return True
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("%s: market data for %s not fetched: %s", self.venue, symbol, explain(error))
            return False
