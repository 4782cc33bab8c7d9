"""The optional HTTP server: /healthz for uptime monitors, /metrics for Prometheus, /v1/state
and /v1/check for bots.

Why: an operator who forgets riskd on a VPS must still learn when it is unhealthy,
and a bot should be able to ask "may I trade?", or "may I place this order?", before
it does. The order check reads only what the daemon holds in memory (the last
snapshot, the state, the limits), never the database, so it answers within a
fraction of a millisecond (bench/pretrade.py). Everything here only
reads the daemon's run-time view and the database; nothing can be changed over HTTP,
and there is no authentication, which is why the server listens on 127.0.0.1 unless
told otherwise. Put a reverse proxy or an SSH tunnel in front to reach it from afar.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable, Mapping, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from riskd import __version__, health, page, pretrade
from riskd.commands import AccountStatus, status
from riskd.config import Settings
from riskd.domain import AccountState, OverrideInForce, ReadFailure, Status, TradingState
from riskd.engine import Policy, overridden
from riskd.store import Store

if TYPE_CHECKING:
    from riskd.budget import Budget

ERROR_KINDS = tuple(ReadFailure)
"""The kinds `riskd.exchange.explain` gives a failed exchange call; each is counted from zero."""


class Metered(Protocol):
    """What the metrics read of an account's exchange adapter: its venue's budget."""

    budget: Budget


class Observed(health.Watched, Protocol):
    """What the views read of one account at run time, besides what health judges."""

    tick_seconds: float | None
    errors: Mapping[str, int]
    state: AccountState | None
    """The state last recorded, None before the first tick or command."""
    policy: Policy
    adapter: Metered
    overrides_in_force: tuple[OverrideInForce, ...]
    """The temporary overrides as last read, some perhaps run out (`overridden` leaves those out)."""


class Guarded(Protocol):
    """What the views read of a running riskd (the supervisor's Daemon is one)."""

    settings: Settings
    store: Store
    guards: Mapping[str, Observed]
    clock: Callable[[], datetime]


class HttpServer:
    """Serves one daemon's views on `host:port` (port 0: any free port) until stopped."""

    def __init__(self, daemon: Guarded, host: str = "127.0.0.1", port: int = 0):
        self.daemon, self.host, self.port = daemon, host, port
        self.url: str | None = None
        self.registry = CollectorRegistry()
        self.registry.register(Metrics(daemon))
        self.check_seconds = Histogram(
            "riskd_check_seconds", "Time riskd took to judge a POST /v1/check, from its body to its answer",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1), registry=self.registry,
        )
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        """Start listening; returns the base URL. Raises OSError when the port is taken."""
        app = web.Application(middlewares=[self.authorise])
        app.router.add_get("/", self.page)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/v1/state", self.state)
        app.router.add_get("/v1/state/{account}", self.state)
        app.router.add_post("/v1/check", self.check)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError:
            await self.stop()
            raise
        self.port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{self.port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def authorise(self, request: web.Request, handler) -> web.StreamResponse:
        """With `http.token` set, `/` and `/v1/*` need it: `Authorization: Bearer TOKEN`, or for a
        browser HTTP Basic with the token as password (it asks for it). /healthz and /metrics stay open."""
        token = self.daemon.settings.http.token
        if token is None or not (request.path == "/" or request.path.startswith("/v1/")):
            return await handler(request)
        if hmac.compare_digest(_presented(request).encode(), token.get_secret_value().encode()):
            return await handler(request)
        if request.path == "/":
            return web.Response(status=401, text="riskd: the token is needed (as the password)\n",
                                headers={"WWW-Authenticate": 'Basic realm="riskd"'})
        return web.json_response({"error": "a valid token is needed: Authorization: Bearer TOKEN"}, status=401,
                                 headers={"WWW-Authenticate": 'Bearer realm="riskd"'})

    async def page(self, request: web.Request) -> web.Response:
        """The status page: every account, its breakers, positions, equity, and the latest events."""
        daemon, now = self.daemon, self.daemon.clock()
        accounts = [account for account in status(daemon.store, daemon.settings) if account.account in daemon.guards]
        equity = {account.account: daemon.store.equity_history(account.account, now - CHART_SPAN) for account in accounts}
        refresh = max(5, round(daemon.settings.poll_interval.total_seconds()))
        text = page.render(accounts, daemon.store.events(limit=20), equity, now, refresh)
        return web.Response(text=text, content_type="text/html", headers={"Content-Security-Policy": PAGE_POLICY})

    async def healthz(self, request: web.Request) -> web.Response:
        """200 when every account ticked and was read recently; 503 with the reasons when not."""
        daemon, now = self.daemon, self.daemon.clock()
        limit = health.freshness(daemon.settings.poll_interval)
        problems = health.problems(daemon.guards.values(), now, limit)
        if problems:
            return web.Response(status=503, text="unhealthy\n" + "\n".join(problems) + "\n")
        states = {name: daemon.store.load_state(name) for name in daemon.guards}
        return web.Response(text=f"ok: {health.summary(daemon.guards.values(), states, now, limit)}\n")

    async def metrics(self, request: web.Request) -> web.Response:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encode(self.registry), headers={"Content-Type": content_type})

    async def state(self, request: web.Request) -> web.Response:
        """Per account: its trading state, why and since when, and whether a bot may trade now."""
        daemon, now = self.daemon, self.daemon.clock()
        wanted = request.match_info.get("account")
        if wanted is not None and wanted not in daemon.guards:
            return web.json_response({"error": f"no account named {wanted!r}"}, status=404)
        limit = health.freshness(daemon.settings.poll_interval)
        accounts = {}
        for account in status(daemon.store, daemon.settings):
            guard = daemon.guards.get(account.account)
            if guard is None or wanted not in (None, account.account):
                continue
            problems = health.problems([guard], now, limit)
            accounts[account.account] = _account_state(account, guard.last_tick_at, problems)
        if wanted is not None:
            return web.json_response(accounts[wanted])
        return web.json_response({"live": daemon.settings.live, "accounts": accounts})


    async def check(self, request: web.Request) -> web.Response:
        """May this order be placed now? Allowed or not, why, and the room left under each limit."""
        daemon, started = self.daemon, time.perf_counter()
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "the body must be JSON, like " + CHECK_EXAMPLE}, status=400)
        try:
            name, intent = read_intent(body, daemon.guards)
        except ValueError as error:
            return web.json_response({"error": str(error)}, status=400)
        except LookupError as error:
            return web.json_response({"error": error.args[0]}, status=404)
        guard, now = daemon.guards[name], daemon.clock()
        state = guard.state or daemon.store.load_state(name)
        breakers = overridden(guard.policy, guard.overrides_in_force, now)[0].breakers
        limits = {breaker: config.limit for breaker, config in breakers.items()}
        money = frozenset(breaker for breaker, config in breakers.items() if config.currency is not None)
        problems = health.problems([guard], now, health.freshness(daemon.settings.poll_interval))
        verdict = pretrade.check(
            intent, state.trading_state, state.reason, guard.last_snapshot, limits, problems[0] if problems else None, money
        )
        answer = web.json_response(
            {
                "account": name,
                "allowed": verdict.allowed,
                "reason": verdict.reason,
                "state": str(state.trading_state),
                "notional": verdict.notional,
                "limits": {
                    room.limit: {"value": room.value, "after": room.after, "limit": room.maximum, "room": room.room, "unit": room.unit}
                    for room in verdict.rooms
                },
            }
        )
        self.check_seconds.observe(time.perf_counter() - started)
        return answer


CHART_SPAN = timedelta(hours=24)
"""How much equity history the status page draws."""

PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""The page loads nothing but itself: no script, no external style, font or image."""


def _presented(request: web.Request) -> str:
    """The token a request carries: a bearer token, or the password of HTTP Basic."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return ""
    return ""


CHECK_EXAMPLE = '{"account": "main", "symbol": "BTC/USDT:USDT", "side": "buy", "amount": 0.01}'
"""A request body /v1/check takes, for the sentences that answer a malformed one."""

SIDES = {"buy": "buy", "long": "buy", "sell": "sell", "short": "sell"}
"""Order sides as ccxt writes them, and entry sides as Freqtrade does."""


def read_intent(body: object, accounts: Mapping[str, object]) -> tuple[str, pretrade.Intent]:
    """The account and order of a /v1/check body; ValueError says what is wrong, LookupError names an unknown account."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object, like " + CHECK_EXAMPLE)
    unknown = sorted(set(body) - {"account", "symbol", "side", "amount", "price", "reduce_only", "position_side"})
    if unknown:
        raise ValueError(
            f"unknown field {unknown[0]!r}; the fields are account, symbol, side, amount, price, reduce_only, position_side"
        )
    name = body.get("account")
    if name is None and len(accounts) == 1:
        name = next(iter(accounts))
    if not isinstance(name, str):
        raise ValueError(f"account: the name of a guarded account ({', '.join(accounts)}) is needed")
    if name not in accounts:
        raise LookupError(f"no account named {name!r}")
    symbol, side = body.get("symbol"), body.get("side")
    if not isinstance(symbol, str) or not symbol:
        raise ValueError("symbol: a ccxt symbol is needed, like BTC/USDT:USDT")
    if side not in SIDES:
        raise ValueError(f"side: buy or sell (or long or short) is needed, got {side!r}")
    amount = _positive(body.get("amount"), "amount", "the order's size in contracts")
    price = None if body.get("price") is None else _positive(body["price"], "price", "the expected price in the quote currency")
    reduce_only = body.get("reduce_only", False)
    if not isinstance(reduce_only, bool):
        raise ValueError(f"reduce_only: true or false, got {reduce_only!r}")
    position_side = body.get("position_side")
    if position_side not in (None, "long", "short"):
        raise ValueError(f"position_side: long or short in hedge mode (or leave it out in one-way mode), got {position_side!r}")
    return name, pretrade.Intent(symbol, SIDES[side], amount, price, reduce_only, position_side)


def _positive(value: object, field: str, meaning: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{field}: a number above zero is needed ({meaning}), got {value!r}")
    return float(value)


def may_trade(trading_state: TradingState, problems: list[str]) -> bool:
    """A bot may trade when the account is active and riskd sees it: riskd cannot guard what it cannot read."""
    return trading_state is TradingState.ACTIVE and not problems


def _account_state(account: AccountStatus, last_tick_at: datetime | None, problems: list[str]) -> dict:
    return {
        "state": str(account.trading_state),
        "reason": account.reason,
        "since": _iso(account.since),
        "trading_allowed": may_trade(account.trading_state, problems),
        "reduce_only": account.trading_state is TradingState.REDUCING,
        "live": account.live,
        "last_tick_at": _iso(last_tick_at),
        "problem": problems[0] if problems else None,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


class Metrics:
    """A Prometheus collector that reads the daemon afresh at every scrape."""

    def __init__(self, daemon: Guarded):
        self.daemon = daemon

    def collect(self):
        daemon, now = self.daemon, self.daemon.clock()
        limit = health.freshness(daemon.settings.poll_interval)
        accounts = [account for account in status(daemon.store, daemon.settings) if account.account in daemon.guards]

        def gauge(name: str, documentation: str, *labels: str) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"riskd_{name}", documentation, labels=["account", *labels])

        equity = gauge("equity", "Account equity, unrealized PnL included", "quote")
        drawdown = gauge("drawdown_ratio", "Fall of equity from its peak, as a fraction of the peak")
        day_pnl = gauge("day_pnl", "Equity change since the day's reset", "quote")
        exposure = gauge("exposure", "Gross notional of open positions at the last good read", "quote")
        state = gauge("trading_state", "1 for the account's trading state, 0 for the others", "state")
        allowed = gauge("trading_allowed", "1 when the account is active and read recently (see /v1/state)")
        value = gauge("breaker_value", "What each breaker measured at the last tick", "breaker", "symbol")
        breaker_limit = gauge("breaker_limit", "Each breaker's limit", "breaker", "symbol")
        breached = gauge("breaker_breached", "1 when the breaker's reading is at or past its limit", "breaker", "symbol")
        duration = gauge("tick_duration_seconds", "How long the last tick took to read and judge the account")
        tick_age = gauge("tick_age_seconds", "Time since the last completed tick")
        read_age = gauge("read_age_seconds", "Time since the last good read of the account")
        errors = CounterMetricFamily(
            "riskd_exchange_errors", "Failed reads of the account since start, by kind", labels=["account", "kind"]
        )
        for account in accounts:
            name, quote, guard = account.account, account.quote, daemon.guards[account.account]
            if account.equity is not None:
                equity.add_metric([name, quote], account.equity)
            if account.drawdown is not None:
                drawdown.add_metric([name], account.drawdown)
            if account.day_pnl is not None:
                day_pnl.add_metric([name, quote], account.day_pnl)
            if guard.last_snapshot is not None:
                exposure.add_metric([name, quote], guard.last_snapshot.gross_notional)
                read_age.add_metric([name], (now - guard.last_snapshot.fetched_at).total_seconds())
            for trading_state in TradingState:
                state.add_metric([name, str(trading_state)], float(account.trading_state is trading_state))
            problems = health.problems([guard], now, limit)
            allowed.add_metric([name], float(may_trade(account.trading_state, problems)))
            for reading in account.readings:
                labels = [name, reading.breaker, reading.symbol or ""]
                if reading.value is not None:
                    value.add_metric(labels, reading.value)
                breaker_limit.add_metric(labels, reading.limit)
                breached.add_metric(labels, float(reading.status is Status.BREACHED))
            if guard.tick_seconds is not None:
                duration.add_metric([name], guard.tick_seconds)
            if guard.last_tick_at is not None:
                tick_age.add_metric([name], (now - guard.last_tick_at).total_seconds())
            for kind in dict.fromkeys([*ERROR_KINDS, *guard.errors]):
                errors.add_metric([name, str(kind)], guard.errors.get(kind, 0))
        yield from (equity, drawdown, day_pnl, exposure, state, allowed, value, breaker_limit, breached)
        yield from (duration, tick_age, read_age, errors)
        yield from self._streams()
        yield from self._daemon_wide(now, limit)

    def _streams(self):
        """The mark-price streams (stream.py) of the accounts that have one."""
        up = GaugeMetricFamily("riskd_stream_up", "1 while the mark-price stream delivers, 0 while riskd polls alone", labels=["account"])
        age = GaugeMetricFamily("riskd_stream_mark_age_seconds", "Time since the stream's last mark price", labels=["account"])
        reconnects = CounterMetricFamily("riskd_stream_reconnects", "Times the stream was opened again after failing", labels=["account"])
        reads = CounterMetricFamily("riskd_stream_reads", "Immediate reads of the account the stream asked for", labels=["account"])
        for name, stream in self.daemon.streams.items():
            up.add_metric([name], float(stream.up))
            if stream.last_mark_at is not None:
                age.add_metric([name], time.monotonic() - stream.last_mark_at)
            reconnects.add_metric([name], stream.reconnects)
            reads.add_metric([name], stream.reads)
        yield from (up, age, reconnects, reads)

    def _daemon_wide(self, now: datetime, limit):
        daemon = self.daemon
        healthy = GaugeMetricFamily("riskd_healthy", "1 when /healthz answers 200")
        healthy.add_metric([], float(not health.problems(daemon.guards.values(), now, limit)))
        live = GaugeMetricFamily("riskd_live", "1 when riskd sends orders, 0 in dry-run")
        live.add_metric([], float(daemon.settings.live))
        info = GaugeMetricFamily("riskd_info", "riskd's version", labels=["version"])
        info.add_metric([__version__], 1)
        pending, oldest = daemon.store.alert_backlog()
        backlog = GaugeMetricFamily("riskd_alert_backlog", "Alerts waiting in the outbox to be delivered")
        backlog.add_metric([], pending)
        waiting = GaugeMetricFamily("riskd_alert_oldest_pending_seconds", "Age of the oldest alert not yet delivered")
        waiting.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
        actions = GaugeMetricFamily(
            "riskd_actions", "Actions in the database (kept for 4x the retention) by status", labels=["account", "status"]
        )
        for account, action_status, count in daemon.store.action_counts():
            actions.add_metric([account, action_status], count)
        yield from (healthy, live, info, backlog, waiting, actions)
        yield from self._venues()

    def _venues(self):
        """Each venue's request budget per IP, which riskd shares with the bots on the machine."""
        used = GaugeMetricFamily(
            "riskd_venue_weight_used", "Request weight the venue says this IP used in its window (riskd and bots); "
            "on Bybit, requests this second of the endpoint last read, for its API key",
            labels=["venue"],
        )
        budget_limit = GaugeMetricFamily(
            "riskd_venue_weight_limit", "The venue's request weight budget per IP per window; on Bybit, the endpoint's "
            "requests a second per API key", labels=["venue"],
        )
        hold = GaugeMetricFamily("riskd_venue_hold_seconds", "Seconds left of a pause the venue asked for (a rate-limit answer)", labels=["venue"])
        refusals = CounterMetricFamily(
            "riskd_venue_refusals", "Requests the venue refused for the rate limit, by HTTP status (or the venue's code "
            "for a refusal answered with HTTP 200, such as Bybit's 10006)", labels=["venue", "status"]
        )
        budgets = {id(guard.adapter.budget): guard.adapter.budget for guard in self.daemon.guards.values()}
        for budget in budgets.values():
            if budget.used is not None:
                used.add_metric([budget.name], budget.used)
            if budget.limit is not None:
                budget_limit.add_metric([budget.name], budget.limit)
            hold.add_metric([budget.name], budget.holding())
            for code, count in budget.refusals.items():
                refusals.add_metric([budget.name, str(code)], count)
        yield from (used, budget_limit, hold, refusals)
