"""One guarded account: its tick (read, judge, record, act) and the commands it obeys.

The supervisor wires accounts to the scheduler; what happens to one account lives
here. Each account has its own adapter, executor and lock, so a slow or failing
exchange delays only its own account, and a tick and a command never interleave.
A tick records the snapshot, asks the engine, records its answer (state, events and
alerts in one transaction) and only then acts. Settings are read through a getter at
every use, so a reload takes effect by replacing them in one place.
`connect` builds an account's exchange adapter (and the embedded simulator for an
`exchange: sim` account) for the daemon and for `riskd check` alike.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Mapping

from riskd import engine, hooks, portfolio, wording
from riskd.account_stream import Basis
from riskd.breakers import breaker_of
from riskd.breakers.base import base_name
from riskd.budget import urgent
from riskd.candles import EMPTY
from riskd.commands import overriding
from riskd.config import PORTFOLIO, AccountConfig, Settings
from riskd.domain import (
    AccountState,
    Action,
    Alert,
    Command,
    CommandKind,
    Event,
    EventKind,
    Latch,
    OverrideInForce,
    Severity,
    Snapshot,
    StepResult,
    TradeHistory,
    TradingState,
    alert_key,
    frozen_mapping,
)
from riskd.exchange import ExchangeAdapter, build_client, explain
from riskd.executor import Executor
from riskd.market_data import MarketFeed
from riskd.redact import register
from riskd.store import Store
from riskd.stream import build_stream_client, venue_key

if TYPE_CHECKING:
    from riskd.sim import SimServer

log = logging.getLogger("riskd")

HEARTBEAT = timedelta(minutes=10)
"""How often a quiet account still logs one line of its figures."""

CLOSE_GRACE = 1.0
"""Seconds an account's exchange client may take to close at shutdown (ccxt sleeps 0.25 s in close())."""

TRADES_KEPT = 200
"""Closed trades kept in memory per account: far more than any loss streak counts."""

TRADES_FIRST_LOOK = timedelta(days=7)
"""How far back the first read of the trade history goes (Binance's own default window)."""

LEVELS = {
    Severity.INFO: logging.INFO,
    Severity.WARNING: logging.WARNING,
    Severity.CRITICAL: logging.ERROR,
    Severity.EMERGENCY: logging.CRITICAL,
}


async def connect(
    name: str, account: AccountConfig, clock: Callable[[], datetime]
) -> tuple[ExchangeAdapter, SimServer | None]:
    """The account's exchange adapter, and the embedded simulator it talks to when `exchange: sim`.

    The account's secrets are registered first, so that nothing said about the
    connection from then on can carry them. The caller closes both.
    """
    register(*account.secrets())
    overrides, sim = {}, None
    if account.is_sim:
        from riskd.sim import start_embedded  # the simulator is only loaded when an account uses it

        sim, overrides = await start_embedded(account.sim)
    return ExchangeAdapter(name, account, build_client(account, overrides), clock), sim


@dataclass
class AccountGuard:
    """One guarded account: its adapter, executor and lock, and what was last seen of it."""

    name: str
    adapter: ExchangeAdapter
    executor: Executor
    store: Store
    settings: Callable[[], Settings]  # read at every use: a reload swaps the settings in one place
    clock: Callable[[], datetime]
    sim: SimServer | None = None
    market: MarketFeed | None = None  # its venue's candles, which the market breakers read; None when market data is off
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_snapshot: Snapshot | None = None
    last_read: Snapshot | None = None  # the latest read, failed or not
    last_tick_at: datetime | None = None
    tick_seconds: float | None = None  # how long the latest tick took to read and judge
    errors: Counter = field(default_factory=Counter)  # failed reads since start, by kind
    trades: TradeHistory = field(default_factory=TradeHistory)  # closed trades, as read_trades last found them
    last_heartbeat: datetime | None = None
    state: AccountState | None = None  # the state last recorded, for readers that must not wait on the database
    dead_man_armed_at: datetime | None = None  # when the venue's cancel-all countdown was last renewed
    ticked: asyncio.Event = field(default_factory=asyncio.Event)  # set by the first completed tick
    overrides_in_force: tuple[OverrideInForce, ...] = ()  # as the last tick or override read them, for /v1/check
    _policy: tuple[Settings, engine.Policy] | None = field(default=None, init=False, repr=False)
    _no_dead_man_said: bool = field(default=False, init=False, repr=False)
    _lock_files_failing: set[str] = field(default_factory=set, init=False, repr=False)  # the lock file hooks last failing

    @property
    def config(self) -> AccountConfig:
        return self.settings().accounts[self.name]

    @property
    def policy(self) -> engine.Policy:
        """The engine's policy for this account under the settings in force (built once per settings)."""
        settings = self.settings()
        if self._policy is None or self._policy[0] is not settings:
            policy = engine.Policy(
                breakers=settings.breakers_for(self.name),
                day_reset=settings.day_reset,
                alert_cooldown=settings.alert_cooldown,
                live=settings.live,
            )
            self._policy = (settings, policy)
        return self._policy[1]

    @property
    def alive_at(self) -> datetime | None:
        """The last completed tick, or later, the last exchange call of an action in progress:
        a flatten that takes long on a slow exchange is working, and must not look hung."""
        moments = [moment for moment in (self.last_tick_at, self.executor.last_progress) if moment is not None]
        return max(moments, default=None)

    @property
    def overrides(self) -> dict:
        """The ccxt settings riskd adds to the account's own: the embedded exchange's URLs, in its dialect, if any."""
        if self.sim is None:
            return {}
        from riskd.sim import bybit, ccxt_config

        return bybit.ccxt_config(self.sim.url) if self.config.sim.venue == "bybit" else ccxt_config(self.sim.url)

    # --- what the mark-price stream needs (stream.py) ------------------------------

    def basis(self) -> Basis | None:
        """What a mark is judged against: the limits in force, temporary overrides
        included (one run out is left for the next tick to end and announce); None before
        the first good read."""
        if self.last_snapshot is None:
            return None
        now = self.clock()
        policy, _ = engine.overridden(self.policy, self.store.overrides(self.name), now)
        return Basis(self.last_snapshot, self.store.load_state(self.name), policy.breakers, now)

    @property
    def stream_venue(self) -> str:
        """The venue whose mark-price stream the account shares (`stream.venue_key`)."""
        return venue_key(self.config, self.overrides)

    def stream_client(self, symbols: tuple[str, ...], markets: Mapping[str, dict] | None = None) -> Any:
        """A ccxt.pro client for the mark prices of `symbols`, sharing the REST clients'
        markets (`markets`, by default this account's client's)."""
        return build_stream_client(self.config, self.overrides, self.adapter.client.markets if markets is None else markets, symbols)

    async def close(self) -> None:
        """Close the account's client, bounded by CLOSE_GRACE: at exit, a client left unclosed harms nothing."""
        try:
            await asyncio.wait_for(self.adapter.close(), CLOSE_GRACE)
        except Exception as error:  # a timeout included
            log.warning("%s: closing its exchange client: %s", self.name, type(error).__name__)
        if self.sim is not None:
            await self.sim.stop()

    # --- the tick ----------------------------------------------------------------

    async def tick(self) -> StepResult:
        """Read the account, decide, record, then act."""
        async with self.lock:
            started = time.monotonic()
            snapshot = await self.adapter.snapshot()
            now = self.clock()
            self.store.record_snapshot(snapshot)
            self.last_read = snapshot
            if snapshot.ok:
                self.last_snapshot = snapshot
            else:
                self.errors[snapshot.error_kind or "unknown"] += 1
                log.warning("%s: reading the account failed: %s", self.name, snapshot.error)
            before = engine.impose(self.store.load_state(self.name), self._imposed())
            market = self.market.current(self.name) if self.market is not None else EMPTY
            result = engine.step(before, snapshot, self._policy_now(now), now, market, self.trades)
            self._record(before, result, now)
            self.last_tick_at, self.tick_seconds = now, time.monotonic() - started
            self.ticked.set()
            self._heartbeat(snapshot, result, now)
            if result.actions and snapshot.ok:
                await self.executor.run(result.actions, snapshot)
            if snapshot.ok and self.config.dead_man_switch is not None and self.settings().live:
                await self._arm_dead_man_switch(snapshot)  # in dry-run riskd acts on nothing, the venue's countdown included
            return result

    async def _arm_dead_man_switch(self, snapshot: Snapshot) -> None:
        """Renew the venue's countdown after a good tick (and its actions): should riskd die or lose
        the network, the venue cancels the open orders. A failure is logged, never raised."""
        if self.adapter.dead_man_switch is None:
            if not self._no_dead_man_said:
                log.error("%s: dead_man_switch is set, but %s offers none through ccxt: open orders stay if riskd dies",
                          self.name, self.config.exchange)
                self._no_dead_man_said = True
            return
        try:
            await self.adapter.arm_dead_man_switch(self.config.dead_man_switch, [order.symbol for order in snapshot.orders])
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning("%s: the dead-man switch was not renewed: %s", self.name, explain(error).text)
            return
        self.dead_man_armed_at = self.clock()

    @property
    def reads_trades(self) -> bool:
        """Whether a breaker in force (loss_streak) needs the closed-trade history."""
        return any(base_name(name) == "loss_streak" for name in self.policy.breakers)

    async def read_trades(self) -> TradeHistory:
        """Read the closed trades booked since the last one known (a week back the first time),
        outside the tick and its lock: the tick judges whatever this last found. A failed
        read keeps what was known and says why."""
        known = self.trades
        if self.adapter.budget.holding():  # the venue asked for a pause: history can wait, the ticks come first
            return known
        since = known.trades[-1].closed_at if known.trades else self.clock() - TRADES_FIRST_LOOK
        try:
            fresh = await self.adapter.closed_trades(since)
        except Exception as error:  # any failure: keep the cache, say why, try at the next turn
            reason = explain(error).text
            log.warning("%s: reading the trade history failed: %s", self.name, reason)
            self.trades = replace(known, error=reason)
            return self.trades
        seen = {trade.id for trade in known.trades}
        merged = known.trades + tuple(trade for trade in fresh if trade.id not in seen)
        self.trades = TradeHistory(merged[-TRADES_KEPT:], self.clock())
        return self.trades

    def _imposed(self) -> Latch | None:
        """The portfolio's latch while it is halted or reducing (none without a portfolio section)."""
        return portfolio.imposed(self.store.load_state(PORTFOLIO)) if self.settings().portfolio is not None else None

    async def carry_out(self, actions: list[Action]) -> None:
        """The portfolio's actions (a flatten, a reduce) on this account, as it is now, under its lock."""
        async with self.lock:
            with urgent():  # the portfolio's emergency: ahead of routine reads, and through a rate-limit hold
                fresh = await self.adapter.snapshot()
            if not fresh.ok:
                log.warning("%s: the portfolio's %s waits for a good read: %s", self.name, actions[0].kind, fresh.error)
                return
            await self.executor.run([portfolio.for_account(action, self.name) for action in actions], fresh)

    def _policy_now(self, now: datetime) -> engine.Policy:
        """The policy with the overrides in force; each that has run out is ended and announced first."""
        self.overrides_in_force = tuple(self.store.overrides(self.name))
        policy, ended = engine.overridden(self.policy, self.overrides_in_force, now)
        for override in ended:
            self._end_override(override, now)
        return policy

    def _end_override(self, override: OverrideInForce, now: datetime) -> None:
        config = self.policy.breakers.get(override.breaker)
        breaker = breaker_of(override.breaker)
        limit = config.describer(breaker.describe)(config.limit) if config is not None and breaker else "its configured value"
        text = wording.override_ended(override.breaker, limit, override.who)
        event = Event(self.name, EventKind.OVERRIDE_ENDED, text, override.breaker, Severity.INFO, frozen_mapping({"id": override.id}))
        self.store.end_override(override.id, now, event, Alert(self.name, Severity.INFO, alert_key(EventKind.OVERRIDE_ENDED, override.breaker), text))
        log.info("%s: %s", self.name, text)

    # --- market data -------------------------------------------------------------

    def held(self) -> frozenset[str]:
        """The symbols the last good snapshot holds: what its venue's candles must cover for it."""
        return frozenset(position.symbol for position in self.last_snapshot.positions) if self.last_snapshot else frozenset()

    def wants_market(self) -> bool:
        """Whether the last snapshot holds a symbol whose candles were never asked for on its behalf."""
        if self.market is None or self.last_snapshot is None:
            return False
        return self.market.wants(self.name, self.held())

    def _heartbeat(self, snapshot: Snapshot, result: StepResult, now: datetime) -> None:
        """One line of figures on the first tick and every HEARTBEAT, so a quiet log is not a dead one."""
        if self.last_heartbeat is not None and now - self.last_heartbeat < HEARTBEAT:
            return
        self.last_heartbeat = now
        figures = wording.figures(snapshot) if snapshot.ok else f"read failed: {snapshot.error}"
        log.info("%s: %s, %s, read in %.0f ms", self.name, result.state.trading_state, figures, snapshot.latency * 1000)

    def _record(self, before: AccountState, result: StepResult, now: datetime) -> None:
        """Write the step with the hook calls it causes, then bring the lock files in line, before any act."""
        account_hooks, live = self.config.hooks, self.settings().live
        self.store.record_step(result, now, hooks.calls(self.name, account_hooks, before, result, live))
        self.state = result.state
        failing = hooks.sync_lock_files(account_hooks, result.state, live)
        for name in failing.keys() - self._lock_files_failing:  # an alert when one starts failing, not at every tick
            event, alert = hooks.lock_file_failed(self.name, name, failing[name], result.state)
            self.store.record_event(event, now, alert)
        self._lock_files_failing = set(failing)
        for event in result.events:
            log.log(LEVELS[event.severity], "%s: %s: %s", event.account, event.kind, event.message)

    # --- commands ----------------------------------------------------------------

    async def obey(self, command: Command) -> str:
        """Apply one command to the account under its lock; returns what happened, in words."""
        async with self.lock:
            if command.kind is CommandKind.OVERRIDE:
                return self._override(command)
            state = self.store.load_state(self.name)
            if command.kind is CommandKind.RESUME and state.trading_state is TradingState.ACTIVE and not state.latches:
                return wording.already_active(self.name)
            snapshot, unread = self.last_snapshot, None
            if command.kind in (CommandKind.FLATTEN, CommandKind.REDUCE, CommandKind.FREEZE):
                with urgent():  # an operator's emergency: ahead of routine reads, and through a rate-limit hold
                    fresh = await self.adapter.snapshot()  # act on the account as it is now, never as it was
                snapshot, unread = (fresh, None) if fresh.ok else (None, fresh.error)
            now = self.clock()
            result = engine.apply_command(state, command, snapshot, self.policy, now)
            self._record(state, result, now)
            if command.kind is CommandKind.RESUME and engine.IMPOSED_LATCH in result.state.latches:
                return wording.held_by_portfolio(self.name, result.state.trading_state)
            if unread is not None:
                return wording.command_unread(self.name, command.kind, result.state.trading_state, unread)
            if result.actions and snapshot is not None:
                outcomes = await self.executor.run(result.actions, snapshot)
                if not all(outcome.done for outcome in outcomes):
                    return wording.command_unconfirmed(self.name, command.kind)
            return wording.command_result(self.name, command.kind, result.state.trading_state, self.settings().live)

    def _override(self, command: Command) -> str:
        """Start a temporary override: recorded with who and why, and announced, before the next tick uses it."""
        override, now = command.override, self.clock()
        before, after = overriding(self.settings(), self.name, override)  # the configuration may have changed since
        until, who = now + override.lasting, f"{command.who} via {command.source}"
        text = wording.override_started(override.breaker, before, after, until, who, command.reason)
        data = {"limit": override.limit, "until": until.isoformat(), "who": who, "reason": command.reason}
        event = Event(self.name, EventKind.OVERRIDE, text, override.breaker, Severity.WARNING, frozen_mapping(data))
        alert = Alert(self.name, Severity.WARNING, alert_key(EventKind.OVERRIDE, override.breaker), text)
        self.store.add_override(self.name, override, command.source, command.who, command.reason, now, event, alert)
        self.overrides_in_force = tuple(self.store.overrides(self.name))
        log.warning("%s: %s", self.name, text)
        return wording.override_result(self.name, override.breaker, after, until)
