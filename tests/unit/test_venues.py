"""Each venue profile's edges: a missing field, zero or negative equity, an unknown coin,
hedge-mode sides and closing parameters, market types, and positions of size 0 or inverse."""

from __future__ import annotations

import pytest

from riskd import venues
from riskd.config import AccountConfig
from riskd.exchange import ExchangeAdapter, _order, build_client
from riskd.venues import Unvalued, market_options


def binance(**info) -> dict:
    assets = info.pop("assets", [{"asset": "USDT", "marginBalance": "100", "maintMargin": "5"}])
    return {"info": {"totalMarginBalance": "100", "totalMaintMargin": "5", "assets": assets, **info}}


def test_binance_multi_assets_reads_the_total_margin_balance():
    figures = venues.binance_usdm(binance(multiAssetsMargin=True, totalMarginBalance="130", totalMaintMargin="13", assets=[
        {"asset": "USDT", "marginBalance": "100"}, {"asset": "BTC", "marginBalance": "0.0005"}, {"asset": "BNB", "marginBalance": "0"},
    ]), "USDT")
    assert (figures.equity, figures.margin_ratio, figures.collateral) == (130.0, 0.1, ("BTC", "USDT"))
    assert figures.margin_mode == "multi-assets"


def test_binance_single_asset_mode_reads_the_quotes_own_asset():
    reply = binance(multiAssetsMargin=False, assets=[
        {"asset": "USDT", "marginBalance": "100", "maintMargin": "5"}, {"asset": "USDC", "marginBalance": "40", "maintMargin": "4"},
    ])
    figures = venues.binance_usdm(reply, "USDC")  # the totals would be USDT's
    assert (figures.equity, figures.margin_ratio, figures.collateral) == (40.0, 0.1, ("USDC",))


def test_binance_without_the_margin_balance_or_the_quote_cannot_be_valued():
    with pytest.raises(Unvalued, match="has no totalMarginBalance"):
        venues.binance_usdm({"info": {"assets": []}}, "USDT")
    with pytest.raises(Unvalued, match="has no assets"):
        venues.binance_usdm({"info": {"totalMarginBalance": "1"}}, "USDT")
    with pytest.raises(Unvalued, match="has no USDC asset"):
        venues.binance_usdm(binance(multiAssetsMargin=False), "USDC")
    with pytest.raises(Unvalued, match="does not say whether multi-assets"):
        venues.binance_usdm(binance(), "USDC")  # single-asset totals would be USDT's, not USDC's


def test_zero_or_negative_equity_is_reported_and_a_negative_account_is_at_liquidation():
    negative = venues.binance_usdm(binance(totalMarginBalance="-3", totalMaintMargin="2"), "USDT")
    assert (negative.equity, negative.margin_ratio) == (-3.0, 1.0)
    empty = venues.binance_usdm(binance(totalMarginBalance="0", totalMaintMargin="0"), "USDT")
    assert (empty.equity, empty.margin_ratio) == (0.0, None)


def bybit(account: dict) -> dict:
    return {"info": {"retCode": 0, "result": {"list": [account]}}}


def test_bybit_classic_reads_the_quote_coins_equity_with_unrealized_pnl():
    figures = venues.bybit(bybit({"accountType": "CONTRACT", "totalMarginBalance": "", "coin": [
        {"coin": "USDT", "equity": "95", "walletBalance": "100", "unrealisedPnl": "-5", "totalPositionMM": "9.5"},
    ]}), "USDT")
    assert (figures.equity, figures.margin_ratio, figures.margin_mode) == (95.0, 0.1, "classic")


def test_bybit_unknown_coin_or_missing_figure_cannot_be_valued():
    with pytest.raises(Unvalued, match="has no USDC"):
        venues.bybit(bybit({"accountType": "CONTRACT", "coin": [{"coin": "USDT", "equity": "1"}]}), "USDC")
    with pytest.raises(Unvalued, match="has no totalMarginBalance"):
        venues.bybit(bybit({"accountType": "UNIFIED", "totalMarginBalance": "", "coin": []}), "USDT")
    with pytest.raises(Unvalued, match="has no account"):
        venues.bybit({"info": {"result": {"list": []}}}, "USDT")


def test_bybit_unified_without_accountmmrate_divides_the_maintenance_margin_itself():
    figures = venues.bybit(bybit({"accountType": "UNIFIED", "totalMarginBalance": "200", "accountMMRate": "",
                                  "totalMaintenanceMargin": "50", "coin": []}), "USDT")
    assert figures.margin_ratio == 0.25


def okx(account: dict) -> dict:
    return {"info": {"code": "0", "data": [account]}}


def test_okx_single_currency_margin_reads_the_quotes_equity():
    figures = venues.okx(okx({"adjEq": "", "details": [
        {"ccy": "USDT", "eq": "250", "mmr": "25"}, {"ccy": "BTC", "eq": "1", "mmr": ""},
    ]}), "USDT")
    assert (figures.equity, figures.margin_ratio, figures.collateral) == (250.0, 0.1, ("USDT",))
    with pytest.raises(Unvalued, match="has no USDC"):
        venues.okx(okx({"adjEq": "", "details": [{"ccy": "USDT", "eq": "250"}]}), "USDC")
    with pytest.raises(Unvalued, match="has no eq"):
        venues.okx(okx({"adjEq": "", "details": [{"ccy": "USDT", "eq": ""}]}), "USDT")


def test_bitget_reads_account_equity_or_the_union_margin():
    single = venues.bitget({"info": [{"marginCoin": "USDT", "accountEquity": "120", "crossedRiskRate": "0.02", "assetMode": "single"}]}, "USDT")
    assert (single.equity, single.margin_ratio) == (120.0, 0.02)
    union = venues.bitget({"info": [{"marginCoin": "USDT", "assetMode": "union", "unionTotalMagin": "300", "unionMm": "30",
                                     "assetList": [{"coin": "btc"}, {"coin": "usdt"}]}]}, "USDT")
    assert (union.equity, union.margin_ratio, union.collateral) == (300.0, 0.1, ("BTC", "USDT"))
    with pytest.raises(Unvalued, match="no USDC margin coin"):
        venues.bitget({"info": [{"marginCoin": "USDT", "accountEquity": "1"}]}, "USDC")
    with pytest.raises(Unvalued, match="has no accountEquity"):
        venues.bitget({"info": [{"marginCoin": "USDT"}]}, "USDT")


def test_gate_adds_the_unrealized_pnl_its_total_leaves_out():
    figures = venues.gate({"info": {"currency": "USDT", "total": "100", "unrealised_pnl": "-20", "maintenance_margin": "8",
                                    "in_dual_mode": True}}, "USDT")
    assert (figures.equity, figures.margin_ratio, figures.margin_mode) == (80.0, 0.1, "dual (hedge) mode")
    with pytest.raises(Unvalued, match="has no unrealised_pnl"):
        venues.gate({"info": {"currency": "USDT", "total": "100"}}, "USDT")
    with pytest.raises(Unvalued, match="has no USDC"):
        venues.gate({"info": {"currency": "USDT", "total": "100", "unrealised_pnl": "0"}}, "USDC")


@pytest.mark.parametrize(
    ("profile", "raw", "side", "params"),
    [
        (venues.BINANCE_USDM, {"positionSide": "SHORT"}, "SHORT", {"positionSide": "SHORT"}),
        (venues.BINANCE_USDM, {"positionSide": "BOTH"}, None, {"reduceOnly": True}),
        (venues.BYBIT, {"positionIdx": "2"}, "SHORT", {"reduceOnly": True, "positionIdx": 2}),
        (venues.BYBIT, {"positionIdx": 0}, None, {"reduceOnly": True}),
        (venues.OKX, {"posSide": "long"}, "LONG", {"posSide": "long"}),
        (venues.OKX, {"posSide": "net"}, None, {"reduceOnly": True}),
        (venues.BITGET, {"posMode": "hedge_mode", "holdSide": "long"}, "LONG", {"hedged": True, "reduceOnly": True}),
        (venues.BITGET, {"posMode": "one_way_mode", "holdSide": "long"}, None, {"reduceOnly": True}),
        (venues.GATE, {"mode": "dual_short"}, "SHORT", {"reduceOnly": True}),
        (venues.GATE, {"mode": "single"}, None, {"reduceOnly": True}),
    ],
)
def test_hedge_mode_sides_and_the_venues_own_closing_parameter(profile, raw, side, params):
    assert profile.hedge_side({"info": raw}) == side
    assert profile.close_params(side) == params


@pytest.mark.parametrize(
    ("exchange", "market", "expected"),
    [
        ("bitget", "futures", {"defaultType": "swap", "defaultSubType": "linear"}),
        ("gate", None, {"defaultType": "swap", "defaultSubType": "linear"}),  # guessed futures, not spot
        ("okx", None, {"defaultType": "swap"}),
        ("bybit", "spot", {"defaultType": "spot"}),
        ("binance", None, {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchMargins": False}),
        ("binance", "futures", {"defaultType": "future"}),
        ("kraken", "futures", {"defaultType": "swap"}),
        ("kraken", None, {}),
    ],
)
def test_the_market_type_reaches_ccxt(exchange, market, expected):
    assert market_options(exchange, market) == expected


async def test_every_profiled_venue_builds_a_client_on_its_futures_market():
    for exchange in ("bybit", "okx", "bitget", "gate"):
        client = build_client(AccountConfig(exchange=exchange, market="futures"))
        try:
            assert client.options["defaultType"] == "swap"
            assert ExchangeAdapter("main", AccountConfig(exchange=exchange), client).futures is True
        finally:
            await client.close()


async def test_an_inverse_position_is_valued_in_the_quote_currency_and_size_comes_from_the_market():
    client = build_client(AccountConfig(exchange="binanceusdm"))
    try:
        client.set_markets([client.safe_market_structure({
            "id": "BTCUSD_PERP", "symbol": "BTC/USD:BTC", "base": "BTC", "quote": "USD", "settle": "BTC", "type": "swap",
            "swap": True, "contract": True, "linear": False, "inverse": True, "contractSize": 100.0,
            "precision": {"amount": 1, "price": 0.1}, "limits": {}, "info": {},
        })])
        adapter = ExchangeAdapter("main", AccountConfig(exchange="binanceusdm"), client)
        # ccxt's parse of a recorded Binance COIN-M reply (binance.json, fetchPositions[3]):
        # 3 contracts of 100 USD each, short, mark 68234.2.
        raw = {"symbol": "BTC/USD:BTC", "contracts": 3, "contractSize": None, "side": "short", "markPrice": 68234.2,
               "entryPrice": 68911.00000037, "unrealizedPnl": 0.00004318, "liquidationPrice": 72491.16879818,
               "leverage": 20, "notional": 0.00439662, "info": {"positionSide": "BOTH"}}
        position = adapter._position(raw)
        assert position.notional == pytest.approx(3 * 100)  # USD, not 300 × mark, not ccxt's 0.0044 BTC
        assert (position.side, position.contracts, position.liquidation_price) == ("short", 3.0, pytest.approx(72491.16879818))
    finally:
        await client.close()


async def test_a_long_and_a_short_on_one_symbol_in_hedge_mode_are_two_positions():
    client = build_client(AccountConfig(exchange="bybit"))
    try:
        client.set_markets([client.safe_market_structure({
            "id": "LTCUSDT", "symbol": "LTC/USDT:USDT", "base": "LTC", "quote": "USDT", "settle": "USDT", "type": "swap",
            "swap": True, "contract": True, "linear": True, "inverse": False, "contractSize": 1.0,
            "precision": {"amount": 0.1, "price": 0.01}, "limits": {}, "info": {},
        })])
        adapter = ExchangeAdapter("main", AccountConfig(exchange="bybit"), client)
        # Bybit's position list in hedge mode: one entry per side, told apart by positionIdx.
        base = {"symbol": "LTCUSDT", "avgPrice": "64.6", "markPrice": "71.1", "liqPrice": "", "unrealisedPnl": "0",
                "leverage": "6", "positionValue": "77.52", "createdTime": "1677168085779", "updatedTime": "1699948800031"}
        raws = [{**base, "side": "Buy", "size": "1.2", "positionIdx": "1"}, {**base, "side": "Sell", "size": "0.5", "positionIdx": "2"}]
        positions = [adapter._position(client.parse_position(raw)) for raw in raws]
        assert [(p.key, p.side, p.contracts) for p in positions] == [
            ("LTC/USDT:USDT:LONG", "long", 1.2), ("LTC/USDT:USDT:SHORT", "short", 0.5),
        ]
        assert positions[1].notional == pytest.approx(0.5 * 71.1)
    finally:
        await client.close()


def test_an_orders_notional_counts_its_contract_size_as_a_positions_does():

    # ccxt's parse of an OKX order on BTC-USDT-SWAP: 3 contracts of 0.01 BTC at 60,000
    raw = {"id": "1", "symbol": "BTC/USDT:USDT", "side": "buy", "amount": 3.0, "remaining": 3.0, "price": 60_000.0,
           "timestamp": 1_700_000_000_000, "reduceOnly": False, "info": {"posSide": "net"}}
    linear = _order(raw, venues.OKX, {"contractSize": 0.01, "inverse": False})
    assert linear.notional == pytest.approx(3 * 0.01 * 60_000) and not linear.reduce_only
    inverse = _order({**raw, "symbol": "BTC/USD:BTC"}, venues.OKX, {"contractSize": 100.0, "inverse": True})
    assert inverse.notional == pytest.approx(3 * 100)  # USD, whatever the price
    assert _order(raw).notional == pytest.approx(3 * 60_000)  # no market known: one contract is one unit


@pytest.mark.parametrize(
    ("profile", "raw", "closes"),
    [
        (venues.BINANCE_USDM, {"side": "sell", "info": {"positionSide": "LONG"}}, True),  # a take-profit on a long
        (venues.BINANCE_USDM, {"side": "buy", "info": {"positionSide": "LONG"}}, False),
        (venues.BINANCE_USDM, {"side": "sell", "info": {"positionSide": "BOTH"}}, False),
        (venues.BYBIT, {"side": "buy", "info": {"positionIdx": "2"}}, True),
        (venues.OKX, {"side": "buy", "info": {"posSide": "short"}}, True),
        (venues.OKX, {"side": "buy", "info": {"posSide": "net"}}, False),
        (venues.BITGET, {"side": "buy", "info": {"posSide": "long", "tradeSide": "close"}}, True),
        (venues.GATE, {"side": "sell", "info": {}}, False),
    ],
)
def test_an_order_that_can_only_close_its_hedge_side_is_known_as_one(profile, raw, closes):
    assert profile.order_closes(raw) is closes
