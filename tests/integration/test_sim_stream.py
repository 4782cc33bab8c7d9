"""The embedded exchange's mark-price websocket stream against the real ccxt.pro client.

`ccxt.pro.binanceusdm`, unmodified except for its URLs (`ccxt_config` points its
`urls['api']['ws']` at the simulator), subscribes to `<symbol>@markPrice@1s` or
`!markPrice@arr@1s` on `/market/ws/<n>` as it would on Binance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import aiohttp
import ccxt.pro
import pytest

from riskd.sim import SimServer, Simulator, ccxt_config
from tests.timing import limit

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


@pytest.fixture
async def server():
    server = SimServer(Simulator.demo(seed=7, volatility=0))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(server):
    settings = ccxt_config(server.url)
    for key in ("apiKey", "secret"):
        settings.pop(key)
    client = ccxt.pro.binanceusdm(settings)
    yield client
    await client.close()


async def marks(client, symbols=None) -> dict[str, float]:
    tickers = await asyncio.wait_for(client.watch_mark_prices(symbols), limit(5))
    return {symbol: ticker["markPrice"] for symbol, ticker in tickers.items()}


def test_every_websocket_url_points_at_the_simulator():
    urls = ccxt.pro.binanceusdm(ccxt_config("http://127.0.0.1:1")).urls["api"]["ws"]
    flat = [url for url in urls.values() if isinstance(url, str)] + list(urls["ws-api"].values())
    assert flat and all(url.startswith("ws://127.0.0.1:1/") for url in flat)


async def test_a_subscription_gets_the_marks_at_once_and_each_move_as_it_happens(server, client):
    assert await marks(client, [BTC]) == {BTC: 60_000.0}
    assert server.streams.state()["subscriptions"] == ["btcusdt@markPrice@1s"]

    server.simulator.set_price("BTCUSDT", 51_000)
    server.streams.moved()
    assert await marks(client, [BTC]) == {BTC: 51_000.0}


async def test_the_all_market_stream_carries_every_symbol(server, client):
    got = await marks(client)
    assert server.streams.state()["subscriptions"] == ["!markPrice@arr@1s"]
    assert got[BTC] == 60_000.0 and got[ETH] == 3_000.0 and len(got) == len(server.simulator.ledger.contracts)


async def test_without_a_move_the_marks_come_every_second(server, client):
    await marks(client, [BTC])
    loop = asyncio.get_running_loop()
    started = loop.time()
    await marks(client, [BTC])
    assert 0.8 < loop.time() - started < limit(2)


async def test_subscribe_is_answered_and_combined_streams_wrap_each_event(server):
    url = server.url.replace("http", "ws")
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{url}/market/ws") as socket:
            await socket.send_json({"method": "SUBSCRIBE", "params": ["ethusdt@markPrice"], "id": 7})
            assert json.loads((await socket.receive()).data) == {"result": None, "id": 7}
            event = json.loads((await socket.receive()).data)
            assert event["e"] == "markPriceUpdate" and event["s"] == "ETHUSDT" and event["p"] == "3000.00000000"
        async with session.ws_connect(f"{url}/stream?streams=btcusdt@markPrice@1s") as socket:
            server.streams.moved()
            wrapped = json.loads((await socket.receive()).data)
            assert wrapped["stream"] == "btcusdt@markPrice@1s" and wrapped["data"]["s"] == "BTCUSDT"


async def test_controls_drop_refuse_and_glitch(server, client):
    await marks(client, [BTC])
    ledger = server.simulator.ledger
    async with aiohttp.ClientSession() as session:
        waiting = asyncio.create_task(marks(client, [BTC]))
        await asyncio.sleep(0.05)
        async with session.post(f"{server.url}/_sim/stream", json={"glitch": {"symbol": "BTCUSDT", "price": 1}}) as reply:
            assert (await reply.json())["open"] == 1
        assert await waiting == {BTC: 1.0}
        assert ledger.mark(ledger.contract("BTCUSDT")) == 60_000  # on the stream only

        async with session.post(f"{server.url}/_sim/stream", json={"down": True}) as reply:
            assert (await reply.json())["down"] is True
        with pytest.raises(ccxt.NetworkError):
            await marks(client, [BTC])  # the dropped connection
        with pytest.raises(ccxt.NetworkError):
            await marks(client, [BTC])  # and the refused new one
        async with session.post(f"{server.url}/_sim/stream", json={"down": False}) as reply:
            assert (await reply.json())["down"] is False
        assert await marks(client, [BTC]) == {BTC: 60_000.0}
        assert server.streams.connections == 2


@pytest.mark.parametrize("kind", ["dropped", "revoked", "clock_skew", "http_503", "malformed"])
async def test_a_rest_fault_leaves_the_websocket_upgrade_alone(server, client, kind):
    await client.load_markets()  # the one REST call a subscription makes
    fault = server.simulator.add_fault(kind, count=1)  # on every path, the stream's included
    assert await marks(client, [BTC]) == {BTC: 60_000.0}
    assert fault.hits == 0 and server.simulator.faults.active() == [fault]  # still there for the next REST call
    with contextlib.suppress(ccxt.BaseError):
        await client.fetch_time()
    # the next REST call meets it (and only that one: aiohttp may retry a dropped GET)
    assert fault.hits == 1
    assert [entry["faults"] for entry in server.simulator.requests if entry["faults"]] == [[kind]]
