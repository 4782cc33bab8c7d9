"""Each venue's recorded replies, read through the real ccxt class and riskd's adapter.

The replies under tests/data/venues/ were recorded from the real venues (each file names
its source). A loopback HTTP server replays them, so ccxt signs, sends and parses real
requests; only the markets are given to ccxt by hand (the recorded replies hold none).
Every expected figure is worked out here from the raw reply, not taken from riskd.
"""

from __future__ import annotations


import pytest

from riskd.config import AccountConfig
from riskd.domain import Side
from riskd.exchange import ExchangeAdapter, build_client
from tests.replay import Replay, market, pointed, recorded


@pytest.fixture
async def read():
    """`read(venue, exchange, markets, options)`: one snapshot of the recorded account."""
    servers, adapters = [], []

    async def read(venue: str, exchange: str, markets, options=None, variant: str | None = None, **account):
        data = recorded(venue)
        server = Replay({**data["replies"], **(data[variant] if variant else {})})
        await server.start()
        servers.append(server)
        config = AccountConfig(
            exchange=exchange, api_key="k" * 16, secret="s" * 16, password="p" * 8,
            ccxt={"enableRateLimit": False, "options": options or {}}, **account,
        )
        client = build_client(config)
        client.urls["api"] = pointed(client.urls["api"], server.url)
        client.set_markets(markets(client))
        adapter = ExchangeAdapter("recorded", config, client)
        adapters.append(adapter)
        snapshot = await adapter.snapshot()
        assert snapshot.error is None, f"{snapshot.error} (requests: {server.requests})"
        return snapshot, adapter, server, server.replies

    yield read
    for adapter in adapters:
        await adapter.close()
    for server in servers:
        await server.stop()


async def test_binance_usdm_multi_assets_equity_is_the_margin_balance_of_every_asset(read):
    snapshot, adapter, server, replies = await read(
        "binanceusdm", "binanceusdm",
        lambda c: [market(c, "BTC/USDT:USDT", "BTCUSDT"), market(c, "LTC/USDT:USDT", "LTCUSDT")],
        {"leverageBrackets": recorded("binanceusdm")["leverageBrackets"]},
    )
    account, risk = replies["account"], replies["positionRisk"][0]
    usdt = next(a for a in account["assets"] if a["asset"] == "USDT")
    usdc = next(a for a in account["assets"] if a["asset"] == "USDC")
    # By hand: 4.27203287 USDT margin balance + 22 USDC = 26.27203287 ≈ totalMarginBalance 26.26840422
    # (the venue values USDC at its USD price). ccxt's `total` of USDT is 3.72964781 alone.
    assert float(usdt["marginBalance"]) + float(usdc["marginBalance"]) == pytest.approx(26.272, abs=0.01)
    assert snapshot.equity == pytest.approx(26.26840422)
    assert adapter.understood.collateral == ("USDC", "USDT")
    assert snapshot.margin_ratio == pytest.approx(2.43034303 / 26.26840422)
    (position,) = snapshot.positions
    assert (position.symbol, position.side, position.position_side) == ("BTC/USDT:USDT", Side.LONG, None)
    assert position.contracts == pytest.approx(0.009)
    assert position.notional == pytest.approx(0.009 * 1 * 67502.68519858)  # 607.524, as the venue's own notional
    assert position.notional == pytest.approx(float(risk["notional"]))
    assert position.entry_price == pytest.approx(67445.9)
    assert position.mark_price == pytest.approx(67502.68519858)
    assert position.unrealized_pnl == pytest.approx(0.51106678)
    assert position.liquidation_price == pytest.approx(64846.9875379)
    assert position.kind == "derivative"
    assert position.notional / snapshot.equity == pytest.approx(23.13, abs=0.01)  # not 142× on 4.27 USDT
    assert len(snapshot.orders) == len(replies["openOrders"]) == 1
    (order,) = snapshot.orders
    assert (order.id, order.symbol, order.side, order.amount, order.remaining) == ("664082074", "LTC/USDT:USDT", "buy", 0.2, 0.2)


async def test_bybit_unified_equity_counts_every_collateral_and_unrealized_pnl(read):
    snapshot, adapter, server, replies = await read(
        "bybit", "bybit",
        lambda c: [market(c, "LTC/USDT:USDT", "LTCUSDT"), market(c, "BTC/USDT:USDT", "BTCUSDT")],
        # A unified trading account: what ccxt would otherwise learn from /v5/user/query-api.
        {"enableUnifiedMargin": False, "enableUnifiedAccount": True},
    )
    wallet = replies["/v5/account/wallet-balance"]["result"]["list"][0]
    usdt = next(c for c in wallet["coin"] if c["coin"] == "USDT")
    # By hand: the USDT wallet balance 3322.26 leaves out its -17.96 unrealized PnL, and the
    # account margins with seven coins; the venue's margin balance is 90042.28 USD.
    assert float(usdt["walletBalance"]) + float(usdt["unrealisedPnl"]) == pytest.approx(float(usdt["equity"]))
    assert snapshot.balances["USDT"] == pytest.approx(3322.25896609)  # ccxt's total: the wallet balance
    assert snapshot.equity == pytest.approx(90042.2788482)
    assert adapter.understood.collateral == ("ADA", "BTC", "ETH", "LTC", "USDC", "USDT", "XRP")
    assert snapshot.margin_ratio == 0.0  # accountMMRate "0": 7.39 / 90042 rounds to 0 at four places
    (position,) = snapshot.positions
    assert (position.symbol, position.side, position.position_side) == ("LTC/USDT:USDT", Side.LONG, None)
    assert position.contracts == pytest.approx(1.2)
    assert position.notional == pytest.approx(1.2 * 1 * 71.1)  # 85.32 at mark; positionValue 77.52 is at entry
    assert position.entry_price == pytest.approx(64.59947917)
    assert position.mark_price == pytest.approx(71.1)
    assert position.unrealized_pnl == pytest.approx(7.800625)
    assert position.liquidation_price is None  # liqPrice "": cannot be measured, not safe
    assert position.leverage == pytest.approx(6)
    assert len(snapshot.orders) == 1
    (order,) = snapshot.orders
    assert (order.symbol, order.side, order.amount, order.remaining) == ("BTC/USDT:USDT", "buy", 0.001, 0.001)


async def test_okx_multi_currency_equity_is_the_adjusted_equity_and_hedge_positions_keep_their_side(read):
    snapshot, adapter, server, replies = await read(
        "okx", "okx",
        lambda c: [market(c, "LTC/USDT:USDT", "LTC-USDT-SWAP", 0.001)],
    )
    account = replies["/api/v5/account/balance"]["data"][0]
    usdt = next(d for d in account["details"] if d["ccy"] == "USDT")
    # By hand: the USDT equity is 0.000258796; the account margins with 152550.81 USD of
    # discounted collateral (adjEq), of which 9.07 is maintenance margin.
    assert float(usdt["eq"]) < 0.001
    assert snapshot.equity == pytest.approx(152550.80919105993)
    assert snapshot.margin_ratio == pytest.approx(9.073149592403611 / 152550.80919105993)
    assert adapter.understood.collateral == ("ADA", "BTC", "ETH", "LTC", "OKB", "TRX", "UNI", "USDC", "USDT")
    (position,) = snapshot.positions
    assert (position.symbol, position.side, position.position_side) == ("LTC/USDT:USDT", Side.LONG, "LONG")
    assert position.key == "LTC/USDT:USDT:LONG"
    assert position.contracts == pytest.approx(1)
    assert position.notional == pytest.approx(1 * 0.001 * 68.24)  # = notionalUsd 0.0682 at the mark
    assert position.entry_price == pytest.approx(68.24)
    assert position.mark_price == pytest.approx(68.24)
    assert position.unrealized_pnl == 0.0
    assert position.liquidation_price is None  # liqPx "" in cross margin
    assert position.leverage == pytest.approx(3)
    assert len(snapshot.orders) == 0
    assert {"/api/v5/account/balance", "/api/v5/account/positions", "/api/v5/trade/orders-pending"} <= set(server.requests)


async def test_a_position_of_size_zero_is_no_position(read):
    snapshot, adapter, server, replies = await read(
        "bybit", "bybit", lambda c: [market(c, "LTC/USDT:USDT", "LTCUSDT"), market(c, "BTC/USDT:USDT", "BTCUSDT")],
        {"enableUnifiedMargin": False, "enableUnifiedAccount": True}, variant="closed",
    )
    (raw,) = replies["/v5/position/list"]["result"]["list"]
    assert raw["size"] == "0" and raw["markPrice"] == "68"  # the venue still lists the symbol
    assert snapshot.positions == () and snapshot.equity == pytest.approx(90042.2788482)


async def parsed_position(exchange: str, raw: dict, contract_size: float, market_id: str):
    """A recorded position through ccxt's own parser and riskd's adapter (no balance was recorded)."""
    client = build_client(AccountConfig(exchange=exchange))
    try:
        ltc = market(client, "LTC/USDT:USDT", market_id, contract_size)
        client.set_markets([ltc])
        return ExchangeAdapter("recorded", AccountConfig(exchange=exchange), client)._position(client.parse_position(raw, ltc))
    finally:
        await client.close()


async def test_bitget_hedge_position_keeps_its_side_and_its_zero_liquidation_price_is_unknown():
    (raw,) = recorded("bitget")["positions"]["data"]
    position = await parsed_position("bitget", raw, 1.0, "LTCUSDT")
    assert (position.symbol, position.side, position.position_side) == ("LTC/USDT:USDT", Side.LONG, "LONG")
    assert position.contracts == pytest.approx(0.1)
    assert position.notional == pytest.approx(0.1 * 1 * 72.62)  # 7.262 at the mark
    assert position.entry_price == pytest.approx(72.66)
    assert position.mark_price == pytest.approx(72.62)
    assert position.unrealized_pnl == pytest.approx(-0.004)
    assert position.liquidation_price is None  # "0" on a cross position: not measurable, not safe
    assert position.leverage == pytest.approx(5)


async def test_gate_position_notional_uses_the_contract_size():
    (raw,) = recorded("gate")["positions"]
    position = await parsed_position("gate", raw, 0.1, "LTC_USDT")
    assert (position.symbol, position.side, position.position_side) == ("LTC/USDT:USDT", Side.LONG, None)
    assert position.contracts == pytest.approx(1)
    assert position.notional == pytest.approx(1 * 0.1 * 74.43)  # = the venue's value 7.443
    assert position.notional == pytest.approx(float(raw["value"]))
    assert position.entry_price == pytest.approx(74.35)
    assert position.mark_price == pytest.approx(74.43)
    assert position.unrealized_pnl == pytest.approx(0.008)
    assert position.liquidation_price == pytest.approx(60.07)
    assert position.leverage == pytest.approx(5)
