"""The optional HTTP server: /healthz for uptime monitors, /metrics for Prometheus, /v1/state for bots.

Why: an operator who forgets riskd on a VPS must still learn when it is unhealthy,
and a bot should be able to ask "may I trade?" before it does. Everything here only
reads the daemon's run-time view and the database; nothing can be changed over HTTP,
and there is no authentication, which is why the server listens on 127.0.0.1 unless
told otherwise. Put a reverse proxy or an SSH tunnel in front to reach it from afar.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Callable, Mapping, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from riskd import __version__, health
from riskd.commands import AccountStatus, status
from riskd.config import Settings
from riskd.domain import ReadFailure, Status, TradingState
from riskd.store import Store

ERROR_KINDS = tuple(ReadFailure)
"""The kinds `riskd.exchange.explain` gives a failed exchange call; each is counted from zero."""


class Observed(health.Watched, Protocol):
    """What the views read of one account at run time, besides what health judges."""

    tick_seconds: float | None
    errors: Mapping[str, int]


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
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        """Start listening; returns the base URL. Raises OSError when the port is taken."""
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/v1/state", self.state)
        app.router.add_get("/v1/state/{account}", self.state)
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
