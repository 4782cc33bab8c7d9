"""The pure step: what riskd decides for one tick, tested with plain values."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from riskd import wording
from riskd.domain import (
    AccountState,
    ActionKind,
    CommandKind,
    EventKind,
    ReadFailure,
    Remedy,
    Severity,
    Side,
    Snapshot,
    Status,
    StepResult,
    TradingState,
    alert_key,
    alert_kind,
)
from riskd.engine import Policy, apply_command, step

from tests.factories import (
    NOW,
    TODAY,
    command,
    latch,
    order,
    policy,
    position,
    snapshot,
    watched_state,
)

ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
TICK = timedelta(seconds=10)
HOUR = timedelta(hours=1)


def losing(**fields) -> Snapshot:
    """Equity 15 % below the 10,000 peak (drawdown limit 10 %), one long of 0.1 BTC."""
    return snapshot(8_500, [position(BTC, contracts=0.1, notional=5_000)], **fields)


def failed() -> Snapshot:
    return snapshot(None, error="exchange timed out")


def run(policy: Policy, snapshots: list[Snapshot], state: AccountState | None = None, start=NOW) -> list[StepResult]:
    """Feed `snapshots` one tick (10 s) apart, each result's state into the next tick."""
    current, results = state or watched_state(), []
    for number, read in enumerate(snapshots):
        results.append(step(current, read, policy, start + number * TICK))
        current = results[-1].state
    return results


def kinds(result: StepResult) -> list[str]:
    return [event.kind for event in result.events]


def actions(result: StepResult) -> list[ActionKind]:
    return [action.kind for action in result.actions]


def events_of(result: StepResult, kind: str):
    return [event for event in result.events if event.kind == kind]


def reading(result: StepResult, key: str):
    return next(reading for reading in result.readings if reading.key == key)


def halted(exposure: dict | None, **fields) -> AccountState:
    """Halted by a person's freeze, with `exposure` the contracts allowed since the halt."""
    return watched_state(trading_state=HALTED, latches={"manual": latch("manual")}, halt_exposure=exposure, **fields)


# --- confirm counting ----------------------------------------------------------------


def test_a_breach_trips_on_its_second_consecutive_tick_by_default():
    first, second = run(policy(drawdown={}), [losing(), losing()])

    assert first.actions == () and first.state.trading_state is ACTIVE
    assert actions(second) == [ActionKind.FLATTEN]


@pytest.mark.parametrize("confirm", [1, 2, 3, 5])
def test_a_breach_trips_only_when_seen_confirm_ticks_in_a_row(confirm):
    results = run(policy(drawdown={"confirm": confirm}), [losing()] * confirm)

    assert [len(result.actions) for result in results] == [0] * (confirm - 1) + [1]
    assert results[-1].state.trading_state is HALTED


def test_an_unconfirmed_breach_is_one_warning_event_that_says_it_waits():
    first, second = run(policy(drawdown={"confirm": 3}), [losing(), losing()])

    assert kinds(first) == ["warning"]
    assert "waiting for 3 ticks to confirm" in first.events[0].message
    assert kinds(second) == []  # still the same warning, not a second one
    assert [alert.severity for alert in first.alerts] == [Severity.WARNING]


def test_one_bad_tick_followed_by_a_good_one_never_trips():
    results = run(policy(drawdown={}), [losing(), snapshot(10_000)] * 4)

    assert all(result.actions == () for result in results)
    assert not any("breach" in kinds(result) for result in results)
    assert all(result.state.trading_state is ACTIVE and not result.state.latches for result in results)


def test_a_no_data_tick_between_two_bad_ones_does_not_reset_the_count():
    *_, third = run(policy(drawdown={}), [losing(), failed(), losing()])

    assert actions(third) == [ActionKind.FLATTEN]


def test_a_no_data_tick_does_not_count_towards_confirm():
    results = run(policy(drawdown={"confirm": 3}), [losing(), failed(), losing(), losing()])

    assert [len(result.actions) for result in results] == [0, 0, 0, 1]


def test_a_no_data_tick_does_not_reset_a_per_position_breach():
    bleeding = snapshot(10_000, [position(BTC, contracts=1, unrealized_pnl=-500)])  # 5 % of equity, limit 3 %

    *_, third = run(policy(position_loss={}), [bleeding, failed(), bleeding])

    assert actions(third) == [ActionKind.CLOSE]


# --- trips -----------------------------------------------------------------------------


def test_a_drawdown_trip_flattens_latches_and_halts_with_an_emergency_alert():
    _, tripped = run(policy(drawdown={}), [losing(), losing()])

    assert actions(tripped) == [ActionKind.FLATTEN]
    latched = tripped.state.latches["drawdown"]
    assert (latched.state, latched.resume, latched.tripped_at) == (HALTED, "manual", NOW + TICK)
    assert tripped.state.trading_state is HALTED
    assert kinds(tripped) == ["breach", "state_change"]
    breach_alert = next(alert for alert in tripped.alerts if alert.key == "breach:drawdown")
    assert breach_alert.severity is Severity.EMERGENCY
    assert tripped.state.halt_exposure == {}  # after a flatten nothing may be held


def test_a_breach_alert_is_the_one_wording_builds_from_the_breach():
    _, tripped = run(policy(drawdown={}), [losing(), losing()])

    breach_alert = next(alert for alert in tripped.alerts if alert.key == "breach:drawdown")
    reason = reading(tripped, "drawdown").reason
    assert breach_alert.text == wording.breach_alert(
        "main", reason, Remedy.FLATTEN, False, fraction=0.5, latched=HALTED, resume="manual"
    )


def test_a_flatten_trip_on_an_account_with_orders_but_no_positions_flattens():
    orders_only = snapshot(8_500, orders=[order("o1")])

    _, tripped = run(policy(drawdown={}), [orders_only, orders_only])

    assert actions(tripped) == [ActionKind.FLATTEN]  # the orders are cancelled, not left to fill


def test_a_daily_loss_trip_cancels_the_open_orders_and_halts():
    down_six_percent = snapshot(9_400, [position(BTC, contracts=0.1)], orders=[order("o1"), order("o2")])

    _, tripped = run(policy(daily_loss={}), [down_six_percent] * 2)

    assert actions(tripped) == [ActionKind.CANCEL_ORDERS]  # once, not again by the halt's enforcement
    assert tripped.actions[0].order_ids == ("o1", "o2")
    assert tripped.state.trading_state is HALTED
    assert tripped.state.latches["daily_loss"].resume == "next_day"
    assert tripped.state.halt_exposure == {BTC: 0.1}  # what was held at the halt stays allowed


@pytest.mark.parametrize(("settings", "fraction"), [({}, 0.5), ({"reduce_by": "25%"}, 0.25)])
def test_a_leverage_trip_reduces_by_reduce_by_and_moves_to_reducing(settings, fraction):
    six_times = snapshot(10_000, [position(BTC, notional=40_000), position(ETH, notional=20_000)])

    _, tripped = run(policy(leverage=settings), [six_times] * 2)

    assert actions(tripped) == [ActionKind.REDUCE]
    assert tripped.actions[0].fraction == fraction
    assert tripped.actions[0].symbol is None  # every position
    assert tripped.state.trading_state is REDUCING
    assert tripped.state.latches["leverage"].state is REDUCING


def test_a_reduce_is_not_repeated_while_the_same_breach_lasts_but_a_flatten_is():
    six_times = snapshot(10_000, [position(BTC, notional=60_000)])

    results = run(policy(leverage={}, live=True), [six_times] * 8)
    assert sum(actions(result).count(ActionKind.REDUCE) for result in results) == 1  # not 50 %, 75 %, 87.5 % ...

    crashed = snapshot(8_000, [position(BTC, contracts=0.1)])
    results = run(policy(drawdown={}, live=True), [snapshot(10_000, [position(BTC, contracts=0.1)])] + [crashed] * 6)
    assert sum(actions(result).count(ActionKind.FLATTEN) for result in results) == 3  # a position left open is closed again


def test_a_halt_keeps_reduce_only_orders_such_as_stops():
    down_six_percent = snapshot(9_400, [position(BTC, contracts=0.1)], orders=[order("bid"), order("stop", side="sell", reduce_only=True)])

    _, tripped = run(policy(daily_loss={}), [down_six_percent] * 2)
    assert tripped.actions[0].order_ids == ("bid",)
    later = step(tripped.state, down_six_percent, policy(daily_loss={}, live=True), NOW + HOUR)
    assert all("stop" not in action.order_ids for action in later.actions)


def test_the_reason_follows_the_latch_that_holds_the_account_longest():
    down = snapshot(8_500, [position(BTC, contracts=0.1)])
    results = run(policy(daily_loss={"confirm": 1}, drawdown={"confirm": 3}), [snapshot(10_000, [position(BTC, contracts=0.1)])] + [down] * 3)
    assert results[1].state.reason.startswith("daily loss")
    assert results[-1].state.trading_state is HALTED and results[-1].state.reason.startswith("drawdown")


def test_a_position_loss_trip_closes_only_that_position_and_keeps_trading_active():
    positions = [position(BTC, unrealized_pnl=-500), position(ETH, unrealized_pnl=-100)]  # 5 % and 1 % of equity

    _, tripped = run(policy(position_loss={}), [snapshot(10_000, positions)] * 2)

    assert [(action.kind, action.symbol) for action in tripped.actions] == [(ActionKind.CLOSE, BTC)]
    assert tripped.state.trading_state is ACTIVE
    assert not tripped.state.latches
    assert "breach" in kinds(tripped) and "state_change" not in kinds(tripped)


def test_a_position_loss_trip_in_hedge_mode_closes_the_losing_side_only():
    positions = [
        position(BTC, side=Side.LONG, position_side="long", unrealized_pnl=-500),
        position(BTC, side=Side.SHORT, position_side="short", unrealized_pnl=300),
    ]

    _, tripped = run(policy(position_loss={}), [snapshot(10_000, positions)] * 2)

    assert [action.symbol for action in tripped.actions] == [f"{BTC}:long"]


def test_an_alert_only_breaker_trips_without_action_or_state_change():
    _, tripped = run(policy(drawdown={"action": "alert"}), [losing(), losing()])

    assert tripped.actions == ()
    assert tripped.state.trading_state is ACTIVE and not tripped.state.latches
    assert kinds(tripped) == ["breach"]
    assert [alert.severity for alert in tripped.alerts] == [Severity.CRITICAL]


def test_escalation_from_reducing_to_halted_is_immediate():
    reducing = watched_state(trading_state=REDUCING, latches={"leverage": latch("leverage", state=REDUCING, resume="1h")})

    result = step(reducing, losing(), policy(leverage={}, drawdown={"confirm": 1}), NOW)

    assert result.state.trading_state is HALTED
    change = events_of(result, "state_change")[0]
    assert (change.data["previous"], change.data["new"]) == ("reducing", "halted")
    assert set(result.state.latches) == {"leverage", "drawdown"}


def test_a_released_lesser_latch_does_not_lower_the_state_while_a_halting_latch_holds():
    latches = {
        "drawdown": latch("drawdown", tripped_at=NOW - 2 * HOUR),
        "leverage": latch("leverage", state=REDUCING, resume="1h", tripped_at=NOW - 2 * HOUR),
    }

    result = step(watched_state(trading_state=HALTED, latches=latches), snapshot(10_000), policy(drawdown={}, leverage={}), NOW)

    assert set(result.state.latches) == {"drawdown"}
    assert kinds(result) == ["released"]
    assert result.state.trading_state is HALTED


# --- resume policies ---------------------------------------------------------------------


def test_a_manual_latch_never_releases_by_itself():
    old = watched_state(trading_state=HALTED, latches={"drawdown": latch("drawdown", tripped_at=NOW - timedelta(days=3))})

    results = run(policy(drawdown={}), [snapshot(10_000)] * 3, state=old, start=NOW + timedelta(days=30))

    assert all(result.state.trading_state is HALTED for result in results)
    assert all("released" not in kinds(result) for result in results)


def test_next_day_releases_at_the_first_tick_after_the_day_reset_once_the_loss_is_gone():
    morning = policy(daily_loss={}, day_reset=time(8, 0))
    yesterday_reset = TODAY - timedelta(days=1) + timedelta(hours=8)
    tripped_at_seven = TODAY + timedelta(hours=7)
    state = watched_state(
        trading_state=HALTED,
        day_start=yesterday_reset,
        last_equity=9_400,
        latches={"daily_loss": latch("daily_loss", tripped_at=tripped_at_seven, resume="next_day")},
    )

    recovered_before_reset = step(state, snapshot(10_000), morning, TODAY + timedelta(hours=7, minutes=59))
    after_reset = step(state, snapshot(9_400), morning, TODAY + timedelta(hours=8, seconds=5))

    assert recovered_before_reset.state.trading_state is HALTED
    assert after_reset.state.day_start_equity == 9_400
    assert after_reset.state.trading_state is ACTIVE and not after_reset.state.latches
    assert kinds(after_reset) == ["released", "state_change"]
    assert events_of(after_reset, "state_change")[0].data["new"] == "active"


def test_next_day_does_not_release_a_breaker_still_breached_after_the_reset():
    state = watched_state(
        trading_state=HALTED,
        latches={"drawdown": latch("drawdown", tripped_at=TODAY - 2 * HOUR, resume="next_day")},
    )

    result = step(state, losing(), policy(drawdown={"resume": "next_day"}), NOW)

    assert result.state.trading_state is HALTED
    assert "drawdown" in result.state.latches


def reducing_since(tripped_at) -> AccountState:
    return watched_state(trading_state=REDUCING, latches={"leverage": latch("leverage", state=REDUCING, resume="60m", tripped_at=tripped_at)})


CALM = snapshot(10_000, [position(BTC, notional=20_000)])  # 2x leverage, limit 5x
GEARED = snapshot(10_000, [position(BTC, notional=60_000)])  # 6x


@pytest.mark.parametrize(
    ("tripped_ago", "read", "state"),
    [
        (timedelta(minutes=59), CALM, REDUCING),
        (HOUR, CALM, ACTIVE),
        (2 * HOUR, GEARED, REDUCING),  # still breached
        (2 * HOUR, failed(), REDUCING),  # cannot tell
    ],
    ids=["too-soon", "due", "still-breached", "no-data"],
)
def test_a_duration_releases_only_that_long_after_the_trip_and_only_when_clear(tripped_ago, read, state):
    result = step(reducing_since(NOW - tripped_ago), read, policy(leverage={}), NOW)

    assert result.state.trading_state is state
    if state is ACTIVE:
        assert kinds(result) == ["released", "state_change"]
        assert result.state.halt_exposure is None


@pytest.mark.parametrize(
    ("rules", "breached", "calm", "state"),
    [
        (policy(leverage={}), GEARED, CALM, REDUCING),  # each repeat trip reduces again
        (policy(daily_loss={"resume": "1h"}), snapshot(9_400), snapshot(10_000), HALTED),  # repeats do nothing new
    ],
    ids=["repeat-with-action", "repeat-without-action"],
)
def test_a_duration_counts_from_the_last_trip_of_a_lasting_breach(rules, breached, calm, state):
    current = watched_state()
    last_trip = NOW + timedelta(minutes=30, seconds=10)
    for at, read in [(NOW, breached), (NOW + TICK, breached), (last_trip - TICK, breached), (last_trip, breached), (last_trip + TICK, calm)]:
        current = step(current, read, rules, at).state
    (held,) = current.latches.values()
    assert held.tripped_at == last_trip

    an_hour_after_first_trip = step(current, calm, rules, NOW + TICK + HOUR + TICK)
    an_hour_after_last_trip = step(current, calm, rules, last_trip + HOUR)

    assert an_hour_after_first_trip.state.trading_state is state
    assert an_hour_after_last_trip.state.trading_state is ACTIVE


# --- commands --------------------------------------------------------------------------


def test_freeze_halts_with_a_manual_latch_and_records_who_gave_it():
    result = apply_command(watched_state(), command("freeze", who="alice", source="telegram"), snapshot(), policy(), NOW)

    assert result.state.trading_state is HALTED
    assert result.state.latches["manual"].resume == "manual"
    assert kinds(result) == ["command", "state_change"]
    assert all(event.data["who"] == "alice via telegram" for event in result.events)
    assert "alice via telegram" in events_of(result, "state_change")[0].message


def test_freeze_cancels_open_orders():
    result = apply_command(watched_state(), command("freeze"), snapshot(orders=[order("o1")]), policy(), NOW)

    assert [(action.kind, action.order_ids) for action in result.actions] == [(ActionKind.CANCEL_ORDERS, ("o1",))]


def test_freeze_is_announced_as_a_freeze():
    result = apply_command(watched_state(), command("freeze"), snapshot(orders=[order("o1")]), policy(), NOW)

    announced = [alert for alert in result.alerts if alert.key == "command"]
    assert [alert.text for alert in announced] == [wording.command_alert(CommandKind.FREEZE, "alice via telegram", False)]


def test_a_flatten_command_is_announced_even_when_already_halted():
    result = apply_command(halted({BTC: 0.1}), command("flatten"), losing(), policy(), NOW)

    assert actions(result) == [ActionKind.FLATTEN]
    announced = [alert for alert in result.alerts if alert.key == "command"]
    assert [(alert.severity, alert.text) for alert in announced] == [
        (Severity.CRITICAL, wording.command_alert(CommandKind.FLATTEN, "alice via telegram", False))
    ]


def test_resume_clears_latches_and_rebases_peak_and_day_start_so_the_same_loss_does_not_retrip():
    both = policy(drawdown={}, daily_loss={})
    _, tripped = run(both, [losing(), losing()])
    assert tripped.state.trading_state is HALTED

    resumed = apply_command(tripped.state, command("resume", who="bob", source="cli"), losing(), both, NOW + HOUR)
    later = run(both, [losing()] * 4, state=resumed.state, start=NOW + HOUR + TICK)

    assert resumed.state.trading_state is ACTIVE
    assert not resumed.state.latches and not resumed.state.streaks
    assert (resumed.state.peak_equity, resumed.state.day_start_equity) == (8_500, 8_500)
    change = events_of(resumed, "state_change")[0]
    assert (change.data["new"], change.data["who"]) == ("active", "bob via cli")
    assert all(result.actions == () and result.events == () for result in later)
    assert later[-1].state.trading_state is ACTIVE


def test_flatten_command_flattens_and_halts_with_nothing_allowed():
    result = apply_command(watched_state(), command("flatten"), losing(), policy(), NOW)

    assert actions(result) == [ActionKind.FLATTEN]
    assert result.state.trading_state is HALTED
    assert result.state.halt_exposure == {}


def test_reduce_command_reduces_by_the_given_fraction_without_a_state_change():
    result = apply_command(watched_state(), command("reduce", fraction=0.3), losing(), policy(), NOW)

    assert [(action.kind, action.fraction) for action in result.actions] == [(ActionKind.REDUCE, 0.3)]
    assert result.state.trading_state is ACTIVE and not result.state.latches
    assert kinds(result) == ["command"]


# --- enforcing a halt ------------------------------------------------------------------


def enforce(state: AccountState, *positions, orders=(), live: bool = True) -> StepResult:
    return step(state, snapshot(10_000, positions, orders=orders), policy(drawdown={}, live=live), NOW)


def closes(result: StepResult) -> list[tuple[str, float]]:
    return [(action.symbol, pytest.approx(action.contracts)) for action in result.actions if action.kind is ActionKind.CLOSE]


def test_halted_cancels_an_order_that_appears():
    result = enforce(halted({}), orders=[order("o9")])

    assert [(action.kind, action.order_ids) for action in result.actions] == [(ActionKind.CANCEL_ORDERS, ("o9",))]
    assert kinds(result) == ["enforce"]


def test_halted_leaves_what_was_held_at_the_halt():
    assert enforce(halted({BTC: 1.0}), position(BTC, contracts=1.0)).actions == ()


@pytest.mark.parametrize(("side", "allowed"), [(Side.LONG, 1.0), (Side.SHORT, -1.0)])
def test_halted_closes_exactly_the_growth_of_a_position(side, allowed):
    result = enforce(halted({BTC: allowed}), position(BTC, side=side, contracts=1.5))

    assert closes(result) == [(BTC, 0.5)]


def test_halted_closes_a_new_position_whole():
    result = enforce(halted({BTC: 1.0}), position(BTC, contracts=1.0), position(ETH, contracts=2.0))

    assert closes(result) == [(ETH, 2.0)]


def test_halted_closes_a_flipped_position_whole():
    result = enforce(halted({BTC: 1.0}), position(BTC, side=Side.SHORT, contracts=0.4))

    assert closes(result) == [(BTC, 0.4)]


def test_live_enforcement_repeats_every_tick_until_it_takes():
    first = enforce(halted({}), orders=[order("o9")])
    again = enforce(first.state, orders=[order("o9")])

    assert [action.order_ids for action in again.actions] == [("o9",)]
    assert again.alerts == ()  # announced once per cooldown


def test_dry_run_enforcement_is_recorded_once_per_cooldown_not_every_tick():
    first = enforce(halted({}), orders=[order("o9")], live=False)
    again = enforce(first.state, orders=[order("o9")], live=False)

    assert [action.order_ids for action in first.actions] == [("o9",)]
    assert again.actions == () and again.alerts == ()


def test_halted_a_flipped_position_loses_its_allowance():
    flipped = enforce(halted({BTC: 1.0}), position(BTC, side=Side.SHORT, contracts=0.4))
    rebuilt = enforce(flipped.state, position(BTC, side=Side.LONG, contracts=1.0))

    assert closes(rebuilt) == [(BTC, 1.0)]


def test_halted_in_hedge_mode_treats_each_side_as_its_own_position():
    long_side = position(BTC, side=Side.LONG, contracts=1.0, position_side="long")
    short_side = position(BTC, side=Side.SHORT, contracts=0.7, position_side="short")

    result = enforce(halted({f"{BTC}:long": 1.0}), long_side, short_side)

    assert closes(result) == [(f"{BTC}:short", 0.7)]


def test_halted_lowers_the_allowance_when_a_position_shrinks_and_closes_regrowth():
    shrunk = enforce(halted({BTC: 1.0, ETH: 2.0}), position(BTC, contracts=0.4))
    regrown = enforce(shrunk.state, position(BTC, contracts=1.0), position(ETH, contracts=2.0))

    assert shrunk.actions == ()
    assert shrunk.state.halt_exposure == {BTC: 0.4}  # ETH was closed: none of it is allowed back
    assert closes(regrown) == [(BTC, 0.6), (ETH, 2.0)]


def test_after_a_flatten_trip_no_position_is_allowed():
    *_, after = run(policy(drawdown={}), [losing(), losing(), losing()])

    assert closes(after) == [(BTC, 0.1)]


def test_after_a_halt_trip_the_positions_held_stay_allowed():
    down_six_percent = snapshot(9_400, [position(BTC, contracts=0.1)])

    results = run(policy(daily_loss={}), [down_six_percent] * 4)

    assert results[-1].state.trading_state is HALTED
    assert all(result.actions == () for result in results)


def test_a_halt_without_a_good_snapshot_takes_its_allowance_from_the_next_good_one():
    frozen = apply_command(watched_state(), command("freeze"), None, policy(), NOW)
    first_read = step(frozen.state, snapshot(10_000, [position(BTC, contracts=1.0)]), policy(drawdown={}), NOW + TICK)
    grown = step(first_read.state, snapshot(10_000, [position(BTC, contracts=1.2)]), policy(drawdown={}), NOW + 2 * TICK)

    assert frozen.state.halt_exposure is None
    assert first_read.actions == () and first_read.state.halt_exposure == {BTC: 1.0}
    assert closes(grown) == [(BTC, 0.2)]


# --- enforcing reducing ----------------------------------------------------------------

LONG_2, SHORT_2 = position(BTC, side=Side.LONG, contracts=2), position(BTC, side=Side.SHORT, contracts=2)


@pytest.mark.parametrize(
    ("held", "side", "amount", "reduce_only", "cancelled"),
    [
        (LONG_2, "buy", 1, False, True),
        (None, "buy", 1, False, True),
        (SHORT_2, "sell", 1, False, True),
        (None, "sell", 1, False, True),
        (LONG_2, "sell", 3, False, True),  # would flip the long into a short
        (SHORT_2, "buy", 3, False, True),
        (LONG_2, "sell", 2, False, False),
        (LONG_2, "sell", 1, False, False),
        (SHORT_2, "buy", 1, False, False),
        (SHORT_2, "buy", 2, False, False),
        (LONG_2, "buy", 1, True, False),
        (None, "sell", 1, True, False),
    ],
)
def test_reducing_cancels_only_orders_that_would_add_exposure(held, side, amount, reduce_only, cancelled):
    reducing = watched_state(trading_state=REDUCING, latches={"leverage": latch("leverage", state=REDUCING, resume="1h")})
    pending = order("o1", BTC, side=side, amount=amount, reduce_only=reduce_only)

    result = step(reducing, snapshot(10_000, [held] if held else [], orders=[pending]), policy(leverage={}), NOW)

    assert [action.order_ids for action in result.actions] == ([("o1",)] if cancelled else [])
    assert result.state.trading_state is REDUCING


def test_reducing_in_hedge_mode_cancels_an_order_that_grows_one_side_whatever_the_other_holds():
    reducing = watched_state(trading_state=REDUCING, latches={"leverage": latch("leverage", state=REDUCING, resume="1h")})
    long_side = position(BTC, side=Side.LONG, contracts=2.0, position_side="long")
    short_side = position(BTC, side=Side.SHORT, contracts=1.0, position_side="short")
    more_short = order("grow", BTC, side="sell", amount=0.5)  # nets under the long: it still adds
    take_profit = order("keep", BTC, side="sell", amount=2.0, reduce_only=True)  # closes the long

    result = step(reducing, snapshot(10_000, [long_side, short_side], orders=[more_short, take_profit]), policy(leverage={}), NOW)

    assert [action.order_ids for action in result.actions] == [("grow",)]


def test_reducing_in_hedge_mode_cancels_an_opening_order_that_names_no_side():
    # Gate's dual mode: its orders name no side; the position is held on one, so a
    # sell that is not reduce-only opens a short beside the long
    reducing = watched_state(trading_state=REDUCING, latches={"leverage": latch("leverage", state=REDUCING, resume="1h")})
    long_side = position(BTC, side=Side.LONG, contracts=2.0, position_side="long")
    unnamed = order("open-short", BTC, side="sell", amount=0.5)

    result = step(reducing, snapshot(10_000, [long_side], orders=[unnamed]), policy(leverage={}), NOW)

    assert [action.order_ids for action in result.actions] == [("open-short",)]


def test_reducing_judges_an_order_by_what_remains_of_it():
    reducing = watched_state(trading_state=REDUCING, latches={"leverage": latch("leverage", state=REDUCING, resume="1h")})
    mostly_filled = order("o1", BTC, side="sell", amount=5, remaining=1)

    result = step(reducing, snapshot(10_000, [LONG_2], orders=[mostly_filled]), policy(leverage={}), NOW)

    assert result.actions == ()


# --- data problems ---------------------------------------------------------------------


def test_a_failed_snapshot_blinds_every_breaker_but_stale_data_and_does_nothing():
    result = step(watched_state(), failed(), policy(), NOW)

    statuses = {reading.breaker: reading.status for reading in result.readings}
    assert statuses.pop("stale_data") is Status.OK
    assert set(statuses.values()) == {Status.NO_DATA}
    assert result.actions == ()
    assert result.state.last_good_at == watched_state().last_good_at


def test_stale_data_warns_then_breaches_as_time_passes_without_a_good_snapshot():
    stale = policy(stale_data={})
    read = step(watched_state(), snapshot(10_000), stale, NOW)

    at_50s = step(read.state, failed(), stale, NOW + timedelta(seconds=50))
    at_61s = step(at_50s.state, failed(), stale, NOW + timedelta(seconds=61))
    back = step(at_61s.state, snapshot(10_000), stale, NOW + timedelta(seconds=70))

    assert reading(at_50s, "stale_data").status is Status.WARNING and kinds(at_50s) == ["warning"]
    assert reading(at_61s, "stale_data").status is Status.BREACHED and kinds(at_61s) == ["breach"]  # confirm 1
    assert at_61s.actions == () and at_61s.state.trading_state is ACTIVE
    assert kinds(back) == ["clear"]


def test_stale_data_counts_from_the_start_when_no_snapshot_was_ever_good():
    stale = policy(stale_data={})
    first = step(AccountState("main"), failed(), stale, NOW)

    later = step(first.state, failed(), stale, NOW + timedelta(seconds=61))

    assert reading(later, "stale_data").status is Status.BREACHED


@pytest.mark.parametrize("equity", [60_000, 1_000], ids=["jump-up", "jump-down"])
def test_an_implausible_equity_jump_is_not_acted_on(equity):
    result = step(watched_state(), snapshot(equity, [position(BTC, notional=5_000)]), policy(), NOW)

    assert kinds(result) == ["implausible_snapshot"]
    assert result.actions == ()
    assert (result.state.last_equity, result.state.peak_equity) == (10_000, 10_000)
    assert {reading.status for reading in result.readings if reading.breaker != "stale_data"} == {Status.NO_DATA}


def test_exactly_five_times_is_still_plausible():
    result = step(watched_state(), snapshot(50_000), policy(drawdown={}), NOW)

    assert "implausible_snapshot" not in kinds(result)
    assert result.state.peak_equity == 50_000


def test_an_implausible_equity_is_accepted_after_three_ticks_and_then_acted_on():
    crashed = snapshot(1_000, [position(BTC, contracts=0.1, notional=500)])

    results = run(policy(drawdown={}), [crashed] * 4)

    assert [kinds(result)[:1] for result in results] == [
        ["implausible_snapshot"], ["implausible_snapshot"], ["implausible_accepted"], ["breach"],
    ]
    assert results[2].state.last_equity == 1_000
    assert actions(results[3]) == [ActionKind.FLATTEN]


def test_a_plausible_snapshot_resets_the_implausible_count():
    crashed = snapshot(1_000)

    results = run(policy(drawdown={"action": "alert"}), [crashed, crashed, snapshot(9_000), crashed])

    assert results[-1].state.implausible_ticks == 1
    assert kinds(results[-1]) == ["implausible_snapshot"]


def test_zero_equity_is_handled_without_exceptions_and_trips_once_believed():
    broke = snapshot(0, [position(BTC, contracts=1, notional=5_000, unrealized_pnl=-10_000)], orders=[order("o1")])

    results = run(policy(), [broke] * 5)

    assert results[2].state.last_equity == 0
    assert reading(results[3], "leverage").status is Status.BREACHED
    assert reading(results[3], "position_loss").status is Status.NO_DATA
    assert ActionKind.FLATTEN in actions(results[3])
    assert results[-1].state.trading_state is HALTED


def test_zero_equity_on_a_new_account_reads_no_data_rather_than_failing():
    result = step(AccountState("main"), snapshot(0), policy(), NOW)

    assert reading(result, "drawdown").status is Status.NO_DATA
    assert reading(result, "daily_loss").status is Status.NO_DATA
    assert result.actions == ()


# --- the day and the peak --------------------------------------------------------------


@pytest.mark.parametrize("reset", [time(0, 0), time(8, 0)])
def test_day_start_equity_resets_at_the_first_good_tick_after_the_day_reset(reset):
    reset_today = TODAY.replace(hour=reset.hour)
    rules = policy(daily_loss={}, day_reset=reset)
    yesterday = watched_state(day_start=reset_today - timedelta(days=1), last_equity=9_500)

    before = step(yesterday, snapshot(9_500), rules, reset_today - timedelta(minutes=1))
    blind = step(before.state, failed(), rules, reset_today + timedelta(seconds=5))
    first_good = step(blind.state, snapshot(9_000), rules, reset_today + timedelta(seconds=15))
    later = step(first_good.state, snapshot(9_200), rules, reset_today + HOUR)

    assert before.state.day_start_equity == 10_000
    assert blind.state.day_start_equity == 10_000
    assert (first_good.state.day_start, first_good.state.day_start_equity) == (reset_today, 9_000)
    assert later.state.day_start_equity == 9_000


def test_peak_follows_the_highest_equity_seen():
    gaining = [snapshot(10_500, [position(BTC, unrealized_pnl=500)]), snapshot(11_000, [position(BTC, unrealized_pnl=1_000)]), snapshot(10_450)]

    results = run(policy(drawdown={}), gaining)

    assert [result.state.peak_equity for result in results] == [10_500, 11_000, 11_000]
    assert reading(results[-1], "drawdown").value == pytest.approx(0.05)


# --- alerts ----------------------------------------------------------------------------

NEAR = snapshot(9_100)  # 9 % drawdown: warning at 8 %, limit 10 %
CLEAR = snapshot(10_000)


def test_the_same_warning_is_alerted_at_most_once_per_cooldown():
    rules = policy(drawdown={}, alert_cooldown=timedelta(minutes=15))
    current, warnings = watched_state(), []
    for minute, read in [(0, NEAR), (1, CLEAR), (5, NEAR), (10, CLEAR), (16, NEAR)]:
        result = step(current, read, rules, NOW + timedelta(minutes=minute))
        current = result.state
        warnings.append((len(events_of(result, "warning")), len([a for a in result.alerts if a.key == "warning:drawdown"])))

    assert warnings == [(1, 1), (0, 0), (1, 0), (0, 0), (1, 1)]


@pytest.mark.parametrize(
    ("kind", "subject", "stored"),
    [
        (EventKind.BREACH, "position_loss:BTC/USDT:USDT", "breach:position_loss:BTC/USDT:USDT"),
        (EventKind.STATE_CHANGE, "halted", "state:halted"),
        (EventKind.ACTION_UNCONFIRMED, "flatten", "unconfirmed:flatten"),
        (EventKind.CREDENTIALS_REFUSED, "", "auth"),
        (EventKind.COMMAND, "", "command"),
    ],
)
def test_alert_keys_keep_the_form_their_cooldowns_are_stored_under_and_read_back_to_their_kind(kind, subject, stored):
    assert alert_key(kind, subject) == stored
    assert alert_kind(stored) is kind
    assert alert_kind("something:else") is None


@pytest.mark.parametrize(("after", "announced"), [(timedelta(minutes=15), 1), (timedelta(minutes=15) - timedelta(microseconds=1), 0)])
def test_a_condition_is_announced_again_exactly_when_its_cooldown_has_passed(after, announced):
    rules = policy(drawdown={}, alert_cooldown=timedelta(minutes=15))
    warned = step(watched_state(), NEAR, rules, NOW)
    cleared = step(warned.state, CLEAR, rules, NOW + timedelta(minutes=1))

    again = step(cleared.state, NEAR, rules, NOW + after)

    assert [alert.key for alert in again.alerts] == ["warning:drawdown"] * announced


def test_a_clear_is_one_event_and_one_info_alert():
    warned, cleared, still_clear = run(policy(drawdown={}), [NEAR, CLEAR, CLEAR])

    assert kinds(cleared) == ["clear"]
    assert [(alert.severity, alert.key) for alert in cleared.alerts] == [(Severity.INFO, "clear:drawdown")]
    assert still_clear.events == () and still_clear.alerts == ()


# --- purity ----------------------------------------------------------------------------


def inputs() -> tuple[AccountState, Snapshot]:
    state = watched_state(
        statuses={"drawdown": Status.WARNING},
        streaks={"drawdown": 1},
        last_alerts={"warning:drawdown": NOW - HOUR},
        latches={"leverage": latch("leverage", state=REDUCING, resume="1h")},
        trading_state=REDUCING,
    )
    return state, losing(orders=[order("o1")])


def test_step_gives_equal_results_for_equal_inputs_and_leaves_them_unchanged():
    state, read = inputs()
    rules = policy()

    first = step(state, read, rules, NOW)
    second = step(state, read, rules, NOW)

    assert first == second
    assert first.actions  # the case decides something
    assert (state, read) == inputs()


def test_apply_command_leaves_its_inputs_unchanged():
    state, read = inputs()

    apply_command(state, command("flatten"), read, policy(), NOW)

    assert (state, read) == inputs()


# --- credentials -----------------------------------------------------------------------


def test_refused_credentials_are_a_critical_alert_at_once_and_once_per_cooldown():
    refused = Snapshot("main", NOW, error="the exchange refused the credentials", error_kind=ReadFailure.AUTH)
    first = step(watched_state(), refused, policy(), NOW)
    again = step(first.state, refused, policy(), NOW + timedelta(seconds=10))

    assert [(alert.severity, alert.key) for alert in first.alerts] == [(Severity.CRITICAL, "auth")]
    assert "credentials_refused" in kinds(first)
    assert again.alerts == () and first.actions == again.actions == ()


def test_a_breach_seen_after_a_warning_is_recorded_before_it_is_confirmed():
    near, past = snapshot(9_150), snapshot(8_900)  # drawdown 8.5 % (warning), then 11 %

    results = run(policy(drawdown={}), [snapshot(10_000), near, past, past])
    assert kinds(results[1]) == ["warning"]
    assert kinds(results[2]) == ["warning"] and "breach seen" in results[2].events[0].message
    assert "breach" in kinds(results[3])
