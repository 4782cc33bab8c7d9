"""The pre-trade check with plain values: the engine's rules asked beforehand, and the room left."""

from __future__ import annotations

import pytest

from riskd.breakers import BREAKERS
from riskd.domain import Side, Status, TradingState
from riskd.pretrade import Intent, check
from tests.factories import context, order, position, snapshot

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
LIMITS = {"leverage": 3.0, "concentration": 2.0}
ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED


def account(**fields):
    """Equity 10,000 USDT, long 0.2 BTC at 50,000 (10,000 notional) and short 5 ETH at 2,000 (10,000)."""
    positions = [
        position(BTC, notional=10_000, contracts=0.2, mark_price=50_000),
        position(ETH, side=Side.SHORT, notional=10_000, contracts=5, mark_price=2_000),
    ]
    return snapshot(10_000, positions, **fields)


def rooms(verdict) -> dict:
    return {room.limit: room for room in verdict.rooms}


def test_an_order_within_every_limit_is_allowed_with_the_room_left():
    verdict = check(Intent(BTC, "buy", 0.1), ACTIVE, "", account(), LIMITS)
    assert verdict.allowed and verdict.reason == "allowed: within every limit"
    assert verdict.notional == pytest.approx(5_000)  # priced at the position's mark
    leverage, concentration = rooms(verdict)["leverage"], rooms(verdict)["concentration"]
    assert (leverage.value, leverage.after, leverage.maximum) == pytest.approx((2.0, 2.5, 3.0))
    assert leverage.room == pytest.approx(5_000) and leverage.unit == "USDT"  # 30,000 allowed, 25,000 after
    assert (concentration.value, concentration.after) == pytest.approx((1.0, 1.5))
    assert concentration.room == pytest.approx(5_000)  # 20,000 allowed for BTC, 15,000 after


def test_an_order_over_leverage_is_refused_and_says_by_how_much():
    verdict = check(Intent(BTC, "buy", 0.3, price=50_000), ACTIVE, "", account(), {"leverage": 3.0})
    assert not verdict.allowed
    assert verdict.reason == "refused: leverage would be 3.50x, past the limit of 3.00x"
    assert rooms(verdict)["leverage"].room == pytest.approx(-5_000)


def test_a_leverage_limit_written_in_money_is_judged_on_the_gross_notional_itself():
    verdict = check(Intent(BTC, "buy", 0.3, price=50_000), ACTIVE, "", account(), {"leverage": 30_000.0}, money=frozenset({"leverage"}))
    leverage = rooms(verdict)["leverage"]
    assert (leverage.value, leverage.after, leverage.maximum, leverage.room) == pytest.approx((20_000, 35_000, 30_000, -5_000))
    assert verdict.reason == "refused: leverage would be 35,000.00 USDT, past the limit of 30,000.00 USDT"


def test_an_order_that_ends_exactly_at_a_limit_is_refused_as_the_breaker_would_trip():
    verdict = check(Intent(BTC, "buy", 0.2), ACTIVE, "", account(), {"leverage": 3.0})
    assert not verdict.allowed and rooms(verdict)["leverage"].room == pytest.approx(0.0)


def test_concentration_counts_the_symbol_the_order_is_for():
    verdict = check(Intent(ETH, "sell", 3), ACTIVE, "", account(), {"concentration": 1.5})
    assert verdict.reason == "refused: concentration would be 160.0%, past the limit of 150.0%"


def test_a_halted_account_refuses_an_entry_and_keeps_the_room_figures():
    verdict = check(Intent(BTC, "buy", 0.01), HALTED, "drawdown 11.8% is past the limit of 10.0%", account(), LIMITS)
    assert not verdict.allowed
    assert verdict.reason == (
        "refused: the account is halted (drawdown 11.8% is past the limit of 10.0%); only reduce-only orders stay"
    )
    assert rooms(verdict)["leverage"].room == pytest.approx(9_500)


def test_a_halted_account_refuses_even_a_plain_order_that_would_reduce_since_riskd_cancels_it():
    assert not check(Intent(BTC, "sell", 0.1), HALTED, "frozen", account(), LIMITS).allowed
    assert check(Intent(BTC, "sell", 0.1, reduce_only=True), HALTED, "frozen", account(), LIMITS).allowed


def test_a_reducing_account_allows_a_reduce_only_order_and_an_order_that_shrinks_a_position():
    reduce_only = check(Intent(BTC, "sell", 0.1, reduce_only=True), REDUCING, "leverage", account(), LIMITS)
    assert reduce_only.allowed and reduce_only.reason == "allowed: the order does not add exposure"
    assert rooms(reduce_only)["leverage"].after == pytest.approx(1.5)
    assert check(Intent(ETH, "buy", 2), REDUCING, "leverage", account(), LIMITS).allowed


def test_a_reducing_account_refuses_what_would_add_exposure_or_flip_a_position():
    grow = check(Intent(BTC, "buy", 0.01), REDUCING, "leverage 5.2x is past the limit", account(), LIMITS)
    assert grow.reason == (
        "refused: the account is reducing (leverage 5.2x is past the limit); orders that add exposure are cancelled"
    )
    assert not check(Intent(BTC, "sell", 0.3), REDUCING, "leverage", account(), LIMITS).allowed  # flips to short


def test_a_reduce_only_order_that_cannot_reduce_is_refused():
    same_way = check(Intent(BTC, "buy", 0.1, reduce_only=True), ACTIVE, "", account(), LIMITS)
    assert same_way.reason == f"refused: a reduce-only buy cannot reduce a long {BTC} position"
    nothing = check(Intent("SOL/USDT:USDT", "sell", 1, reduce_only=True), ACTIVE, "", account(), LIMITS)
    assert nothing.reason == "refused: a reduce-only order has nothing to reduce, there is no SOL/USDT:USDT position"


def test_a_reduce_only_order_larger_than_the_position_counts_as_closing_it():
    verdict = check(Intent(BTC, "sell", 1.0, reduce_only=True), ACTIVE, "", account(), LIMITS)
    assert verdict.allowed and rooms(verdict)["leverage"].after == pytest.approx(1.0)


def test_without_a_recent_read_only_reduce_only_orders_are_allowed():
    problem = "no good read of the account for 45s"
    refused = check(Intent(BTC, "buy", 0.01), ACTIVE, "", account(), LIMITS, problem=problem)
    assert refused.reason == f"refused: riskd cannot guard what it cannot see ({problem})"
    assert check(Intent(BTC, "sell", 0.01, reduce_only=True), ACTIVE, "", None, LIMITS).allowed
    assert not check(Intent(BTC, "buy", 0.01), ACTIVE, "", snapshot(None, error="timeout"), LIMITS).allowed


def test_a_new_symbol_needs_a_price():
    verdict = check(Intent("SOL/USDT:USDT", "buy", 1), ACTIVE, "", account(), LIMITS)
    assert verdict.reason == "refused: give a price; riskd holds no SOL/USDT:USDT position to price the order from"
    priced = check(Intent("SOL/USDT:USDT", "buy", 10, price=100), ACTIVE, "", account(), LIMITS)
    assert priced.allowed and rooms(priced)["leverage"].after == pytest.approx(2.1)


def test_position_size_and_open_orders_limits_when_the_account_has_them():
    limits = {"position_size": 12_000.0, "open_orders": 3}
    verdict = check(Intent(BTC, "buy", 0.01), ACTIVE, "", account(orders=[order("1", BTC)]), limits)
    assert verdict.allowed
    size, count = rooms(verdict)["position_size"], rooms(verdict)["open_orders"]
    assert (size.value, size.after, size.room) == pytest.approx((10_000, 10_500, 1_500))
    assert (count.value, count.after, count.room, count.unit) == (1, 2, 1, "orders")


def test_an_order_over_position_size_or_open_orders_is_refused_with_both_reasons():
    limits = {"position_size": 12_000.0, "open_orders": 3}
    full = account(orders=[order("1", BTC), order("2", ETH), order("3", ETH)])
    verdict = check(Intent(BTC, "buy", 0.05), ACTIVE, "", full, limits)
    assert not verdict.allowed
    assert verdict.reason == (
        "refused: position_size would be 12,500.00 USDT, past the limit of 12,000.00 USDT; "
        "open_orders would be 4, past the limit of 3"
    )


def test_any_exposure_on_negative_equity_is_refused():
    verdict = check(Intent(BTC, "buy", 0.01), ACTIVE, "", snapshot(-50, [position(BTC, mark_price=50_000)]), LIMITS)
    assert verdict.reason == "refused: equity is -50.00 USDT, so any exposure is past every limit"


@pytest.mark.parametrize(("resting", "allowed"), [(19, True), (20, False)])
def test_open_orders_are_refused_exactly_where_the_breaker_would_trip(resting, allowed):
    """At most N: the order that makes the Nth is allowed, the one past it refused, as the breaker judges."""
    orders = [order(str(number), BTC) for number in range(resting)]
    verdict = check(Intent(BTC, "buy", 0.01), ACTIVE, "", account(orders=orders), {"open_orders": 20})
    assert verdict.allowed is allowed
    assert rooms(verdict)["open_orders"].room == 20 - resting - 1
    breaker = BREAKERS["open_orders"]
    placed = account(orders=[*orders, order("new", BTC)])
    reading = breaker.evaluate(context(placed), breaker.config(limit=20))[0]
    assert (reading.status is Status.BREACHED) is not allowed


def hedged(long: float, short: float, equity: float):
    """A hedge-mode account holding `long` and `short` BTC at 60,000 on its two sides."""
    positions = [
        position(BTC, notional=long * 60_000, contracts=long, mark_price=60_000, position_side="LONG"),
        position(BTC, side=Side.SHORT, notional=short * 60_000, contracts=short, mark_price=60_000, position_side="SHORT"),
    ]
    return snapshot(equity, positions)


def test_in_hedge_mode_an_order_adds_to_its_own_side_and_is_not_netted_against_the_other():
    account = hedged(1, 1, 25_000)  # 120,000 gross on 25,000 equity: 4.8x
    for intent in (Intent(BTC, "buy", 0.5), Intent(BTC, "buy", 0.5, position_side="long")):
        verdict = check(intent, ACTIVE, "", account, {"leverage": 5.0, "concentration": 2.0})
        assert not verdict.allowed
        leverage, concentration = rooms(verdict)["leverage"], rooms(verdict)["concentration"]
        assert (leverage.value, leverage.after) == pytest.approx((4.8, 6.0))
        assert (concentration.value, concentration.after) == pytest.approx((2.4, 3.6))  # the long side alone
        assert verdict.reason.startswith("refused: leverage would be 6.00x, past the limit of 5.00x")
    short = check(Intent(BTC, "sell", 0.5, position_side="short"), ACTIVE, "", account, {"leverage": 5.0})
    assert rooms(short)["leverage"].after == pytest.approx(6.0) and not short.allowed


def test_in_hedge_mode_an_order_that_closes_a_side_is_reduce_only():
    account = hedged(1, 1, 25_000)
    closing = check(Intent(BTC, "buy", 0.5, position_side="short"), HALTED, "frozen", account, {"leverage": 5.0})
    assert closing.allowed and closing.reason == "allowed: the order does not add exposure"
    assert rooms(closing)["leverage"].after == pytest.approx(3.6)  # 90,000 of 25,000
    cut = check(Intent(BTC, "sell", 3, position_side="long"), ACTIVE, "", account, {"leverage": 5.0})
    assert cut.allowed and rooms(cut)["leverage"].after == pytest.approx(2.4)  # closes the long side, opens nothing
    nothing = check(Intent(BTC, "sell", 1, position_side="long"), ACTIVE, "", hedged(0, 1, 25_000), {"leverage": 5.0})
    assert nothing.reason == f"refused: the order closes the long side, and there is no long {BTC} position"
