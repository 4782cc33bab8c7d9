"""The request budget against the embedded exchange, through the real ccxt client.

The promise: riskd reads the weight the venue says its IP used, warns before the budget
runs out, and on 429/418 pauses its routine reads for as long as the venue asks, while
its emergency orders still go out.
"""

from __future__ import annotations

import pytest

from riskd.domain import RISKD, Action, ActionKind

from .conftest import ORDER_PATH, open_positions, orders_sent, started, tick


@pytest.mark.parametrize("status", [429, 418])
async def test_a_refusal_pauses_reads_as_asked_while_the_flatten_still_goes_out(configure, exchange, clock, status):
    sim = exchange.simulator
    daemon = await started(configure(live=True), clock)
    await tick(daemon, clock)
    runner = daemon.runners["main"]
    held = len(open_positions(sim))
    assert held >= 2
    # the first order of the flatten is refused; the venue asks for a 2-minute pause
    sim.add_fault(f"http_{status}", count=1, path=ORDER_PATH, seconds=120)

    outcome = await runner.executor.execute(Action(ActionKind.FLATTEN, "main", "test: flatten"), runner.last_snapshot)

    assert outcome.done and open_positions(sim) == {}
    assert len(orders_sent(sim)) == held + 1  # the refused one sent again after a re-read, during the pause
    assert runner.adapter.budget.refusals[status] == 1

    before = len(sim.requests)
    await tick(daemon, clock, seconds=60)  # a routine read inside the pause
    assert runner.last_read.error_kind == "rate_limit" and "60 s" in runner.last_read.error
    assert len(sim.requests) == before  # nothing sent to the exchange for it
    await tick(daemon, clock, seconds=60)  # the pause is over
    assert runner.last_read.ok and len(sim.requests) > before

    await daemon.watch_budgets()
    events = [e for e in daemon.store.events(RISKD, 20) if e["kind"] == "rate_limited"]
    assert len(events) == 1 and f"HTTP {status}" in events[0]["message"]
    await daemon.shutdown()


async def test_the_weight_the_venue_reports_is_read_and_warned_about_before_it_runs_out(configure, exchange, clock):
    daemon = await started(configure(live=True), clock)
    await tick(daemon, clock)
    budget = daemon.runners["main"].adapter.budget
    assert 0 < budget.used == exchange.weights.used  # from X-MBX-USED-WEIGHT-1M
    await daemon.watch_budgets()
    assert not [e for e in daemon.store.events(RISKD, 20) if e["kind"] == "rate_budget"]

    exchange.weights.used = 1950  # bots on the same IP spent most of this minute's 2,400
    await tick(daemon, clock, seconds=1)
    await daemon.watch_budgets()
    await tick(daemon, clock, seconds=1)
    await daemon.watch_budgets()  # within the cooldown: not again
    warnings = [e for e in daemon.store.events(RISKD, 20) if e["kind"] == "rate_budget"]
    assert len(warnings) == 1 and "of 2400 request weight" in warnings[0]["message"]
    await daemon.shutdown()


async def test_the_venues_budget_is_exported_as_metrics(configure, exchange, clock):
    from riskd.http import Metrics

    daemon = await started(configure(live=True), clock)
    exchange.simulator.add_fault("http_429", count=1, path=ORDER_PATH, seconds=30)
    await tick(daemon, clock)
    runner = daemon.runners["main"]
    await runner.executor.execute(Action(ActionKind.FLATTEN, "main", "test: flatten"), runner.last_snapshot)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in Metrics(daemon).collect() if family.name.startswith("riskd_venue")
        for sample in family.samples
    }
    venue = (("venue", runner.adapter.budget.name),)
    assert samples[("riskd_venue_weight_used", venue)] == exchange.weights.used > 0
    assert samples[("riskd_venue_weight_limit", venue)] == 2400
    assert samples[("riskd_venue_hold_seconds", venue)] == 30
    assert samples[("riskd_venue_refusals_total", (("status", "429"), *venue))] == 1
    await daemon.shutdown()
