"""The embedded exchange against the real ccxt client, over real HTTP.

Every test drives `ccxt.async_support.binanceusdm`, unmodified except for its URLs
(`ccxt_config`), against a `SimServer` on an ephemeral port, or the simulator
in-process where only its own rules are in question. Unless a test says otherwise
the demo market is still (volatility 0) and its clock is fake, so every price and
figure is exact.
"""

from __future__ import annotations

import time
from decimal import Decimal

import aiohttp
import ccxt.async_support as ccxt
import pytest

from riskd.budget import BINANCE_USDM
from riskd.sim import SimServer, Simulator, ccxt_config
from riskd.sim.ledger import Rejection

from .conftest import START, Clock, demo

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"


@pytest.fixture
async def server(clock, serve) -> SimServer:
    return await serve(demo(clock))


@pytest.fixture
def sim(server) -> Simulator:
    return server.simulator


@pytest.fixture
def exchange(server, clients):
    """The client as the adapter builds it (`build_client`): futures error codes merged in,
    which ccxt applies only to URLs on the real futures host."""
    return clients(server.url)


@pytest.fixture
async def raw(server):
    """ccxt's binanceusdm as it comes, only pointed at the simulator, with riskd's shipped rate limiter."""
    client = ccxt.binanceusdm({**ccxt_config(server.url), **BINANCE_USDM.limiter(), "timeout_on_exit": 0})
    yield client
    await client.close()


@pytest.fixture
async def http(server):
    async with aiohttp.ClientSession(base_url=server.url) as session:
        yield session


async def positions_by_symbol(exchange) -> dict:
    return {p["symbol"]: p for p in await exchange.fetch_positions()}


# --- reading the account ------------------------------------------------------------

async def test_load_markets_gives_linear_swaps_with_precision(exchange):
    markets = await exchange.load_markets()
    swaps = [m for m in markets.values() if m["swap"] and m["linear"] and m["active"] and m["settle"] == "USDT"]
    assert len(swaps) >= 20
    btc = markets[BTC]
    assert btc["id"] == "BTCUSDT"
    assert btc["precision"] == {"amount": 0.001, "price": 0.1, "base": 1e-08, "quote": 1e-08}
    assert btc["limits"]["amount"]["min"] == 0.001
    assert btc["limits"]["cost"]["min"] == 100
    assert markets[SOL]["precision"]["amount"] == 1


async def test_fetch_balance_total_is_wallet_plus_unrealized(exchange, sim):
    balance = await exchange.fetch_balance()
    unrealized = 0.15 * (60_000 - 58_500) - 2 * (3_000 - 3_040) + 20 * (150 - 156)  # 225 + 80 - 120
    assert balance["USDT"]["total"] == pytest.approx(10_000 + unrealized)
    assert balance["USDT"]["total"] == sim.state()["equity"]
    assert balance["USDT"]["used"] == pytest.approx(1_800 + 76 + 210)  # positions + two opening orders, 10x
    assert balance["USDT"]["free"] == pytest.approx(balance["USDT"]["total"] - balance["USDT"]["used"])


async def test_fetch_positions_returns_the_demo_positions(exchange):
    positions = await positions_by_symbol(exchange)
    assert set(positions) == {BTC, ETH, SOL}
    btc, eth, sol = positions[BTC], positions[ETH], positions[SOL]
    assert (btc["side"], btc["contracts"], btc["entryPrice"]) == ("long", 0.15, 58_500)
    assert (eth["side"], eth["contracts"], eth["entryPrice"]) == ("short", 2, 3_040)
    assert (sol["side"], sol["contracts"], sol["entryPrice"]) == ("long", 20, 156)
    assert {p["marginMode"] for p in positions.values()} == {"cross"}
    assert eth["unrealizedPnl"] == pytest.approx(80)
    # Cross margin, others held at mark: ETH's short dies at (2*3040 + 10057) / (2*1.004).
    cushion = 10_000 + 225 - 120 - 0.004 * (9_000 + 3_000)
    assert eth["liquidationPrice"] == pytest.approx((2 * 3_040 + cushion) / (2 * 1.004), abs=0.01)
    # The longs cannot be liquidated at any positive price: Binance sends "0", ccxt None.
    assert btc["liquidationPrice"] is None and sol["liquidationPrice"] is None


async def test_fetch_open_orders_without_symbol_returns_resting_orders(exchange):
    orders = await exchange.fetch_open_orders()
    assert {(o["symbol"], o["side"], o["amount"], o["price"], o["reduceOnly"]) for o in orders} == {
        (BTC, "buy", 0.02, 38_000, False), (BTC, "sell", 0.05, 90_000, True),
        (ETH, "sell", 0.5, 4_200, False), (SOL, "sell", 10, 230, True)}
    assert all(o["status"] == "open" and o["type"] == "limit" for o in orders)
    assert {o["clientOrderId"] for o in orders} == {
        "demo-btc-bid", "demo-btc-take-profit", "demo-eth-offer", "demo-sol-take-profit"}


async def test_fetch_ohlcv_returns_history_from_the_seed(clock, serve, clients):
    server = await serve(Simulator.demo(seed=7, clock=clock.epoch))  # default volatility
    exchange = clients(server.url)
    candles = await exchange.fetch_ohlcv(BTC, "1m", limit=500)
    assert len(candles) == 500
    assert all(b[0] - a[0] == 60_000 for a, b in zip(candles, candles[1:]))
    assert all(c[3] <= min(c[1], c[4]) <= max(c[1], c[4]) <= c[2] and c[5] > 0 for c in candles)
    assert len({c[4] for c in candles}) > 100  # the walk moves
    assert candles[-1][4] == 60_000  # history ends at the starting price
    hourly = await exchange.fetch_ohlcv(BTC, "1h", limit=5)
    assert [b[0] - a[0] for a, b in zip(hourly, hourly[1:])] == [3_600_000] * 4
    twin = Simulator.demo(seed=7, clock=Clock().epoch)
    assert twin.market.candles("BTCUSDT") == server.simulator.market.candles("BTCUSDT")


async def test_fetch_tickers_mark_prices_and_position_mode(exchange):
    tickers = await exchange.fetch_tickers()
    assert len(tickers) == 25 and tickers[BTC]["last"] == 60_000
    marks = await exchange.fetch_mark_prices([BTC, ETH])
    assert marks[ETH]["markPrice"] == 3_000
    assert (await exchange.fetch_position_mode())["hedged"] is False
    assert await exchange.fetch_time() == START.timestamp() * 1000


# --- orders ---------------------------------------------------------------------

async def test_reduce_only_market_order_closes_a_position_fully(exchange, sim):
    order = await exchange.create_order(BTC, "market", "sell", 0.15, params={"reduceOnly": True})
    assert (order["status"], order["filled"], order["average"]) == ("closed", 0.15, 60_000)
    assert order["reduceOnly"] is True
    assert BTC not in await positions_by_symbol(exchange)
    # The BTC take-profit (reduce-only) went with the position; the bid stays.
    assert [o["clientOrderId"] for o in await exchange.fetch_open_orders(BTC)] == ["demo-btc-bid"]
    # 225 realized, less the 0.04 % taker fee on 9,000.
    assert sim.ledger.wallet == Decimal("10225") - Decimal("3.6")
    trades = await exchange.fetch_my_trades(BTC)
    assert trades[-1]["fee"]["cost"] == 3.6 and trades[-1]["info"]["realizedPnl"] == "225.00000000"


async def test_reduce_only_larger_than_the_position_never_flips_it(exchange):
    order = await exchange.create_order(SOL, "market", "sell", 50, params={"reduceOnly": True})
    assert order["filled"] == 20 and order["amount"] == 20
    positions = await positions_by_symbol(exchange)
    assert SOL not in positions
    # The same on a short: buying back more than 2 ETH leaves it flat, not long.
    await exchange.create_order(ETH, "market", "buy", 5, params={"reduceOnly": True})
    assert ETH not in await positions_by_symbol(exchange)


async def test_reduce_only_that_would_increase_is_rejected(exchange, sim):
    with pytest.raises(ccxt.InvalidOrder, match="-2022"):
        await exchange.create_order(BTC, "market", "buy", 0.01, params={"reduceOnly": True})
    with pytest.raises(ccxt.InvalidOrder, match="ReduceOnly Order is rejected"):
        await exchange.create_order("BNB/USDT:USDT", "market", "sell", 1, params={"reduceOnly": True})
    assert sim.state()["fills"] == 0


async def test_without_the_merged_error_table_rejections_are_plain_exchange_errors(raw):
    with pytest.raises(ccxt.ExchangeError) as raised:
        await raw.create_order(BTC, "market", "buy", 0.01, params={"reduceOnly": True})
    assert type(raised.value) is ccxt.ExchangeError


async def test_cancel_all_orders_cancels_that_symbol_only(exchange):
    await exchange.cancel_all_orders(BTC)
    assert await exchange.fetch_open_orders(BTC) == []
    assert {o["symbol"] for o in await exchange.fetch_open_orders()} == {ETH, SOL}


async def test_fetch_and_cancel_one_order_by_client_id(exchange):
    order = await exchange.fetch_order(None, BTC, params={"clientOrderId": "demo-btc-bid"})
    assert (order["price"], order["status"]) == (38_000, "open")
    canceled = await exchange.cancel_order(order["id"], BTC)
    assert canceled["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        await exchange.cancel_order(order["id"], BTC)
    with pytest.raises(ccxt.OrderNotFound):
        await exchange.fetch_order("123", BTC)


async def test_duplicate_client_order_id_is_rejected(exchange, sim):
    params = {"clientOrderId": "guardian-close-1", "reduceOnly": True}
    await exchange.create_order(BTC, "market", "sell", 0.05, params=params)
    with pytest.raises(ccxt.InvalidOrder, match="-4116"):
        await exchange.create_order(BTC, "market", "sell", 0.05, params=params)
    assert sim.state()["positions"][0]["amount"] == 0.1


async def test_insufficient_margin_and_small_notional_are_rejected(exchange):
    with pytest.raises(ccxt.InsufficientFunds, match="-2019"):
        await exchange.create_order(BTC, "market", "buy", 2)  # 120,000 notional, 12,000 margin
    with pytest.raises(ccxt.InvalidOrder, match="-4164"):
        await exchange.create_order(BTC, "market", "buy", 0.001)  # 60 < 100 USDT


def test_quantity_and_price_filters_use_binance_codes(sim):
    def code(**order) -> int:
        with pytest.raises(Rejection) as raised:
            sim.place_order(**{"symbol": BTC, "side": "buy", "quantity": "0.01", **order})
        return raised.value.code
    assert code(quantity="0.0001") == -1111
    assert code(quantity="0") == -4003
    assert code(type="LIMIT", price="50000.05") == -4014
    assert code(symbol="NOPEUSDT") == -1121


async def test_limit_order_fills_when_the_price_crosses_it(exchange, sim):
    order = await exchange.create_order(ETH, "limit", "buy", 1, 2_900)
    assert order["status"] == "open"
    sim.set_price(ETH, 2_899)
    filled = await exchange.fetch_order(order["id"], ETH)
    assert (filled["status"], filled["average"]) == ("closed", 2_900)
    eth = (await positions_by_symbol(exchange))[ETH]
    assert (eth["side"], eth["contracts"], eth["entryPrice"]) == ("short", 1, 3_040)
    trade = (await exchange.fetch_my_trades(ETH))[-1]
    assert trade["takerOrMaker"] == "maker" and trade["fee"]["cost"] == pytest.approx(2_900 * 0.0002)


def test_account_is_liquidated_when_the_mark_crosses_its_liquidation_price(sim):
    sim.ledger.cancel_all(ETH)  # else the 4,200 offer fills on the way up and moves the price
    eth = sim.ledger.position(sim.ledger.contract(ETH))
    liquidation = sim.ledger.liquidation_price(eth)
    sim.set_price(ETH, float(liquidation) - 5)
    assert sim.state()["positions"] and sim.state()["liquidations"] == 0
    sim.set_price(ETH, float(liquidation) + 5)
    state = sim.state()
    assert state["positions"] == [] and state["openOrders"] == [] and state["liquidations"] == 3
    assert 0 <= state["wallet"] < 100  # what was left above maintenance, after fees


async def test_countdown_cancel_all_fires_on_the_simulator_clock(exchange, clock):
    await exchange.fapiPrivatePostCountdownCancelAll({"symbol": "BTCUSDT", "countdownTime": 5000})
    clock.advance(4)
    assert len(await exchange.fetch_open_orders(BTC)) == 2
    clock.advance(2)
    assert await exchange.fetch_open_orders(BTC) == []


# --- scenarios ------------------------------------------------------------------

async def test_crash_scenario_lowers_prices_over_time(exchange, sim, clock):
    sim.run_scenario("crash", depth=0.3, duration=30)
    assert (await exchange.fetch_ticker(BTC))["last"] == 60_000
    clock.advance(15)
    assert (await exchange.fetch_ticker(BTC))["last"] == pytest.approx(51_000)
    clock.advance(30)
    tickers = await exchange.fetch_tickers([BTC, SOL])
    assert tickers[BTC]["last"] == pytest.approx(42_000) and tickers[SOL]["last"] == pytest.approx(105)
    balance = await exchange.fetch_balance()
    # Longs 9,000 + 3,000 lose 30 %, the 6,000 short gains 30 %: equity falls by 1,800.
    assert balance["USDT"]["total"] == pytest.approx(10_185 - 1_800)


def test_other_scenarios_follow_their_scripts():
    clock = Clock()
    sim = Simulator.demo(clock=clock.epoch, volatility=0)
    btc = lambda: sim.market.prices()["BTCUSDT"]  # noqa: E731
    sim.run_scenario("flash_crash", depth=0.2, duration=2, recovery=0.8, recovery_time=10)
    clock.advance(2)
    assert btc() == pytest.approx(48_000)
    clock.advance(10)
    assert btc() == pytest.approx(57_600)
    sim.run_scenario("liquidation_cascade", depth=0.2, steps=2, interval=5)  # from 57,600
    assert btc() == pytest.approx(57_600 * 0.9)
    clock.advance(5)
    assert btc() == pytest.approx(57_600 * 0.8)
    sim.run_scenario(None)
    clock.advance(60)
    assert btc() == pytest.approx(57_600 * 0.8)  # the level reached is kept

    clocks = Clock(), Clock()
    calm, spiking = (Simulator(seed=1, clock=each.epoch) for each in clocks)
    spiking.run_scenario("volatility_spike", factor=10, duration=600)
    for each in clocks:
        each.advance(300)
    moves = [abs(s.market.prices()["BTCUSDT"] / 60_000 - 1) for s in (calm, spiking)]
    assert moves[1] > 3 * moves[0]


# --- faults -------------------------------------------------------------------

async def test_http_503_is_exchange_not_available(exchange, sim):
    sim.add_fault("http_503", count=1)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await exchange.fetch_balance()
    assert (await exchange.fetch_balance())["USDT"]["total"] > 0  # the count is spent


async def test_http_503_unknown_executes_the_order_but_reports_failure(exchange, sim):
    """Binance's "execution status unknown": ccxt raises, yet the order went through."""
    await exchange.load_markets()
    sim.add_fault("http_503", count=1, path="/fapi/v1/order", body="unknown")
    with pytest.raises(ccxt.OperationFailed):
        await exchange.create_order(SOL, "market", "sell", 20, params={"reduceOnly": True})
    assert SOL not in await positions_by_symbol(exchange)


async def test_http_429_is_a_rate_limit_error(exchange, sim):
    sim.add_fault("http_429", duration=60)
    with pytest.raises((ccxt.DDoSProtection, ccxt.RateLimitExceeded), match="-1003"):
        await exchange.fetch_positions()


async def test_http_418_is_an_ip_ban_as_binance_words_it(exchange, sim):
    sim.add_fault("http_418", count=1)
    with pytest.raises(ccxt.DDoSProtection, match="IP banned until") as banned:
        await exchange.fetch_positions()
    until = int(str(banned.value).split("banned until ")[1].split(".")[0])
    assert until == sim.ledger.now() + 120_000
    assert sim.requests[-1]["faults"] == ["http_418"]


async def test_latency_delays_every_reply(exchange, sim):
    await exchange.load_markets()
    started = time.perf_counter()
    await exchange.fetch_time()
    fast = time.perf_counter() - started
    sim.add_fault("latency", seconds=0.2)
    started = time.perf_counter()
    await exchange.fetch_time()
    await exchange.fetch_balance()
    assert time.perf_counter() - started >= 0.39 > fast


async def test_malformed_reply_gives_an_empty_balance_not_an_error(raw, exchange, sim):
    """The hazard: to ccxt as it comes, a 200 OK HTML page parses to an account with no USDT
    and no positions. A caller that does not check for the currency would read the account
    as worth zero. The client riskd builds refuses such a reply instead."""
    await raw.load_markets()
    await raw.load_leverage_brackets()
    sim.add_fault("malformed", path="/fapi/v3/")
    balance = await raw.fetch_balance()
    assert "USDT" not in balance and isinstance(balance["info"], str)
    assert await raw.fetch_positions() == []
    with pytest.raises(ccxt.BadResponse, match="not JSON"):
        await exchange.fetch_balance()
    sim.clear_faults()
    sim.add_fault("malformed", count=1, body="truncated")
    assert "USDT" not in await raw.fetch_balance()
    assert (await raw.fetch_balance())["USDT"]["total"] > 0


async def test_timeout_is_request_timeout_and_ends_when_the_server_stops(server, sim, clients):
    exchange = clients(server.url, timeout="1s")
    await exchange.load_markets()
    sim.add_fault("timeout", path="/fapi/v3/account")
    started = time.perf_counter()
    with pytest.raises(ccxt.RequestTimeout):
        await exchange.fetch_balance()
    assert 0.9 < time.perf_counter() - started < 3
    await exchange.close()
    started = time.perf_counter()
    await server.stop()
    assert time.perf_counter() - started < 1.5


async def test_a_fault_with_a_duration_expires_on_the_simulator_clock(exchange, sim, clock):
    sim.add_fault("http_503", duration=10)
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await exchange.fetch_time()
    clock.advance(11)
    assert await exchange.fetch_time() == (START.timestamp() + 11) * 1000


# --- the HTTP surface and controls ------------------------------------------------

async def test_request_log_shows_reduce_only_on_every_order(exchange, http):
    await exchange.create_order(BTC, "market", "sell", 0.05, params={"reduceOnly": True})
    await exchange.create_order(ETH, "market", "buy", 1, params={"reduceOnly": True})
    async with http.get("/_sim/requests") as reply:
        log = await reply.json()
    orders = [r for r in log if (r["method"], r["path"]) == ("POST", "/fapi/v1/order")]
    assert len(orders) == 2
    assert all(r["params"]["reduceOnly"] == "true" and r["params"]["newClientOrderId"] for r in orders)
    assert {r["path"] for r in log} >= {"/fapi/v1/exchangeInfo", "/fapi/v1/order"}
    async with http.delete("/_sim/requests") as reply:
        assert (await reply.json())["cleared"] == len(log)
    async with http.get("/_sim/requests") as reply:
        assert await reply.json() == []


async def test_private_endpoints_need_an_api_key_and_unknown_paths_are_404(http):
    async with http.get("/fapi/v3/account") as reply:
        assert reply.status == 401
        assert await reply.json() == {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
    async with http.get("/fapi/v3/account", headers={"X-MBX-APIKEY": "anything"}) as reply:
        assert reply.status == 200 and (await reply.json())["assets"][0]["updateTime"] > 0
    async with http.get("/fapi/v9/nothing") as reply:
        assert reply.status == 404 and (await reply.json())["code"] == -5000


async def test_control_endpoints_over_http(http, exchange, clock):
    async with http.post("/_sim/price", json={"symbol": "BTCUSDT", "price": 55_000}) as reply:
        assert (await reply.json())[BTC] == 55_000
    async with http.post("/_sim/price", json={"move": -0.1}) as reply:
        prices = await reply.json()
    assert prices[BTC] == pytest.approx(49_500) and prices[ETH] == pytest.approx(2_700)
    async with http.post("/_sim/order", json={"symbol": SOL, "side": "SELL", "quantity": "5",
                                              "reduceOnly": True, "newClientOrderId": "other-bot"}) as reply:
        assert (await reply.json())["status"] == "FILLED"
    async with http.post("/_sim/order", json={"symbol": SOL, "side": "BUY", "quantity": "5",
                                              "reduceOnly": "true"}) as reply:
        assert reply.status == 400 and (await reply.json())["code"] == -2022
    async with http.post("/_sim/scenario", json={"name": "crash", "depth": 0.5, "duration": 10}) as reply:
        assert (await reply.json())["scenario"] == "crash"
    clock.advance(10)
    async with http.get("/_sim/state") as reply:
        state = await reply.json()
    assert state["prices"][BTC] == pytest.approx(24_750) and state["scenario"] == "crash"
    assert {p["symbol"]: p["amount"] for p in state["positions"]}[SOL] == 15
    async with http.post("/_sim/fault", json={"kind": "http_503", "path": "/fapi/v1/time"}) as reply:
        assert (await reply.json())["kind"] == "http_503"
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await exchange.fetch_time()
    async with http.delete("/_sim/fault") as reply:
        assert (await reply.json())["cleared"] == 1
    assert await exchange.fetch_time() > 0
    async with http.post("/_sim/fault", json={"kind": "meteor"}) as reply:
        assert reply.status == 400


async def test_fetch_order_book_gives_one_level_a_tick_either_side_of_the_mark(exchange, sim):
    book = await exchange.fetch_order_book("LINK/USDT:USDT", 5)
    mark = sim.state()["prices"]["LINK/USDT:USDT"]
    assert book["bids"][0][0] == pytest.approx(mark - 0.001) and book["asks"][0][0] == pytest.approx(mark + 0.001)
    assert book["bids"][0][1] >= 1_000_000 and len(book["bids"]) == len(book["asks"]) == 1


async def test_the_account_is_cross_margin_only_and_says_so(exchange):
    with pytest.raises(ccxt.MarginModeAlreadySet):  # Binance's answer when nothing needs changing
        await exchange.set_margin_mode("cross", "LINK/USDT:USDT")
    with pytest.raises(ccxt.OperationFailed, match="cross margin only"):
        await exchange.set_margin_mode("isolated", "LINK/USDT:USDT")
    assert await exchange.fapiPrivateGetMultiAssetsMargin() == {"multiAssetsMargin": False}
