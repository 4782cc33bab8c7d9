"""The executor against the embedded exchange when replies go missing or the account moves.

The promise: an order whose reply was lost is not sent again before the account has
been re-read, so a retry can never double a close; what could not be confirmed is said.
Every test runs in each dialect the simulator speaks (Binance USDⓈ-M and Bybit v5).
"""

from __future__ import annotations

import ccxt.async_support as ccxt

from riskd.domain import Action, ActionKind

from .conftest import BTC, DIALECTS, MARKETS, open_positions, orders_sent, tick

POSITIONS = {"binanceusdm": "/fapi/v3/positionRisk", "bybit": "/v5/position/list"}
"""Where each dialect's positions are read: the re-read after an order."""


def flatten() -> Action:
    return Action(ActionKind.FLATTEN, "main", "test: flatten")


async def watching(started, configure, clock, venue):
    """A live daemon that has read the account once, and what it read."""
    daemon = await started(configure(live=True, market=MARKETS[venue]), clock)
    await tick(daemon, clock)
    return daemon, daemon.guards["main"].last_snapshot


async def test_orders_whose_replies_are_lost_are_verified_not_sent_again(configure, exchange, clock, started, venue):
    sim = exchange.simulator
    daemon, snapshot = await watching(started, configure, clock, venue)
    sim.add_fault("http_503", count=3, path=DIALECTS[venue][0], body="unknown")  # executed, then unanswered

    outcome = await daemon.guards["main"].executor.execute(flatten(), snapshot)

    assert outcome.done
    assert open_positions(sim) == {}
    assert len(orders_sent(sim, venue)) == 3  # one per position, none repeated
    failed = [a for a in daemon.store.actions("main", 50) if a.kind == "order"]
    assert all(a.status == "failed" and a.error for a in failed)


async def test_nothing_is_resent_while_the_account_cannot_be_re_read(configure, exchange, clock, started, venue):
    sim = exchange.simulator
    daemon, snapshot = await watching(started, configure, clock, venue)
    sim.add_fault("http_503", count=3, path=DIALECTS[venue][0], body="unknown")
    sim.add_fault("http_503", count=1, path=POSITIONS[venue])  # the first re-read fails

    outcome = await daemon.guards["main"].executor.execute(flatten(), snapshot)

    assert outcome.done and open_positions(sim) == {}
    assert len(orders_sent(sim, venue)) == 3


async def test_a_position_closed_by_someone_else_meanwhile_is_not_an_error(configure, exchange, clock, started, venue):
    sim = exchange.simulator
    daemon, snapshot = await watching(started, configure, clock, venue)
    sim.place_order(BTC, "SELL", "0.15", "MARKET", reduce_only=True)  # the bot closes BTC first

    outcome = await daemon.guards["main"].executor.execute(flatten(), snapshot)

    assert outcome.done and open_positions(sim) == {}


async def test_what_stays_open_after_every_attempt_is_an_emergency(configure, exchange, clock, started, venue):
    sim = exchange.simulator
    daemon, snapshot = await watching(started, configure, clock, venue)
    sim.add_fault("http_503", path=DIALECTS[venue][0])  # every order refused, for good

    outcome = await daemon.guards["main"].executor.execute(flatten(), snapshot)

    assert not outcome.done and "still open" in outcome.detail
    events = [e for e in daemon.store.events("main", 50) if e.kind == "action_unconfirmed"]
    assert events and events[0].severity == "emergency"
    assert any(a.severity == "emergency" and "Could not confirm" in a.text for a in daemon.store.alerts())


async def test_a_failure_inside_riskd_while_acting_is_recorded_and_announced(configure, exchange, clock, started, monkeypatch, venue):
    daemon, snapshot = await watching(started, configure, clock, venue)

    def unknown(symbol, amount):
        raise ccxt.BadSymbol(f"{venue} does not have market symbol {symbol}")

    monkeypatch.setattr(daemon.guards["main"].adapter, "round_amount", unknown)
    outcome = await daemon.guards["main"].executor.execute(flatten(), snapshot)

    assert not outcome.done and "does not have market symbol" in outcome.detail
    row = next(a for a in daemon.store.actions("main", 50) if a.kind == "flatten")
    assert row.status == "unconfirmed"
    assert any(a.severity == "emergency" for a in daemon.store.alerts())
