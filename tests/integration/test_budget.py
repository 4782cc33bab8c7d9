"""The request budget against the embedded exchange, through the real ccxt client.

The promise: riskd reads the weight the venue says its IP used, warns before the budget
runs out, and on a rate-limit answer (Binance's 429/418; Bybit's retCode 10006 and its
HTTP 403 IP limit) pauses its routine reads (ticks and the market data) for as long as
the venue asks, while its emergencies (the executor's orders, and an operator's flatten,
reduce or freeze with the fresh read it acts on) still go out.
"""

from __future__ import annotations

import asyncio

import pytest

from riskd import wording
from riskd.domain import RISKD, Action, ActionKind, Command, CommandKind, EventKind, ReadFailure, TradingState

from .conftest import DIALECTS, MARKETS, open_positions, orders_sent, tick

ORDER_PATH = DIALECTS["binanceusdm"][0]
ACCOUNT_PATH = "/fapi/v3/account"
KLINES_PATH = "/fapi/v1/klines"
INCOME_PATH = "/fapi/v1/income"


def sent(sim, path: str) -> int:
    return sum(1 for entry in sim.requests if entry["path"] == path)


REFUSALS = [
    # (dialect, the fault, the refusal riskd counts, how it is named, the pause in seconds)
    ("binanceusdm", "http_429", 429, "HTTP 429", 120),  # Retry-After: 120
    ("binanceusdm", "http_418", 418, "HTTP 418", 120),  # an IP ban, Retry-After: 120
    ("bybit", "http_429", 10006, "retCode 10006", 120),  # HTTP 200, the limit resets in 120 s (X-Bapi-Limit-Reset-Timestamp)
    ("bybit", "http_418", 403, "HTTP 403", 600),  # the IP limit, no time given: the ten minutes Bybit asks for
]


@pytest.mark.parametrize(("venue", "fault", "code", "answer", "pause"), REFUSALS, ids=[f"{r[0]}-{r[3]}" for r in REFUSALS])
async def test_a_refusal_pauses_reads_as_asked_while_the_flatten_still_goes_out(
    configure, exchange, clock, started, venue, fault, code, answer, pause
):
    sim = exchange.simulator
    daemon = await started(configure(live=True, market=MARKETS[venue]), clock)
    await tick(daemon, clock)
    guard = daemon.guards["main"]
    held = len(open_positions(sim))
    assert held >= 2
    # the first order of the flatten is refused; the venue asks for a 2-minute pause (Bybit's IP limit: ten)
    sim.add_fault(fault, count=1, path=DIALECTS[venue][0], seconds=120)

    outcome = await guard.executor.execute(Action(ActionKind.FLATTEN, "main", "test: flatten"), guard.last_snapshot)

    assert outcome.done and open_positions(sim) == {}
    assert len(orders_sent(sim, venue)) == held + 1  # the refused one sent again after a re-read, during the pause
    assert guard.adapter.budget.refusals[code] == 1

    before = len(sim.requests)
    await tick(daemon, clock, seconds=60)  # a routine read inside the pause
    assert guard.last_read.error_kind is ReadFailure.RATE_LIMIT and f"another {pause - 60} s" in guard.last_read.error
    assert len(sim.requests) == before  # nothing sent to the exchange for it
    await tick(daemon, clock, seconds=pause - 60)  # the pause is over
    assert guard.last_read.ok and len(sim.requests) > before

    await daemon.watch_budgets()
    events = [event for event in daemon.store.events(RISKD, 20) if event.kind is EventKind.RATE_LIMITED]
    assert len(events) == 1 and f"({answer})" in events[0].message and f"for {pause} s" in events[0].message


@pytest.mark.parametrize("kind", [CommandKind.FLATTEN, CommandKind.REDUCE, CommandKind.FREEZE])
async def test_an_operators_command_reads_the_account_during_a_pause_and_acts(configure, exchange, clock, started, kind):
    sim = exchange.simulator
    daemon = await started(configure(live=True), clock)
    await tick(daemon, clock)
    guard = daemon.guards["main"]
    held = open_positions(sim)
    sim.add_fault("http_429", count=1, path=ACCOUNT_PATH, seconds=120)
    await tick(daemon, clock)  # a routine read is refused: the venue asks for a 2-minute pause
    assert guard.adapter.budget.holding() == 120
    await tick(daemon, clock)  # and the next routine read waits for it, unsent
    assert guard.last_read.error_kind is ReadFailure.RATE_LIMIT and "reads paused" in guard.last_read.error
    reads = sent(sim, ACCOUNT_PATH)

    fraction = 0.5 if kind is CommandKind.REDUCE else None
    answer = await guard.obey(Command(kind, "main", "cli", "tester", fraction=fraction))

    assert sent(sim, ACCOUNT_PATH) > reads  # the fresh read (and the verifying ones) went out during the pause
    assert answer == wording.command_result("main", kind, daemon.store.load_state("main").trading_state, True)
    assert guard.adapter.budget.holding() > 0  # the pause still holds for the routine reads
    if kind is not CommandKind.REDUCE:
        assert daemon.store.load_state("main").trading_state is TradingState.HALTED
    if kind is CommandKind.FLATTEN:
        assert open_positions(sim) == {}
    elif kind is CommandKind.REDUCE:
        assert {symbol: float(position["amount"]) for symbol, position in open_positions(sim).items()} == pytest.approx(
            {symbol: float(position["amount"]) / 2 for symbol, position in held.items()}, rel=0.05
        )


async def test_the_market_data_waits_out_a_pause(configure, exchange, clock, started):
    sim = exchange.simulator
    daemon = await started(configure(live=True), clock)
    await tick(daemon, clock)
    guard = daemon.guards["main"]
    sim.add_fault("http_429", count=1, path=ACCOUNT_PATH, seconds=120)
    await tick(daemon, clock)
    await asyncio.gather(*daemon.tasks)  # the refresh the first tick started, before the venue asked for the pause
    before, asked = guard.market.current("main"), sent(sim, KLINES_PATH)

    await daemon.refresh_market(guard.market.venue)
    assert sent(sim, KLINES_PATH) == asked and guard.market.current("main") is before  # nothing asked, nothing counted as fresh

    clock.advance(120)
    await daemon.refresh_market(guard.market.venue)
    assert sent(sim, KLINES_PATH) > 0 and guard.market.current("main").fetched_at == clock()


async def test_the_trade_history_waits_out_a_pause(configure, exchange, clock, started):
    sim = exchange.simulator
    daemon = await started(configure(live=True, breakers={"loss_streak": {"limit": 3}}), clock)
    await tick(daemon, clock)
    guard = daemon.guards["main"]
    sim.add_fault("http_429", count=1, path=ACCOUNT_PATH, seconds=120)
    await tick(daemon, clock)
    assert guard.adapter.budget.holding() == 120

    await daemon.read_trades("main")
    assert sent(sim, INCOME_PATH) == 0  # nothing asked during the pause

    clock.advance(120)
    await daemon.read_trades("main")
    assert sent(sim, INCOME_PATH) == 1 and guard.trades.read_at is not None


async def test_the_portfolios_action_on_an_account_reads_it_during_a_pause_and_acts(configure, exchange, clock, started):
    sim = exchange.simulator
    daemon = await started(configure(live=True), clock)
    await tick(daemon, clock)
    guard = daemon.guards["main"]
    sim.add_fault("http_429", count=1, path=ACCOUNT_PATH, seconds=120)
    await tick(daemon, clock)
    assert guard.adapter.budget.holding() == 120

    await guard.carry_out([Action(ActionKind.FLATTEN, "portfolio", "test: the portfolio flattens")])

    assert open_positions(sim) == {}
    assert guard.adapter.budget.holding() > 0  # the pause still holds for the routine reads


async def test_the_weight_the_venue_reports_is_read_and_warned_about_before_it_runs_out(configure, exchange, clock, started):
    daemon = await started(configure(live=True), clock)
    await tick(daemon, clock)
    budget = daemon.guards["main"].adapter.budget
    assert 0 < budget.used == exchange.weights.used  # from X-MBX-USED-WEIGHT-1M
    await daemon.watch_budgets()
    assert not [event for event in daemon.store.events(RISKD, 20) if event.kind is EventKind.RATE_BUDGET]

    exchange.weights.used = 1950  # bots on the same IP spent most of this minute's 2,400
    await tick(daemon, clock, seconds=1)
    await daemon.watch_budgets()
    await tick(daemon, clock, seconds=1)
    await daemon.watch_budgets()  # within the cooldown: not again
    warnings = [event for event in daemon.store.events(RISKD, 20) if event.kind is EventKind.RATE_BUDGET]
    assert len(warnings) == 1 and "of 2400 request weight" in warnings[0].message


async def test_the_venues_budget_is_exported_as_metrics(configure, exchange, clock, started):
    from riskd.http import Metrics

    daemon = await started(configure(live=True), clock)
    exchange.simulator.add_fault("http_429", count=1, path=ORDER_PATH, seconds=30)
    await tick(daemon, clock)
    guard = daemon.guards["main"]
    await guard.executor.execute(Action(ActionKind.FLATTEN, "main", "test: flatten"), guard.last_snapshot)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in Metrics(daemon).collect() if family.name.startswith("riskd_venue")
        for sample in family.samples
    }
    venue = (("venue", guard.adapter.budget.name),)
    assert samples[("riskd_venue_weight_used", venue)] == exchange.weights.used > 0
    assert samples[("riskd_venue_weight_limit", venue)] == 2400
    assert samples[("riskd_venue_hold_seconds", venue)] == 30
    assert samples[("riskd_venue_refusals_total", (("status", "429"), *venue))] == 1


async def test_bybits_per_key_endpoint_limit_is_read_and_warned_about_before_it_runs_out(configure, exchange, clock, started):
    # Bybit names no per-IP weight; each private endpoint's reply says its limit a second
    # for the key and what is left of it (X-Bapi-Limit, X-Bapi-Limit-Status)
    from riskd.http import Metrics
    from riskd.sim import bybit

    daemon = await started(configure(live=True, market="bybit"), clock)
    await tick(daemon, clock, seconds=1)
    budget_ = daemon.guards["main"].adapter.budget
    assert budget_.limit == bybit.LIMIT and 1 <= budget_.used < 0.8 * bybit.LIMIT
    samples = {sample.name: sample.value for family in Metrics(daemon).collect()
               if family.name.startswith("riskd_venue_weight") for sample in family.samples}
    assert samples["riskd_venue_weight_limit"] == bybit.LIMIT and samples["riskd_venue_weight_used"] == budget_.used

    # a bot on the same key has spent most of this second's allowance on an endpoint riskd reads
    for _ in range(bybit.LIMIT - 2):
        exchange.bybit_limits.take("test-key-not-secret", "/v5/position/list", exchange.simulator.ledger.now())
    await daemon.tick("main")  # the clock stands still: the same second
    await daemon.watch_budgets()
    warnings = [event for event in daemon.store.events(RISKD, 20) if event.kind is EventKind.RATE_BUDGET]
    assert len(warnings) == 1 and f"of the {bybit.LIMIT} requests a second an endpoint allows one API key" in warnings[0].message
