"""The request budget riskd shares with the bots on one venue, and the limiter that keeps to it.

Why: exchanges count request weight per IP address, not per API client. Binance USDⓈ-M
allows 2,400 weight a minute per IP; every account riskd guards there, and every bot on
the same machine, draws on that one budget, and an IP that overdraws it is refused (HTTP
429) and then banned (HTTP 418). So riskd:

- configures ccxt's own rolling-window limiter (a library feature, not a limiter of
  riskd's) from the venue's published budget, so a tick's reads and a flatten's orders
  leave together while the per-minute budget holds (`limiter_settings`);
- gives every ccxt client on one venue the same limiter (`attach`): one budget per venue
  and IP, not one per client;
- reads what the venue says is used (Binance's `X-MBX-USED-WEIGHT-1M` header) for the
  metrics and a warning before the budget runs out, and on a rate-limit answer holds its
  routine reads for as long as the venue asks (`refusal`): Binance's 429/418 and their
  `Retry-After`; Bybit's retCode 10006 (answered with HTTP 200) until its
  `X-Bapi-Limit-Reset-Timestamp`, and its HTTP 403 IP limit for the ten minutes Bybit asks;
- lets the emergency path (cancels and reduce-only orders, and the re-reads that verify
  them, marked with `urgent()`) pass the queue and the hold: its cost still counts;
- refuses a configuration whose routine reads cannot fit in half a venue's budget
  (`plans`), leaving the other half to the bots and to riskd's own emergencies. The
  routine reads are the ticks (each account, every poll interval), the market data
  (candles, once per venue every `market_data.refresh`) and the trade history (each
  account with loss_streak, every minute). Where riskd knows no published budget, ccxt's
  own rate for the exchange sets the shortest poll interval instead. `config.load_settings`
  runs this check, so every way of loading the settings refuses what cannot fit.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlsplit

from riskd import wording
from riskd.domain import EventKind
from riskd.units import format_span, rounded_up

RISKD_SHARE = 0.5
"""The part of a venue's budget riskd plans to use for its routine reads; the rest is the
bots' (on the same IP) and riskd's own emergencies'."""

HELD_SYMBOLS = 3
"""Symbols the market data is planned to read candles of besides the benchmark: riskd
cannot know before it reads the accounts what they will hold. What the venue says the IP
used (`observe`) and the warning from `WARN_AT` tell what really went."""

TRADES_EVERY = timedelta(minutes=1)
"""How often the trade history of an account with loss_streak is read (the daemon's job)."""

READS_PER_TICK = 3
"""Exchange calls one tick makes (balance, positions or tickers, open orders): where riskd
knows no budget, ccxt's rate for the exchange must leave room for them at every poll."""

MIN_VENUE_POLL_INTERVAL = timedelta(seconds=1)
"""A real venue's floor: polling more often exhausts a rate budget and gets the key banned."""

WARN_AT = 0.8
"""Used weight, as a share of the venue's budget, from which riskd warns."""

DEFAULT_HOLD = timedelta(seconds=30)
"""How long reads pause after a rate-limit answer that does not say how long (no `Retry-After`)."""

BYBIT_IP_BAN = timedelta(minutes=10)
"""How long reads pause after Bybit's HTTP 403 "access too frequent", its IP limit, which
says no time: Bybit asks to stop and wait at least 10 minutes
(https://bybit-exchange.github.io/docs/v5/rate-limit, "HTTP IP limit")."""

BYBIT_LIMITED = ("10006", "10018")
"""Bybit's retCodes for a rate limit, answered with HTTP 200: 10006 the account's limit,
10018 the IP's (https://bybit-exchange.github.io/docs/v5/error). 10006 is one account's,
per endpoint and second, yet holds every routine read on the venue until it resets: the
pause is short, and it keeps riskd from pressing on towards the IP's limit."""

REFUSALS = {"bybit": (429, 403, 10006)}
"""The rate-limit answers a venue sends (see Refusal), where they are not Binance's 429 and 418."""

URGENT = contextvars.ContextVar("riskd_urgent", default=False)
"""True inside the emergency path: its calls pass the limiter's queue and a venue's hold."""


@contextmanager
def urgent() -> Iterator[None]:
    """Mark the exchange calls made inside (and in tasks started inside) as the emergency path."""
    token = URGENT.set(True)
    try:
        yield
    finally:
        URGENT.reset(token)


@dataclass(frozen=True, slots=True)
class Venue:
    """What a venue publishes about its REST budget, and what one read of an account costs there.

    budget: weight per `window` seconds per IP, in the venue's own units.
    cost_per_weight: ccxt's cost units for one unit of the venue's weight (its cost tables
    are scaled per API family).
    tick: the weight of one read of an account as riskd makes it.
    candles: the weight of one page of candles of one symbol as the market data asks for
    it (`market_data.PAGE`, 1,000 candles).
    trades: the weight of one read of an account's trade history (loss_streak's); 0 where
    riskd reads none.
    """

    name: str
    budget: float
    window: float
    tick: float
    cost_per_weight: float = 1.0
    used_header: str | None = None
    candles: float = 0.0
    trades: float = 0.0

    def limiter(self) -> dict[str, Any]:
        """ccxt settings for a rolling window holding exactly this budget (ccxt: max weight = window / rateLimit)."""
        window_ms = self.window * 1000
        return {
            "rateLimiterAlgorithm": "rollingWindow",
            "rollingWindowSize": window_ms,
            "rateLimit": window_ms / (self.budget * self.cost_per_weight),
        }


@dataclass(frozen=True, slots=True)
class Refusal:
    """A venue's answer that riskd went over its rate limit, and how long it asks riskd to wait.

    code: the HTTP status (429, 418, Bybit's 403) or, for a refusal answered with HTTP 200,
    the venue's own code (Bybit's 10006); answer: the same in words ("HTTP 429", "retCode
    10006"); banned: the IP is banned (Binance's 418, Bybit's 403), not only refused.
    """

    code: int
    answer: str
    banned: bool
    wait: timedelta


def refusal(exchange_id: str, status: Any, headers: dict, response: Any, now: datetime, body: str | None = None) -> Refusal | None:
    """What one reply says of the rate limit, or None: pure.

    `headers` with lower-case names; `response` the reply's JSON, or None; `body` its text.
    A `Retry-After` is obeyed wherever it comes. A 403 is Bybit's IP limit only on Bybit and
    only when it says "access too frequent": Bybit's CDN answers 403 for a blocked region
    too, and Binance's 403 is its firewall's, which no pause cures.
    """
    status, bybit, asked = str(status), exchange_id == "bybit", headers.get("retry-after")
    if bybit and status == "403":  # it says no time: the ten minutes Bybit asks for
        limited = "access too frequent" in (body or "").lower()
        return Refusal(403, "HTTP 403", True, _seconds(asked, BYBIT_IP_BAN)) if limited else None
    code = str(response.get("retCode")) if bybit and isinstance(response, dict) else None
    if status in ("429", "418"):
        number, answer = int(status), f"HTTP {status}"
    elif code in BYBIT_LIMITED:
        number, answer = int(code), f"retCode {code}"
    else:
        return None
    reset = _until_reset(headers, response, now) if bybit else None
    return Refusal(number, answer, status == "418", _seconds(asked, DEFAULT_HOLD if reset is None else reset))


def _seconds(value: Any, otherwise: timedelta) -> timedelta:
    """A `Retry-After` in seconds, or `otherwise` where there is none."""
    try:
        return timedelta(seconds=max(0.0, float(value)))
    except (TypeError, ValueError):
        return otherwise


def _until_reset(headers: dict, response: Any, now: datetime) -> timedelta | None:
    """How long until Bybit's limit resets: its `X-Bapi-Limit-Reset-Timestamp` (epoch ms),
    counted from the reply's own `time` where it has one, so a skewed local clock cannot
    shorten or stretch the wait."""
    try:
        reset = float(headers["x-bapi-limit-reset-timestamp"])
    except (KeyError, TypeError, ValueError):
        return None
    try:
        sent = float(response["time"])
    except (KeyError, TypeError, ValueError):
        sent = now.timestamp() * 1000
    return timedelta(milliseconds=max(0.0, reset - sent))


BINANCE_USDM = Venue(
    # tick: GET fapi/v3/account 5 + GET fapi/v3/positionRisk 5 + GET fapi/v1/openOrders without a symbol 40;
    # candles: GET fapi/v1/klines with limit 1000 weighs 5 (limit 500-1000); trades: GET fapi/v1/income 30
    "Binance USDⓈ-M", budget=2400, window=60, tick=50, used_header="X-MBX-USED-WEIGHT-1M", candles=5, trades=30,
)
BINANCE_SPOT = Venue(
    # tick: GET api/v3/account 20 + GET api/v3/openOrders without a symbol 80 + GET api/v3/ticker/24hr without one 80;
    # candles: GET api/v3/klines 2; no trade history (loss_streak is refused on spot);
    # ccxt's spot costs are 0.2 per unit of weight
    "Binance spot", budget=6000, window=60, tick=180, cost_per_weight=0.2, used_header="X-MBX-USED-WEIGHT-1M",
    candles=2,
)

BYBIT_WINDOW_MS = 1000
"""Bybit limits each endpoint per second and account (ccxt's costs model those rates): a
one-second window at ccxt's own rate lets a tick's reads out together, never faster than
ccxt allows a second."""


def venue(exchange_id: str, futures: bool) -> Venue | None:
    """The published budget riskd knows for a ccxt exchange id, or None."""
    if exchange_id == "binanceusdm" or (exchange_id == "binance" and futures):
        return BINANCE_USDM
    if exchange_id == "binance":
        return BINANCE_SPOT
    return None


def limiter_settings(exchange_id: str, futures: bool, rate_limit: float) -> dict[str, Any]:
    """The ccxt rate-limiter settings riskd ships for an exchange (an account's `ccxt` mapping may override them).

    `rate_limit` is ccxt's own `rateLimit` for the exchange, in milliseconds. OKX keeps
    ccxt's leaky bucket: ccxt's okx class disables the rolling window itself, because OKX
    answers its bursts with rate-limit errors. Any other exchange gets ccxt's rolling
    window at ccxt's own rate over ccxt's default window of a minute.
    """
    known = venue(exchange_id, futures)
    if known is not None:
        return known.limiter()
    if exchange_id == "okx":
        return {}
    if exchange_id == "bybit":
        return {"rateLimiterAlgorithm": "rollingWindow", "rollingWindowSize": BYBIT_WINDOW_MS, "rateLimit": rate_limit}
    return {"rateLimiterAlgorithm": "rollingWindow", "rollingWindowSize": 60000, "rateLimit": rate_limit}


PROXY_ATTRIBUTES = ("proxy", "proxyUrl", "proxy_url", "httpProxy", "http_proxy", "httpsProxy", "https_proxy",
                    "socksProxy", "socks_proxy", "aiohttp_proxy")


SAME_API = {("binance", "future"): "binanceusdm", ("binance", "delivery"): "binancecoinm"}
"""ccxt classes that reach the same API as another: `binance` with futures is Binance
USDⓈ-M's own API and budget, whichever class an account names."""


def venue_key(client: Any) -> tuple:
    """Which budget a client draws on: the exchange's API, its market family, the hosts it
    talks to, whether it is the venue's demo (OKX and Bitget mark theirs with a header, on
    the same hosts) and the proxy it goes through (another IP is another budget).

    Hosts are names and ports only: a password in a URL never reaches a key, which names
    the venue in logs, alerts and every cached candle's row."""
    market_type = client.options.get("defaultType")
    api = SAME_API.get((client.id, market_type), client.id)
    hosts = sorted({_host(url) for url in _urls(client.urls.get("api"))})
    demo = bool(getattr(client, "isSandboxModeEnabled", False) or client.options.get("sandboxMode"))
    proxies = tuple(str(getattr(client, name, None) or "") for name in PROXY_ATTRIBUTES)
    return api, market_type, tuple(hosts), demo, proxies


def _host(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a template such as {port}, not a number
        port = None
    return f"{parts.hostname}:{port}" if port else str(parts.hostname or "")


def _urls(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _urls(item)


def _futures(client: Any) -> bool:
    return client.options.get("defaultType") in ("future", "swap", "delivery", "linear", "inverse")


class Budget:
    """One venue's budget as riskd uses it: ccxt's limiter shared by every client there,
    the weight the venue reports used, and the hold a 429/418 asked for."""

    def __init__(self, key: tuple, client: Any, clock: Callable[[], datetime]):
        from ccxt.async_support.base.throttler import Throttler  # ccxt's own limiter

        self.key, self.clock = key, clock
        hosts = key[2]
        self.name = f"{client.id}@{hosts[0]}" if len(hosts) == 1 else client.id
        self.throttler = Throttler(dict(client.tokenBucket))  # the first client's settings, a copy ccxt mutates
        self.venue = venue(client.id, _futures(client))
        self.used: float | None = None
        """What the venue last said was used of its limit: the IP's weight in the window
        (Binance), or requests this second of the endpoint last read, for its key (Bybit)."""
        self.reported: float | None = None
        """The limit the venue's last reply named, where it names one (Bybit's X-Bapi-Limit)."""
        self.hold_until: datetime | None = None
        self.refusals: dict[int, int] = dict.fromkeys(REFUSALS.get(client.id, (429, 418)), 0)
        """Rate-limit answers by their code (see Refusal), the ones the venue sends counted from 0."""
        self.notices: dict[EventKind, str] = {}
        """What the daemon should announce: a hold asked for, the budget nearly used."""
        self.announced: dict[EventKind, datetime] = {}

    # ccxt's client sets `throttler.loop` when it opens its session
    @property
    def loop(self) -> Any:
        return self.throttler.loop

    @loop.setter
    def loop(self, value: Any) -> None:
        self.throttler.loop = value

    def __call__(self, cost: float | None = None) -> asyncio.Future:
        """The clients' throttle: wait in ccxt's limiter, unless on the emergency path."""
        if not URGENT.get():
            return self.throttler(cost)
        cost = self.throttler.config["cost"] if cost is None else cost
        if self.throttler.config["algorithm"] == "leakyBucket":
            self.throttler.config["tokens"] -= cost
        else:  # entered in the window as ccxt's loop would, so the reads after it wait for it
            self.throttler.timestamps.append({"timestamp": time.time() * 1000, "cost": cost})
        passed = asyncio.get_running_loop().create_future()
        passed.set_result(None)
        return passed

    @property
    def limit(self) -> float | None:
        """The venue's budget in its own units per window, where riskd knows it, else the
        limit its replies name."""
        return self.venue.budget if self.venue else self.reported

    def observe(self, status: Any, headers: dict | None, response: Any = None, body: str | None = None) -> None:
        """Take in one response (its status, headers, JSON and text): the weight used, and a
        hold on a rate-limit answer."""
        headers = {str(name).lower(): value for name, value in (headers or {}).items()}
        if self.venue and self.venue.used_header:
            try:
                self.used = float(headers[self.venue.used_header.lower()])
            except (KeyError, TypeError, ValueError):
                pass
            else:
                self._maybe_warn()
        elif "x-bapi-limit" in headers:  # Bybit: the endpoint's limit a second for this key, and what is left of it
            try:
                limit, left = float(headers["x-bapi-limit"]), float(headers["x-bapi-limit-status"])
            except (KeyError, TypeError, ValueError):
                pass
            else:
                self.reported, self.used = limit, max(0.0, limit - left)
                self._maybe_warn()
        found = refusal(self.key[0], status, headers, response, self.clock(), body)
        if found is not None:
            self._hold(found)

    def _hold(self, found: Refusal) -> None:
        self.refusals[found.code] = self.refusals.get(found.code, 0) + 1
        until = self.clock() + found.wait
        if self.hold_until is None or until > self.hold_until:
            self.hold_until = until
        self.notices[EventKind.RATE_LIMITED] = wording.rate_limited(
            self.name, found.answer, found.banned, found.wait.total_seconds())

    def _maybe_warn(self) -> None:
        if self.limit and self.used is not None and self.used >= WARN_AT * self.limit:
            per_key = self.venue is None  # Bybit's figures: one endpoint, one key, one second
            self.notices[EventKind.RATE_BUDGET] = wording.rate_budget(self.name, self.used, self.limit, per_key)

    def holding(self) -> float:
        """Seconds left of a hold the venue asked for; 0 when reads may go."""
        if self.hold_until is None:
            return 0.0
        left = (self.hold_until - self.clock()).total_seconds()
        if left <= 0:
            self.hold_until = None
            return 0.0
        return left

    def take_notices(self, cooldown: timedelta) -> list[tuple[EventKind, str]]:
        """(kind, text) of the notices since the last call, each kind at most once per cooldown."""
        now, notices, self.notices = self.clock(), self.notices, {}
        due = [(key, text) for key, text in notices.items()
               if key not in self.announced or now - self.announced[key] >= cooldown]
        self.announced.update({key: now for key, _ in due})
        return due


_budgets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Per event loop (one per process when riskd runs): venue key -> Budget."""


def attach(client: Any, clock: Callable[[], datetime]) -> Budget:
    """Give `client` its venue's shared budget: the shared limiter, and the responses watched."""
    key = venue_key(client)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    budgets = _budgets.setdefault(loop, {})
    budget = budgets.get(key)
    if budget is None:
        budget = budgets[key] = Budget(key, client, clock)
    client.throttler = budget
    original = client.handle_errors

    def handle_errors(code, reason, url, method, headers, body, response, *rest):
        budget.observe(code, headers, response, body if isinstance(body, str) else None)
        return original(code, reason, url, method, headers, body, response, *rest)

    client.handle_errors = handle_errors
    return budget


def _per(window: float) -> str:
    return "a minute" if window == 60 else f"per {window:g} s"


def _span(seconds: float) -> str:
    return format_span(timedelta(seconds=seconds))


def _accounts(names: tuple[str, ...]) -> str:
    """Accounts named as a configuration error names them: `accounts.main`, or `accounts a, b and c`."""
    return f"accounts.{names[0]}" if len(names) == 1 else f"accounts {', '.join(names[:-1])} and {names[-1]}"


@dataclass(frozen=True, slots=True)
class Fit:
    """How the routine reads of the accounts on one venue and IP fit riskd's share of its budget.

    The ticks cost each account `venue.tick` every poll interval; the market data costs
    a page of candles per symbol every `market_seconds`, once for the venue however many
    accounts it serves; the trade history costs each account with loss_streak
    `venue.trades` every `trades_seconds`.
    """

    venue: Venue
    accounts: tuple[str, ...]
    poll_seconds: float
    trade_readers: tuple[str, ...] = ()
    market_symbols: int = 0
    """Symbols whose candles the market data reads at each refresh; 0 with market data off."""
    market_seconds: float = 60.0
    trades_seconds: float = 60.0

    @property
    def ticks(self) -> float:
        """Weight per window of the accounts' ticks."""
        return len(self.accounts) * self.venue.tick * self.venue.window / self.poll_seconds

    @property
    def market(self) -> float:
        """Weight per window of the market data, once for the venue."""
        return self.market_symbols * self.venue.candles * self.venue.window / self.market_seconds

    @property
    def trades(self) -> float:
        """Weight per window of the trade history of the accounts with loss_streak."""
        return len(self.trade_readers) * self.venue.trades * self.venue.window / self.trades_seconds

    @property
    def need(self) -> float:
        """Weight per window of every routine read."""
        return self.ticks + self.market + self.trades

    @property
    def allowance(self) -> float:
        """The weight per window riskd keeps its routine reads to."""
        return RISKD_SHARE * self.venue.budget

    @property
    def fits(self) -> bool:
        return self.need <= self.allowance + 1e-9

    @property
    def most(self) -> int:
        """The most accounts like these (as many with loss_streak, in proportion) that fit
        at this poll interval, beside the venue's market data."""
        each = (self.ticks + self.trades) / len(self.accounts)
        return max(0, math.floor((self.allowance - self.market) / each + 1e-9))

    @property
    def shortest_poll(self) -> float | None:
        """The shortest poll interval at which these accounts fit; None when the market data
        and the trade history alone leave no room for any tick."""
        room = self.allowance - self.market - self.trades
        if room <= 0:
            return None
        return len(self.accounts) * self.venue.tick * self.venue.window / room

    def uses(self) -> str:
        """What the accounts' routine reads use, read by read."""
        which = f"the benchmark and {HELD_SYMBOLS} held" if self.market_symbols > HELD_SYMBOLS else f"{HELD_SYMBOLS} held"
        market = (
            f"market data {self.market:.0f} (candles of {self.market_symbols} symbols every "
            f"{_span(self.market_seconds)}: {which}, once for the venue, not per account)"
            if self.market_symbols else "no market data (market_data is off)"
        )
        trades = (
            f"trade history {self.trades:.0f} (loss_streak on {len(self.trade_readers)} account(s), "
            f"{self.venue.trades:g} a read every {_span(self.trades_seconds)})"
            if self.trade_readers else "no trade history (no account has loss_streak)"
        )
        spare = self.venue.budget - self.need
        left = f"that leaves {spare:.0f} to bots" if spare >= 0 else "more than the whole budget, none left to bots"
        return (
            f"their routine reads use {self.need:.0f} of its {self.venue.budget:.0f} request weight "
            f"{_per(self.venue.window)} per IP: ticks {self.ticks:.0f} ({self.venue.tick:g} a read every "
            f"{_span(self.poll_seconds)} each), {market}, {trades}; {left}, and riskd keeps to "
            f"{self.allowance:.0f} ({RISKD_SHARE:.0%}) of it: {self.most} such account(s) fit"
        )

    @property
    def where(self) -> str:
        return self.venue.name

    def describe(self) -> str:
        return f"{len(self.accounts)} account(s) on {self.venue.name} ({', '.join(self.accounts)}): {self.uses()}"

    def problem(self) -> str:
        """The configuration error when the accounts do not fit."""
        where = f"on {self.venue.name} (one IP)"
        shortest = self.shortest_poll
        if shortest is None:
            readers = ", or spread the accounts with loss_streak over IPs" if self.trade_readers else ""
            return (
                f"accounts: {', '.join(self.accounts)} {where}: {self.uses()}; the market data and the trade history "
                f"alone leave no room for a tick at any poll interval: lengthen market_data.refresh{readers}"
            )
        spread = ", or spread the accounts over IPs (a `proxy` in their ccxt settings)"
        return too_often(self.poll_seconds, f"{_accounts(self.accounts)} {where}", self.uses(), shortest, spread)


@dataclass(frozen=True, slots=True)
class Floor:
    """An account on an exchange whose budget riskd does not know: ccxt's own rate for it
    (`rateLimit`, milliseconds a call) sets the shortest poll interval, and never under a second."""

    account: str
    exchange: str
    spacing: float
    poll_seconds: float

    @property
    def shortest_poll(self) -> float:
        return max(MIN_VENUE_POLL_INTERVAL.total_seconds(), self.spacing * READS_PER_TICK / 1000)

    @property
    def fits(self) -> bool:
        return self.poll_seconds >= self.shortest_poll

    @property
    def where(self) -> str:
        return self.exchange

    def reason(self) -> str:
        return (
            f"a tick makes {READS_PER_TICK} calls, which ccxt spaces {self.spacing:g}ms apart there, "
            f"and venues ban keys that poll faster than once a second"
        )

    def describe(self) -> str:
        return (
            f"accounts.{self.account} on {self.exchange}: riskd knows no published budget there; {self.reason()}: "
            f"a tick every {format_span(rounded_up(timedelta(seconds=self.shortest_poll)))} at the most often"
        )

    def problem(self) -> str:
        return too_often(self.poll_seconds, f"accounts.{self.account} on {self.exchange}", self.reason(), self.shortest_poll)


def too_often(poll_seconds: float, whom: str, why: str, shortest: float, otherwise: str = "") -> str:
    """The one wording of a poll interval the request budget cannot hold, and the least that fits."""
    least = rounded_up(timedelta(seconds=shortest))
    return f"poll_interval: {_span(poll_seconds)} is too often for {whom}: {why}; use at least {format_span(least)}{otherwise}"


def planned_symbols(benchmark: str | None) -> int:
    """The symbols the market data is planned to read at each refresh: the benchmark, if
    one is set, and `HELD_SYMBOLS`."""
    return HELD_SYMBOLS + (1 if benchmark else 0)


@dataclass(frozen=True, slots=True)
class Reader:
    """An account as its venue's budget sees it."""

    name: str
    exchange: str
    """As configured, for the wording."""
    client: Any
    """Its ccxt client, never opened: the venue, hosts and proxy it goes to, and ccxt's rate there."""
    trades: bool
    """Whether riskd reads its trade history (loss_streak is in force)."""


def plans(
    readers: Iterable[Reader], poll: timedelta, market_symbols: int, market_refresh: timedelta
) -> list[Fit | Floor]:
    """How each account's routine reads fit: a `Fit` per budget (venue and IP) riskd knows,
    the accounts that share it together, with the market data (`market_symbols` every
    `market_refresh`; 0 with market data off) counted once for it; a `Floor` per account
    elsewhere, from ccxt's rate there, unless its limiter is off."""
    poll_seconds = poll.total_seconds()
    groups: dict[tuple, tuple[Venue, list[Reader]]] = {}
    floors: list[Floor] = []
    for reader in readers:
        client = reader.client
        known = venue(client.id, _futures(client))
        if known is not None:
            groups.setdefault(venue_key(client), (known, []))[1].append(reader)
        elif client.enableRateLimit:
            floors.append(Floor(reader.name, reader.exchange, float(client.rateLimit), poll_seconds))
    fits = [
        Fit(
            known, tuple(reader.name for reader in group), poll_seconds,
            trade_readers=tuple(reader.name for reader in group if reader.trades and known.trades),
            market_symbols=market_symbols,
            market_seconds=market_refresh.total_seconds(),
            trades_seconds=TRADES_EVERY.total_seconds(),
        )
        for known, group in groups.values()
    ]
    return [*fits, *floors]
