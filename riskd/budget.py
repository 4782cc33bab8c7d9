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
- refuses a configuration whose routine reads cannot fit in half a venue's budget at the
  configured poll interval (`problems`), leaving the other half to the bots and to
  riskd's own emergencies.
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
from typing import TYPE_CHECKING, Any, Callable, Iterator
from urllib.parse import urlsplit

from riskd import wording
from riskd.domain import EventKind

if TYPE_CHECKING:
    from riskd.config import Settings

RISKD_SHARE = 0.5
"""The part of a venue's budget riskd plans to use for its routine reads; the rest is the
bots' (on the same IP) and riskd's own emergencies'."""

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
    """

    name: str
    budget: float
    window: float
    tick: float
    cost_per_weight: float = 1.0
    used_header: str | None = None

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


def refusal(exchange_id: str, status: Any, headers: dict, response: Any, now: datetime) -> Refusal | None:
    """What one reply says of the rate limit, or None: pure.

    `headers` with lower-case names; `response` the reply's JSON, or None. A `Retry-After`
    is obeyed wherever it comes. Bybit's 403 is its IP limit only on Bybit (Binance's 403 is
    its firewall's, which no pause cures).
    """
    status, bybit, asked = str(status), exchange_id == "bybit", headers.get("retry-after")
    if bybit and status == "403":  # it says no time: the ten minutes Bybit asks for
        return Refusal(403, "HTTP 403", True, _seconds(asked, BYBIT_IP_BAN))
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
    # GET fapi/v3/account 5 + GET fapi/v3/positionRisk 5 + GET fapi/v1/openOrders without a symbol 40
    "Binance USDⓈ-M", budget=2400, window=60, tick=50, used_header="X-MBX-USED-WEIGHT-1M",
)
BINANCE_SPOT = Venue(
    # GET api/v3/account 20 + GET api/v3/openOrders without a symbol 80 + GET api/v3/ticker/24hr without one 80;
    # ccxt's spot costs are 0.2 per unit of weight
    "Binance spot", budget=6000, window=60, tick=180, cost_per_weight=0.2, used_header="X-MBX-USED-WEIGHT-1M",
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


def venue_key(client: Any) -> tuple:
    """Which budget a client draws on: the exchange, its market family, the hosts it talks
    to and the proxy it goes through (another IP is another budget)."""
    hosts = sorted({urlsplit(url).netloc for url in _urls(client.urls.get("api"))})
    proxies = tuple(str(getattr(client, name, None) or "") for name in PROXY_ATTRIBUTES)
    return client.id, client.options.get("defaultType"), tuple(hosts), proxies


def _urls(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _urls(item)


class Budget:
    """One venue's budget as riskd uses it: ccxt's limiter shared by every client there,
    the weight the venue reports used, and the hold a 429/418 asked for."""

    def __init__(self, key: tuple, client: Any, clock: Callable[[], datetime]):
        from ccxt.async_support.base.throttler import Throttler  # ccxt's own limiter

        self.key, self.clock = key, clock
        hosts = key[2]
        self.name = f"{client.id}@{hosts[0]}" if len(hosts) == 1 else client.id
        self.throttler = Throttler(dict(client.tokenBucket))  # the first client's settings, a copy ccxt mutates
        futures = client.options.get("defaultType") in ("future", "swap", "delivery", "linear", "inverse")
        self.venue = venue(client.id, futures)
        self.used: float | None = None
        """The weight the venue last said this IP used in its window."""
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
        """The venue's budget in its own units per window, where riskd knows it."""
        return self.venue.budget if self.venue else None

    def observe(self, status: Any, headers: dict | None, response: Any = None) -> None:
        """Take in one response (its status, headers and JSON): the weight used, and a hold
        on a rate-limit answer."""
        headers = {str(name).lower(): value for name, value in (headers or {}).items()}
        if self.venue and self.venue.used_header:
            try:
                self.used = float(headers[self.venue.used_header.lower()])
            except (KeyError, TypeError, ValueError):
                pass
            else:
                self._maybe_warn()
        found = refusal(self.key[0], status, headers, response, self.clock())
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
            self.notices[EventKind.RATE_BUDGET] = wording.rate_budget(self.name, self.used, self.limit)

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
        budget.observe(code, headers, response)
        return original(code, reason, url, method, headers, body, response, *rest)

    client.handle_errors = handle_errors
    return budget


@dataclass(frozen=True, slots=True)
class Fit:
    """How many accounts of one venue fit at a poll interval in riskd's share of its budget."""

    venue: Venue
    accounts: tuple[str, ...]
    poll_seconds: float

    @property
    def need(self) -> float:
        """Weight per window the accounts' routine reads use."""
        return len(self.accounts) * self.venue.tick * self.venue.window / self.poll_seconds

    @property
    def most(self) -> int:
        """The most accounts that fit at this poll interval."""
        return math.floor(RISKD_SHARE * self.venue.budget * self.poll_seconds / (self.venue.tick * self.venue.window))

    @property
    def shortest_poll(self) -> float:
        """The shortest poll interval at which these accounts fit."""
        return len(self.accounts) * self.venue.tick * self.venue.window / (RISKD_SHARE * self.venue.budget)

    @property
    def fits(self) -> bool:
        return len(self.accounts) <= self.most

    def describe(self) -> str:
        per = "minute" if self.venue.window == 60 else f"{self.venue.window:g} s"
        return (
            f"{len(self.accounts)} account(s) on {self.venue.name} ({', '.join(self.accounts)}) use "
            f"{self.need:.0f} of its {self.venue.budget:.0f} request weight per {per} per IP at poll_interval "
            f"{self.poll_seconds:g}s ({self.venue.tick:g} a read), leaving {self.venue.budget - self.need:.0f} to bots; "
            f"riskd keeps to {RISKD_SHARE:.0%} of it: {self.most} account(s) fit"
        )


def fits(settings: Settings, build: Callable[[Any], Any]) -> list[Fit]:
    """Accounts grouped by the budget they share, for the venues whose budget riskd knows.

    `build` makes an account's ccxt client (not opened), to see where it goes. Accounts
    on the embedded exchange each have their own.
    """
    groups: dict[tuple, tuple[Venue, list[str]]] = {}
    for name, account in settings.accounts.items():
        if account.is_sim:
            continue
        client = build(account)
        futures = client.options.get("defaultType") in ("future", "swap", "delivery", "linear", "inverse")
        known = venue(client.id, futures)
        if known is not None:
            groups.setdefault(venue_key(client), (known, []))[1].append(name)
    poll = settings.poll_interval.total_seconds()
    return [Fit(known, tuple(names), poll) for known, names in groups.values()]


def problems(settings: Settings, build: Callable[[Any], Any]) -> list[str]:
    """A configuration error per venue whose accounts cannot fit its budget."""
    return [
        f"accounts: {fit.describe()}; poll every {math.ceil(fit.shortest_poll)}s or more, or spread the "
        f"accounts over IPs (a `proxy` in their ccxt settings)"
        for fit in fits(settings, build)
        if not fit.fits
    ]
