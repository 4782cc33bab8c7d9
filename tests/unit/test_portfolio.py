"""The portfolio, pure: accounts summed in one currency, judged, and imposed on every account."""

from __future__ import annotations

from datetime import timedelta

import pytest

from riskd import portfolio
from riskd.breakers import BREAKERS, Context
from riskd.domain import ActionKind, CommandKind, EventKind, Status, TradingState
from riskd.engine import IMPOSED_LATCH, Policy, apply_command, impose, step

from tests.factories import NOW, command, latch, order, policy, position, snapshot, state, watched_state

BTC, ETH = "BTC/USDT:USDT", "ETH/USDC:USDC"
VENUES = {"alpha": "binanceusdm", "beta": "bybit"}
RATES = {"USDT": 1.0, "USDC": 0.999}


def reads(alpha_equity=10_000.0, beta_equity=5_000.0, **overrides):
    values = {
        "alpha": snapshot(alpha_equity, [position(BTC, notional=20_000, unrealized_pnl=-100)], account="alpha"),
        "beta": snapshot(beta_equity, [position(ETH, notional=4_000)], account="beta", quote="USDC"),
    }
    return {**values, **overrides}


def test_the_portfolio_sums_equity_and_positions_across_currencies_at_their_rates():
    combined = portfolio.combine(reads(), VENUES, RATES, "USDT", NOW)
    assert combined.ok and combined.quote == "USDT"
    assert combined.equity == pytest.approx(10_000 + 5_000 * 0.999)
    assert combined.gross_notional == pytest.approx(20_000 + 4_000 * 0.999)
    assert [p.symbol for p in combined.positions] == [f"binanceusdm alpha {BTC}", f"bybit beta {ETH}"]
    assert combined.positions[0].unrealized_pnl == -100


def test_one_account_without_a_good_read_leaves_the_sum_unknown_never_smaller():
    combined = portfolio.combine(reads(beta=snapshot(None, error="timed out")), VENUES, RATES, "USDT", NOW)
    assert not combined.ok and combined.error == "no good read of beta to sum"
    assert portfolio.combine(reads(alpha=None), VENUES, RATES, "USDT", NOW).error == "no good read of alpha to sum"


def judge(name: str, combined, **fields):
    config = BREAKERS[name].config.model_validate(fields)
    return BREAKERS[name].evaluate(Context("portfolio", state("portfolio"), NOW, combined), config)


def test_gross_exposure_is_the_summed_notional_over_the_summed_equity_or_an_amount():
    combined = portfolio.combine(reads(), VENUES, {"USDT": 1.0, "USDC": 1.0}, "USDT", NOW)
    (share,) = judge("gross_exposure", combined, limit="1.5x")
    assert (share.status, share.value) == (Status.BREACHED, pytest.approx(24_000 / 15_000))
    (amount,) = judge("gross_exposure", combined, limit="40000 USDT")
    assert (amount.status, amount.value, amount.currency) == (Status.OK, 24_000, "USDT")


def test_exchange_exposure_reads_each_venue_on_its_own():
    combined = portfolio.combine(reads(), VENUES, {"USDT": 1.0, "USDC": 1.0}, "USDT", NOW)
    readings = judge("exchange_exposure", combined, limit="1x")
    assert [(r.symbol, r.status, r.value) for r in readings] == [
        ("binanceusdm", Status.BREACHED, pytest.approx(20_000 / 15_000)),
        ("bybit", Status.OK, pytest.approx(4_000 / 15_000)),
    ]
    assert readings[0].reason.startswith("exposure on binanceusdm 1.33x is past the limit of 1.00x")


def test_a_portfolio_drawdown_across_two_accounts_trips_where_neither_alone_would():
    rules = Policy({"drawdown": BREAKERS["drawdown"].config.model_validate({"limit": "10%", "confirm": 1})}, enforces=False)
    before = watched_state(15_000.0, account="portfolio")
    # alpha loses 1,000 and beta 700: 6.7 % and 14 % alone, 11.3 % of the 15,000 together
    combined = portfolio.combine(reads(9_000.0, 4_300.0), VENUES, {"USDT": 1.0, "USDC": 1.0}, "USDT", NOW)
    result = step(before, combined, rules, NOW)
    assert result.state.trading_state is TradingState.HALTED
    assert [action.kind for action in result.actions] == [ActionKind.FLATTEN]
    assert all(portfolio.acts_on_accounts(action) for action in result.actions)
    flattened = portfolio.for_account(result.actions[0], "beta")
    assert (flattened.account, flattened.kind, flattened.symbol) == ("beta", ActionKind.FLATTEN, None)


def test_the_portfolio_enforces_nothing_itself_every_account_does():
    rules = Policy({}, enforces=False)
    halted = watched_state(15_000.0, account="portfolio", latches={"drawdown": latch()}, trading_state=TradingState.HALTED)
    combined = portfolio.combine(reads(), VENUES, RATES, "USDT", NOW)
    assert step(halted, combined, rules, NOW).actions == ()


def test_a_halted_portfolio_halts_every_account_and_lets_go_when_it_does():
    halted = watched_state(account="portfolio", trading_state=TradingState.HALTED, since=NOW, reason="drawdown 12% is past 10%")
    imposed = portfolio.imposed(halted)
    assert (imposed.breaker, imposed.state, imposed.reason) == ("portfolio", TradingState.HALTED, "portfolio: drawdown 12% is past 10%")
    account = watched_state()
    held = step(impose(account, imposed), snapshot(orders=[order("1")]), policy(drawdown={}), NOW)
    assert held.state.trading_state is TradingState.HALTED
    assert [(a.kind, a.order_ids) for a in held.actions] == [(ActionKind.CANCEL_ORDERS, ("1",))]  # enforced by the account
    later = step(held.state, snapshot(), policy(drawdown={}), NOW + timedelta(hours=2))
    assert later.state.trading_state is TradingState.HALTED  # no resume policy of the account's lets it go
    free = step(impose(later.state, portfolio.imposed(watched_state(account="portfolio"))), snapshot(), policy(drawdown={}), NOW + timedelta(hours=2))
    assert free.state.trading_state is TradingState.ACTIVE and "portfolio" not in free.state.latches


def held_by_the_portfolio(*own):
    """An account at 9,000 (peak 10,000) that a halted portfolio holds, with `own` latches of its own."""
    halted = watched_state(account="portfolio", trading_state=TradingState.HALTED, since=NOW, reason="drawdown 12% is past 10%")
    account = watched_state(9_000.0, peak_equity=10_000.0, day_start_equity=10_000.0, latches={l.breaker: l for l in own})
    return step(impose(account, portfolio.imposed(halted)), snapshot(9_000.0), policy(drawdown={}), NOW).state


def test_resuming_an_account_the_portfolio_holds_changes_nothing_of_it():
    held = held_by_the_portfolio()
    assert held.trading_state is TradingState.HALTED and set(held.latches) == {IMPOSED_LATCH}
    result = apply_command(held, command(CommandKind.RESUME), None, policy(drawdown={}), NOW + timedelta(minutes=1))
    assert result.state == held  # still halted, its peak and day start not rebased, no resume to announce
    assert [event.kind for event in result.events] == [EventKind.COMMAND]
    assert result.alerts == ()


def test_resuming_an_account_releases_its_own_latches_and_keeps_the_portfolios():
    held = held_by_the_portfolio(latch("drawdown"))
    assert set(held.latches) == {"drawdown", IMPOSED_LATCH}
    result = apply_command(held, command(CommandKind.RESUME), None, policy(drawdown={}), NOW + timedelta(minutes=1))
    assert set(result.state.latches) == {IMPOSED_LATCH}
    assert result.state.trading_state is TradingState.HALTED
    assert result.state.peak_equity == 9_000.0  # its own losses accepted, as a resume does
    assert EventKind.STATE_CHANGE not in [event.kind for event in result.events]
