"""The reliability suite: each of the simulator's fault modes, faults during a flatten,
and the bounds that keep a long-running riskd from growing.

Each fault mode holds for three ticks (30 s of the account's time), in Binance's dialect
and in Bybit's (whose replies to the same faults are Bybit's own): riskd must make no
order and keep the account's state, warn that its data is stale, never read the account
as empty, and recover by itself once the exchange does. A flatten whose replies are lost
after the orders executed, whose orders are refused (429, a 418 IP ban), or whose orders
time out and reach the exchange late must end flat with no flip and no over-close.
"""

from __future__ import annotations

import asyncio

import pytest

from riskd.config import SimSettings
from riskd.domain import ReadFailure, TradingState
from riskd.sim import start_embedded
from riskd.sim.simulator import EMBEDDED_REQUEST_LOG
from tests.integration.conftest import BTC, DIALECTS, ETH, MARKETS, SOL, open_positions, orders_sent, tick
from tests.timing import limit

ORDER_PATH = DIALECTS["binanceusdm"][0]

MODES = [
    ("http_503", "unavailable"), ("http_503", "internal"), ("http_503", "unknown"), ("http_429", ""), ("http_418", ""),
    ("timeout", ""), ("malformed", "html"), ("malformed", "truncated"), ("latency", ""),
    ("dropped", ""), ("revoked", ""), ("clock_skew", ""),
]


KIND_SEEN = {
    "http_429": ReadFailure.RATE_LIMIT, "http_418": ReadFailure.RATE_LIMIT, "timeout": ReadFailure.TIMEOUT, "latency": ReadFailure.TIMEOUT,
    "malformed": ReadFailure.MALFORMED, "dropped": ReadFailure.NETWORK, "revoked": ReadFailure.AUTH,
    "clock_skew": ReadFailure.NETWORK, "http_503": ReadFailure.NETWORK,
}
"""How riskd names the failure, in either dialect, through ccxt's own map of Binance's
replies (-2015 is an AuthenticationError: the operator must act; -1021 an InvalidNonce, a
NetworkError; -1000 and -1001 an OperationFailed, the exchange failing for now, and a 503
with no code an ExchangeNotAvailable) and of Bybit's (10003, 10002; 10016 and 10000, which
riskd's adapter maps as ccxt maps -1001 and -1000; a 503 page; 10006 and the 403 IP limit,
rate limited)."""


TRANSPORT = {("timeout", ""), ("latency", ""), ("dropped", ""), ("malformed", "html")}
"""Modes that happen between riskd and the exchange, the same bytes whichever its dialect."""
CASES = [("binanceusdm", kind, body) for kind, body in MODES] + [
    ("bybit", kind, body) for kind, body in MODES if (kind, body) not in TRANSPORT
]


@pytest.mark.parametrize(
    "venue, kind, body", CASES, ids=[f"{venue}-{kind}-{body}" if body else f"{venue}-{kind}" for venue, kind, body in CASES]
)
async def test_each_fault_mode_for_30s_makes_no_order_warns_and_recovers_by_itself(configure, exchange, clock, started, kind, body, venue):
    sim = exchange.simulator
    daemon = await started(configure(live=True, market=MARKETS[venue], breakers={"stale_data": {"limit": "20s"}}), clock, ticks=1)
    before = daemon.store.load_state("main")
    # timeout: the reply never comes within the account's 2 s; latency: longer than that too;
    # 429 and 418 ask for a pause (Retry-After) shorter than a tick, which riskd honours, so
    # every tick's read meets the fault and the one after it recovers
    seconds = {"timeout": 3, "latency": 2.5, "http_429": 5, "http_418": 5}.get(kind)
    sim.add_fault(kind, seconds=seconds, body=body or None)
    for _ in range(3):
        result = await tick(daemon, clock)
        assert result.actions == ()
    assert orders_sent(sim, venue) == []
    state = daemon.store.load_state("main")
    assert state.trading_state is TradingState.ACTIVE
    assert state.last_equity == before.last_equity and state.peak_equity == before.peak_equity  # never read as zero
    stale = next(reading for reading in result.readings if reading.breaker == "stale_data")
    assert stale.status.value == "breached"
    assert any(event.breaker == "stale_data" for event in daemon.store.events("main", 100))
    if kind in KIND_SEEN:
        assert daemon.guards["main"].last_read.error_kind is KIND_SEEN[kind]

    sim.clear_faults()
    clock.advance(daemon.guards["main"].adapter.budget.holding())  # and the pause the venue asked for is over
    result = await tick(daemon, clock)
    assert all(reading.status.value == "ok" for reading in result.readings if reading.breaker in ("stale_data", "drawdown"))
    assert daemon.store.load_state("main").trading_state is TradingState.ACTIVE


@pytest.mark.parametrize("kind, body", [("http_503", "unknown"), ("timeout", ""), ("malformed", "truncated")])
async def test_a_flatten_whose_replies_are_lost_after_the_orders_executed_ends_flat_without_flip(
    configure, exchange, clock, started, kind, body
):
    sim = exchange.simulator
    daemon = await started(configure(live=True), clock, ticks=1)
    assert set(open_positions(sim)) == {BTC, ETH, SOL}
    sim.move(-0.20)
    # every order executes, and its reply is lost (3 of them: one per position)
    sim.add_fault(kind, path=ORDER_PATH, count=3, seconds=3 if kind == "timeout" else None, body=body or None)
    for _ in range(4):
        await tick(daemon, clock)

    assert open_positions(sim) == {}  # flat: nothing left, nothing flipped to the other side
    sent = orders_sent(sim)
    assert sent and all(entry["params"].get("reduceOnly") == "true" for entry in sent)
    # no over-close: an extra reduce-only order would have been refused, an extra plain one
    # would show as a position on the other side; and none was sent twice for one position
    assert len({entry["params"]["newClientOrderId"] for entry in sent}) == len(sent)
    assert daemon.store.load_state("main").trading_state is TradingState.HALTED


async def answered(sim, timeout: float) -> None:
    """Wait until the exchange has answered every order it received."""
    deadline = asyncio.get_running_loop().time() + timeout
    while any("status" not in entry for entry in orders_sent(sim)):
        assert asyncio.get_running_loop().time() < deadline, "an order still unanswered"
        await asyncio.sleep(0.05)


def filled_since(sim, first: int) -> dict[str, float]:
    """The quantity each symbol's orders filled, from fill number `first` on."""
    totals: dict[str, float] = {}
    for fill in sim.ledger.fills[first:]:
        symbol = fill.order.contract.symbol
        totals[symbol] = totals.get(symbol, 0.0) + float(fill.quantity)
    return totals


@pytest.mark.parametrize(
    "kind, seconds",
    [("http_429", None), ("http_418", None), ("latency", 3)],
    ids=["rate_limited", "ip_banned", "timed_out_then_executed_late"],
)
async def test_a_flatten_refused_or_timed_out_at_the_exchange_ends_flat_without_flip_or_over_close(
    configure, exchange, clock, started, kind, seconds
):
    sim = exchange.simulator
    daemon = await started(configure(live=True), clock, ticks=1)
    held = {symbol: abs(position["amount"]) for symbol, position in open_positions(sim).items()}
    assert set(held) == {BTC, ETH, SOL}
    before = len(sim.ledger.fills)
    sim.move(-0.20)
    # 429 and 418: the first three orders are refused and not carried out. latency: each
    # of the first three waits 3 s, past the account's 2 s timeout, then reaches the
    # exchange anyway, after riskd gave up on it and sent another.
    sim.add_fault(kind, path=ORDER_PATH, count=3, seconds=seconds)
    for _ in range(4):
        await tick(daemon, clock)
    await answered(sim, limit(5))  # a late order, given up on, has met the exchange too

    assert open_positions(sim) == {}  # flat: nothing left, nothing flipped to the other side
    sent = orders_sent(sim)
    assert len(sent) > len(held) and all(entry["params"].get("reduceOnly") == "true" for entry in sent)
    assert sum(1 for entry in sent if entry["faults"]) == 3  # each fault met an order
    assert {symbol: pytest.approx(quantity) for symbol, quantity in filled_since(sim, before).items()} == held  # no over-close
    assert daemon.store.load_state("main").trading_state is TradingState.HALTED


async def test_the_embedded_exchange_keeps_a_bounded_request_log():
    server, _ = await start_embedded(SimSettings())
    try:
        assert server.simulator.requests.maxlen == EMBEDDED_REQUEST_LOG
    finally:
        await server.stop()
