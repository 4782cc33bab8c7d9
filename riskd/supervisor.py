"""Wiring: accounts, the scheduler, commands, the alert outbox, reload and shutdown.

One asyncio loop runs everything. APScheduler starts a tick per account (no overlap,
missed runs coalesced), a command poll every second, the alert sender and retention.
Under systemd it says when it is ready and, while ticks keep completing, that it is
alive (sd_notify); SIGHUP reloads the configuration. What happens to one account (its
tick and the commands it obeys) is its `AccountGuard`'s business (riskd.guard).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import ChainMap
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from riskd import __version__, engine, health, logs, portfolio, wording
from riskd.budget import TRADES_EVERY
from riskd.account_stream import MarkStream
from riskd.commands import expired
from riskd.config import PORTFOLIO, AccountConfig, ConfigError, Settings, reloadable
from riskd.domain import (
    RISKD,
    Alert,
    AlertStatus,
    Command,
    CommandStatus,
    Event,
    EventKind,
    Severity,
    StepResult,
    alert_key,
    utcnow,
)
from riskd.exchange import ExchangeAdapter
from riskd.executor import Executor
from riskd.guard import LEVELS, AccountGuard, connect
from riskd.market_data import MarketFeed, Member, market_venue
from riskd.notify import Notifier
from riskd.redact import redact, register
from riskd.store import Store
from riskd.stream import VenueStream, wanted

if TYPE_CHECKING:
    from riskd.sim import Simulator

log = logging.getLogger("riskd")

STOP_GRACE = 5.0
"""Seconds a tick in flight may take to finish once a stop is asked; then it is abandoned.
Short enough that SIGTERM ends riskd within 10 s (systemd's TimeoutStopSec allows 30)."""

CHANNELS_GRACE = 2.0
"""Seconds the Apprise channels get at a stop for the alerts they have not had (the rest wait)."""

HOOKS_GRACE = 2.0
"""Seconds the hooks due at a stop get to be called before riskd exits (the rest are kept)."""

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
"""Stop, stop, reload: handled while `run` runs, given back when it returns."""


class Daemon:
    """The riskd service: `await Daemon(settings).run()` until SIGTERM or `stop()`."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        loader: Callable[[], Settings] | None = None,
    ):
        """`loader` reads the configuration again on SIGHUP; without it, SIGHUP changes nothing.
        Nothing is opened here: `startup` opens the database and connects the accounts."""
        self.settings, self.clock, self.loader = settings, clock, loader
        self.notifier = Notifier.from_environment()
        self.http = None
        self.store: Store | None = None
        self.guards: dict[str, AccountGuard] = {}
        self.feeds: dict[str, MarketFeed] = {}  # by venue (market_data.market_venue): one per venue, shared by its accounts
        self.scheduler: AsyncIOScheduler | None = None
        self.stopping = asyncio.Event()
        self.started = asyncio.Event()  # set once startup has connected every account
        self.tasks: set[asyncio.Task] = set()
        self.streams: dict[str, MarkStream] = {}
        self.venue_streams: list[VenueStream] = []  # one websocket per venue, feeding the accounts' streams
        self.telegram = None
        self.hooks = None  # the hook outbox's sender, when an account has hooks to call
        self.channels = None  # the Apprise alert channels, when configured
        self._signals: tuple[signal.Signals, ...] = ()

    # --- lifecycle ---------------------------------------------------------------

    async def startup(self) -> None:
        self.store = Store(self.settings.database)
        for name, account in self.settings.accounts.items():
            adapter, sim = await connect(name, account, self.clock)
            executor = Executor(adapter, self.store, lambda: self.settings.live, self.clock)
            market = self._feed(name, account, adapter) if self.settings.market_data.enabled else None
            self.guards[name] = AccountGuard(
                name, adapter, executor, self.store, lambda: self.settings, self.clock, sim, market=market
            )
        if self.settings.telegram.enabled:
            from riskd.telegram import TelegramBot  # python-telegram-bot is only loaded when a token is set

            self.telegram = TelegramBot(lambda: self.settings, self.store, self.clock)
        if self.settings.alerts.apprise:
            from riskd.channels import AlertChannels  # Apprise is only loaded when a channel is configured

            self.channels = AlertChannels(self.settings.alerts, self.store, self.clock)
        if any(account.hooks for account in self.settings.accounts.values()):
            from riskd.hooks import HookSender  # aiohttp's client is only loaded when a hook is configured

            self.hooks = HookSender(lambda: self.settings, self.store, self.clock)
        self._banner()
        self.started.set()

    def _feed(self, name: str, account: AccountConfig, adapter: ExchangeAdapter) -> MarketFeed:
        """The candle feed of the account's venue, made for its first account there."""
        venue = market_venue(name, account, adapter.client)
        if venue not in self.feeds:
            # market_data is fixed until a restart, like the accounts
            self.feeds[venue] = MarketFeed(venue, self.store, self.settings.market_data, self.clock)
        return self.feeds[venue]

    async def ready(self) -> None:
        """Return once every account has completed a tick: from then on riskd is guarding."""
        await self.started.wait()
        await asyncio.gather(*(guard.ticked.wait() for guard in self.guards.values()))

    def simulator(self, name: str) -> Simulator | None:
        """The embedded exchange's simulator behind an `exchange: sim` account, else None."""
        guard = self.guards.get(name)
        return guard.sim.simulator if guard is not None and guard.sim is not None else None

    def _banner(self) -> None:
        hint = "" if self.settings.live else " (set live: true to act)"
        log.warning("riskd %s starting in %s%s", __version__, wording.mode(self.settings.live), hint)
        for guard in self.guards.values():
            state = self.store.load_state(guard.name)
            where = f"embedded simulator at {guard.sim.url} (read as {guard.adapter.client.id})" if guard.sim else guard.config.exchange
            log.info(
                "account %s: %s, quote %s, state %s, breakers: %s",
                guard.name, where, guard.config.quote, state.trading_state, ", ".join(guard.policy.breakers),
            )

    async def run(self, once: bool = False) -> None:
        """Run until stopped; with `once`, do one tick per account, one judgement of the
        portfolio (when configured) and one command pass."""
        if not once:
            self._install_signals()  # before startup, so that a stop asked during it is obeyed
        try:
            await self.startup()
            if once:
                await asyncio.gather(*(guard.tick() for guard in self.guards.values()))
                await self.check_portfolio()
                await self.process_commands()
                await self.deliver_alerts()
                await self.deliver_hooks()
                return
            if self.telegram is not None:
                self.telegram.start()  # in the background: Telegram being down must not delay guarding
            await self._start_http()
            self._schedule()
            self._start_streams()
            await self._announce_ready()
            await self.stopping.wait()
        finally:
            self.notifier.stopping()
            try:
                await self.shutdown()
            finally:
                self._remove_signals()  # only now: a second signal during the shutdown still forces the exit

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

        for number in SIGNALS[:2]:
            loop.add_signal_handler(number, on_signal, number)
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(self._tracked(self.reload)))
        self._signals = SIGNALS

    def _remove_signals(self) -> None:
        """Give the signals back: riskd may run inside a process that lives on (tests, the demo)."""
        loop = asyncio.get_running_loop()
        for number in self._signals:
            loop.remove_signal_handler(number)
        self._signals = ()

    def _schedule(self) -> None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        interval = self.settings.poll_interval.total_seconds()
        start = datetime.now().astimezone()
        for name, guard in self.guards.items():
            scheduler.add_job(
                self._tracked, "interval", args=[self.tick, name], seconds=interval, id=f"tick:{name}",
                max_instances=1, coalesce=True, next_run_time=start, misfire_grace_time=None,
            )
        refresh = self.settings.market_data.refresh.total_seconds()
        for index, venue in enumerate(self.feeds):
            # One refresh per venue: its accounts share the candles. The venues' refreshes are
            # spread over the interval: each rebuilds its data on the loop, and a hundred at once
            # held the ticks back at a 3 s poll. A tick asks for its venue's first fetch itself.
            scheduler.add_job(
                self._tracked, "interval", args=[self.refresh_market, venue], id=f"market:{venue}", max_instances=1,
                seconds=refresh, coalesce=True, next_run_time=start + timedelta(seconds=refresh * index / len(self.feeds)),
            )
        for name in self.guards:
            # the trade history has its own job, so a slow income endpoint never delays a tick
            scheduler.add_job(
                self._tracked, "interval", args=[self.read_trades, name], seconds=TRADES_EVERY.total_seconds(),
                id=f"trades:{name}", max_instances=1, coalesce=True, next_run_time=start,
            )
        # always scheduled: a reload may add a portfolio section, and without one the job does nothing
        scheduler.add_job(self._tracked, "interval", args=[self.check_portfolio], seconds=interval, id="portfolio",
                          max_instances=1, coalesce=True)
        if self.settings.report.at is not None:
            at = self.settings.report.at
            scheduler.add_job(self._tracked, "cron", args=[self.send_report], hour=at.hour, minute=at.minute, id="report",
                              max_instances=1, coalesce=True)
        scheduler.add_job(self._tracked, "interval", args=[self.process_commands], seconds=1, id="commands",
                          max_instances=1, coalesce=True)
        scheduler.add_job(self._tracked, "interval", args=[self.deliver_alerts], seconds=1, id="alerts",
                          max_instances=1, coalesce=True)
        scheduler.add_job(self._tracked, "interval", args=[self.watch_budgets], seconds=1, id="budgets",
                          max_instances=1, coalesce=True)
        if self.hooks is not None:
            scheduler.add_job(self._tracked, "interval", args=[self.deliver_hooks], seconds=1, id="hooks",
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
        await asyncio.gather(*(venue.stop() for venue in self.venue_streams))  # each close waits 250 ms
        await asyncio.gather(*(stream.stop() for stream in self.streams.values()))
        if self.store is not None:
            await self.deliver_alerts()
        if self.telegram is not None:
            await self.telegram.stop()
        if self.hooks is not None:
            await self._last_hooks()
        # all at once, each bounded, so a hundred accounts stop as fast as one
        await asyncio.gather(*(guard.close() for guard in self.guards.values()))
        if self.store is not None:
            self.store.close()
        log.info("riskd stopped")

    # --- systemd, HTTP and reload ------------------------------------------------------

    async def _start_http(self) -> None:
        """Serve /healthz, /metrics and /v1/state when configured; failing to is an alert, not a stop."""
        config = self.settings.http
        if not config.enabled:
            return
        from riskd.http import HttpServer  # the HTTP server and prometheus-client load only when asked for

        if config.token is not None:
            register(config.token.get_secret_value())
        elif not config.loopback:
            log.warning("HTTP on %s without http.token: anyone who reaches it can read every account (set RISKD_HTTP__TOKEN)", config.host)
        server = HttpServer(self, config.host, config.port)
        try:
            log.info("HTTP: the status page, /healthz, /metrics, /v1/state and /v1/check at %s", await server.start())
            self.http = server
        except OSError as error:
            where = f"{config.host}:{config.port}"
            text = wording.http_failed(where, str(error.strerror or error))
            log.error("%s", text)
            self._daemon_alert(EventKind.HTTP_FAILED, Severity.CRITICAL, text)

    async def _announce_ready(self) -> None:
        """READY=1 once every account has completed a tick, unless a stop comes first."""
        ready, stopping = asyncio.ensure_future(self.ready()), asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait((ready, stopping), return_when=asyncio.FIRST_COMPLETED)
        for waiting in (ready, stopping):
            waiting.cancel()
        if not self.stopping.is_set():
            self.notifier.ready(self.summary())

    async def report_health(self) -> None:
        """STATUS= always; WATCHDOG=1 only while every account's ticks keep completing."""
        overdue = health.overdue(self.guards.values(), self.clock(), health.freshness(self.settings.poll_interval))
        (self.notifier.status if overdue else self.notifier.alive)(self.summary())

    def summary(self) -> str:
        states = {name: self.store.load_state(name) for name in self.guards}
        return health.summary(self.guards.values(), states, self.clock(), health.freshness(self.settings.poll_interval))

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
            self._daemon_alert(EventKind.CONFIG_REFUSED, Severity.WARNING, wording.config_refused(error))
        finally:
            self.notifier.ready(self.summary())

    def _apply(self, new: Settings) -> None:
        """Take on what can change while running; say what waits for a restart (see config.reloadable)."""
        old = self.settings
        self.settings, restart = reloadable(old, new)  # the guards, executors and bot read it from here
        if self.settings.poll_interval != old.poll_interval and self.scheduler is not None:
            seconds = self.settings.poll_interval.total_seconds()
            for name in self.guards:
                self.scheduler.reschedule_job(f"tick:{name}", trigger="interval", seconds=seconds)
        if (self.settings.log_level, self.settings.log_format) != (old.log_level, old.log_format):
            logs.setup(self.settings.log_level, self.settings.log_format)
        if self.settings.live != old.live:
            log.warning("now %s", wording.mode(self.settings.live))
        waiting = f"; these need a restart to take effect: {', '.join(restart)}" if restart else ""
        log.warning("configuration reloaded%s", waiting)

    def _daemon_alert(self, kind: EventKind, severity: Severity, text: str) -> None:
        """An event about riskd itself rather than one account, and its alert."""
        now = self.clock()
        self.store.record_event(Event(RISKD, kind, text, severity=severity), now, Alert(RISKD, severity, alert_key(kind), text))

    # --- the tick and commands -------------------------------------------------------

    async def tick(self, name: str) -> StepResult:
        """One tick of the named account (see AccountGuard.tick); a newly held symbol has
        its venue's candles fetched at once, apart from the tick, rather than at the next refresh."""
        guard = self.guards[name]
        result = await guard.tick()
        if guard.wants_market():
            asyncio.get_running_loop().create_task(self._tracked(self.refresh_market, guard.market.venue))
        return result

    async def refresh_market(self, venue: str) -> None:
        """Fetch and cache the candles of what the venue's accounts hold, once for all of
        them; their ticks read the result. The accounts are those guarded now, so the feed
        follows the account set."""
        feed = self.feeds[venue]
        members = {name: Member(guard.adapter, guard.held()) for name, guard in self.guards.items() if guard.market is feed}
        await feed.refresh(members)

    async def check_portfolio(self) -> StepResult | None:
        """Judge the sum of every account's latest read under the `portfolio:` breakers; a
        flatten or reduce is carried out on every account, and a change of the portfolio's
        state is imposed on every account by ticking each at once."""
        config = self.settings.portfolio
        if config is None:
            return None
        now = self.clock()
        reads = {name: guard.last_read for name, guard in self.guards.items()}
        venues = {name: guard.config.exchange for name, guard in self.guards.items()}
        rates = {account.quote: config.rate(account.quote) for account in self.settings.accounts.values()}
        snapshot = portfolio.combine(reads, venues, rates, config.currency, now)
        policy = engine.Policy(
            config.breakers_in_force(), self.settings.day_reset, self.settings.alert_cooldown, self.settings.live, enforces=False
        )
        before = self.store.load_state(PORTFOLIO)
        result = engine.step(before, snapshot, policy, now)
        self.store.record_step(result, now)
        for event in result.events:
            log.log(LEVELS[event.severity], "%s: %s: %s", event.account, event.kind, event.message)
        shared = [action for action in result.actions if portfolio.acts_on_accounts(action)]
        if shared:
            await asyncio.gather(*(guard.carry_out(shared) for guard in self.guards.values()))
        if result.state.trading_state is not before.trading_state:
            await asyncio.gather(*(guard.tick() for guard in self.guards.values()))
        return result

    async def resume_portfolio(self, command: Command) -> str:
        """A person's resume of the portfolio: its latches go, and each account's next tick lets go of its latch."""
        now = self.clock()
        policy = engine.Policy({}, self.settings.day_reset, self.settings.alert_cooldown, self.settings.live)
        result = engine.apply_command(self.store.load_state(PORTFOLIO), command, None, policy, now)
        self.store.record_step(result, now)
        await asyncio.gather(*(guard.tick() for guard in self.guards.values()))
        return wording.command_result(PORTFOLIO, command.kind, result.state.trading_state, self.settings.live)

    async def read_trades(self, name: str) -> None:
        """Read the closed trades of the named account, when a breaker in force needs them."""
        guard = self.guards[name]
        if guard.reads_trades:
            await guard.read_trades()

    def _start_streams(self) -> None:
        """Follow each account's mark prices between ticks where its `stream` setting allows:
        one websocket per venue (stream.py), each account judging its marks in its own task
        (account_stream.py). The accounts, and how each connects, change only at a restart
        (config.reloadable), so a reload leaves the streams as they are."""
        venues: dict[str, list[AccountGuard]] = {}
        for name, guard in self.guards.items():
            if not wanted(guard.config):
                continue
            stream = MarkStream(
                name,
                snapshot=lambda guard=guard: guard.last_snapshot,
                basis=guard.basis,
                read=lambda name=name: self.read_now(name),
                report=lambda event, alert: self.store.record_event(event, self.clock(), alert),
                hold=lambda: self.settings.poll_interval,
            )
            stream.start()
            self.streams[name] = stream
            venues.setdefault(guard.stream_venue, []).append(guard)
        for guards in venues.values():
            venue = VenueStream(self._venue_client(guards), tuple(self.streams[guard.name] for guard in guards))
            venue.start()
            self.venue_streams.append(venue)

    @staticmethod
    def _venue_client(guards: list[AccountGuard]) -> Callable:
        """Builds a venue's stream client: with the first account's settings (every account's
        are the same, which is what put them on one venue) and the markets any of them loaded."""

        def connect(symbols: tuple[str, ...]):
            markets = ChainMap(*(guard.adapter.client.markets or {} for guard in guards))
            return guards[0].stream_client(symbols, markets)

        return connect

    async def read_now(self, name: str) -> StepResult | None:
        """A tick at once, asked for by the mark stream; tracked like a scheduled one (None once stopping)."""
        if self.stopping.is_set():
            return None
        task = asyncio.create_task(self.tick(name))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return await task

    async def process_commands(self) -> None:
        """Carry out commands queued in the database by the CLI or another transport."""
        for command_id, command, queued_at in self.store.pending_commands():
            now = self.clock()
            guard = self.guards.get(command.account)
            if command.account == PORTFOLIO and guard is None and not expired(queued_at, now):
                self.store.finish_command(command_id, self.clock(), CommandStatus.DONE, await self.resume_portfolio(command))
            elif guard is None:
                self.store.finish_command(command_id, now, CommandStatus.REFUSED, f"no account named {command.account!r} here")
            elif expired(queued_at, now):
                self.store.finish_command(command_id, now, CommandStatus.REFUSED, "expired: riskd was not running when it was given")
            else:
                try:
                    result = await guard.obey(command)
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # recorded as failed, never retried blindly every second
                    log.exception("%s: %s failed", command.account, command.kind)
                    self.store.finish_command(command_id, self.clock(), CommandStatus.FAILED, redact(f"{command.kind} failed: {error}"))
                    continue
                self.store.finish_command(command_id, self.clock(), CommandStatus.DONE, result)

    # --- alerts and housekeeping ---------------------------------------------------

    async def deliver_alerts(self) -> None:
        """Drain the outbox: to Telegram when it is configured, else to the log; and, side by
        side with it, to every Apprise channel, each at its own pace."""
        if self.channels is None:
            await self._deliver_to_telegram()
            return
        await asyncio.gather(self._deliver_to_telegram(), self._deliver_to_channels())

    async def _deliver_to_channels(self) -> None:
        if not self.stopping.is_set():
            await self.channels.deliver()
            return
        try:  # the last pass, at a stop, is time-limited; what is left goes out at the next start
            await asyncio.wait_for(self.channels.deliver(), CHANNELS_GRACE)
        except asyncio.TimeoutError:
            log.warning("alert channels: alerts still undelivered at the stop wait for the next start")

    async def _deliver_to_telegram(self) -> None:
        if self.telegram is not None:
            await self.telegram.deliver(final=self.stopping.is_set())  # the last pass is time-limited
            return
        now = self.clock()
        for alert in self.store.due_alerts(now):
            log.log(LEVELS[alert.severity], "ALERT %s", wording.tagged(alert.account, alert.text))
            self.store.mark_alert(alert.id, now, AlertStatus.LOGGED)

    async def deliver_hooks(self) -> None:
        """Drain the hook outbox (see riskd.hooks): each hook's calls in order, hooks side by side."""
        if self.hooks is not None:
            await self.hooks.deliver()

    async def _last_hooks(self) -> None:
        """At a stop, HOOKS_GRACE seconds for the calls that are due; the rest wait in the outbox for the next start."""
        try:
            await asyncio.wait_for(self.hooks.deliver(), HOOKS_GRACE)
        except asyncio.TimeoutError:
            log.warning("hooks: calls still due at the stop wait for the next start")
        await self.hooks.close()

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
                Event(account, EventKind.REPORT, wording.report_as_text()), now,
                Alert(account, Severity.INFO, alert_key(EventKind.REPORT, f"{now:%Y-%m-%d}"), messages.plain(text)),
            )

    async def watch_budgets(self) -> None:
        """Announce what the venues said of the request budget: a hold asked for, the budget nearly used."""
        budgets = {id(guard.adapter.budget): guard.adapter.budget for guard in self.guards.values()}
        for budget in budgets.values():
            for kind, text in budget.take_notices(self.settings.alert_cooldown):
                severity = Severity.CRITICAL if kind is EventKind.RATE_LIMITED else Severity.WARNING
                self.store.record_event(Event(RISKD, kind, text, severity=severity), self.clock(),
                                        Alert(RISKD, severity, alert_key(kind, budget.name), text))
                log.log(LEVELS[severity], "%s", text)

    async def prune(self) -> None:
        removed = self.store.prune(self.clock(), self.settings.retention)
        if removed:
            log.info("retention: removed %d old rows", removed)
