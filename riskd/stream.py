"""Between polls, the venue's public mark prices: one websocket per venue, shared by its accounts.

Why it exists: a poll every 10 s leaves a crash unseen for 10 to 20 s, and the venue
pushes mark prices every second on a public websocket. Accounts on one venue follow the
same public prices, and a ccxt.pro client with its connection costs over 1 MB (the
client about 0.55 MB, aiohttp's per-connection compressor about 0.6 MB), so one
`VenueStream` per venue follows the union of the symbols its accounts hold, through
ccxt's websocket client (`watch_mark_prices` where the exchange has it, as Binance
USDⓈ-M and OKX do, else the mark price in `watch_tickers`, as on Bybit), and hands the
newest marks to each account's `MarkStream` (`account_stream.py`), which judges them in
its own task. The connection never waits for an account.

What a venue is (`venue_key`): the accounts whose stream clients would be the same, the
same ccxt class with the same public settings (URLs, options, proxies, timeout) once
the credentials are dropped. The client is built from those settings alone, so any of
the accounts could have built it; accounts that differ in any of them (another
simulator port, another proxy) might reach other hosts, and get their own connection.

A connection that fails or stays silent for STALL seconds is closed, reported to each
account it served (an event and an alert, the log, `riskd_stream_up`) and opened again
after a backoff that doubles up to BACKOFF_MAX. When the symbols held change, it is
opened again for the new set (ccxt opens a connection per subscription set). Meanwhile
the polls go on as ever: riskd is never less safe than without the stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from riskd import tls
from riskd.account_stream import MarkStream
from riskd.config import CCXT_SECRET_KEYS, AccountConfig
from riskd.exchange import deep_merge, sim_exchange
from riskd.redact import redact

log = logging.getLogger("riskd.stream")

STALL = 10.0
"""Seconds without a mark before a connected stream counts as stalled (venues push every 1 to 3 s)."""

BACKOFF, BACKOFF_MAX = 1.0, 60.0
"""The wait before reconnecting, doubled after each failure up to the maximum."""

IDLE_CHECK = 1.0
"""How often a stream with no position to follow looks again at the accounts' last snapshots."""

CLOSE_WAIT = 2.0
"""The longest a websocket client may take to close."""


def watch_method(client: Any) -> str | None:
    """The ccxt.pro method that carries mark prices on this exchange, if any."""
    if client.has.get("watchMarkPrices"):
        return "watch_mark_prices"
    if client.has.get("watchTickers"):
        return "watch_tickers"  # Bybit's tickers carry the mark price
    return None


def stream_settings(account: AccountConfig, overrides: dict | None = None) -> tuple[str, dict[str, Any]]:
    """The ccxt.pro class and settings of the account's stream client: its URLs and
    options, without any credential (ccxt's names for them, as `config` refuses them in
    YAML): mark prices are public, and a key not handed out cannot leak."""
    exchange_id = sim_exchange(account) if account.is_sim else account.exchange
    settings: dict[str, Any] = {"timeout": int(account.timeout.total_seconds() * 1000)}
    if exchange_id.startswith("binance"):
        settings["options"] = {"fetchCurrencies": False}
    settings = deep_merge(deep_merge(settings, overrides or {}), account.ccxt)
    public = {key: value for key, value in settings.items() if key.lower() not in CCXT_SECRET_KEYS}
    return exchange_id, public


def venue_key(account: AccountConfig, overrides: dict | None = None) -> str:
    """What accounts sharing one stream have in common: their stream client's class and settings."""
    return json.dumps(stream_settings(account, overrides), sort_keys=True, default=repr)


def build_stream_client(
    account: AccountConfig, overrides: dict | None = None, markets: Mapping[str, dict] | None = None,
    symbols: tuple[str, ...] = (),
) -> Any:
    """A ccxt.pro client for the account's exchange (`stream_settings`), with the shared TLS context.

    Given the REST clients' `markets`, it keeps only those of `symbols`: no exchangeInfo
    request of its own, and no second copy of a venue's hundreds of markets (ccxt copies
    each, about 3 KB apiece)."""
    import ccxt.pro  # loaded only when a stream runs: the websocket classes add ~6 MB

    exchange_id, settings = stream_settings(account, overrides)
    client = getattr(ccxt.pro, exchange_id)({**settings, **tls.ccxt_settings(account.ccxt)})
    held = {symbol: markets[symbol] for symbol in symbols if symbol in (markets or {})}
    if held and len(held) == len(symbols):
        client.set_markets(held)
    return client


def wanted(account: AccountConfig) -> bool:
    """The `stream` setting, defaulting to on where ccxt has a websocket class with mark prices
    and, for `exchange: sim`, where the embedded exchange serves one (its Binance dialect)."""
    if account.stream is not None or account.market == "spot":
        return bool(account.stream)
    if account.is_sim:
        return sim_exchange(account) == "binanceusdm"
    import ccxt.pro

    return account.exchange in ccxt.pro.exchanges


@dataclass
class VenueStream:
    """One venue's mark-price websocket, for the `accounts` on it: `start()`, `stop()`.

    `connect` builds a ccxt.pro client for the symbols to follow."""

    connect: Callable[[tuple[str, ...]], Any]
    accounts: tuple[MarkStream, ...]
    _task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"stream:{self.accounts[0].account}'s venue")

    async def stop(self) -> None:
        """Cancel the stream and wait for it to end. A cancel that lands while a connection
        closes can be lost (asyncio.wait_for in `_close`, Python 3.11), leaving the stream in
        its back-off sleep for up to a minute: it is sent again until it takes."""
        task, self._task = self._task, None
        if task is None:
            return
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=CLOSE_WAIT)
        await asyncio.gather(task, return_exceptions=True)

    def _holding(self) -> dict[MarkStream, tuple[str, ...]]:
        """The accounts that hold something to follow, and what."""
        held = {account: account.symbols() for account in self.accounts}
        return {account: symbols for account, symbols in held.items() if symbols}

    async def _run(self) -> None:
        delay = BACKOFF
        while True:
            holding = self._holding()
            symbols = tuple(sorted({symbol for held in holding.values() for symbol in held}))
            if not symbols:
                await asyncio.sleep(IDLE_CHECK)
                continue
            served = dict.fromkeys(holding)  # the accounts the connection serves, in order: told when it fails
            client = self.connect(symbols)
            try:
                if await self._follow(client, symbols, served):
                    delay = BACKOFF
                    continue  # the positions changed: subscribe to the new symbols
                problem = f"no mark price for {STALL:g} s"
            except asyncio.CancelledError:
                raise
            except Exception as error:  # ccxt raises its own errors and plain ConnectionError alike
                problem = redact(f"{type(error).__name__}: {error}")[:300]
            finally:
                await self._close(client)
            for account in served:
                account.lost(problem, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)
            for account in served:
                account.reconnecting()

    async def _follow(self, client: Any, symbols: tuple[str, ...], served: dict[MarkStream, None]) -> bool:
        """Hand the marks to the accounts with a new mark among their symbols (adding them to
        `served`) until the symbols held change (True) or the connection stalls (False); a
        failure of the connection raises.

        An account none of whose symbols had a new mark for STALL seconds is down on its own:
        ccxt keeps every symbol's last ticker, and the others' marks keep the connection
        busy, so it would otherwise be handed the same old mark for ever and look followed.
        The connection stays open for the others (opening it again would cost them their
        marks, and a venue that stops pushing one symbol is not cured by it); the account is
        back with its next new mark.
        """
        method = watch_method(client)
        if method is None:
            raise RuntimeError(f"ccxt has no mark-price stream for {client.id}")
        opened = time.monotonic()
        stamps: dict[str, Any] = {}
        fresh_at: dict[str, float] = {}
        while True:
            try:
                await asyncio.wait_for(getattr(client, method)(list(symbols)), STALL)
            except asyncio.TimeoutError:
                return False
            now, marks, fresh = time.monotonic(), {}, set()
            for symbol, ticker in client.tickers.items():
                if symbol in symbols and ticker.get("markPrice"):
                    marks[symbol] = float(ticker["markPrice"])
                    stamp = ticker.get("timestamp") or id(ticker)  # a new message is a new ticker, with its time
                    if stamps.get(symbol) != stamp:
                        stamps[symbol], fresh_at[symbol] = stamp, now
                        fresh.add(symbol)
            holding = self._holding()
            for account, held in holding.items():
                if fresh.intersection(held):
                    account.offer(marks)
            served.update(dict.fromkeys(holding))
            if {symbol for held in holding.values() for symbol in held} != set(symbols):
                return True
            for account, held in holding.items():
                if account.up and now - max(fresh_at.get(symbol, opened) for symbol in held) > STALL:
                    account.lost(f"no new mark for its positions' symbols for {STALL:g} s", None)

    async def _close(self, client: Any) -> None:
        try:
            await asyncio.wait_for(client.close(), CLOSE_WAIT)
        except Exception as error:  # closing a broken connection can fail too; it is gone either way
            log.debug("closing a mark stream: %s", error)
