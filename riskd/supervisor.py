"""Wiring: accounts, the scheduler, the tick, commands, the alert outbox, and shutdown.

One asyncio loop runs everything. APScheduler starts a tick per account (no overlap,
missed runs coalesced), a command poll every second, the alert sender and retention.
Each account has its own adapter and lock, so a slow or failing exchange delays only
its own account. A tick reads the account, records the snapshot, asks the engine,
records its answer (state, events, alerts in one transaction) and only then acts.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from riskd import __version__, engine
from riskd.commands import expired, utcnow
from riskd.config import AccountConfig, Settings
from riskd.domain import CommandKind, Severity, Snapshot, StepResult, TradingState
from riskd.exchange import ExchangeAdapter, build_client
from riskd.executor import Executor
from riskd.redact import redact, register
from riskd.store import Store

log = logging.getLogger("riskd")

HEARTBEAT = timedelta(minutes=10)
"""How often a quiet account still logs one line of its figures."""

STOP_GRACE = 8.0
"""Seconds a tick in flight may take to finish once a stop is asked; then it is cancelled."""

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
    last_tick_at: datetime | None = None
    last_heartbeat: datetime | None = None
    sim: object | None = None


class Daemon:
    """The riskd service: `await Daemon(settings).run()` until SIGTERM or `stop()`."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utcnow, store: Store | None = None):
        self.settings, self.clock = settings, clock
        self.store = store or Store(settings.database)
        self.runners: dict[str, AccountRunner] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self.stopping = asyncio.Event()
        self.tasks: set[asyncio.Task] = set()
        for account in settings.accounts.values():
            register(*account.secrets())

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
        policy = engine.Policy(
            breakers=self.settings.breakers_for(name),
            day_reset=self.settings.day_reset,
            alert_cooldown=self.settings.alert_cooldown,
            live=self.settings.live,
        )
        executor = Executor(adapter, self.store, self.settings.live, self.clock)
        return AccountRunner(name, account, policy, adapter, executor, sim=sim)

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
        await self.startup()
        try:
            if once:
                await asyncio.gather(*(self.tick(name) for name in self.runners))
                await self.process_commands()
                await self.deliver_alerts()
                return
            self._install_signals()
            self._schedule()
            await self.stopping.wait()
        finally:
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

    def _schedule(self) -> None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        interval = self.settings.poll_interval.total_seconds()
        start = datetime.now().astimezone()
        for name in self.runners:
            scheduler.add_job(
                self._tracked, "interval", args=[self.tick, name], seconds=interval, id=f"tick:{name}",
                max_instances=1, coalesce=True, next_run_time=start, misfire_grace_time=None,
            )
        scheduler.add_job(self._tracked, "interval", args=[self.process_commands], seconds=1, id="commands",
                          max_instances=1, coalesce=True)
        scheduler.add_job(self._tracked, "interval", args=[self.deliver_alerts], seconds=1, id="alerts",
                          max_instances=1, coalesce=True)
        scheduler.add_job(self._tracked, "interval", args=[self.prune], hours=1, id="retention",
                          max_instances=1, coalesce=True, next_run_time=start)
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
            raise
        except Exception:
            log.exception("%s failed; it runs again at its next turn", getattr(job, "__name__", job))
        finally:
            self.tasks.discard(task)

    async def shutdown(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        pending = [task for task in self.tasks if task is not asyncio.current_task()]
        if pending:
            done, still = await asyncio.wait(pending, timeout=STOP_GRACE)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        await self.deliver_alerts()
        for runner in self.runners.values():
            await runner.adapter.close()
            if runner.sim is not None:
                await runner.sim.stop()
        self.store.close()
        log.info("riskd stopped")

    # --- the tick ----------------------------------------------------------------

    async def tick(self, name: str) -> StepResult:
        """Read one account, decide, record, then act."""
        runner = self.runners[name]
        async with runner.lock:
            snapshot = await runner.adapter.snapshot()
            now = self.clock()
            self.store.record_snapshot(snapshot)
            if snapshot.ok:
                runner.last_snapshot = snapshot
            else:
                log.warning("%s: reading the account failed: %s", name, snapshot.error)
            result = engine.step(self.store.load_state(name), snapshot, runner.policy, now)
            self._record(result, now)
            runner.last_tick_at = now
            self._heartbeat(runner, snapshot, result, now)
            if result.actions and snapshot.ok:
                await runner.executor.run(result.actions, snapshot)
            return result

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
            snapshot = runner.last_snapshot
            if command.kind in (CommandKind.FLATTEN, CommandKind.REDUCE, CommandKind.FREEZE):
                fresh = await runner.adapter.snapshot()
                snapshot = fresh if fresh.ok else snapshot
            now = self.clock()
            result = engine.apply_command(state, command, snapshot, runner.policy, now)
            self._record(result, now)
            if result.actions and snapshot is not None:
                outcomes = await runner.executor.run(result.actions, snapshot)
                if not all(outcome.done for outcome in outcomes):
                    return f"{runner.name}: {command.kind} sent, but not everything could be confirmed; see riskd events"
            mode = "" if self.settings.live else " (dry-run: nothing sent)"
            return f"{runner.name}: {command.kind} done, state {result.state.trading_state}{mode}"

    # --- alerts and housekeeping ---------------------------------------------------

    async def deliver_alerts(self) -> None:
        """Drain the outbox. Until a messenger is configured, alerts go to the log."""
        now = self.clock()
        for row in self.store.due_alerts(now):
            log.log(LEVELS[Severity(row["severity"])], "ALERT %s", row["text"])
            self.store.mark_alert(row["id"], now, "logged")

    async def prune(self) -> None:
        removed = self.store.prune(self.clock(), self.settings.retention)
        if removed:
            log.info("retention: removed %d old rows", removed)
