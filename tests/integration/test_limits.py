"""Limits the way traders write them, through real ccxt against the embedded exchange:
the runaway-bot guards on a bot that keeps placing orders."""

from __future__ import annotations

import pytest

from riskd.domain import ActionKind, TradingState

from .conftest import BTC, started, tick


def place_bids(sim, count: int, start: int = 0) -> list[str]:
    """`count` resting limit bids from another bot, far below the market; their client ids."""
    ids = []
    for number in range(start, start + count):
        sim.place_order(BTC, "BUY", "0.004", "LIMIT", str(30_000 + number), client_order_id=f"bot-{number}")
        ids.append(f"bot-{number}")
    return ids


def open_ids(sim) -> list[str]:
    return [order["clientOrderId"] for order in sim.state()["openOrders"]]


@pytest.mark.parametrize("action", ["cancel", "halt"])
async def test_a_bot_opening_its_21st_order_is_cancelled_or_halted_as_configured(configure, exchange, clock, action):
    sim = exchange.simulator
    config = configure(live=True, breakers={"open_orders": {"limit": 20, "action": action}})
    daemon = await started(config, clock, ticks=1)
    kept = open_ids(sim)  # the demo account's own bid and take-profits
    stops = [order["clientOrderId"] for order in sim.state()["openOrders"] if order["reduceOnly"]]
    assert len(kept) < 20 and stops
    bids = place_bids(sim, 20 - len(kept))
    result = await tick(daemon, clock)
    assert len(open_ids(sim)) == 20 and not result.actions  # twenty is within the limit

    clock.advance(1)
    latest = place_bids(sim, 1, start=100)  # the 21st
    result = await tick(daemon, clock)

    assert [action.kind for action in result.actions] == [ActionKind.CANCEL_ORDERS]
    state = daemon.store.load_state("main")
    if action == "cancel":
        assert open_ids(sim) == kept + bids  # the newest order went, the rest stay
        assert latest[0] not in open_ids(sim)
        assert state.trading_state is TradingState.ACTIVE
    else:
        assert open_ids(sim) == stops  # every order that could add exposure went; the take-profits stay
        assert state.trading_state is TradingState.HALTED
    await daemon.shutdown()


async def test_an_order_over_the_size_limit_is_cancelled_and_the_account_trades_on(configure, exchange, clock):
    sim = exchange.simulator
    daemon = await started(configure(live=True, breakers={"order_size": {"limit": "1000 USDT"}}), clock, ticks=1)
    kept = open_ids(sim)
    sim.place_order(BTC, "BUY", "0.01", "LIMIT", "30000", client_order_id="small")  # 300 USDT
    sim.place_order(BTC, "BUY", "0.1", "LIMIT", "30000", client_order_id="big")  # 3,000 USDT
    result = await tick(daemon, clock)
    assert [action.kind for action in result.actions] == [ActionKind.CANCEL_ORDERS]
    assert open_ids(sim) == [*kept, "small"]
    assert daemon.store.load_state("main").trading_state is TradingState.ACTIVE
    await daemon.shutdown()
