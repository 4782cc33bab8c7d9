"""The guardian end to end: the daemon, the real ccxt client, the embedded exchange over HTTP.

The account here is configured as a real Binance USDⓈ-M account (`exchange:
binanceusdm`) or a real Bybit unified account (`exchange: bybit`) would be, credentials
from the environment, only its URLs pointed at a simulator this test owns; every test
runs in both dialects, with the account in one-way mode and in hedge mode. The daemon's clock is fake, so ticks are driven by hand and "a
minute" of trouble takes a few seconds.
"""

from __future__ import annotations

import logging

import pytest

from riskd import commands
from riskd.domain import AlertStatus, CommandKind, TradingState

from .conftest import BTC, DIALECTS, ETH, MARKETS, SOL, open_positions, orders_sent, reduce_only, tick

FILLED = {"binanceusdm": "closed", "bybit": None}
"""The status a market order's reply gives: Binance answers with the filled order,
Bybit's /v5/order/create with its ids only."""


@pytest.fixture(params=[False, True], ids=["one-way", "hedge"])
def hedge(request) -> bool:
    """Every guardian test runs with the account in one-way mode and in hedge mode."""
    return request.param


def market_order(entry: dict) -> bool:
    return entry["params"].get("type") == "MARKET" or entry["params"].get("orderType") == "Market"


def writes(sim) -> list[dict]:
    """Every API request that could change the account: orders and cancels, in either dialect."""
    return [entry for entry in sim.requests if entry["method"] in ("POST", "DELETE")]


async def test_a_crash_is_flattened_within_two_ticks_and_stays_halted_across_a_restart(configure, exchange, clock, started, venue, hedge):
    sim = exchange.simulator
    path = configure(live=True, market=MARKETS[venue])
    daemon = await started(path, clock)
    await tick(daemon, clock)
    peak = daemon.store.load_state("main").peak_equity
    assert sim.state()["openOrders"] and open_positions(sim)

    sim.move(-0.20)  # the crash: every price falls 20 %
    first = await tick(daemon, clock)
    assert first.actions == ()  # one breaching tick is not enough (confirm: 2)
    await tick(daemon, clock)

    assert open_positions(sim) == {}
    assert sim.state()["openOrders"] == []
    sent = orders_sent(sim, venue)
    assert sent and all(reduce_only(entry) for entry in sent)
    assert all(market_order(entry) for entry in sent)
    sides = {entry["params"].get("positionSide", entry["params"].get("positionIdx")) for entry in sent}
    assert sides <= ({"LONG", "SHORT", 1, 2} if hedge else {None, 0})  # the venue's own hedge-mode side
    state = daemon.store.load_state("main")
    assert state.trading_state is TradingState.HALTED
    assert "drawdown" in state.latches
    breaches = [e for e in daemon.store.events("main", 100) if e.kind == "breach"]
    assert any(e.breaker == "drawdown" for e in breaches)
    actions = daemon.store.actions("main", 100)
    assert any(a.kind == "flatten" and a.status == "done" for a in actions)
    assert {a.client_order_id for a in actions if a.kind == "order"} == {e["params"][DIALECTS[venue][2]] for e in sent}
    (flatten,) = [a for a in actions if a.kind == "flatten"]
    orders = [a for a in actions if a.parent_id == flatten.id]
    assert {a.kind for a in orders} == {"order", "cancel"}  # each order and cancel names its action
    assert {(a.status, a.exchange_status) for a in orders if a.kind == "order"} == {("done", FILLED[venue])}
    await started.stop(daemon)

    restarted = await started(path, clock)
    again = restarted.store.load_state("main")
    assert again.trading_state is TradingState.HALTED and again.peak_equity == peak

    ids = commands.submit(
        restarted.store, restarted.settings, CommandKind.RESUME, "main", "cli", "tester", clock()
    )
    await restarted.process_commands()
    assert restarted.store.command(ids[0]).status == "done"
    assert restarted.store.load_state("main").trading_state is TradingState.ACTIVE
    await tick(restarted, clock)
    await tick(restarted, clock)
    assert restarted.store.load_state("main").trading_state is TradingState.ACTIVE  # no re-trip on old losses


async def test_in_dry_run_nothing_reaches_the_exchange_and_every_order_is_recorded(configure, exchange, clock, started, venue):
    sim = exchange.simulator
    daemon = await started(configure(live=False, market=MARKETS[venue]), clock)
    await tick(daemon, clock)
    sim.move(-0.20)
    await tick(daemon, clock)
    await tick(daemon, clock)

    assert orders_sent(sim, venue) == []
    assert writes(sim) == []
    assert set(open_positions(sim)) == {BTC, ETH, SOL}
    assert daemon.store.load_state("main").trading_state is TradingState.HALTED
    would = [a for a in daemon.store.actions("main", 100) if a.kind == "order"]
    assert {a.symbol.removesuffix(":LONG").removesuffix(":SHORT") for a in would} >= {BTC, ETH, SOL}  # keys in hedge mode
    assert all(a.status == "dry_run" and a.dry_run == 1 and a.amount > 0 for a in would)
    alerts = [row.text for row in daemon.store.alerts()]
    assert any("DRY-RUN" in text and "flattening" in text for text in alerts)


async def test_without_telegram_alerts_go_to_the_log_with_their_account_in_front(configure, exchange, clock, started, caplog):
    daemon = await started(configure(live=False), clock)
    await tick(daemon, clock)
    exchange.simulator.move(-0.20)
    await tick(daemon, clock)
    await tick(daemon, clock)

    with caplog.at_level(logging.INFO, logger="riskd"):
        await daemon.deliver_alerts()

    logged = [record.getMessage() for record in caplog.records if record.getMessage().startswith("ALERT ")]
    assert any(line.startswith("ALERT [main] BREACH: drawdown") for line in logged)
    assert {row.status for row in daemon.store.alerts()} == {AlertStatus.LOGGED}


async def test_while_halted_someone_elses_orders_are_cancelled_and_new_exposure_closed(configure, exchange, clock, started, venue):
    sim = exchange.simulator
    daemon = await started(configure(live=True, market=MARKETS[venue]), clock)
    await tick(daemon, clock)
    commands.submit(daemon.store, daemon.settings, CommandKind.FREEZE, "main", "cli", "tester", clock(), reason="test")
    await daemon.process_commands()
    assert daemon.store.load_state("main").trading_state is TradingState.HALTED
    kept = sim.state()["openOrders"]
    assert kept and all(order["closes"] for order in kept)  # freezing cancels all but the take-profits

    sim.place_order(BTC, "BUY", "0.01", "LIMIT", "50000", client_order_id="bot-bid")
    sim.place_order(BTC, "BUY", "0.05", "MARKET")
    sim.place_order("XRP/USDT:USDT", "SELL", "100", "MARKET")
    assert float(open_positions(sim)[BTC]["amount"]) == pytest.approx(0.20)
    await tick(daemon, clock)

    assert [order["clientOrderId"] for order in sim.state()["openOrders"]] == [order["clientOrderId"] for order in kept]
    positions = open_positions(sim)
    assert float(positions[BTC]["amount"]) == pytest.approx(0.15)
    assert "XRP/USDT:USDT" not in positions
    assert set(positions) == {BTC, ETH, SOL}


@pytest.mark.parametrize("kind", ["http_503", "http_429", "timeout", "malformed"])
async def test_a_minute_of_exchange_trouble_warns_and_recovers_by_itself(configure, exchange, clock, started, kind, venue):
    sim = exchange.simulator
    daemon = await started(configure(live=True, market=MARKETS[venue], breakers={"stale_data": {"limit": "60s"}}), clock)
    await tick(daemon, clock)
    equity = daemon.store.load_state("main").last_equity
    # a 429 asks for a pause (Retry-After) shorter than a tick here, so recovery follows the fault
    sim.add_fault(kind, seconds={"timeout": 3, "http_429": 5}.get(kind))

    for _ in range(6):
        result = await tick(daemon, clock)
        assert result.actions == ()
    stale = next(r for r in result.readings if r.breaker == "stale_data")
    assert stale.status.value in ("warning", "breached")
    assert all(r.status.value == "no_data" for r in result.readings if r.breaker == "drawdown")
    state = daemon.store.load_state("main")
    assert state.trading_state is TradingState.ACTIVE and state.last_equity == equity  # never read as zero
    kinds = {e.kind for e in daemon.store.events("main", 100) if e.breaker == "stale_data"}
    assert "warning" in kinds

    sim.clear_faults()
    result = await tick(daemon, clock)
    assert all(r.status.value == "ok" for r in result.readings if r.breaker in ("stale_data", "drawdown"))
    assert "clear" in {e.kind for e in daemon.store.events("main", 100) if e.breaker == "stale_data"}


async def test_a_flatten_command_closes_everything_with_reduce_only_orders(configure, exchange, clock, started, venue):
    sim = exchange.simulator
    daemon = await started(configure(live=True, market=MARKETS[venue]), clock)
    await tick(daemon, clock)
    ids = commands.submit(daemon.store, daemon.settings, CommandKind.FLATTEN, None, "cli", "tester", clock())
    await daemon.process_commands()
    row = daemon.store.command(ids[0])
    assert row.status == "done" and row.who == "tester" and row.source == "cli"
    assert open_positions(sim) == {} and sim.state()["openOrders"] == []
    assert all(reduce_only(entry) for entry in orders_sent(sim, venue))
    assert daemon.store.load_state("main").trading_state is TradingState.HALTED


async def test_a_command_that_fails_is_recorded_as_failed_not_retried_for_ever(configure, exchange, clock, started, monkeypatch, venue):
    daemon = await started(configure(live=True, market=MARKETS[venue]), clock)
    await tick(daemon, clock)

    async def broken(*arguments):
        raise RuntimeError("executor exploded")

    monkeypatch.setattr(daemon.guards["main"].executor, "run", broken)
    ids = commands.submit(daemon.store, daemon.settings, CommandKind.FLATTEN, "main", "cli", "tester", clock())
    await daemon.process_commands()
    row = daemon.store.command(ids[0])
    assert row.status == "failed" and "executor exploded" in row.result
    assert daemon.store.pending_commands() == []


async def test_a_flatten_given_while_the_exchange_is_down_says_so_and_the_next_good_read_enforces_it(configure, exchange, clock, started, venue):
    sim = exchange.simulator
    daemon = await started(configure(live=True, market=MARKETS[venue]), clock)
    await tick(daemon, clock)
    sim.add_fault("http_503", path=DIALECTS[venue][1])
    ids = commands.submit(daemon.store, daemon.settings, CommandKind.FLATTEN, "main", "cli", "tester", clock())
    await daemon.process_commands()
    result = daemon.store.command(ids[0]).result
    assert "could not be read" in result and "next good read enforces it" in result
    assert orders_sent(sim, venue) == [] and daemon.store.load_state("main").trading_state is TradingState.HALTED

    sim.clear_faults()
    await tick(daemon, clock)
    assert open_positions(sim) == {}


async def test_a_long_and_a_short_on_one_symbol_are_both_closed_by_a_flatten(configure, exchange, clock, started, venue, hedge):
    sim = exchange.simulator
    daemon = await started(configure(live=True, market=MARKETS[venue]), clock)
    sim.place_order(BTC, "SELL", "0.05", "MARKET")  # another bot sells 0.05 BTC
    positions = sim.state()["positions"]
    btc = sorted((p["positionSide"], p["amount"]) for p in positions if p["symbol"] == BTC)
    # hedge mode: a short beside the long; one-way mode: the long reduced
    assert btc == ([("LONG", 0.15), ("SHORT", -0.05)] if hedge else [("BOTH", 0.10)])
    snapshot = await daemon.guards["main"].adapter.snapshot()
    keys = {p.key for p in snapshot.positions if p.symbol == BTC}
    assert keys == ({f"{BTC}:LONG", f"{BTC}:SHORT"} if hedge else {BTC})

    commands.submit(daemon.store, daemon.settings, CommandKind.FLATTEN, "main", "cli", "tester", clock())
    await daemon.process_commands()
    assert open_positions(sim) == {} and sim.state()["openOrders"] == []
    assert all(reduce_only(entry) for entry in orders_sent(sim, venue))


async def test_while_reducing_an_order_that_opens_a_hedge_side_is_cancelled_though_it_nets_under_the_other(
    configure, exchange, clock, started, venue, hedge
):
    sim = exchange.simulator
    over_levered = {"leverage": {"limit": "0.1x", "confirm": 1, "reduce_by": "10%"}}
    daemon = await started(configure(live=True, market=MARKETS[venue], breakers=over_levered), clock)
    await tick(daemon, clock)
    assert daemon.store.load_state("main").trading_state is TradingState.REDUCING

    # Another bot sells 0.05 BTC at a price not yet reached, under a larger long: in
    # one-way mode that only lowers the long, in hedge mode it opens a short beside it.
    sim.place_order(BTC, "SELL", "0.05", "LIMIT", "95000", client_order_id="bot-ask")
    await tick(daemon, clock)

    left = {order["clientOrderId"] for order in sim.state()["openOrders"]}
    assert ("bot-ask" in left) is (not hedge)
    assert "demo-btc-take-profit" in left  # a close of the long is never cancelled
