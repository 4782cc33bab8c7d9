"""Wiring: accounts, the scheduler, the tick, commands, the alert outbox, and shutdown.

One asyncio loop runs everything. APScheduler starts a tick per account (no overlap,
missed runs coalesced), a command poll every second, the alert sender and retention.
Under systemd it says when it is ready and, while ticks keep completing, that it is
alive (sd_notify); SIGHUP reloads the configuration.
Each account has its own adapter and lock, so a slow or failing exchange delays only
its own account. A tick reads the account, records the snapshot, asks the engine,
records its answer (state, events, alerts in one transaction) and only then acts.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from riskd import __version__, engine, health, logs
from riskd.commands import expired, utcnow
from riskd.config import AccountConfig, ConfigError, Settings, reloadable
from riskd.domain import Alert, CommandKind, Event, EventKind, Severity, Snapshot, StepResult, TradingState
from riskd.candles import EMPTY
from riskd.exchange import ExchangeAdapter, build_client
from riskd.executor import Executor
from riskd.market_data import MarketFeed
from riskd.notify import Notifier
from riskd.redact import redact, register
from riskd.store import Store

log = logging.getLogger("riskd")

HEARTBEAT = timedelta(minutes=10)
"""How often a quiet account still logs one line of its figures."""

STOP_GRACE = 5.0
"""Seconds a tick in flight may take to finish once a stop is asked; then it is abandoned.
Short enough that SIGTERM ends riskd within 10 s (systemd's TimeoutStopSec allows 30)."""

LEVELS = {
    Severity.INFO: logging.INFO,
    Severity.WARNING: logging.WARNING,
    Severity.CRITICAL: logging.ERROR,
    Severity.EMERGENCY: logging.CRITICAL,
}


@dataclass
class AccountRunner:
    """Everything one account needs at run time."""

    name: str
    config: AccountConfig
    policy: engine.Policy
    adapter: ExchangeAdapter
    executor: Executor
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_snapshot: Snapshot | None = None
    last_read: Snapshot | None = None  # the latest read, failed or not
    last_tick_at: datetime | None = None
    tick_seconds: float | None = None  # how long the latest tick took to read and judge
    errors: Counter = field(default_factory=Counter)  # failed reads since start, by kind
    last_heartbeat: datetime | None = None
    sim: object | None = None
    market: MarketFeed | None = None  # the candles the market breakers read; None when turned off

    @property
    def alive_at(self) -> datetime | None:
        """The last completed tick, or later, the last exchange call of an action in progress:
        a flatten that takes long on a slow exchange is working, and must not look hung."""
        moments = [moment for moment in (self.last_tick_at, self.executor.last_progress) if moment is not None]
        return max(moments, default=None)


class Daemon:
    """The riskd service: `await Daemon(settings).run()` until SIGTERM or `stop()`."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        store: Store | None = None,
        loader: Callable[[], Settings] | None = None,
    ):
        """`loader` reads the configuration again on SIGHUP; without it, SIGHUP changes nothing."""
        self.settings, self.clock, self.loader = settings, clock, loader
        self.notifier = Notifier.from_environment()
        self.http = None
        self.store = store or Store(settings.database)
        self.runners: dict[str, AccountRunner] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self.stopping = asyncio.Event()
        self.tasks: set[asyncio.Task] = set()
        for account in settings.accounts.values():
            register(*account.secrets())
        self.telegram = None
        if settings.telegram.enabled:
            from riskd.telegram import TelegramBot  # python-telegram-bot is only loaded when a token is set

            self.telegram = TelegramBot(settings, self.store, clock)

    # --- lifecycle ---------------------------------------------------------------

    async def startup(self) -> None:
        for name, account in self.settings.accounts.items():
            self.runners[name] = await self._runner(name, account)
        self._banner()

    async def _runner(self, name: str, account: AccountConfig) -> AccountRunner:
        overrides, sim = {}, None
        if account.is_sim:
            from riskd.sim import start_embedded  # the simulator is only loaded when an account uses it

            sim, overrides = await start_embedded(account.sim)
        adapter = ExchangeAdapter(name, account, build_client(account, overrides), self.clock)
        executor = Executor(adapter, self.store, self.settings.live, self.clock)
        market = MarketFeed(name, adapter, self.store, self.settings.market_data, self.clock) if self.settings.market_data.enabled else None
        return AccountRunner(name, account, self._policy(name), adapter, executor, sim=sim, market=market)

    def _policy(self, name: str) -> engine.Policy:
        return engine.Policy(
            breakers=self.settings.breakers_for(name),
            day_reset=self.settings.day_reset,
            alert_cooldown=self.settings.alert_cooldown,
            live=self.settings.live,
        )

    def _banner(self) -> None:
        mode = (
            "LIVE: riskd will send orders to the exchange"
            if self.settings.live
            else "DRY-RUN: riskd records and announces actions but sends no order (set live: true to act)"
        )
        log.warning("riskd %s starting in %s", __version__, mode)
        for runner in self.runners.values():
            state = self.store.load_state(runner.name)
            where = f"embedded simulator at {runner.sim.url}" if runner.sim else runner.config.exchange
            log.info(
                "account %s: %s, quote %s, state %s, breakers: %s",
                runner.name, where, runner.config.quote, state.trading_state, ", ".join(runner.policy.breakers),
            )

    async def run(self, once: bool = False) -> None:
        """Run until stopped; with `once`, do one tick per account and one command pass."""
        if not once:
            self._install_signals()  # before startup, so that a stop asked during it is obeyed
        await self.startup()
        try:
            if once:
                await asyncio.gather(*(self.tick(name) for name in self.runners))
                await self.process_commands()
                await self.deliver_alerts()
                return
            if self.telegram is not None:
                self.telegram.start()  # in the background: Telegram being down must not delay guarding
            await self._start_http()
            self._schedule()
            await self._announce_ready()
            await self.stopping.wait()
        finally:
            self.notifier.stopping()
            await self.shutdown()

    def stop(self) -> None:
        self.stopping.set()

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()

        def on_signal(number: int) -> None:
            if self.stopping.is_set():
                log.error("second %s: stopping now", signal.Signals(number).name)
                raise SystemExit(1)
            log.warning("%s received: stopping", signal.Signals(number).name)
            self.stop()

        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, on_signal, number)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self._tracked(self.reload)))

    def _schedule(self) -> None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        interval = self.settings.poll_interval.total_seconds()
        start = datetime.now().astimezone()
        for name in self.runners:
            scheduler.add_job(
                self._tracked, "interval", args=[self.tick, name], seconds=interval, id=f"tick:{name}",
                max_instances=1, coalesce=True, next_run_time=start, misfire_grace_time=None,
            )
            if self.runners[name].market is not None:
                scheduler.add_job(
                    self._tracked, "interval", args=[self.refresh_market, name], id=f"market:{name}", max_instances=1,
                    seconds=self.settings.market_data.refresh.total_seconds(), coalesce=True, next_run_time=start,
                )
        if self.settings.report.at is not None:
            at = self.settings.report.at
            scheduler.add_job(self._tracked, "cron", args=[self.send_report], hour=at.hour, minute=at.minute, id="report",
                              max_instances=1, coalesce=True)
        scheduler.add_job(self._tracked, "interval", args=[self.process_commands], seconds=1, id="commands",
                          max_instances=1, coalesce=True)
        scheduler.add_job(self._tracked, "interval", args=[self.deliver_alerts], seconds=1, id="alerts",
                          max_instances=1, coalesce=True)
        scheduler.add_job(self._tracked, "interval", args=[self.prune], hours=1, id="retention",
                          max_instances=1, coalesce=True, next_run_time=start)
        if self.notifier.enabled:
            pace = min(self.notifier.watchdog_seconds / 2, interval) if self.notifier.watchdog_seconds else interval
            scheduler.add_job(self._tracked, "interval", args=[self.report_health], seconds=pace, id="health",
                              max_instances=1, coalesce=True)
        scheduler.start()
        self.scheduler = scheduler

    async def _tracked(self, job: Callable, *args) -> None:
        """Run a job as a task riskd can wait for or cancel at shutdown; log, never raise."""
        if self.stopping.is_set():
            return
        task = asyncio.current_task()
        self.tasks.add(task)
        try:
            await job(*args)
        except asyncio.CancelledError:
            if not self.stopping.is_set():
                raise
            # Cancelled by shutdown itself, after STOP_GRACE: the task ends here either way,
            # and APScheduler would otherwise log the cancellation as a crash.
            log.warning("%s %s abandoned at shutdown", getattr(job, "__name__", job), " ".join(map(str, args)))
        except Exception:
            log.exception("%s failed; it runs again at its next turn", getattr(job, "__name__", job))
        finally:
            self.tasks.discard(task)

    async def shutdown(self) -> None:
        """Let jobs in flight finish for STOP_GRACE seconds, abandon the rest, flush, close."""
        if self.scheduler is not None:
            self.scheduler.pause()  # not shutdown() yet: it would cancel the jobs in flight at once
        if self.http is not None:
            await self.http.stop()
        pending = [task for task in self.tasks if task is not asyncio.current_task()]
        if pending:
            done, still = await asyncio.wait(pending, timeout=STOP_GRACE)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        await self.deliver_alerts()
        if self.telegram is not None:
            await self.telegram.stop()
        for runner in self.runners.values():
            await runner.adapter.close()
            if runner.sim is not None:
                await runner.sim.stop()
        self.store.close()
        log.info("riskd stopped")

    # --- systemd, HTTP and reload ------------------------------------------------------

    async def _start_http(self) -> None:
        """Serve /healthz, /metrics and /v1/state when configured; failing to is an alert, not a stop."""
        config = self.settings.http
        if not config.enabled:
            return
        from riskd.http import HttpServer  # the HTTP server and prometheus-client load only when asked for

        server = HttpServer(self, config.host, config.port)
        try:
            log.info("HTTP: /healthz, /metrics and /v1/state at %s", await server.start())
            self.http = server
        except OSError as error:
            where = f"{config.host}:{config.port}"
            text = f"riskd cannot serve HTTP on {where} ({error.strerror or error}); it guards on without it"
            log.error("%s", text)
            self._daemon_alert("http_failed", Severity.CRITICAL, text)

    async def _announce_ready(self) -> None:
        """READY=1 once every account has completed a tick: from then on riskd is guarding."""
        while not self.stopping.is_set():
            if all(runner.last_tick_at is not None for runner in self.runners.values()):
                self.notifier.ready(self.summary())
                return
            await asyncio.sleep(0.1)

    async def report_health(self) -> None:
        """STATUS= always; WATCHDOG=1 only while every account's ticks keep completing."""
        overdue = health.overdue(self.runners.values(), self.clock(), health.freshness(self.settings.poll_interval))
        (self.notifier.status if overdue else self.notifier.alive)(self.summary())

    def summary(self) -> str:
        states = {name: self.store.load_state(name) for name in self.runners}
        return health.summary(self.runners.values(), states, self.clock(), health.freshness(self.settings.poll_interval))

    async def reload(self) -> None:
        """SIGHUP: read the configuration again. A bad one is refused with an alert and the old one kept."""
        if self.loader is None:
            log.warning("SIGHUP: nothing to reload (riskd was not started from a configuration file)")
            return
        self.notifier.reloading()
        try:
            self._apply(self.loader())
        except ConfigError as error:
            log.error("configuration reload refused; the previous configuration stays in force: %s", error)
            text = f"riskd refused the new configuration and keeps the previous one:\n{error}"
            self._daemon_alert("config_refused", Severity.WARNING, text)
        finally:
            self.notifier.ready(self.summary())

    def _apply(self, new: Settings) -> None:
        """Take on what can change while running; say what waits for a restart (see config.reloadable)."""
        old = self.settings
        self.settings, restart = reloadable(old, new)
        for runner in self.runners.values():
            runner.config = self.settings.accounts[runner.name]
            runner.policy = self._policy(runner.name)
            runner.executor.live = self.settings.live
        if self.telegram is not None:
            self.telegram.settings = self.settings  # its answers say LIVE or DRY-RUN, and use the cooldown
        if self.settings.poll_interval != old.poll_interval and self.scheduler is not None:
            seconds = self.settings.poll_interval.total_seconds()
            for name in self.runners:
                self.scheduler.reschedule_job(f"tick:{name}", trigger="interval", seconds=seconds)
        if (self.settings.log_level, self.settings.log_format) != (old.log_level, old.log_format):
            logs.setup(self.settings.log_level, self.settings.log_format)
        if self.settings.live != old.live:
            log.warning("now %s", "LIVE: riskd will send orders" if self.settings.live else "DRY-RUN: riskd sends no order")
        waiting = f"; these need a restart to take effect: {', '.join(restart)}" if restart else ""
        log.warning("configuration reloaded%s", waiting)

    def _daemon_alert(self, key: str, severity: Severity, text: str) -> None:
        """An event about riskd itself rather than one account, and its alert."""
        now = self.clock()
        self.store.record_event(Event("", key, text, severity=severity), now, Alert("", severity, key, text))

    # --- the tick ----------------------------------------------------------------

    async def tick(self, name: str) -> StepResult:
        """Read one account, decide, record, then act."""
        runner = self.runners[name]
        async with runner.lock:
            started = time.monotonic()
            snapshot = await runner.adapter.snapshot()
            now = self.clock()
            self.store.record_snapshot(snapshot)
            runner.last_read = snapshot
            if snapshot.ok:
                runner.last_snapshot = snapshot
            else:
                runner.errors[snapshot.error_kind or "unknown"] += 1
                log.warning("%s: reading the account failed: %s", name, snapshot.error)
            market = runner.market.current if runner.market is not None else EMPTY
            result = engine.step(self.store.load_state(name), snapshot, runner.policy, now, market)
            self._record(result, now)
            runner.last_tick_at, runner.tick_seconds = now, time.monotonic() - started
            self._heartbeat(runner, snapshot, result, now)
            if runner.market is not None and snapshot.ok and runner.market.wants(p.symbol for p in snapshot.positions):
                asyncio.get_running_loop().create_task(self._tracked(self.refresh_market, name))  # a new symbol: fetch now, apart from the tick
            if result.actions and snapshot.ok:
                await runner.executor.run(result.actions, snapshot)
            return result

    async def refresh_market(self, name: str) -> None:
        """Fetch and cache the candles of what the account holds; ticks read the result."""
        runner = self.runners[name]
        if runner.market is not None:
            held = runner.last_snapshot.positions if runner.last_snapshot is not None else ()
            await runner.market.refresh(position.symbol for position in held)

    def _heartbeat(self, runner: AccountRunner, snapshot: Snapshot, result: StepResult, now: datetime) -> None:
        """One line of figures on the first tick and every HEARTBEAT, so a quiet log is not a dead one."""
        if runner.last_heartbeat is not None and now - runner.last_heartbeat < HEARTBEAT:
            return
        runner.last_heartbeat = now
        figures = engine.describe_equity(snapshot) if snapshot.ok else f"read failed: {snapshot.error}"
        log.info("%s: %s, %s, read in %.0f ms", runner.name, result.state.trading_state, figures, snapshot.latency * 1000)

    def _record(self, result: StepResult, now: datetime) -> None:
        self.store.record_step(result, now)
        for event in result.events:
            log.log(LEVELS[event.severity], "%s: %s: %s", event.account, event.kind, event.message)

    # --- commands ----------------------------------------------------------------

    async def process_commands(self) -> None:
        """Carry out commands queued in the database by the CLI or another transport."""
        for command_id, command, queued_at in self.store.pending_commands():
            now = self.clock()
            runner = self.runners.get(command.account)
            if runner is None:
                self.store.finish_command(command_id, now, "refused", f"no account named {command.account!r} here")
            elif expired(queued_at, now):
                self.store.finish_command(command_id, now, "refused", "expired: riskd was not running when it was given")
            else:
                try:
                    result = await self.apply(runner, command)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # recorded as failed, never retried blindly every second
                    log.exception("%s: %s failed", command.account, command.kind)
                    self.store.finish_command(command_id, self.clock(), "failed", redact(f"{command.kind} failed: {error}"))
                    continue
                self.store.finish_command(command_id, self.clock(), "done", result)

    async def apply(self, runner: AccountRunner, command) -> str:
        """Apply one command to an account under its lock; returns what happened, in words."""
        async with runner.lock:
            state = self.store.load_state(runner.name)
            if command.kind is CommandKind.RESUME and state.trading_state is TradingState.ACTIVE and not state.latches:
                return f"{runner.name} is already active"
            snapshot, unread = runner.last_snapshot, None
            if command.kind in (CommandKind.FLATTEN, CommandKind.REDUCE, CommandKind.FREEZE):
                fresh = await runner.adapter.snapshot()  # act on the account as it is now, never as it was
                snapshot, unread = (fresh, None) if fresh.ok else (None, fresh.error)
            now = self.clock()
            result = engine.apply_command(state, command, snapshot, runner.policy, now)
            self._record(result, now)
            state_now = f"state {result.state.trading_state}"
            if unread is not None:
                follow = "its next good read enforces it" if command.kind is not CommandKind.REDUCE else "nothing was reduced"
                return f"{runner.name}: {command.kind} recorded, {state_now}, but the account could not be read ({unread}); {follow}"
            if result.actions and snapshot is not None:
                outcomes = await runner.executor.run(result.actions, snapshot)
                if not all(outcome.done for outcome in outcomes):
                    return f"{runner.name}: {command.kind} sent, but not everything could be confirmed; see riskd events"
            mode = "" if self.settings.live else " (dry-run: nothing sent)"
            return f"{runner.name}: {command.kind} done, {state_now}{mode}"

    # --- alerts and housekeeping ---------------------------------------------------

    async def deliver_alerts(self) -> None:
        """Drain the outbox: to Telegram when it is configured, else to the log."""
        if self.telegram is not None:
            await self.telegram.deliver(final=self.stopping.is_set())  # the last pass is time-limited
            return
        now = self.clock()
        for row in self.store.due_alerts(now):
            log.log(LEVELS[Severity(row["severity"])], "ALERT %s", row["text"])
            self.store.mark_alert(row["id"], now, "logged")

    async def send_report(self) -> None:
        """The daily report of each account: recorded, then to Telegram as its chart with the
        text as caption; without Telegram, or when it fails, the text goes out as an alert."""
        from riskd import chart, messages

        now = self.clock()
        for report in await chart.drawn(self.settings, now):  # in another process: the ticks go on meanwhile
            account, text = report.account, report.text
            self.store.record_event(Event(account, EventKind.REPORT, messages.plain(text)), now)
            if self.telegram is not None and await self.telegram.send_report(text, report.chart):
                continue
            self.store.record_event(
                Event(account, EventKind.REPORT, "daily report sent as text"), now,
                Alert(account, Severity.INFO, f"report:{now:%Y-%m-%d}", messages.plain(text)),
            )

    async def prune(self) -> None:
        removed = self.store.prune(self.clock(), self.settings.retention)
        if removed:
            log.info("retention: removed %d old rows", removed)
