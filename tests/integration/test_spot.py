"""Binance spot end to end: the real ccxt `binance` client over HTTP to the simulator's
spot account, alone and driven by the daemon.

The account is configured as a real Binance spot account would be (`exchange: binance`,
`market: spot`, BNB kept, credentials from the environment), only its URLs pointed at a
simulator this test owns: `configure(market="spot")`. The demo spot account holds 5,000 USDT,
0.05 BTC, 1.5 ETH, 40 SOL and 2 BNB (19,700 USDT at the starting prices) and rests a BTC
bid at 40,000 and an ETH offer at 4,500. The market is still and the clock fake, so every
figure is exact.
"""

from __future__ import annotations

import ccxt.async_support as ccxt
import pytest

from riskd import commands
from riskd.domain import CommandKind, Side, TradingState
from riskd.sim import ccxt_config

from .conftest import tick

BTC, ETH, SOL, BNB = "BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"
ORDER_PATH = "/api/v3/order"


@pytest.fixture
async def client(exchange):
    """ccxt's spot client as a user would build it, without the rate limiter or close()'s sleep."""
    spot = ccxt.binance({**ccxt_config(exchange.url, "spot"), "enableRateLimit": False, "timeout_on_exit": 0})
    yield spot
    await spot.close()


def spot_orders_sent(sim) -> list[dict]:
    return [entry for entry in sim.requests if entry["method"] == "POST" and entry["path"] == ORDER_PATH]


def holdings(sim) -> dict[str, float]:
    return {asset: row["total"] for asset, row in sim.spot_state()["balances"].items()}


# --- the simulator's spot API through ccxt ---------------------------------------------

async def test_ccxt_reads_the_spot_account_from_spot_endpoints_only(client, exchange):
    sim = exchange.simulator
    markets = await client.load_markets()
    assert {m["type"] for m in markets.values()} == {"spot"} and BTC in markets
    assert markets[BTC]["precision"]["amount"] == 0.00001 and markets[BTC]["limits"]["cost"]["min"] == 5
    assert await client.fetch_time() == sim.spot.now()

    balance = await client.fetch_balance()
    assert balance["USDT"] == {"free": 4_600, "used": 400, "total": 5_000}  # 400 locked by the BTC bid
    assert balance["ETH"] == {"free": 1.0, "used": 0.5, "total": 1.5}  # 0.5 locked by the ETH offer
    assert (balance["BTC"]["total"], balance["SOL"]["total"], balance["BNB"]["total"]) == (0.05, 40, 2)

    orders = await client.fetch_open_orders()
    assert {(o["symbol"], o["side"], o["price"], o["amount"], o["clientOrderId"]) for o in orders} == {
        (BTC, "buy", 40_000, 0.01, "demo-spot-btc-bid"),
        (ETH, "sell", 4_500, 0.5, "demo-spot-eth-offer"),
    }
    tickers = await client.fetch_tickers()
    assert (tickers[BTC]["last"], tickers[ETH]["last"], tickers[BNB]["last"]) == (60_000, 3_000, 600)
    assert {entry["path"] for entry in sim.requests} == {
        "/api/v3/exchangeInfo", "/api/v3/time", "/api/v3/account", "/api/v3/openOrders", "/api/v3/ticker/24hr",
    }  # no futures, margin or currency endpoints


async def test_market_and_limit_orders_settle_balances_with_the_fee_in_the_asset_received(client, exchange):
    sim = exchange.simulator
    sold = await client.create_order(SOL, "market", "sell", 10, None, {"clientOrderId": "sell-sol"})
    assert (sold["status"], sold["filled"], sold["average"], sold["clientOrderId"]) == ("closed", 10, 150, "sell-sol")
    assert sold["fee"] == {"currency": "USDT", "cost": 1.5}
    bought = await client.create_order(BTC, "market", "buy", 0.01)
    assert bought["fee"] == {"currency": "BTC", "cost": 0.00001}
    assert holdings(sim)["SOL"] == 30 and holdings(sim)["BTC"] == pytest.approx(0.05999)
    assert holdings(sim)["USDT"] == pytest.approx(5_000 + 1_500 - 1.5 - 600)

    offer = await client.create_order(SOL, "limit", "sell", 5, 200, {"clientOrderId": "offer-sol"})
    assert offer["status"] == "open" and (await client.fetch_balance())["SOL"]["used"] == 5
    sim.set_price(SOL, 210)  # crosses the offer: it fills at its limit, as maker
    assert sim.spot.order(SOL, offer["id"]).status == "FILLED" and holdings(sim)["SOL"] == 25


async def test_spot_rejections_use_binances_codes(client, exchange):
    with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance"):
        await client.create_order(SOL, "market", "sell", 40.001)  # more than the 40 held
    with pytest.raises(ccxt.InsufficientFunds, match="insufficient balance"):
        await client.create_order(ETH, "market", "sell", 1.2)  # 1.5 held, but 0.5 locked by the offer
    with pytest.raises(ccxt.BadRequest, match="-1104"):  # spot has no reduce-only: an unknown parameter
        await client.create_order(SOL, "market", "sell", 1, None, {"reduceOnly": True})
    with pytest.raises(ccxt.BadRequest, match="Filter failure: NOTIONAL"):  # -1013, not InvalidOrder
        await client.create_order(SOL, "market", "sell", 0.01)  # 1.50 USDT, below the 5 USDT minimum

    await client.create_order(SOL, "limit", "sell", 1, 300, {"clientOrderId": "mine"})
    with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent"):  # -2010: unique among open orders
        await client.create_order(SOL, "limit", "sell", 1, 310, {"clientOrderId": "mine"})
    await client.create_order(SOL, "market", "sell", 1, None, {"clientOrderId": "filled"})
    again = await client.create_order(SOL, "market", "sell", 1, None, {"clientOrderId": "filled"})
    assert again["status"] == "closed"  # Binance spot accepts a client id again once its order is done


async def test_cancel_one_order_and_all_of_a_symbols_orders(client, exchange):
    sim = exchange.simulator
    bid = next(o for o in await client.fetch_open_orders() if o["symbol"] == BTC)
    cancelled = await client.cancel_order(bid["id"], BTC)
    assert cancelled["status"] == "canceled" and (await client.fetch_balance())["USDT"]["free"] == 5_000
    with pytest.raises(ccxt.OrderNotFound):  # -2011 Unknown order sent.
        await client.cancel_order(bid["id"], BTC)

    await client.create_order(ETH, "limit", "sell", 0.2, 5_000)
    gone = await client.cancel_all_orders(ETH)
    assert sorted(o["status"] for o in gone) == ["canceled", "canceled"]
    assert sim.spot_state()["openOrders"] == [] and sim.spot.free["ETH"] == 1.5
    with pytest.raises(ccxt.OrderNotFound):  # Binance answers -2011 when there is nothing to cancel
        await client.cancel_all_orders(ETH)
    assert [e["path"] for e in sim.requests if e["method"] == "DELETE"] == ["/api/v3/order"] * 2 + ["/api/v3/openOrders"] * 2


async def test_spot_prices_follow_the_same_market_as_futures(client, exchange):
    sim = exchange.simulator
    sim.move(-0.35)
    state = sim.state()
    assert state["spot"]["prices"][BTC] == state["prices"]["BTC/USDT:USDT"] == 39_000
    assert (await client.fetch_ticker(ETH))["last"] == 1_950
    assert sim.spot.order(BTC, client_id="demo-spot-btc-bid").status == "FILLED"  # the 40,000 bid was crossed
    assert holdings(sim)["USDT"] == 4_600 and holdings(sim)["BTC"] == pytest.approx(0.05 + 0.00999)


# --- the guardian on a spot account ------------------------------------------------------

async def test_the_snapshot_values_holdings_at_the_last_price_and_bnb_is_kept_not_held(configure, exchange, clock, started):
    sim = exchange.simulator
    daemon = await started(configure(market="spot"), clock, ticks=1)
    snapshot = daemon.guards["main"].last_snapshot
    assert snapshot.ok and snapshot.equity == pytest.approx(5_000 + 3_000 + 4_500 + 6_000 + 1_200)
    assert {p.symbol: (p.side, p.contracts, p.notional, p.kind) for p in snapshot.positions} == {
        BTC: (Side.LONG, 0.05, 3_000, "spot"), ETH: (Side.LONG, 1.5, 4_500, "spot"), SOL: (Side.LONG, 40, 6_000, "spot"),
    }
    assert snapshot.balances["BNB"] == 2  # valued at its 600 in the equity above
    assert {(o.symbol, o.side, o.amount) for o in snapshot.orders} == {(BTC, "buy", 0.01), (ETH, "sell", 0.5)}
    assert daemon.store.load_state("main").last_equity == pytest.approx(19_700)

    sim.set_price(BNB, 500)  # kept assets still count in equity
    await tick(daemon, clock)
    assert daemon.guards["main"].last_snapshot.equity == pytest.approx(19_700 - 200)
    assert {e["path"] for e in sim.requests} - {"/api/v3/klines"} == {  # klines: the candles of the market data
        "/api/v3/exchangeInfo", "/api/v3/account", "/api/v3/openOrders", "/api/v3/ticker/24hr",
    }  # spot markets only: no futures exchangeInfo, no margin pairs from /sapi


async def test_a_crash_sells_every_holding_but_bnb_for_usdt_with_plain_market_orders(configure, exchange, clock, started):
    sim = exchange.simulator
    daemon = await started(configure(market="spot"), clock, ticks=1)

    sim.move(-0.20)  # 14,700 USDT of coins lose 2,940: a 14.9 % drawdown, past the 10 % limit
    first = await tick(daemon, clock)
    assert first.actions == ()  # one breaching tick is not enough (confirm: 2)
    await tick(daemon, clock)

    assert sim.spot_state()["openOrders"] == []
    assert holdings(sim) == pytest.approx({"USDT": 5_000 + (2_400 + 3_600 + 4_800) * 0.999, "BNB": 2})
    sent = spot_orders_sent(sim)
    assert {(e["params"]["symbol"], e["params"]["side"], e["params"]["type"], e["params"]["quantity"]) for e in sent} == {
        ("BTCUSDT", "SELL", "MARKET", "0.05"), ("ETHUSDT", "SELL", "MARKET", "1.5"), ("SOLUSDT", "SELL", "MARKET", "40"),
    }
    assert not any("reduceOnly" in e["params"] or "price" in e["params"] for e in sent)
    cancels = [e for e in sim.requests if e["method"] == "DELETE"]
    assert {(e["path"], e["params"]["symbol"]) for e in cancels} == {("/api/v3/openOrders", "BTCUSDT"), ("/api/v3/openOrders", "ETHUSDT")}

    state = daemon.store.load_state("main")
    assert state.trading_state is TradingState.HALTED and "drawdown" in state.latches
    actions = daemon.store.actions("main", 100)
    assert any(a.kind == "flatten" and a.status == "done" for a in actions)
    assert {a.client_order_id for a in actions if a.kind == "order"} == {e["params"]["newClientOrderId"] for e in sent}

    await tick(daemon, clock)  # flat and halted: nothing more to do
    assert len(spot_orders_sent(sim)) == 3


async def test_in_dry_run_no_spot_order_or_cancel_is_sent(configure, exchange, clock, started):
    sim = exchange.simulator
    daemon = await started(configure(live=False, market="spot"), clock, ticks=1)
    sim.move(-0.20)
    await tick(daemon, clock)
    await tick(daemon, clock)

    assert spot_orders_sent(sim) == [] and not [e for e in sim.requests if e["method"] == "DELETE"]
    assert holdings(sim) == {"USDT": 5_000, "BTC": 0.05, "ETH": 1.5, "SOL": 40, "BNB": 2}
    assert daemon.store.load_state("main").trading_state is TradingState.HALTED
    would = [a for a in daemon.store.actions("main", 100) if a.kind == "order"]
    assert {(a.symbol, a.side, a.amount) for a in would} >= {(BTC, "sell", 0.05), (ETH, "sell", 1.5), (SOL, "sell", 40)}
    assert all(a.status == "dry_run" for a in would)


async def test_while_halted_someone_elses_spot_buy_is_sold_back(configure, exchange, clock, started):
    sim = exchange.simulator
    daemon = await started(configure(market="spot"), clock, ticks=1)
    commands.submit(daemon.store, daemon.settings, CommandKind.FREEZE, "main", "cli", "tester", clock(), reason="test")
    await daemon.process_commands()
    assert daemon.store.load_state("main").trading_state is TradingState.HALTED
    assert sim.spot_state()["openOrders"] == []  # freezing cancels what was open; holdings are kept
    sim.clear_requests()

    sim.place_spot_order(BTC, "BUY", "0.01")  # another bot buys 0.01 BTC and gets 0.00999 after the fee
    sim.place_spot_order("XRP/USDT", "BUY", quote_quantity="60")  # and 100 XRP, 99.9 after the fee
    sim.place_spot_order(SOL, "BUY", "1", "LIMIT", "100", client_order_id="bot-bid")
    await tick(daemon, clock)

    assert sim.spot_state()["openOrders"] == []
    after = holdings(sim)
    assert after["BTC"] == pytest.approx(0.05) and "XRP" not in after
    assert (after["ETH"], after["SOL"], after["BNB"]) == (1.5, 40, 2)
    sells = {(e["params"]["symbol"], e["params"]["side"], e["params"]["quantity"]) for e in spot_orders_sent(sim)}
    assert sells == {("BTCUSDT", "SELL", "0.00999"), ("XRPUSDT", "SELL", "99.9")}
    assert not any("reduceOnly" in e["params"] for e in spot_orders_sent(sim))


async def test_dust_too_small_to_sell_counts_in_equity_but_is_not_a_position_to_close(configure, exchange, clock, started):
    sim = exchange.simulator
    sim.spot.deposit("ADA", "0.05")  # below ADA's 0.1 step: no order can sell it
    sim.spot.deposit("LINK", "0.2")  # a valid step, but 3 USDT is below the 5 USDT minimum notional
    daemon = await started(configure(market="spot"), clock, ticks=1)
    snapshot = daemon.guards["main"].last_snapshot
    assert {p.symbol for p in snapshot.positions} == {BTC, ETH, SOL}
    assert snapshot.equity == pytest.approx(19_700 + 0.05 * 0.45 + 0.2 * 15)

    sim.move(-0.20)
    for _ in range(4):
        await tick(daemon, clock)

    assert holdings(sim) == pytest.approx({"USDT": 5_000 + (2_400 + 3_600 + 4_800) * 0.999, "BNB": 2, "ADA": 0.05, "LINK": 0.2})
    assert len(spot_orders_sent(sim)) == 3  # no order the exchange would refuse, on any tick
    actions = daemon.store.actions("main", 100)
    assert [a.status for a in actions if a.kind == "flatten"] == ["done"]
    assert not [a for a in actions if a.kind == "close" or a.status in ("failed", "unconfirmed")]
    assert not [row for row in daemon.store.alerts() if "Could not confirm" in row.text]
