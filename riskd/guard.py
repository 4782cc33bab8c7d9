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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable

from riskd import engine, hooks, wording
from riskd.candles import EMPTY
from riskd.config import AccountConfig, Settings
from riskd.domain import AccountState, Command, CommandKind, Severity, Snapshot, StepResult, TradingState
from riskd.exchange import ExchangeAdapter, build_client, explain
from riskd.executor import Executor
from riskd.market_data import MarketFeed
from riskd.redact import register
from riskd.store import Store
from riskd.stream import Basis, build_stream_client

if TYPE_CHECKING:
    from riskd.sim import SimServer

log = logging.getLogger("riskd")

HEARTBEAT = timedelta(minutes=10)
"""How often a quiet account still logs one line of its figures."""

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
    market: MarketFeed | None = None  # the candles the market breakers read; None when market data is off
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_snapshot: Snapshot | None = None
    last_read: Snapshot | None = None  # the latest read, failed or not
    last_tick_at: datetime | None = None
    tick_seconds: float | None = None  # how long the latest tick took to read and judge
    errors: Counter = field(default_factory=Counter)  # failed reads since start, by kind
    last_heartbeat: datetime | None = None
    state: AccountState | None = None  # the state last recorded, for readers that must not wait on the database
    dead_man_armed_at: datetime | None = None  # when the venue's cancel-all countdown was last renewed
    ticked: asyncio.Event = field(default_factory=asyncio.Event)  # set by the first completed tick
    _policy: tuple[Settings, engine.Policy] | None = field(default=None, init=False, repr=False)
    _no_dead_man_said: bool = field(default=False, init=False, repr=False)

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
        """What a mark is judged against; None before the first good read."""
        if self.last_snapshot is None:
            return None
        return Basis(self.last_snapshot, self.store.load_state(self.name), self.policy.breakers, self.clock())

    def stream_client(self, symbols: tuple[str, ...]) -> Any:
        """A ccxt.pro client for the mark prices of `symbols`, sharing the REST client's markets."""
        return build_stream_client(self.config, self.overrides, self.adapter.client.markets, symbols)

    async def close(self) -> None:
        await self.adapter.close()
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
            before = self.store.load_state(self.name)
            market = self.market.current if self.market is not None else EMPTY
            result = engine.step(before, snapshot, self.policy, now, market)
            self._record(before, result, now)
            self.last_tick_at, self.tick_seconds = now, time.monotonic() - started
            self.ticked.set()
            self._heartbeat(snapshot, result, now)
            if result.actions and snapshot.ok:
                await self.executor.run(result.actions, snapshot)
            if snapshot.ok and self.config.dead_man_switch is not None:
                await self._arm_dead_man_switch(snapshot)
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

    # --- market data -------------------------------------------------------------

    def wants_market(self) -> bool:
        """Whether the last snapshot holds a symbol whose candles were never asked for."""
        if self.market is None or self.last_snapshot is None:
            return False
        return self.market.wants(position.symbol for position in self.last_snapshot.positions)

    async def refresh_market(self) -> None:
        """Fetch and cache the candles of what the account holds; the next ticks read the result."""
        if self.market is not None:
            held = self.last_snapshot.positions if self.last_snapshot is not None else ()
            await self.market.refresh(position.symbol for position in held)

    def _heartbeat(self, snapshot: Snapshot, result: StepResult, now: datetime) -> None:
        """One line of figures on the first tick and every HEARTBEAT, so a quiet log is not a dead one."""
        if self.last_heartbeat is not None and now - self.last_heartbeat < HEARTBEAT:
            return
        self.last_heartbeat = now
        figures = wording.figures(snapshot) if snapshot.ok else f"read failed: {snapshot.error}"
        log.info("%s: %s, %s, read in %.0f ms", self.name, result.state.trading_state, figures, snapshot.latency * 1000)

    def _record(self, before: AccountState, result: StepResult, now: datetime) -> None:
        """Write the step with the hook calls it causes, then bring the lock files in line, before any act."""
        account_hooks = self.config.hooks
        self.store.record_step(result, now, hooks.calls(self.name, account_hooks, before, result))
        self.state = result.state
        hooks.sync_lock_files(account_hooks, result.state)
        for event in result.events:
            log.log(LEVELS[event.severity], "%s: %s: %s", event.account, event.kind, event.message)

    # --- commands ----------------------------------------------------------------

    async def obey(self, command: Command) -> str:
        """Apply one command to the account under its lock; returns what happened, in words."""
        async with self.lock:
            state = self.store.load_state(self.name)
            if command.kind is CommandKind.RESUME and state.trading_state is TradingState.ACTIVE and not state.latches:
                return wording.already_active(self.name)
            snapshot, unread = self.last_snapshot, None
            if command.kind in (CommandKind.FLATTEN, CommandKind.REDUCE, CommandKind.FREEZE):
                fresh = await self.adapter.snapshot()  # act on the account as it is now, never as it was
                snapshot, unread = (fresh, None) if fresh.ok else (None, fresh.error)
            now = self.clock()
            result = engine.apply_command(state, command, snapshot, self.policy, now)
            self._record(state, result, now)
            if unread is not None:
                return wording.command_unread(self.name, command.kind, result.state.trading_state, unread)
            if result.actions and snapshot is not None:
                outcomes = await self.executor.run(result.actions, snapshot)
                if not all(outcome.done for outcome in outcomes):
                    return wording.command_unconfirmed(self.name, command.kind)
            return wording.command_result(self.name, command.kind, result.state.trading_state, self.settings().live)
