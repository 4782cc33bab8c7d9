"""Limits the way traders write them: ladders of levels, limits in money, and the
runaway-bot guards (open orders, orders per minute, positions, position and order size)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import yaml
from pydantic import ValidationError

from riskd import commands

from riskd.breakers import BREAKERS, Context
from riskd.config import load_settings
from riskd.domain import (
    ActionKind,
    ClosedTrade,
    CommandKind,
    EventKind,
    LimitOverride,
    OverrideInForce,
    Reading,
    Remedy,
    Status,
    TradeHistory,
    TradingState,
)
from riskd.engine import apply_command, overridden, step

from tests.factories import NOW, command, configure, context, only, order, policy, position, snapshot, state, watched_state

ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
TICK = timedelta(seconds=10)
LADDER = {"levels": [{"limit": "5%", "action": "reduce", "reduce_by": "50%"}, {"limit": "10%", "action": "flatten"}]}




def refusal(name: str, **fields) -> str:
    with pytest.raises(ValidationError) as raised:
        configure(name, **fields)
    return str(raised.value)


def run(rules, equities_or_snapshots, current=None, start=NOW):
    """Ticks 10 s apart from `current` (an account watched at 10,000); returns every result."""
    current, results = current or watched_state(), []
    for number, read in enumerate(equities_or_snapshots):
        read = read if not isinstance(read, (int, float)) else snapshot(read, [position(BTC, contracts=0.1, notional=5_000)])
        results.append(step(current, read, rules, start + number * TICK))
        current = results[-1].state
    return results


def kinds(result):
    return [action.kind for action in result.actions]


# Limits in money ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, inputs, at_limit",
    [
        ("drawdown", lambda loss: context(snapshot(10_000 - loss), state(peak_equity=10_000)), 500),
        ("daily_loss", lambda loss: context(snapshot(10_000 - loss), state(day_start_equity=10_000)), 500),
        ("position_loss", lambda loss: context(snapshot(10_000, [position(unrealized_pnl=-loss)])), 500),
        ("leverage", lambda size: context(snapshot(10_000, [position(notional=size)])), 500),
        ("concentration", lambda size: context(snapshot(10_000, [position(notional=size)])), 500),
    ],
)
def test_a_limit_in_money_is_judged_as_an_amount_not_a_share(name, inputs, at_limit):
    config = configure(name, limit="500 USDT")
    assert (config.limit, config.currency, config.warning_level) == (500.0, "USDT", 400.0)
    reading = only(BREAKERS[name].evaluate(inputs(at_limit), config))
    assert (reading.status, reading.value, reading.currency) == (Status.BREACHED, 500.0, "USDT")
    assert "500.00 USDT" in reading.reason
    assert only(BREAKERS[name].evaluate(inputs(at_limit - 1), config)).status is Status.WARNING
    assert only(BREAKERS[name].evaluate(inputs(399), config)).status is Status.OK


def test_the_same_loss_breaches_a_money_limit_and_not_a_percentage_one():
    # 600 lost from a 100,000 peak: 0.6 %, far inside 10 %, but past 500 USDT
    inputs = context(snapshot(99_400), state(peak_equity=100_000))
    assert only(BREAKERS["drawdown"].evaluate(inputs, configure("drawdown", limit="10%"))).status is Status.OK
    assert only(BREAKERS["drawdown"].evaluate(inputs, configure("drawdown", limit="500 USDT"))).status is Status.BREACHED


def test_money_is_read_with_thousands_separators_and_any_case():
    config = configure("daily_loss", limit="1,500.50 usdt", warn_at="1000 USDT")
    assert (config.limit, config.currency, config.warning_level) == (1500.5, "USDT", 1000.0)


@pytest.mark.parametrize(
    "name, fields, words",
    [
        ("drawdown", {"limit": "500 USDT", "warn_at": "4%"}, "warn_at: write it in USDT like the limit"),
        ("drawdown", {"limit": "500 USDT", "warn_at": "400 USDC"}, "warn_at: write it in USDT"),
        ("drawdown", {"limit": "10%", "warn_at": "400 USDT"}, "warn_at: an amount of money needs the limit in money too"),
        ("drawdown", {"limit": "500 USDT", "warn_at": "600 USDT"}, "warn_at must come before the limit"),
        ("liquidation_distance", {"limit": "500 USDT"}, "is an amount of money, but this breaker's limit is not"),
        ("stale_data", {"limit": "500 USDT"}, "is an amount of money, but this breaker's limit is not"),
        ("drawdown", {"limit": "0 USDT"}, "an amount of money must be above zero"),
        ("order_size", {"limit": "10%"}, "expected an amount of money in the account's quote currency"),
        ("position_size", {}, "limit"),
    ],
)
def test_a_money_limit_written_wrongly_is_refused_in_words(name, fields, words):
    assert words in refusal(name, **fields)


# Ladders -------------------------------------------------------------------------------------


def test_a_ladder_is_its_levels_each_with_the_breakers_other_settings():
    first, second = configure("drawdown", confirm=1, resume="1h", **LADDER).ladder()
    assert (first.limit, first.action, first.reduce_by, first.confirm) == (0.05, Remedy.REDUCE, 0.5, 1)
    assert (second.limit, second.action, second.confirm, second.resume) == (0.10, Remedy.FLATTEN, 1, timedelta(hours=1))
    assert first.warning_level == pytest.approx(0.04)  # warnings come before the first level
    assert second.warning_level == 0.10  # and not before the later ones


def test_without_levels_a_breaker_is_its_own_one_level_ladder():
    config = configure("drawdown", limit="8%")
    assert config.ladder() == (config,)


def test_a_ladder_may_mix_a_percentage_and_an_amount_of_money():
    first, second = configure("daily_loss", levels=[{"limit": "2%"}, {"limit": "500 USDT", "action": "flatten"}]).ladder()
    assert (first.currency, second.currency, second.limit) == (None, "USDT", 500.0)


@pytest.mark.parametrize(
    "levels, words",
    [
        ([{"limit": "10%"}, {"limit": "5%"}], "level 2's limit must be past level 1's"),
        ([{"limit": "5%"}, {"action": "halt"}], "level 2 needs a limit"),
        ([{"limit": "5%"}, {"limit": "10%", "action": "explode"}], "level 2: action"),
        ([{"limit": "5%"}, {"limit": "10%", "levels": [{"limit": "20%"}]}], "cannot have levels of its own"),
        (["5%", "10%"], "expected a list of levels, each like {limit: 10%, action: halt}"),
    ],
)
def test_a_ladder_written_wrongly_is_refused_in_words(levels, words):
    assert words in refusal("drawdown", levels=levels)


def test_for_liquidation_distance_a_ladder_climbs_towards_zero():
    first, second = configure("liquidation_distance", levels=[{"limit": "20%"}, {"limit": "10%"}]).ladder()
    assert (first.limit, second.limit) == (0.20, 0.10)
    assert "level 2's limit must be past level 1's" in refusal("liquidation_distance", levels=[{"limit": "10%"}, {"limit": "20%"}])


def test_each_level_acts_once_per_breach_in_the_order_it_is_reached():
    rules = policy(drawdown={**LADDER, "confirm": 1})
    results = run(rules, [9_400, 9_400, 9_400, 8_900, 8_900])
    assert kinds(results[0]) == [ActionKind.REDUCE]  # level 1 at 6 %
    assert results[0].state.trading_state is REDUCING
    assert all(kinds(result) == [] for result in results[1:3])  # the same breach: no second reduce
    assert kinds(results[3]) == [ActionKind.FLATTEN]  # level 2 at 11 %, and level 1 not again
    assert results[3].state.trading_state is HALTED
    assert set(results[3].state.latches) == {"drawdown", "drawdown.2"}
    breaches = [event.breaker for result in results for event in result.events if event.kind is EventKind.BREACH]
    assert breaches == ["drawdown", "drawdown.2"]


def test_a_jump_past_every_level_escalates_to_the_top_at_once():
    results = run(policy(drawdown={**LADDER, "confirm": 1}), [8_800])
    assert kinds(results[0]) == [ActionKind.FLATTEN]  # the reduce would only be undone by the flatten
    assert set(results[0].state.latches) == {"drawdown", "drawdown.2"}
    assert results[0].state.trading_state is HALTED


def test_warnings_come_before_the_first_level_only():
    results = run(policy(drawdown={**LADDER, "confirm": 1}), [9_550, 9_500, 9_150])
    warnings = [(event.breaker, result_number) for result_number, result in enumerate(results)
                for event in result.events if event.kind is EventKind.WARNING]
    assert warnings == [("drawdown", 0)]  # 4.5 % warns; 8.5 %, near level 2, does not warn again


def test_a_level_lets_go_by_its_own_resume_policy_and_the_account_steps_down_the_ladder():
    ladder = {"levels": [{"limit": "5%", "action": "reduce"}, {"limit": "10%", "action": "halt", "resume": "1h"}], "confirm": 1}
    rules = policy(drawdown=ladder)
    tripped = run(rules, [8_900])[-1]
    assert tripped.state.trading_state is HALTED
    recovered = run(rules, [9_300], tripped.state, start=NOW + TICK)[-1]  # 7 %: level 2 clear, level 1 still breached
    assert recovered.state.trading_state is HALTED  # level 2 holds for its hour
    later = run(rules, [9_300], recovered.state, start=NOW + timedelta(hours=1, seconds=20))[-1]
    assert later.state.trading_state is REDUCING  # level 2 released; level 1 (manual) holds
    assert set(later.state.latches) == {"drawdown"}
    assert [event.breaker for event in later.events if event.kind is EventKind.RELEASED] == ["drawdown.2"]


# Runaway-bot guards ------------------------------------------------------------------------


def orders(count: int, **fields):
    return [order(str(number), opened_at=NOW - timedelta(seconds=count - number), **fields) for number in range(1, count + 1)]


def test_open_orders_allows_the_limit_and_names_the_newest_beyond_it():
    config = configure("open_orders", limit=20)
    at_limit = only(BREAKERS["open_orders"].evaluate(context(snapshot(orders=orders(20))), config))
    assert (at_limit.status, at_limit.value, at_limit.order_ids) == (Status.WARNING, 20.0, ())
    over = only(BREAKERS["open_orders"].evaluate(context(snapshot(orders=orders(22))), config))
    assert (over.status, over.order_ids) == (Status.BREACHED, ("21", "22"))
    assert over.reason == "22 open orders is more than the limit of 20"


def test_open_orders_never_names_a_reduce_only_order_to_cancel():
    placed = orders(20) + [order("stop", reduce_only=True, opened_at=NOW)]
    reading = only(BREAKERS["open_orders"].evaluate(context(snapshot(orders=placed)), configure("open_orders", limit=20)))
    assert (reading.status, reading.order_ids) == (Status.BREACHED, ("20",))


def test_open_orders_names_every_cancellable_order_when_reduce_only_ones_fill_the_excess():
    placed = orders(2) + [order(f"stop{number}", reduce_only=True, opened_at=NOW) for number in range(4)]
    reading = only(BREAKERS["open_orders"].evaluate(context(snapshot(orders=placed)), configure("open_orders", limit=3)))
    assert (reading.status, reading.order_ids) == (Status.BREACHED, ("1", "2"))  # 3 too many, only 2 can be cancelled


def test_the_21st_order_is_cancelled_and_trading_goes_on():
    result = step(watched_state(), snapshot(orders=orders(21)), policy(open_orders={"limit": 20}), NOW)
    assert [(action.kind, action.order_ids) for action in result.actions] == [(ActionKind.CANCEL_ORDERS, ("21",))]
    assert result.state.trading_state is ACTIVE and not result.state.latches
    assert any("cancelling the 1 order(s) at fault; trading goes on" in alert.text for alert in result.alerts)


def test_the_21st_order_halts_the_account_when_configured_so():
    result = step(watched_state(), snapshot(orders=orders(21)), policy(open_orders={"limit": 20, "action": "halt"}), NOW)
    assert result.state.trading_state is HALTED
    assert [len(action.order_ids) for action in result.actions] == [21]


def test_cancel_is_refused_for_a_breaker_that_names_no_orders():
    assert "cancel applies to the orders a breaker names" in refusal("drawdown", action="cancel")


def test_positions_counts_open_positions():
    config = configure("positions", limit=2)
    held = [position(BTC), position(ETH), position("SOL/USDT:USDT")]
    assert only(BREAKERS["positions"].evaluate(context(snapshot(positions=held)), config)).status is Status.BREACHED
    assert only(BREAKERS["positions"].evaluate(context(snapshot(positions=held[:2])), config)).status is Status.WARNING


def test_position_size_judges_each_position_in_money():
    config = configure("position_size", limit="5000 USDT", action="close")
    readings = BREAKERS["position_size"].evaluate(context(snapshot(positions=[position(BTC, notional=6_000), position(ETH, notional=1_000)])), config)
    assert [(reading.symbol, reading.status) for reading in readings] == [(BTC, Status.BREACHED), (ETH, Status.OK)]
    assert "6,000.00 USDT is past the limit of 5,000.00 USDT" in readings[0].reason


def test_order_size_names_the_orders_over_the_limit_and_leaves_reduce_only_and_unpriced_ones():
    placed = [
        order("small", amount=0.01, price=60_000),  # 600
        order("big", amount=0.1, price=60_000),  # 6,000
        order("stop", amount=1, price=60_000, reduce_only=True),
        order("market", amount=5),
    ]
    reading = only(BREAKERS["order_size"].evaluate(context(snapshot(orders=placed)), configure("order_size", limit="2000 USDT")))
    assert (reading.status, reading.value, reading.order_ids) == (Status.BREACHED, 6_000.0, ("big",))


def test_an_order_over_the_size_limit_is_cancelled_not_the_account_halted():
    placed = [order("ok", amount=0.01, price=60_000), order("big", amount=0.1, price=60_000)]
    result = step(watched_state(), snapshot(orders=placed), policy(order_size={"limit": "2000 USDT"}), NOW)
    assert [(action.kind, action.order_ids) for action in result.actions] == [(ActionKind.CANCEL_ORDERS, ("big",))]
    assert result.state.trading_state is ACTIVE


def test_order_rate_counts_orders_that_appear_and_not_those_open_at_the_first_look():
    rules = policy(order_rate={"limit": 5})
    first = step(state(), snapshot(orders=orders(10)), rules, NOW)
    assert first.state.trading_state is ACTIVE  # ten open at the first look are not ten arrivals
    assert only([r for r in first.readings if r.breaker == "order_rate"]).value == 0
    current, results = first.state, []
    for number in range(6):  # one new order every 10 s
        placed = orders(10) + [order(f"new{index}") for index in range(number + 1)]
        results.append(step(current, snapshot(orders=placed), rules, NOW + (number + 1) * TICK))
        current = results[-1].state
    rates = [only([r for r in result.readings if r.breaker == "order_rate"]).value for result in results]
    assert rates == [1, 2, 3, 4, 5, 6]
    assert results[-1].state.trading_state is HALTED and results[-2].state.trading_state is ACTIVE


def test_order_rate_turned_on_for_an_account_riskd_knows_takes_its_open_orders_as_already_there():
    rules = policy(order_rate={"limit": 20})
    known = watched_state()  # riskd has read it for an hour, with order_rate not yet in force
    first = step(known, snapshot(orders=orders(30)), rules, NOW)
    assert first.state.trading_state is ACTIVE and first.actions == ()  # thirty resting orders, not thirty arrivals
    assert only([r for r in first.readings if r.breaker == "order_rate"]).value == 0
    after = step(first.state, snapshot(orders=orders(30) + [order("new")]), rules, NOW + TICK)
    assert only([r for r in after.readings if r.breaker == "order_rate"]).value == 1  # what appears next is counted


def test_order_rate_turned_off_and_on_again_looks_afresh():
    rules = policy(order_rate={"limit": 5})
    followed = step(watched_state(), snapshot(), rules, NOW).state
    assert followed.orders_followed_since == NOW
    unfollowed = step(followed, snapshot(orders=orders(10)), policy(), NOW + TICK).state
    assert (unfollowed.orders_followed_since, dict(unfollowed.orders_seen)) == (None, {})
    again = step(unfollowed, snapshot(orders=orders(10)), rules, NOW + 2 * TICK)
    assert again.state.trading_state is ACTIVE
    assert only([r for r in again.readings if r.breaker == "order_rate"]).value == 0


def test_order_rate_forgets_arrivals_older_than_a_minute():
    rules = policy(order_rate={"limit": 5})
    current = step(state(), snapshot(), rules, NOW).state
    current = step(current, snapshot(orders=[order("a"), order("b")]), rules, NOW + TICK).state
    gone = step(current, snapshot(), rules, NOW + 2 * TICK)
    assert only([r for r in gone.readings if r.breaker == "order_rate"]).value == 2  # filled, but seen arriving
    later = step(gone.state, snapshot(), rules, NOW + TICK + timedelta(minutes=1))
    assert only([r for r in later.readings if r.breaker == "order_rate"]).value == 0
    assert dict(later.state.orders_seen) == {}


# Temporary overrides (pure) ---------------------------------------------------------------


def in_force(breaker="daily_loss", limit="8%", hours=2, number=1, started=NOW):
    return OverrideInForce(number, "main", breaker, limit, started, started + timedelta(hours=hours), "alice via cli", "CPI")


def test_an_override_in_force_changes_its_limit_and_nothing_else():
    rules = policy(daily_loss={"resume": "1h"}, drawdown={})
    changed, ended = overridden(rules, [in_force()], NOW + timedelta(hours=1))
    assert ended == ()
    assert changed.breakers["daily_loss"].limit == pytest.approx(0.08)
    assert changed.breakers["daily_loss"].warning_level == pytest.approx(0.064)
    assert changed.breakers["daily_loss"].resume == timedelta(hours=1)
    assert changed.breakers["drawdown"] == rules.breakers["drawdown"]
    assert rules.breakers["daily_loss"].limit == pytest.approx(0.05)  # the policy itself is untouched


def test_an_override_that_has_run_out_is_returned_to_be_ended_and_changes_nothing():
    rules = policy(daily_loss={})
    changed, ended = overridden(rules, [in_force()], NOW + timedelta(hours=2))
    assert ended == (in_force(),)
    assert changed.breakers["daily_loss"].limit == pytest.approx(0.05)


def test_the_later_of_two_overrides_wins_and_a_breaker_no_longer_configured_is_left_alone():
    rules = policy(daily_loss={})
    overrides = [in_force(limit="6%", number=2), in_force(limit="8%", number=1), in_force("leverage", "3x", number=3)]
    changed, _ = overridden(rules, overrides, NOW)
    assert changed.breakers["daily_loss"].limit == pytest.approx(0.06)
    assert set(changed.breakers) == {"daily_loss"}


def test_an_override_may_set_a_limit_in_money_and_a_ladders_later_level_keeps_no_warning():
    rules = policy(drawdown=LADDER)
    changed, _ = overridden(rules, [in_force("drawdown.2", "900 USDT")], NOW)
    level = changed.breakers["drawdown.2"]
    assert (level.limit, level.currency, level.warning_level, level.action) == (900.0, "USDT", 900.0, Remedy.FLATTEN)


def test_a_limit_the_breaker_does_not_take_is_refused_in_words():
    with pytest.raises(ValueError, match="ambiguous"):
        configure("daily_loss").with_limit("8")
    with pytest.raises(ValueError, match="is an amount of money, but this breaker's limit is not"):
        configure("stale_data").with_limit("500 USDT")


def test_an_override_that_would_put_a_level_past_the_next_is_refused_in_words(tmp_path):
    document = {"accounts": {"main": {"exchange": "sim"}}, "database": "riskd.db", "breakers": {"drawdown": LADDER}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(document))
    settings = load_settings(tmp_path / "config.yaml")
    for breaker, limit, other in (("drawdown", "15%", "drawdown.2's 10.0%"), ("drawdown", "10%", "drawdown.2's 10.0%"),
                                  ("drawdown.2", "4%", "drawdown's 5.0%")):
        with pytest.raises(commands.Refusal, match="a ladder's levels trip in order") as refused:
            commands.overriding(settings, "main", LimitOverride(breaker, limit, timedelta(hours=2)))
        assert other in str(refused.value)
    assert commands.overriding(settings, "main", LimitOverride("drawdown", "8%", timedelta(hours=2))) == ("5.0%", "8.0%")
    assert commands.overriding(settings, "main", LimitOverride("drawdown.2", "900 USDT", timedelta(hours=2)))[1] == "900.00 USDT"


# Loss streak -------------------------------------------------------------------------------


def trades(*pnls: float, symbol: str = BTC, start=NOW - timedelta(hours=1)) -> TradeHistory:
    closed = tuple(ClosedTrade(str(n), symbol, pnl, start + timedelta(minutes=n)) for n, pnl in enumerate(pnls))
    return TradeHistory(closed, read_at=NOW)


def streak_of(history: TradeHistory | None, current=None, **fields) -> Reading:
    inputs = Context("main", current or state(), NOW, snapshot(), trades=history)
    return only(BREAKERS["loss_streak"].evaluate(inputs, configure("loss_streak", **fields)))


def test_loss_streak_counts_the_losses_since_the_last_win_and_trips_at_its_limit():
    assert (streak_of(trades(-5, 10, -1, -2)).status, streak_of(trades(-5, 10, -1, -2)).value) == (Status.WARNING, 2)
    reading = streak_of(trades(10, -1, -2, -3))
    assert (reading.status, reading.value, reading.reason) == (Status.BREACHED, 3, "3 losing trades in a row reaches the limit of 3")
    assert streak_of(trades(-1, -2, -3, 4)).status is Status.OK


def test_the_fills_of_one_closing_order_are_one_trade():
    fills = (ClosedTrade("1", BTC, -1, NOW), ClosedTrade("2", BTC, -2, NOW), ClosedTrade("3", ETH, -1, NOW))
    assert streak_of(TradeHistory(fills, read_at=NOW)).value == 2  # BTC's two fills, and ETH


def test_losses_before_a_halt_or_a_resume_no_longer_count():
    history = trades(-1, -2, -3, -4)
    since = NOW - timedelta(hours=1) + timedelta(minutes=2, seconds=30)
    assert streak_of(history, state(losses_counted_from=since)).value == 1


def test_without_a_read_of_the_trade_history_loss_streak_says_it_cannot_tell():
    assert streak_of(None).status is Status.NO_DATA
    failed = streak_of(TradeHistory(error="the exchange timed out"))
    assert (failed.status, failed.reason) == (Status.NO_DATA, "the trade history could not be read: the exchange timed out")


def test_a_trade_history_whose_reads_keep_failing_or_stopped_is_not_judged_as_current():
    history = trades(-1, -2, -3)
    failing = replace(history, read_at=NOW - timedelta(minutes=6), error="the exchange timed out")
    reading = streak_of(failing)
    assert (reading.status, reading.value) == (Status.NO_DATA, None)
    assert reading.reason == "the trade history was last read 6m ago; since then: the exchange timed out"
    assert streak_of(replace(history, read_at=NOW - timedelta(minutes=6))).status is Status.NO_DATA
    once = streak_of(replace(history, read_at=NOW - timedelta(minutes=2), error="the exchange timed out"))
    assert (once.status, once.value) == (Status.BREACHED, 3)  # one failed turn: the last good read still stands


def test_a_streak_that_halts_the_account_is_acted_on_once_and_a_resume_starts_it_afresh():
    rules = policy(loss_streak={"limit": 3, "resume": "1h"})
    tripped = step(watched_state(), snapshot(), rules, NOW, trades=trades(-1, -2, -3))
    assert tripped.state.trading_state is HALTED
    assert tripped.state.losses_counted_from == NOW
    after = step(tripped.state, snapshot(), rules, NOW + TICK, trades=trades(-1, -2, -3))
    assert only([r for r in after.readings if r.breaker == "loss_streak"]).value == 0
    assert after.actions == ()
    resumed = apply_command(after.state, command(CommandKind.RESUME), snapshot(), rules, NOW + 2 * TICK)
    assert resumed.state.losses_counted_from == NOW + 2 * TICK


def test_a_loss_streak_that_only_alerts_keeps_counting():
    rules = policy(loss_streak={"limit": 3, "action": "alert"})
    result = step(watched_state(), snapshot(), rules, NOW, trades=trades(-1, -2, -3))
    assert result.state.losses_counted_from is None
