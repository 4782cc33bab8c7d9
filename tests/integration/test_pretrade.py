"""POST /v1/check over real HTTP, against the daemon guarding the embedded exchange's demo account.

The demo account holds 10,185 USDT of equity and 18,000 USDT of positions (1.77x):
long 0.15 BTC at 60,000, short 2 ETH at 3,000, long 20 SOL at 150, with a still market.
"""

from __future__ import annotations

import aiohttp
import pytest

from datetime import timedelta

from riskd.config import load_settings
from riskd.domain import Command, CommandKind, LimitOverride
from riskd.http import HttpServer
from riskd.supervisor import Daemon
from tests.integration.conftest import Clock, write_config

BTC = "BTC/USDT:USDT"
EQUITY, GROSS = 10_185.0, 18_000.0


async def guarded(tmp_path, clock, **settings):
    daemon = Daemon(load_settings(write_config(tmp_path, **settings)), clock=clock)
    await daemon.startup()
    server = HttpServer(daemon)
    await server.start()
    return daemon, server


@pytest.fixture
async def riskd(tmp_path):
    clock = Clock()
    daemon, server = await guarded(tmp_path, clock)
    await daemon.tick("demo")
    async with aiohttp.ClientSession(base_url=server.url) as session:
        yield daemon, session
    await server.stop()
    await daemon.shutdown()


async def ask(session, **body) -> tuple[int, dict]:
    async with session.post("/v1/check", json=body) as response:
        return response.status, await response.json()


async def test_an_order_within_the_limits_is_allowed_with_the_room_left(riskd):
    daemon, session = riskd
    status, answer = await ask(session, account="demo", symbol=BTC, side="buy", amount=0.01)
    assert status == 200
    assert (answer["allowed"], answer["reason"], answer["state"]) == (True, "allowed: within every limit", "active")
    assert answer["notional"] == pytest.approx(600)
    leverage = answer["limits"]["leverage"]
    assert leverage["value"] == pytest.approx(GROSS / EQUITY)
    assert leverage["after"] == pytest.approx((GROSS + 600) / EQUITY)
    assert leverage["room"] == pytest.approx(5 * EQUITY - GROSS - 600)
    assert leverage["unit"] == "USDT" and leverage["limit"] == 5.0
    assert set(answer["limits"]) == {"leverage", "concentration"}


async def test_an_order_over_leverage_is_refused(riskd):
    daemon, session = riskd
    status, answer = await ask(session, account="demo", symbol=BTC, side="long", amount=0.6)
    assert status == 200 and answer["allowed"] is False
    assert "leverage would be 5.30x, past the limit of 5.00x" in answer["reason"]
    assert answer["limits"]["leverage"]["room"] == pytest.approx(5 * EQUITY - GROSS - 36_000)


async def test_a_temporary_override_is_the_limit_the_check_judges_by(riskd):
    daemon, session = riskd
    status, answer = await ask(session, account="demo", symbol=BTC, side="buy", amount=0.2)  # BTC 21,000: 206%
    assert answer["allowed"] is False and answer["limits"]["concentration"]["limit"] == 1.5
    override = LimitOverride("concentration", "250%", timedelta(hours=1))
    await daemon.guards["demo"].obey(Command(CommandKind.OVERRIDE, "demo", "test", "tester", reason="news", override=override))
    status, answer = await ask(session, account="demo", symbol=BTC, side="buy", amount=0.2)
    assert (answer["allowed"], answer["reason"]) == (True, "allowed: within every limit")
    assert answer["limits"]["concentration"]["limit"] == 2.5
    assert answer["limits"]["concentration"]["room"] == pytest.approx(2.5 * EQUITY - 21_000)
    daemon.clock.advance(3600)  # run out: the next tick ends it, and the configured limit is back
    await daemon.tick("demo")
    status, answer = await ask(session, account="demo", symbol=BTC, side="buy", amount=0.2)
    assert answer["allowed"] is False and answer["limits"]["concentration"]["limit"] == 1.5


async def test_a_hedge_mode_order_is_judged_on_its_own_side(tmp_path):
    """The demo account in hedge mode holds its 0.15 BTC on the long side: a sell opens the
    short side and adds to the gross, not nets against the long."""
    clock = Clock()
    daemon, server = await guarded(tmp_path, clock, sim={"hedge": True})
    try:
        await daemon.tick("demo")
        async with aiohttp.ClientSession(base_url=server.url) as session:
            for body in ({"position_side": "short"}, {}):
                status, answer = await ask(session, symbol=BTC, side="sell", amount=0.1, **body)
                assert (status, answer["allowed"], answer["reason"]) == (200, True, "allowed: within every limit")
                assert answer["limits"]["leverage"]["after"] == pytest.approx((GROSS + 6_000) / EQUITY)
            status, answer = await ask(session, symbol=BTC, side="sell", amount=0.1, position_side="long")
            assert (answer["allowed"], answer["reason"]) == (True, "allowed: the order does not add exposure")
            assert answer["limits"]["leverage"]["after"] == pytest.approx((GROSS - 6_000) / EQUITY)
    finally:
        await server.stop()
        await daemon.shutdown()


async def test_a_halted_account_refuses_entries_and_allows_reduce_only_orders(riskd):
    daemon, session = riskd
    await daemon.guards["demo"].obey(Command(CommandKind.FREEZE, "demo", "test", "tester", reason="bot gone wild"))
    status, answer = await ask(session, account="demo", symbol=BTC, side="buy", amount=0.01)
    assert (answer["allowed"], answer["state"]) == (False, "halted")
    assert answer["reason"] == "refused: the account is halted (bot gone wild); only reduce-only orders stay"
    status, answer = await ask(session, account="demo", symbol=BTC, side="sell", amount=0.05, reduce_only=True)
    assert answer["allowed"] is True


async def test_a_reducing_account_allows_reduce_only_orders_and_refuses_what_adds(tmp_path):
    clock = Clock()
    daemon, server = await guarded(tmp_path, clock, breakers={"leverage": {"limit": "1.5x", "confirm": 1}})
    try:
        await daemon.tick("demo")
        async with aiohttp.ClientSession(base_url=server.url) as session:
            status, answer = await ask(session, symbol=BTC, side="sell", amount=0.05, reduce_only=True)
            assert (answer["allowed"], answer["state"]) == (True, "reducing")
            assert answer["reason"] == "allowed: the order does not add exposure"
            status, answer = await ask(session, symbol=BTC, side="buy", amount=0.01)
            assert answer["allowed"] is False
            assert answer["reason"].startswith("refused: the account is reducing (leverage 1.77x is past the limit of 1.50x)")
    finally:
        await server.stop()
        await daemon.shutdown()


async def test_limits_written_in_money_and_opt_in_guards_answer_in_money_and_orders(tmp_path):
    clock = Clock()
    breakers = {
        "leverage": {"limit": "25000 USDT"},
        "position_size": {"limit": "12000 USDT"},
        "open_orders": {"limit": 20},
    }
    daemon, server = await guarded(tmp_path, clock, breakers=breakers)
    try:
        await daemon.tick("demo")
        async with aiohttp.ClientSession(base_url=server.url) as session:
            status, answer = await ask(session, symbol=BTC, side="buy", amount=0.05)  # 3,000 more of BTC
            assert status == 200 and answer["allowed"] is False
            assert answer["reason"] == "refused: position_size would be 12,000.00 USDT, past the limit of 12,000.00 USDT"
            leverage, size = answer["limits"]["leverage"], answer["limits"]["position_size"]
            assert (leverage["value"], leverage["after"], leverage["limit"]) == pytest.approx((GROSS, GROSS + 3_000, 25_000))
            assert leverage["room"] == pytest.approx(25_000 - GROSS - 3_000)
            assert size["room"] == pytest.approx(0.0)
            orders = answer["limits"]["open_orders"]
            assert (orders["value"], orders["limit"], orders["unit"]) == (4, 20, "orders")
    finally:
        await server.stop()
        await daemon.shutdown()


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"account": "demo", "symbol": BTC, "side": "up", "amount": 1}, 400, "side: buy or sell (or long or short) is needed, got 'up'"),
        ({"account": "demo", "symbol": BTC, "side": "buy", "amount": -1}, 400,
         "amount: a number above zero is needed (the order's size in contracts), got -1"),
        ({"account": "demo", "symbol": BTC, "side": "buy", "amount": 1, "leverage": 3}, 400,
         "unknown field 'leverage'; the fields are account, symbol, side, amount, price, reduce_only, position_side"),
        ({"account": "demo", "symbol": BTC, "side": "buy", "amount": 1, "position_side": "both"}, 400,
         "position_side: long or short in hedge mode (or leave it out in one-way mode), got 'both'"),
        ({"account": "other", "symbol": BTC, "side": "buy", "amount": 1}, 404, "no account named 'other'"),
        ([1, 2], 400, 'the body must be a JSON object, like {"account": "main", "symbol": "BTC/USDT:USDT", "side": "buy", "amount": 0.01}'),
    ],
)
async def test_a_malformed_request_gets_a_sentence(riskd, body, status, error):
    daemon, session = riskd
    async with session.post("/v1/check", json=body) as response:
        assert (response.status, await response.json()) == (status, {"error": error})


async def test_a_body_that_is_not_json_gets_a_sentence(riskd):
    daemon, session = riskd
    async with session.post("/v1/check", data="account=demo") as response:
        assert response.status == 400
        assert (await response.json())["error"].startswith("the body must be JSON, like {")


async def test_each_check_is_timed_on_metrics(riskd):
    daemon, session = riskd
    for _ in range(3):
        await ask(session, account="demo", symbol=BTC, side="buy", amount=0.01)
    await ask(session, account="demo", symbol=BTC, side="up", amount=0.01)  # malformed: not judged, not timed
    async with session.get("/metrics") as response:
        text = await response.text()
    assert "riskd_check_seconds_count 3.0" in text
    assert 'riskd_check_seconds_bucket{le="0.1"} 3.0' in text


@pytest.mark.parametrize(("limit", "allowed"), [(5, True), (4, False)])
async def test_the_open_orders_breach_starts_past_the_limit_as_the_breaker_judges(tmp_path, limit, allowed):
    """The demo account rests 4 orders: under "at most 5" a fifth is allowed, under "at most 4" it is refused."""
    clock = Clock()
    daemon, server = await guarded(tmp_path, clock, breakers={"open_orders": {"limit": limit}})
    try:
        await daemon.tick("demo")
        async with aiohttp.ClientSession(base_url=server.url) as session:
            status, answer = await ask(session, symbol=BTC, side="buy", amount=0.01)
            assert answer["allowed"] is allowed
            assert answer["limits"]["open_orders"]["room"] == limit - 5
            if not allowed:
                assert answer["reason"] == "refused: open_orders would be 5, past the limit of 4"
    finally:
        await server.stop()
        await daemon.shutdown()
