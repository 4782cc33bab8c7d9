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

The engine decides; what it says about a decision is written by `wording` from the
decision's fields.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Iterable, Mapping, assert_never

from riskd import wording
from riskd.breakers import BREAKERS, BreakerConfig, Context
from riskd.breakers.base import MANUAL, NEXT_DAY
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
    Reading,
    ReadFailure,
    Remedy,
    Severity,
    Snapshot,
    Status,
    StepResult,
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


@dataclass(frozen=True, slots=True)
class Policy:
    """What the engine needs to know of the configuration for one account."""

    breakers: Mapping[str, BreakerConfig]
    day_reset: time = time(0, 0)
    alert_cooldown: timedelta = timedelta(minutes=15)
    live: bool = False


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
    state: AccountState, snapshot: Snapshot | None, policy: Policy, now: datetime, market: MarketData = EMPTY
) -> StepResult:
    """Decide one tick for one account. Pure: the same inputs give the same result.

    `market` is the latest cached market data, read by the market breakers only.
    """
    state = replace(state, started_at=state.started_at or now)
    tick = _Tick(state, policy, now, None)
    good = _accept(tick, snapshot)
    tick.snapshot = good
    if good is not None:
        _follow_equity(tick, good)
    context = Context(state.account, tick.state, now, good, market)  # prices the positions once for every breaker
    readings = [reading for name, config in policy.breakers.items() for reading in BREAKERS[name].evaluate(context, config)]
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
        _trip(tick, reading, config, repeat)


def _trip(tick: _Tick, reading: Reading, config: BreakerConfig, repeat: bool) -> None:
    """A confirmed breach: its event, its actions, its latch and its alert.

    A repeat (the breach persists after tripping) refreshes the latch and is only
    recorded and announced when it has something left to do.
    """
    snapshot, account, remedy = tick.snapshot, tick.state.account, config.action
    # one reduction per breach: repeating it would compound it into a close
    actions = () if repeat and remedy is Remedy.REDUCE else _remedy(tick, remedy, reading)
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
    if remedy is Remedy.FLATTEN:
        tick.state = replace(tick.state, halt_exposure=frozen_mapping({}))
    severity = Severity.EMERGENCY if remedy is Remedy.FLATTEN else Severity.CRITICAL
    text = wording.breach_alert(
        account, reading.reason, remedy, tick.policy.live,
        symbol=reading.symbol, fraction=config.reduce_by, latched=state, resume=config.resume,
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
        if name == FREEZE_LATCH or name in breached:
            continue
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
    if snapshot is None or any(action.kind is ActionKind.FLATTEN for action in tick.actions):
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
    held: dict[str, float] = {}
    for position in snapshot.positions:
        held[position.symbol] = held.get(position.symbol, 0.0) + snapshot.exposure[position.key]
    adding = tuple(
        order.id
        for order in snapshot.orders
        if not order.reduce_only and adds_exposure(order.side, order.remaining or order.amount, held.get(order.symbol, 0.0))
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
    """A person's freeze, resume, flatten or reduce, decided like a breach is."""
    tick = _Tick(state, policy, now, snapshot if snapshot is not None and snapshot.ok else None)
    who = f"{command.who} via {command.source}"
    tick.event(EventKind.COMMAND, wording.command(command.kind, who), Severity.WARNING, command=str(command.kind), who=who)
    if command.kind is CommandKind.RESUME:
        equity = state.last_equity
        tick.state = replace(
            state,
            latches=frozen_mapping({}),
            streaks=frozen_mapping({}),
            statuses=frozen_mapping({}),
            peak_equity=equity if equity is not None else state.peak_equity,
            day_start_equity=equity if equity is not None else state.day_start_equity,
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

