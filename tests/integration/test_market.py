"""Market data through real ccxt from the embedded exchange, and the market breakers it
feeds tripping on the simulator's volatility spike and flash crash."""

from __future__ import annotations

import asyncio

import pytest

from riskd.breakers import BREAKERS
from riskd.domain import ActionKind, Status, TradingState
from riskd.market_data import TIMEFRAMES
from .conftest import BTC, ETH, SOL, demo, orders_sent, tick

HELD = {BTC, ETH, SOL}


@pytest.fixture
async def exchange(clock, serve):
    """The demo exchange with prices that move (the shared one keeps them still)."""
    return await serve(demo(clock, volatility=1e-4))


@pytest.fixture
def guard(configure, clock, started):
    """Starts a daemon on the simulator (ticked `ticks` times); `started` shuts it down after the test."""

    async def start(ticks: int = 1, **settings):
        return await started(configure(**settings), clock, ticks=ticks)

    return start


def only(name: str, **fields) -> dict:
    """Breaker settings with every breaker but `name` turned off, so nothing else acts (the
    opt-in and portfolio breakers run only where named: they are left out)."""
    on_by_default = [other for other, breaker in BREAKERS.items() if not (breaker.config.opt_in or breaker.config.portfolio_only)]
    return {other: {"enabled": False} for other in on_by_default if other != name} | {name: fields}


async def refresh(daemon, name: str = "main") -> None:
    """The market-data job of the named account's venue, run now."""
    await daemon.refresh_market(daemon.guards[name].market.venue)


def readings(result, name: str) -> dict:
    return {reading.symbol: reading for reading in result.readings if reading.breaker == name}


async def test_candles_are_fetched_cached_and_refreshed_incrementally(guard, exchange, clock):
    daemon = await guard()
    # The first tick started a refresh in the background: let it start and wait for it, so that
    # none of its requests lands among those counted below (the limiter lets both run at once).
    await asyncio.sleep(0)
    await asyncio.gather(*daemon.tasks)
    await refresh(daemon)
    market = daemon.guards["main"].market.current("main")
    assert set(market.symbols) == HELD and market.benchmark == BTC and market.fetched_at == clock()
    # The cache matches the exchange's own candles, up to the candle still open now.
    expected = exchange.simulator.market.candles("ETHUSDT", limit=1500)
    cached = daemon.store.candles(daemon.guards["main"].market.venue, "1m", [ETH], 0)[ETH]
    assert [row[0] for row in cached] == [candle.time for candle in expected]
    assert [row[4] for row in cached] == pytest.approx([candle.close for candle in expected], abs=0.01)  # a tick
    assert cached[-1][4] == pytest.approx(exchange.simulator.market.prices()["ETHUSDT"], rel=1e-4)

    exchange.simulator.requests.clear()
    clock.advance(180)
    await refresh(daemon)
    klines = [entry for entry in exchange.simulator.requests if entry["path"] == "/fapi/v1/klines"]
    assert len(klines) == 3  # one per symbol, from the last cached candle on
    assert len(daemon.store.candles(daemon.guards["main"].market.venue, "1m", [ETH], 0)[ETH]) == len(cached) + 3
    assert daemon.guards["main"].market.current("main").times[-1] - market.times[-1] == 3 * TIMEFRAMES["1m"]


async def test_a_spot_account_gets_its_candles_from_the_spot_dialect(guard, exchange, clock):
    daemon = await guard(market="spot")
    await refresh(daemon)
    market = daemon.guards["main"].market.current("main")
    assert set(market.symbols) == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}  # BNB is kept, never sold: not a position
    assert any(entry["path"] == "/api/v3/klines" for entry in exchange.simulator.requests)
    column = market.column("SOL/USDT")
    assert market.closes[-1, column] == pytest.approx(exchange.simulator.market.prices()["SOLUSDT"], rel=1e-4)


async def test_before_any_market_data_the_market_breakers_cannot_measure(guard, exchange, clock):
    daemon = await guard(ticks=0)
    result = await tick(daemon, clock)
    market = [reading for reading in result.readings if reading.breaker in ("var", "correlation", "stress_loss")]
    assert market and all(reading.status is Status.NO_DATA for reading in market)


async def test_a_failing_candle_feed_makes_the_breakers_blind_once_stale(guard, exchange, clock):
    daemon = await guard()
    await refresh(daemon)
    assert readings(await tick(daemon, clock), "stress_loss")[None].status is not Status.NO_DATA
    exchange.simulator.add_fault("http_503", path="/fapi/v1/klines")
    clock.advance(20 * 60)
    await refresh(daemon)
    reading = readings(await tick(daemon, clock), "stress_loss")[None]
    assert reading.status is Status.NO_DATA and "market data is 20 minutes old" in reading.reason


async def test_a_volatility_spike_trips_volatility_spike_with_its_configured_action(guard, exchange, clock):
    breakers = only("volatility_spike", action="reduce", reduce_by="25%")
    daemon = await guard(breakers=breakers)
    await refresh(daemon)
    calm = readings(await tick(daemon, clock), "volatility_spike")[None]
    assert calm.status is Status.OK and calm.value < 3

    exchange.simulator.run_scenario("volatility_spike", factor=10, duration=3600)
    clock.advance(15 * 60)
    await refresh(daemon)
    await tick(daemon, clock)
    result = await tick(daemon, clock)  # confirm: 2
    spiking = readings(result, "volatility_spike")[None]
    assert spiking.status is Status.BREACHED and spiking.value > 3
    reductions = [(action.symbol, action.fraction) for action in result.actions if action.kind is ActionKind.REDUCE]
    assert reductions == [(None, 0.25)]  # every position, by a quarter
    assert result.state.trading_state is TradingState.REDUCING
    sent = orders_sent(exchange.simulator)
    assert len(sent) == 3 and all(order["params"]["reduceOnly"] == "true" for order in sent)


async def test_a_flash_crash_trips_flash_crash_and_halts(guard, exchange, clock):
    daemon = await guard(breakers=only("flash_crash", limit="10%", action="halt"))
    await refresh(daemon)
    assert readings(await tick(daemon, clock), "flash_crash")[None].status is Status.OK

    exchange.simulator.run_scenario("flash_crash", depth=0.2, duration=3, recovery=0.8, recovery_time=60)
    clock.advance(5)
    await refresh(daemon)
    await tick(daemon, clock)
    result = await tick(daemon, clock)
    crashed = readings(result, "flash_crash")[None]
    assert crashed.status is Status.BREACHED and crashed.value >= 0.18
    assert result.state.trading_state is TradingState.HALTED
    assert "flash_crash" in result.state.latches
    cancels = [action for action in result.actions if action.kind is ActionKind.CANCEL_ORDERS]
    assert cancels  # the demo account's resting orders that could add exposure
