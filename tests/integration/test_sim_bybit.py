"""The embedded exchange in Bybit v5's dialect, through ccxt's real `bybit` class.

`exchange: sim` with `sim: {venue: bybit}` starts it for a keyless account; the guardian's
own tests (test_guardian.py) run on it as on the Binance dialect. Here: what the dialect
itself promises, including the refusals ccxt must map to its errors, and the simulator's
faults answered as Bybit answers them, raising what Binance's replies to them raise.
"""

from __future__ import annotations

import aiohttp
import ccxt.async_support as ccxt
import pytest

from riskd import checks
from riskd.config import AccountConfig
from riskd.domain import Position, Side
from riskd.exchange import ExchangeAdapter, explain
from riskd.sim import bybit

from .conftest import write_config


@pytest.fixture
def adapter(exchange, clients):
    """riskd's adapter on ccxt's `bybit` pointed at the simulator (the client is closed by `clients`)."""
    client = clients(exchange.url, "bybit")
    return ExchangeAdapter("main", AccountConfig(exchange="bybit", api_key=client.apiKey, secret=client.secret), client)


async def test_an_embedded_bybit_account_is_read_through_ccxts_bybit_class(tmp_path, monkeypatch, clock, started):
    monkeypatch.chdir(tmp_path)
    daemon = await started(write_config(tmp_path, sim={"venue": "bybit"}), clock)
    guard = daemon.guards["demo"]
    assert guard.adapter.client.id == "bybit"
    snapshot = await guard.adapter.snapshot()
    assert snapshot.error is None
    assert {p.symbol for p in snapshot.positions} == {"BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"}
    assert guard.adapter.understood.source.startswith("totalMarginBalance")
    assert snapshot.margin_ratio is not None and 0 < snapshot.margin_ratio < 1


async def test_the_equity_is_the_ledgers_margin_balance_and_every_open_order_is_read(exchange, adapter):
    snapshot = await adapter.snapshot()
    state = exchange.simulator.state()
    assert snapshot.equity == pytest.approx(state["equity"])
    assert {(o.id, o.symbol, o.side, o.amount) for o in snapshot.orders} == {
        (str(o["orderId"]), o["symbol"], o["side"].lower(), o["quantity"]) for o in state["openOrders"]
    }
    assert {o.id for o in snapshot.orders if o.reduce_only} == {str(o["orderId"]) for o in state["openOrders"] if o["reduceOnly"]}


async def test_refusals_come_back_as_bybit_codes_that_ccxt_maps(exchange, adapter):
    await adapter.load()
    short_of_nothing = Position("XRP/USDT:USDT", Side.SHORT, 10.0, 5.0)
    with pytest.raises(ccxt.InvalidOrder, match="110017"):  # reduce-only with no position to reduce
        await adapter.reduce(short_of_nothing, 10.0, "riskd-1-aaaa-1")
    hedged = Position("BTC/USDT:USDT", Side.LONG, 0.15, 9_000.0, position_side="LONG")
    with pytest.raises(ccxt.BadRequest, match="position idx not match position mode"):  # one-way account
        await adapter.reduce(hedged, 0.01, "riskd-1-bbbb-1")
    with pytest.raises(ccxt.OrderNotFound, match="110001"):
        await adapter.client.cancel_order("123", "BTC/USDT:USDT")


async def test_a_signed_request_without_an_api_key_is_refused_as_bybit_refuses_it(exchange):
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{exchange.url}/v5/account/wallet-balance?accountType=UNIFIED") as reply:
            assert reply.status == 200  # Bybit answers refusals with 200 and a retCode
            body = await reply.json()
    assert (body["retCode"], body["retMsg"]) == (10003, "API key is invalid.")
    assert bybit.CODES[-2022] == 110017 and ccxt.bybit().exceptions["exact"]["10003"] is ccxt.AuthenticationError


FAULTS = [
    # (the simulator's fault, its body, what Bybit's reply to it says, the ccxt error it raises
    # through ccxt's bybit; through binanceusdm the same, but for the rate limit, which ccxt's
    # binance raises as DDoSProtection: riskd reads both as rate limited)
    ("http_429", None, '"retCode":10006,"retMsg":"Too many visits!"', ccxt.RateLimitExceeded),
    ("http_418", None, "403 Forbidden access too frequent", ccxt.RateLimitExceeded),
    ("revoked", None, '"retCode":10003', ccxt.AuthenticationError),
    ("clock_skew", None, '"retCode":10002,"retMsg":"invalid request, please check your server timestamp or recv_window param',
     ccxt.InvalidNonce),
    ("http_503", "unavailable", "503 Service Unavailable", ccxt.ExchangeNotAvailable),
    ("http_503", "internal", '"retCode":10016', ccxt.OperationFailed),
    ("http_503", "unknown", '"retCode":10000', ccxt.OperationFailed),
]


@pytest.mark.parametrize(("fault", "body", "said", "error"), FAULTS, ids=[body or fault for fault, body, *_ in FAULTS])
async def test_each_fault_answers_as_bybit_does_and_raises_what_binances_reply_raises(exchange, clients, fault, body, said, error):
    raised = {}
    for market in ("futures", "bybit"):  # ccxt's binanceusdm, then its bybit, on the same simulator
        client = clients(exchange.url, market)
        await client.load_markets()
        exchange.simulator.add_fault(fault, count=1, body=body)
        with pytest.raises(ccxt.BaseError) as caught:
            await client.fetch_balance()
        raised[market] = caught.value
    assert said in str(raised["bybit"]) and type(raised["bybit"]) is error
    binance = ccxt.DDoSProtection if error is ccxt.RateLimitExceeded else error
    assert type(raised["futures"]) is binance
    assert explain(raised["bybit"]).kind is explain(raised["futures"]).kind


async def test_the_rate_limit_is_answered_with_http_200_and_says_when_it_resets(exchange):
    exchange.simulator.add_fault("http_429", count=1, seconds=1.5)
    now = exchange.simulator.ledger.now()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{exchange.url}/v5/market/tickers?category=linear") as reply:
            body, headers, status = await reply.json(), reply.headers, reply.status
    assert status == 200 and (body["retCode"], body["retMsg"], body["time"]) == (10006, "Too many visits!", now)
    assert headers["X-Bapi-Limit-Status"] == "0" and int(headers["X-Bapi-Limit"]) > 0
    assert int(headers["X-Bapi-Limit-Reset-Timestamp"]) == now + 1500


async def test_an_embedded_account_in_hedge_mode_reads_both_sides_of_a_symbol(tmp_path, monkeypatch, clock, started):
    monkeypatch.chdir(tmp_path)
    daemon = await started(write_config(tmp_path, sim={"venue": "bybit", "hedge": True}), clock)
    guard = daemon.guards["demo"]
    await guard.adapter.load()
    hedged = Position("ETH/USDT:USDT", Side.SHORT, 2.0, 6_000.0, position_side="SHORT")
    await guard.adapter.reduce(hedged, 0.5, "riskd-1-cccc-1")  # positionIdx 2, reduce-only
    snapshot = await guard.adapter.snapshot()
    eth = [p for p in snapshot.positions if p.symbol == "ETH/USDT:USDT"]
    assert [(p.key, p.contracts) for p in eth] == [("ETH/USDT:USDT:SHORT", 1.5)]
    assert "position mode: hedge (positions keyed by side)" in await checks.understanding(guard.adapter, snapshot)
