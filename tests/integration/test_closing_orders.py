"""Closing orders as each venue wants them, sent by the real ccxt class to a loopback server.

riskd closes a position with a market order that can only shrink it: reduce-only in
one-way mode, and in hedge mode the venue's own way of naming the side closed (Binance
`positionSide`, Bybit `positionIdx`, OKX `posSide`, Bitget `tradeSide: Close`). The
replies served are recorded ones (see each file under tests/data/venues/); what is
checked is the request ccxt sent for riskd.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from riskd.config import AccountConfig
from riskd.domain import Position, Side
from riskd.exchange import ExchangeAdapter, build_client
from tests.replay import Replay, market, pointed, recorded

OPTIONS = {"bybit": {"enableUnifiedMargin": False, "enableUnifiedAccount": True}}
IDS = {"binanceusdm": "BTCUSDT", "bybit": "BTCUSDT", "okx": "BTC-USDT-SWAP", "bitget": "BTCUSDT", "gate": "BTC_USDT"}


async def sent_for(venue: str, position: Position, amount: float = 0.01) -> dict:
    """The parameters (query and body together) of the order riskd sends to close `position`."""
    server = Replay(recorded(venue)["orders"])
    await server.start()
    config = AccountConfig(
        exchange=venue, api_key="k" * 16, secret="s" * 16, password="p" * 8,
        ccxt={"enableRateLimit": False, "options": OPTIONS.get(venue, {})},
    )
    client = build_client(config)
    try:
        client.urls["api"] = pointed(client.urls["api"], server.url)
        info = {"orderTypes": ["LIMIT", "MARKET"]}  # Binance lists the order types a market takes
        size, settle = (0.0001, "usdt") if venue == "gate" else (1.0, "USDT")  # Gate's ids are lower case
        client.set_markets([market(client, "BTC/USDT:USDT", IDS[venue], size, info=info, settleId=settle)])
        await ExchangeAdapter("main", config, client).reduce(position, amount, "riskd-7-0123abcd-1")
    finally:
        await client.close()
        await server.stop()
    (method, path, query, body), = [request for request in server.sent if request[0] == "POST"]
    fields = dict(query)
    if body:
        parsed = json.loads(body) if body.lstrip()[:1] in "{[" else dict(parse_qsl(body))
        fields.update(parsed[0] if isinstance(parsed, list) else parsed)  # OKX sends a batch of one
    return fields


def held(side: Side, hedge: str | None) -> Position:
    return Position("BTC/USDT:USDT", side, 0.05, 3_000.0, 60_000.0, 60_000.0, position_side=hedge)


async def test_binance_hedge_mode_names_the_position_side_instead_of_reduce_only():
    fields = await sent_for("binanceusdm", held(Side.SHORT, "SHORT"))
    assert (fields["side"], fields["positionSide"], fields["type"]) == ("BUY", "SHORT", "MARKET")
    assert "reduceOnly" not in fields
    one_way = await sent_for("binanceusdm", held(Side.LONG, None))
    assert (one_way["side"], one_way["reduceOnly"]) == ("SELL", "true")
    assert one_way["newClientOrderId"] == "riskd-7-0123abcd-1"


async def test_bybit_hedge_mode_names_the_position_index_and_stays_reduce_only():
    fields = await sent_for("bybit", held(Side.SHORT, "SHORT"))
    assert (fields["side"], fields["positionIdx"], fields["reduceOnly"], fields["category"]) == ("Buy", 2, True, "linear")
    long = await sent_for("bybit", held(Side.LONG, "LONG"))
    assert (long["side"], long["positionIdx"]) == ("Sell", 1)
    one_way = await sent_for("bybit", held(Side.LONG, None))
    assert one_way["reduceOnly"] is True and one_way.get("positionIdx", 0) == 0
    assert one_way["orderLinkId"] == "riskd-7-0123abcd-1"


async def test_okx_hedge_mode_names_the_position_side_and_the_client_id_is_alphanumeric():
    fields = await sent_for("okx", held(Side.LONG, "LONG"))
    assert (fields["side"], fields["posSide"]) == ("sell", "long")
    assert "reduceOnly" not in fields  # OKX takes reduceOnly in net mode only
    assert fields["clOrdId"] == "riskd70123abcd1"
    one_way = await sent_for("okx", held(Side.SHORT, None))
    assert (one_way["side"], one_way["reduceOnly"]) == ("buy", True)


async def test_bitget_hedge_mode_closes_with_trade_side_close():
    fields = await sent_for("bitget", held(Side.LONG, "LONG"))
    # Bitget's hedge-mode convention: closing a long is side "buy" with tradeSide "Close".
    assert (fields["side"], fields["tradeSide"]) == ("buy", "Close")
    assert "reduceOnly" not in fields
    one_way = await sent_for("bitget", held(Side.LONG, None))
    assert (one_way["side"], one_way["reduceOnly"]) == ("sell", "YES")


async def test_gate_closes_reduce_only_with_a_signed_size():
    fields = await sent_for("gate", held(Side.LONG, None), amount=3)  # Gate counts whole contracts
    assert (fields["reduce_only"], fields["size"], fields["text"]) == (True, -3, "t-riskd-7-0123abcd-1")
