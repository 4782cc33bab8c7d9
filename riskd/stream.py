"""Between polls, the venue's public mark prices: a crash seen within a second, at no request weight.

Why it exists: a poll every 10 s (and `confirm` polls to trip) leaves a crash unseen for
10 to 20 s. The venue pushes mark prices every second on a public websocket. For each
account, a `MarkStream` follows the marks of the symbols its last good snapshot holds
through ccxt's websocket client (`ccxt.pro`: `watch_mark_prices` where the exchange has
it, as Binance USDⓈ-M and OKX do, else the mark price in `watch_tickers`, as on Bybit),
revalues those positions at every mark and judges the result with the price-driven
breakers (`marks.py`, pure).

It never acts on the stream's numbers. A breach it sees asks the daemon for an
immediate read of the account: a normal tick, recorded, judged and acted on like a
scheduled one, so riskd acts only on what the account itself says.

How `confirm` counts: each stream-triggered read is one tick and counts once. While the
stream shows a breach the account's reads have not yet tripped, the reads follow one
another at once (the next starts when the previous is recorded; at most `confirm` for
one mark), so a breach with `confirm: 2` trips two reads after the mark, not two poll
intervals. A read whose own
reading of that breaker is not breached (or that failed) does not confirm it: nothing is
done, and the stream asks no further read for that breaker for one poll interval; the
polls judge it meanwhile. A breach already tripped asks no read: the polls enforce it.

A stream that fails or stays silent for STALL seconds is closed, reported (an event and
an alert, the log, `riskd_stream_up`) and opened again after a backoff that doubles up
to BACKOFF_MAX. Meanwhile the polls go on as ever: riskd is never less safe than
without the stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Awaitable, Callable, Mapping

from riskd.breakers import BreakerConfig
from riskd.breakers.base import base_name
from riskd.config import AccountConfig
from riskd import tls, wording
from riskd.domain import AccountState, Alert, Event, EventKind, Severity, Snapshot, Status, StepResult, alert_key, frozen_mapping
from riskd.exchange import deep_merge, sim_exchange
from riskd.marks import PRICE_DRIVEN, price_readings, revalue, unconfirmed_breaches
from riskd.redact import redact

log = logging.getLogger("riskd.stream")

STALL = 10.0
"""Seconds without a mark before a connected stream counts as stalled (venues push every 1 to 3 s)."""

BACKOFF, BACKOFF_MAX = 1.0, 60.0
"""The wait before reconnecting, doubled after each failure up to the maximum."""

IDLE_CHECK = 1.0
"""How often a stream with no position to follow looks again at the last snapshot."""

CLOSE_WAIT = 2.0
"""The longest a websocket client may take to close."""


@dataclass(frozen=True, slots=True)
class Basis:
    """What a mark is judged against: the last good snapshot, the account's state, its breakers, the time."""

    snapshot: Snapshot
    state: AccountState
    breakers: Mapping[str, BreakerConfig]
    now: datetime


def watch_method(client: Any) -> str | None:
    """The ccxt.pro method that carries mark prices on this exchange, if any."""
    if client.has.get("watchMarkPrices"):
        return "watch_mark_prices"
    if client.has.get("watchTickers"):
        return "watch_tickers"  # Bybit's tickers carry the mark price
    return None


def build_stream_client(
    account: AccountConfig, overrides: dict | None = None, markets: Mapping[str, dict] | None = None,
    symbols: tuple[str, ...] = (),
) -> Any:
    """A ccxt.pro client for the account's exchange, with its URLs and options but no
    credentials: mark prices are public, and a key not handed out cannot leak.

    Given the REST client's `markets`, it keeps only those of `symbols`: no exchangeInfo
    request of its own, and no second copy of a venue's hundreds of markets (ccxt copies
    each, about 3 KB apiece) for every account."""
    import ccxt.pro  # loaded only when a stream runs: the websocket classes add ~6 MB

    exchange_id = sim_exchange(account) if account.is_sim else account.exchange
    settings: dict[str, Any] = {"timeout": int(account.timeout.total_seconds() * 1000)}
    if exchange_id.startswith("binance"):
        settings["options"] = {"fetchCurrencies": False}
    settings = deep_merge(deep_merge(settings, overrides or {}), account.ccxt)
    for secret in ("apiKey", "secret", "password"):
        settings.pop(secret, None)
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
class MarkStream:
    """One account's mark-price stream: `start()`, `stop()`, and figures for /metrics.

    `connect` builds a ccxt.pro client for the symbols to follow; `basis` gives what a mark is judged against
    (None before the first good read); `read` runs an immediate tick and returns its
    result (None when riskd is stopping); `report` records an event with its alert;
    `hold` is how long an unconfirmed breaker is left to the polls (the poll interval).
    """

    account: str
    connect: Callable[[tuple[str, ...]], Any]
    basis: Callable[[], Basis | None]
    read: Callable[[], Awaitable[StepResult | None]]
    report: Callable[[Event, Alert | None], None]
    hold: Callable[[], timedelta]
    up: bool = False
    marks_seen: int = 0
    reconnects: int = 0
    reads: int = 0
    """Reads of the account the stream asked for."""
    last_mark_at: float | None = None
    _held: dict[str, float] = field(default_factory=dict)
    _task: asyncio.Task | None = None
    _reported_down: bool = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"stream:{self.account}")

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

    # --- the connection ----------------------------------------------------------

    async def _run(self) -> None:
        delay = BACKOFF
        while True:
            symbols = self._symbols()
            if not symbols:
                await asyncio.sleep(IDLE_CHECK)
                continue
            client = self.connect(symbols)
            try:
                if await self._follow(client, symbols):
                    delay = BACKOFF
                    continue  # the positions changed: subscribe to the new symbols
                problem = f"no mark price for {STALL:g} s"
            except asyncio.CancelledError:
                raise
            except Exception as error:  # ccxt raises its own errors and plain ConnectionError alike
                problem = redact(f"{type(error).__name__}: {error}")[:300]
            finally:
                await self._close(client)
            self._down(problem, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)
            self.reconnects += 1

    async def _follow(self, client: Any, symbols: tuple[str, ...]) -> bool:
        """Judge every mark until the positions change (True) or the stream stalls (False);
        a failure of the connection raises."""
        method = watch_method(client)
        if method is None:
            raise RuntimeError(f"ccxt has no mark-price stream for {client.id}")
        while True:
            try:
                await asyncio.wait_for(getattr(client, method)(list(symbols)), STALL)
            except asyncio.TimeoutError:
                return False
            marks = {
                symbol: float(ticker["markPrice"])
                for symbol, ticker in client.tickers.items()
                if symbol in symbols and ticker.get("markPrice")
            }
            self.marks_seen += 1
            self.last_mark_at = time.monotonic()
            self._up()
            await self._judge(marks)
            if self._symbols() != symbols:
                return True

    async def _close(self, client: Any) -> None:
        try:
            await asyncio.wait_for(client.close(), CLOSE_WAIT)
        except Exception as error:  # closing a broken connection can fail too; it is gone either way
            log.debug("%s: closing the mark stream: %s", self.account, error)

    def _symbols(self) -> tuple[str, ...]:
        basis = self.basis()
        if basis is None:
            return ()
        return tuple(sorted({p.symbol for p in basis.snapshot.positions if p.kind != "spot" and p.mark_price}))

    # --- judging -----------------------------------------------------------------

    async def _judge(self, marks: Mapping[str, float]) -> None:
        """Read the account at once while the marks show a breach it has not yet tripped:
        at most `confirm` reads for one mark, enough to trip it."""
        asked = 0
        while True:
            basis = self.basis()
            if basis is None:
                return
            estimate = revalue(basis.snapshot, marks)
            readings = price_readings(basis.state, estimate, basis.breakers, basis.now)
            clock = time.monotonic()
            breaches = [r for r in unconfirmed_breaches(basis.state, readings) if self._held.get(r.key, 0) <= clock]
            if not breaches or asked >= max(basis.breakers[r.breaker].confirm for r in breaches):
                return
            asked += 1
            text = wording.stream_breach(breaches[0].reason, len(breaches) - 1)
            self._record(EventKind.STREAM_BREACH, Severity.WARNING, text, [r.key for r in breaches])
            self.reads += 1
            try:
                result = await self.read()
            except Exception:  # a tick that fails is the tick's problem, not the stream's: not confirmed
                log.exception("%s: the read the mark stream asked for failed", self.account)
                result = StepResult(basis.state)
            if result is None:
                return
            confirmed = {r.key for r in result.readings if r.status is Status.BREACHED}
            refuted = [r for r in breaches if r.key not in confirmed]
            if refuted:
                until = time.monotonic() + self.hold().total_seconds()
                self._held.update({r.key: until for r in refuted})
                failed = all(r.status is Status.NO_DATA for r in result.readings if base_name(r.breaker) in PRICE_DRIVEN)
                text = wording.stream_unconfirmed(failed, [r.key for r in refuted], self.hold())
                self._record(EventKind.STREAM_UNCONFIRMED, Severity.INFO, text, [r.key for r in refuted])
            if len(refuted) == len(breaches):
                return

    def _record(self, kind: EventKind, severity: Severity, text: str, keys: list[str]) -> None:
        log.log(logging.WARNING if severity is Severity.WARNING else logging.INFO, "%s: stream: %s", self.account, text)
        self.report(Event(self.account, kind, text, severity=severity, data=frozen_mapping({"keys": keys})), None)

    # --- reporting ---------------------------------------------------------------

    def _up(self) -> None:
        if self.up:
            return
        self.up = True
        if not self._reported_down:
            log.info("%s: following the mark-price stream", self.account)
            return
        self._reported_down = False
        text = wording.stream_up()
        log.warning("%s: mark-price stream back", self.account)
        self.report(Event(self.account, EventKind.STREAM_UP, text, severity=Severity.INFO),
                    Alert(self.account, Severity.INFO, alert_key(EventKind.STREAM_UP), text))

    def _down(self, problem: str, delay: float) -> None:
        self.up = False
        log.warning("%s: mark-price stream down (%s); polling alone, reconnecting in %g s", self.account, problem, delay)
        if self._reported_down:
            return  # one report per outage, however many attempts it takes
        self._reported_down = True
        text = wording.stream_down(problem)
        self.report(Event(self.account, EventKind.STREAM_DOWN, text, severity=Severity.WARNING),
                    Alert(self.account, Severity.WARNING, alert_key(EventKind.STREAM_DOWN), text))
