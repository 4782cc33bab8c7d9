"""The pure step: account state × snapshot × time → new state, actions, events, alerts.

Everything riskd decides is decided here, from values: no clock (``now`` is an
argument), no database, no exchange. The supervisor feeds it what the adapter read and
the store remembered, then persists and carries out what it returns.

Rules, in the order `step` applies them:

1. A snapshot that failed, or whose equity is implausible against the last good one,
   is not acted on: every breaker reads "no data" except `stale_data`.
2. Peak and day-start equity follow good snapshots; the day starts at `day_reset` UTC.
3. Each breaker's reading counts consecutive breaching ticks; at `confirm` it trips:
   one breach event, one alert, its action, and for `reduce`, `halt` and `flatten` a
   latch that holds the account in `reducing` or `halted`.
4. Latches release by their resume policy, and only while their breaker is not
   breached; the trading state is the most severe remaining latch.
5. While halted, open orders that could add exposure are cancelled (reduce-only ones,
   a position's stops and take-profits, stay) and exposure that grew since the halt is
   closed; while reducing, orders that would add exposure are cancelled.

A ladder's levels reach the engine as breakers of their own (`drawdown`, `drawdown.2`),
so each trips, latches and releases by itself. `overridden` applies a person's temporary
overrides to the policy and `impose` the portfolio's latch to an account's state, both
as plain values before a step.

The engine decides; what it says about a decision is written by `wording` from the
decision's fields.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Iterable, Mapping, assert_never

from riskd import wording
from riskd.breakers import BREAKERS, BreakerConfig, Context
from riskd.breakers.base import MANUAL, NEXT_DAY, as_level, base_name
from riskd.candles import EMPTY, MarketData
from riskd.domain import (
    AccountState,
    Action,
    ActionKind,
    Alert,
    Command,
    CommandKind,
    Event,
    EventKind,
    Latch,
    OverrideInForce,
    Reading,
    ReadFailure,
    Remedy,
    Severity,
    Snapshot,
    Status,
    StepResult,
    TradeHistory,
    TradingState,
    alert_key,
    frozen_mapping,
)
from riskd.units import format_duration

IMPLAUSIBLE_FACTOR = 5.0
"""Equity that moves by more than this factor in one tick is held back as a likely glitch."""

IMPLAUSIBLE_ACCEPT = 3
"""After this many consecutive implausible ticks the new level is taken as real."""

EPSILON = 1e-9

ACTION_STATE = {Remedy.REDUCE: TradingState.REDUCING, Remedy.HALT: TradingState.HALTED, Remedy.FLATTEN: TradingState.HALTED}
"""The trading state a remedy latches the account in; the others latch nothing."""

FREEZE_LATCH = "manual"
"""The key of the latch a person's freeze or flatten sets (stored; only a resume releases it)."""

IMPOSED_LATCH = "portfolio"
"""The key of the latch a halted or reducing portfolio sets on every account (see `impose`)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """What the engine needs to know of the configuration for one account."""

    breakers: Mapping[str, BreakerConfig]
    day_reset: time = time(0, 0)
    alert_cooldown: timedelta = timedelta(minutes=15)
    live: bool = False
    enforces: bool = True
    """Whether a halted or reducing state is enforced on the snapshot's orders and positions;
    the portfolio's is not, since every account enforces the latch it imposes."""


def overridden(policy: Policy, overrides: Iterable[OverrideInForce], now: datetime) -> tuple[Policy, tuple[OverrideInForce, ...]]:
    """The policy with every override in force at `now` applied (a later one wins over an
    earlier one for the same breaker), and the overrides that have run out, to be ended
    and announced. An override of a breaker the configuration no longer has changes nothing."""
    breakers, ended = dict(policy.breakers), []
    for override in sorted(overrides, key=lambda override: override.id):
        if override.until <= now:
            ended.append(override)
        elif override.breaker in breakers:
            try:
                breakers[override.breaker] = breakers[override.breaker].with_limit(override.limit)
            except ValueError:
                continue  # checked when it was given; a reload may since have changed the breaker
    return replace(policy, breakers=frozen_mapping(breakers)), tuple(ended)


def impose(state: AccountState, latch: Latch | None) -> AccountState:
    """The account's state carrying the portfolio's latch while there is one, and without it
    once the portfolio lets go; `step` then settles and enforces it like any latch."""
    latches = dict(state.latches)
    if latch is None:
        latches.pop(IMPOSED_LATCH, None)
    else:
        latches[IMPOSED_LATCH] = latch
    return replace(state, latches=frozen_mapping(latches))


def day_start(now: datetime, reset: time) -> datetime:
    """The most recent reset time at or before `now` (both in UTC)."""
    today = now.replace(hour=reset.hour, minute=reset.minute, second=0, microsecond=0)
    return today if today <= now else today - timedelta(days=1)


class _Tick:
    """Collects what one step decides; only `step` and `apply_command` use it."""

    def __init__(self, state: AccountState, policy: Policy, now: datetime, snapshot: Snapshot | None):
        self.state, self.policy, self.now, self.snapshot = state, policy, now, snapshot
        self.actions: list[Action] = []
        self.events: list[Event] = []
        self.alerts: list[Alert] = []
        self.last_alerts = dict(state.last_alerts)

    def event(self, kind: EventKind, message: str, severity: Severity, breaker: str | None = None, **data) -> None:
        self.events.append(Event(self.state.account, kind, message, breaker, severity, frozen_mapping(data)))

    def alert(self, key: str, severity: Severity, text: str, always: bool = False) -> bool:
        """Queue an alert unless the same condition was announced within the cooldown."""
        last = self.last_alerts.get(key)
        if not always and last is not None and self.now - last < self.policy.alert_cooldown:
            return False
        self.last_alerts[key] = self.now
        self.alerts.append(Alert(self.state.account, severity, key, text))
        return True

    def act(self, kind: ActionKind, reason: str, **fields) -> None:
        self.actions.append(self.action(kind, reason, **fields))

    def action(self, kind: ActionKind, reason: str, **fields) -> Action:
        return Action(kind, self.state.account, reason, **fields)

    def result(self, readings: Iterable[Reading] = ()) -> StepResult:
        state = replace(self.state, last_alerts=frozen_mapping(self.last_alerts))
        return StepResult(state, tuple(readings), tuple(self.actions), tuple(self.events), tuple(self.alerts))


def step(
    state: AccountState,
    snapshot: Snapshot | None,
    policy: Policy,
    now: datetime,
    market: MarketData = EMPTY,
    trades: TradeHistory | None = None,
) -> StepResult:
    """Decide one tick for one account. Pure: the same inputs give the same result.

    `market` is the latest cached market data, read by the market breakers only;
    `trades` is the closed-trade history as its own job last read it, for loss_streak.
    """
    state = replace(state, started_at=state.started_at or now)
    tick = _Tick(state, policy, now, None)
    good = _accept(tick, snapshot)
    tick.snapshot = good
    if good is not None:
        if any(base_name(name) == "order_rate" for name in policy.breakers):
            _follow_orders(tick, good)
        elif tick.state.orders_followed_since is not None:  # turned off: turning it on again is a first look
            tick.state = replace(tick.state, orders_seen=frozen_mapping({}), orders_followed_since=None)
        _follow_equity(tick, good)
    context = Context(state.account, tick.state, now, good, market, trades)  # prices the positions once for every breaker
    readings = [
        as_level(reading, name)  # a ladder's level 2 of drawdown reads as drawdown.2
        for name, config in policy.breakers.items()
        for reading in BREAKERS[base_name(name)].evaluate(context, config)
    ]
    _judge(tick, readings)
    _release_latches(tick, readings)
    _settle_state(tick)
    _enforce(tick)
    return tick.result(readings)


def _accept(tick: _Tick, snapshot: Snapshot | None) -> Snapshot | None:
    """The snapshot if it can be acted on; a glitch is recorded, not believed.

    A read refused for its credentials needs a person at once, not after stale_data's
    limit: it is announced as critical (once per cooldown).
    """
    if snapshot is not None and snapshot.error_kind == ReadFailure.AUTH:
        text = wording.credentials_alert(snapshot.error or "")
        if tick.alert(alert_key(EventKind.CREDENTIALS_REFUSED), Severity.CRITICAL, text):
            tick.event(EventKind.CREDENTIALS_REFUSED, snapshot.error, Severity.CRITICAL)
    if snapshot is None or not snapshot.ok:
        return None
    last, equity = tick.state.last_equity, snapshot.equity
    implausible = last is not None and last > 0 and not last / IMPLAUSIBLE_FACTOR <= equity <= last * IMPLAUSIBLE_FACTOR
    if not implausible:
        tick.state = replace(tick.state, implausible_ticks=0)
        return snapshot
    count = tick.state.implausible_ticks + 1
    if count >= IMPLAUSIBLE_ACCEPT:
        tick.event(EventKind.IMPLAUSIBLE_ACCEPTED, wording.implausible_accepted(equity, last, count), Severity.WARNING)
        tick.state = replace(tick.state, implausible_ticks=0)
        return snapshot
    tick.event(
        EventKind.IMPLAUSIBLE_SNAPSHOT,
        wording.implausible(equity, last),
        Severity.WARNING,
        equity=equity,
        last_equity=last,
    )
    tick.state = replace(tick.state, implausible_ticks=count)
    return None


def _follow_equity(tick: _Tick, snapshot: Snapshot) -> None:
    state, equity = tick.state, snapshot.equity
    start = day_start(tick.now, tick.policy.day_reset)
    fields = {"last_equity": equity, "last_good_at": tick.now}
    fields["peak_equity"] = equity if state.peak_equity is None else max(state.peak_equity, equity)
    if state.day_start != start or state.day_start_equity is None:
        fields.update(day_start=start, day_start_equity=equity)
    if state.trading_state is TradingState.HALTED and state.halt_exposure is None:
        fields["halt_exposure"] = frozen_mapping(snapshot.exposure)
    tick.state = replace(state, **fields)


ORDERS_REMEMBERED = timedelta(minutes=1)
"""How long an order that is gone stays in `orders_seen`: the order_rate breaker's window."""


def _follow_orders(tick: _Tick, snapshot: Snapshot) -> None:
    """Remember when each open order was first seen. At the first look with order_rate in
    force (a new account, or an account riskd knows whose order_rate was just turned on) the
    orders already there are not arrivals; an order that is gone is forgotten after a minute."""
    seen, first_look = tick.state.orders_seen, tick.state.orders_followed_since is None
    open_now = {order.id for order in snapshot.orders}
    kept = {
        order_id: moment
        for order_id, moment in seen.items()
        if order_id in open_now or moment is not None and tick.now - moment < ORDERS_REMEMBERED
    }
    for order_id in open_now - kept.keys():
        kept[order_id] = None if first_look else tick.now
    since = tick.now if first_look else tick.state.orders_followed_since
    tick.state = replace(tick.state, orders_seen=frozen_mapping(kept), orders_followed_since=since)


def _judge(tick: _Tick, readings: list[Reading]) -> None:
    """Count streaks, record warnings and clears, and trip what is confirmed.

    A breach already tripped stays `breached` while it lasts; each further `confirm`
    ticks of it trip again, so an action that did not take is sent again.
    """
    streaks, statuses = dict(tick.state.streaks), dict(tick.state.statuses)
    tripped = []
    for reading in readings:
        config = tick.policy.breakers[reading.breaker]
        key, previous = reading.key, statuses.get(reading.key, Status.OK)
        if reading.status is Status.NO_DATA:
            continue
        if reading.status is Status.BREACHED:
            streaks[key] = streaks.get(key, 0) + 1
            if streaks[key] >= config.confirm:
                streaks[key] = 0
                statuses[key] = Status.BREACHED
                tripped.append((reading, config, previous is Status.BREACHED))
            if previous is Status.BREACHED or streaks[key] == 0:
                continue
            status = Status.WARNING
        else:
            streaks[key] = 0
            status = reading.status
        confirming = reading.status is Status.BREACHED
        if status is Status.WARNING and (previous is not Status.WARNING or confirming and streaks[key] == 1):
            message = wording.warning(reading.reason, config.confirm if confirming else None)
            tick.event(EventKind.WARNING, message, Severity.WARNING, reading.breaker, key=key, value=reading.value)
            tick.alert(alert_key(EventKind.WARNING, key), Severity.WARNING, wording.warning_alert(message))
        elif status is Status.OK and previous in (Status.WARNING, Status.BREACHED):
            tick.event(EventKind.CLEAR, reading.reason, Severity.INFO, reading.breaker, key=key, value=reading.value)
            tick.alert(alert_key(EventKind.CLEAR, key), Severity.INFO, wording.clear_alert(reading.reason))
        statuses[key] = status
    blind = {reading.breaker for reading in readings if reading.status is Status.NO_DATA}
    current = {reading.key for reading in readings} | {key for key in statuses if key.split(":")[0] in blind}
    tick.state = replace(
        tick.state,
        streaks=frozen_mapping({key: value for key, value in streaks.items() if key in current}),
        statuses=frozen_mapping({key: value for key, value in statuses.items() if key in current}),
    )
    for reading, config, repeat in tripped:
        _trip(tick, reading, config, repeat, _superseded(reading, config, tripped))


def _superseded(reading: Reading, config: BreakerConfig, tripped: list) -> bool:
    """Whether a higher level of the same ladder trips in the same tick with a remedy at
    least as strong: escalation goes up the ladder at once, and the lower level's action
    would only be undone by it (a reduce before a flatten)."""
    order = list(Remedy)
    return any(
        base_name(other.breaker) == base_name(reading.breaker) and other.breaker != reading.breaker
        and other.symbol == reading.symbol and order.index(other_config.action) >= order.index(config.action)
        and other.currency == reading.currency  # a share and an amount of money do not compare
        and other.limit != reading.limit and (other.limit > reading.limit) == config.higher_is_worse
        for other, other_config, _ in tripped
    )


def _trip(tick: _Tick, reading: Reading, config: BreakerConfig, repeat: bool, superseded: bool = False) -> None:
    """A confirmed breach: its event, its actions, its latch and its alert.

    A repeat (the breach persists after tripping) refreshes the latch and is only
    recorded and announced when it has something left to do. A level `superseded` by a
    higher one tripping at the same time latches and is recorded, but leaves the acting to it.
    """
    snapshot, account, remedy = tick.snapshot, tick.state.account, config.action
    # one reduction per breach: repeating it would compound it into a close
    skip = superseded or repeat and remedy is Remedy.REDUCE
    actions = () if skip else _remedy(tick, remedy, reading)
    if repeat and not actions:
        if reading.breaker in tick.state.latches:
            latches = dict(tick.state.latches)
            latches[reading.breaker] = replace(latches[reading.breaker], tripped_at=tick.now)
            tick.state = replace(tick.state, latches=frozen_mapping(latches))
        return
    latches = dict(tick.state.latches)
    state = ACTION_STATE.get(remedy)
    resume = config.resume if isinstance(config.resume, str) else format_duration(config.resume)
    if state is not None:
        latches[reading.breaker] = Latch(reading.breaker, state, tick.now, reading.reason, resume)
        tick.state = replace(tick.state, latches=frozen_mapping(latches))
    if state is TradingState.HALTED and config.rearms:
        tick.state = replace(tick.state, losses_counted_from=tick.now)  # this streak is acted on; the next counts afresh
    if remedy is Remedy.FLATTEN:
        tick.state = replace(tick.state, halt_exposure=frozen_mapping({}))
    severity = Severity.EMERGENCY if remedy is Remedy.FLATTEN else Severity.CRITICAL
    text = wording.breach_alert(
        account, reading.reason, remedy, tick.policy.live,
        symbol=reading.symbol, fraction=config.reduce_by, latched=state, resume=config.resume,
        orders=len(reading.order_ids),
    )
    if not tick.alert(alert_key(EventKind.BREACH, reading.key), severity, text, always=not repeat):
        if tick.policy.live:
            tick.actions.extend(actions)  # live, what did not take is sent again; in dry-run it waits for the cooldown
        return  # the repeat's event waits for the cooldown like its alert
    tick.actions.extend(actions)
    tick.event(
        EventKind.BREACH,
        wording.breach(reading.reason, repeat),
        Severity.CRITICAL,
        reading.breaker,
        key=reading.key,
        value=reading.value,
        limit=reading.limit,
        action=remedy,
        equity=snapshot.equity if snapshot else None,
    )


def _remedy(tick: _Tick, remedy: Remedy, reading: Reading) -> tuple[Action, ...]:
    """The actions a tripped breaker's remedy calls for on the account as it is now."""
    snapshot, reason = tick.snapshot, reading.reason
    positions = snapshot.positions if snapshot else ()
    orders = snapshot.orders if snapshot else ()
    match remedy:
        case Remedy.ALERT:
            return ()
        case Remedy.CANCEL:
            return (tick.action(ActionKind.CANCEL_ORDERS, reason, order_ids=reading.order_ids),) if reading.order_ids else ()
        case Remedy.CLOSE:
            if any(position.key == reading.symbol for position in positions):
                return (tick.action(ActionKind.CLOSE, reason, symbol=reading.symbol),)
            return ()
        case Remedy.REDUCE:
            if any(reading.symbol in (None, position.key) for position in positions):
                fraction = tick.policy.breakers[reading.breaker].reduce_by
                return (tick.action(ActionKind.REDUCE, reason, symbol=reading.symbol, fraction=fraction),)
            return ()
        case Remedy.HALT:
            adding = _orders_that_could_add(orders)
            return (tick.action(ActionKind.CANCEL_ORDERS, reason, order_ids=adding),) if adding else ()
        case Remedy.FLATTEN:
            return (tick.action(ActionKind.FLATTEN, reason),) if positions or orders else ()
        case _:
            assert_never(remedy)


def _release_latches(tick: _Tick, readings: list[Reading]) -> None:
    breached = {r.breaker for r in readings if r.status in (Status.BREACHED, Status.NO_DATA)}
    latches = dict(tick.state.latches)
    for name, latch in tick.state.latches.items():
        config = tick.policy.breakers.get(name)
        if name in (FREEZE_LATCH, IMPOSED_LATCH) or name in breached:
            continue  # a person's freeze, or the portfolio's, is let go by them
        if config is None:
            due = True  # the breaker was removed from the configuration
        elif config.resume == NEXT_DAY:
            due = latch.tripped_at < day_start(tick.now, tick.policy.day_reset)
        elif config.resume == MANUAL:
            due = False
        else:
            due = tick.now - latch.tripped_at >= config.resume
        if due:
            del latches[name]
            tick.event(EventKind.RELEASED, wording.released(name, latch.resume), Severity.INFO, name)
    tick.state = replace(tick.state, latches=frozen_mapping(latches))


def _settle_state(tick: _Tick, who: str = "") -> None:
    """Set the trading state to the most severe latch and announce a change."""
    state = tick.state
    latches = sorted(state.latches.values(), key=lambda latch: (latch.state.severity, latch.resume == MANUAL, latch.tripped_at))
    target = latches[-1] if latches else None
    new = target.state if target else TradingState.ACTIVE
    if new is state.trading_state:
        if target is not None and target.reason != state.reason:
            tick.state = replace(state, reason=target.reason)  # a stronger latch now holds it: say which
        return
    reason = target.reason if target else wording.resumed_reason(who)
    fields = {"trading_state": new, "reason": reason, "since": tick.now}
    if new is TradingState.HALTED and state.halt_exposure is None:
        fields["halt_exposure"] = frozen_mapping(tick.snapshot.exposure) if tick.snapshot else None
    if new is not TradingState.HALTED:
        fields["halt_exposure"] = None
    tick.state = replace(state, **fields)
    severity = {
        TradingState.HALTED: Severity.CRITICAL,
        TradingState.REDUCING: Severity.WARNING,
        TradingState.ACTIVE: Severity.INFO,
    }[new]
    tick.event(
        EventKind.STATE_CHANGE,
        wording.state_change(state.trading_state, new, reason, who),
        severity,
        target.breaker if target else None,
        previous=str(state.trading_state),
        new=str(new),
        who=who,
    )
    tick.alert(
        alert_key(EventKind.STATE_CHANGE, new),
        severity,
        wording.state_change_alert(state.trading_state, new, reason, tick.policy.live, who),
        always=True,
    )


def _enforce(tick: _Tick) -> None:
    """Hold a halted or reducing account to its state against whatever else trades it."""
    snapshot, state = tick.snapshot, tick.state
    if snapshot is None or not tick.policy.enforces or any(action.kind is ActionKind.FLATTEN for action in tick.actions):
        return
    if state.trading_state is TradingState.HALTED:
        _enforce_halt(tick, snapshot)
    elif state.trading_state is TradingState.REDUCING:
        _enforce_reducing(tick, snapshot)


def _enforce_halt(tick: _Tick, snapshot: Snapshot) -> None:
    cancelled = {order_id for action in tick.actions for order_id in action.order_ids}
    stray = tuple(order_id for order_id in _orders_that_could_add(snapshot.orders) if order_id not in cancelled)
    if stray:
        reason = wording.halted_orders(len(stray))
        _enforcement(tick, "orders", Severity.WARNING, reason, ActionKind.CANCEL_ORDERS, order_ids=stray)
    allowed = dict(tick.state.halt_exposure or {})
    exposure = snapshot.exposure
    for position in snapshot.positions:
        held, limit = exposure[position.key], allowed.get(position.key, 0.0)
        flipped = limit and held * limit < 0
        growth = abs(held) if flipped else abs(held) - abs(limit)
        if growth > EPSILON * max(1.0, abs(held)):
            reason = wording.halted_growth(position.key, abs(held), position.side, growth, abs(limit))
            _enforcement(
                tick, position.key, Severity.CRITICAL, reason, ActionKind.CLOSE, symbol=position.key, contracts=growth
            )
            if flipped:
                allowed[position.key] = 0.0
        elif abs(held) < abs(limit):
            allowed[position.key] = held
    ratcheted = {key: value for key, value in allowed.items() if key in exposure}
    tick.state = replace(tick.state, halt_exposure=frozen_mapping(ratcheted))


def _enforcement(tick: _Tick, subject: str, severity: Severity, reason: str, kind: ActionKind, **fields) -> None:
    """Queue an enforcing action with its alert and event (once per cooldown); `subject`
    names what is enforced: the orders, or the position whose excess is closed.

    Live, the action is queued every tick until it takes. In dry-run nothing changes
    between ticks, so the same action would be recorded every tick for ever: there it
    is recorded with its alert, once per cooldown.
    """
    text = wording.enforcement_alert(reason, tick.policy.live, closing=kind is ActionKind.CLOSE)
    announced = tick.alert(alert_key(EventKind.ENFORCE, subject), severity, text)
    if announced:
        tick.event(EventKind.ENFORCE, reason, severity, **{k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()})
    if announced or tick.policy.live:
        tick.act(kind, reason, **fields)


def _orders_that_could_add(orders) -> tuple[str, ...]:
    """Every order but the reduce-only ones: a halt keeps a position's stops and take-profits,
    which can only shrink it."""
    return tuple(order.id for order in orders if not order.reduce_only)


def _enforce_reducing(tick: _Tick, snapshot: Snapshot) -> None:
    """Cancel every order that would add exposure. In one-way mode that is judged against
    the symbol's position. In hedge mode (the symbol's positions are held on a side) an
    order that does not close its side opens or grows one, however the two sides net (a
    short added under a larger long still adds); on a hedge-mode symbol with no position,
    every order adds either way."""
    held: dict[str, float] = {}
    for position in snapshot.positions:
        held[position.symbol] = held.get(position.symbol, 0.0) + snapshot.exposure[position.key]
    sided = {position.symbol for position in snapshot.positions if position.position_side}
    adding = tuple(
        order.id
        for order in snapshot.orders
        if not order.reduce_only
        and (order.symbol in sided or adds_exposure(order.side, order.remaining or order.amount, held.get(order.symbol, 0.0)))
    )
    if adding:
        reason = wording.reducing_orders(len(adding))
        _enforcement(tick, "orders", Severity.WARNING, reason, ActionKind.CANCEL_ORDERS, order_ids=adding)


def adds_exposure(side: str, amount: float, held: float) -> bool:
    """True when an order on the `held` signed position would grow or flip it."""
    if side == "buy":
        return held >= 0 or amount > -held + EPSILON
    return held <= 0 or amount > held + EPSILON


def apply_command(
    state: AccountState, command: Command, snapshot: Snapshot | None, policy: Policy, now: datetime
) -> StepResult:
    """A person's freeze, resume, flatten or reduce, decided like a breach is.

    A resume releases the account's own latches, never the portfolio's (`IMPOSED_LATCH`):
    while the portfolio holds the account it stays held, its figures untouched.
    """
    tick = _Tick(state, policy, now, snapshot if snapshot is not None and snapshot.ok else None)
    who = f"{command.who} via {command.source}"
    tick.event(EventKind.COMMAND, wording.command(command.kind, who), Severity.WARNING, command=str(command.kind), who=who)
    if command.kind is CommandKind.RESUME:
        # the portfolio's latch is the portfolio's to let go: only a resume of the portfolio releases it
        imposed = {IMPOSED_LATCH: state.latches[IMPOSED_LATCH]} if IMPOSED_LATCH in state.latches else {}
        if imposed and len(state.latches) == 1:
            return tick.result()  # held by the portfolio alone: nothing of the account's own to release
        equity = state.last_equity
        tick.state = replace(
            state,
            latches=frozen_mapping(imposed),
            streaks=frozen_mapping({}),
            statuses=frozen_mapping({}),
            peak_equity=equity if equity is not None else state.peak_equity,
            day_start_equity=equity if equity is not None else state.day_start_equity,
            losses_counted_from=now,
        )
        _settle_state(tick, who)
        return tick.result()
    reason = command.reason or wording.command_reason(command.kind, who)
    text = wording.command_alert(command.kind, who, policy.live, command.fraction)
    key = alert_key(EventKind.COMMAND)
    if command.kind is CommandKind.REDUCE:
        tick.act(ActionKind.REDUCE, reason, fraction=command.fraction)
        tick.alert(key, Severity.WARNING, text, always=True)
        return tick.result()
    latches = dict(state.latches)
    latches[FREEZE_LATCH] = Latch(FREEZE_LATCH, TradingState.HALTED, now, reason, MANUAL)
    tick.state = replace(state, latches=frozen_mapping(latches))
    if command.kind is CommandKind.FLATTEN:
        tick.act(ActionKind.FLATTEN, reason)
        tick.state = replace(tick.state, halt_exposure=frozen_mapping({}))
        tick.alert(key, Severity.CRITICAL, text, always=True)
    else:
        adding = _orders_that_could_add(tick.snapshot.orders) if tick.snapshot is not None else ()
        if adding:
            tick.act(ActionKind.CANCEL_ORDERS, reason, order_ids=adding)
        tick.alert(key, Severity.WARNING, text, always=True)
    _settle_state(tick, who)
    return tick.result()

