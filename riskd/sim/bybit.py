"""The Bybit v5 dialect: the same futures account, spoken as a Bybit unified trading account.

Why it exists: riskd reads each venue through its own profile, so the whole path (ccxt's
`bybit` class, riskd's Bybit profile, reduce-only orders and cancels) must run end to
end on a second dialect, not only on Binance. The ledger is the one Binance's routes
use; only the wire differs: /v5 paths, JSON bodies, a `retCode` envelope answered with
HTTP 200, string ids, `Buy`/`Sell`, and the position index: 0 in one-way mode, 1 (long)
and 2 (short) in hedge mode; an index that does not match the mode is refused as Bybit
refuses it.
Signed endpoints need an `X-BAPI-API-KEY` header but no valid signature. The simulator's
faults answer on /v5 paths as Bybit does (`fault_reply`), so riskd's reaction to Bybit's
trouble is tested against Bybit's replies, not Binance's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Mapping

from riskd.sim.ledger import MAINTENANCE_RATE, Contract, Ledger, Order, Position
from riskd.sim.parameters import Rejection
from riskd.sim.wire import money, price, quantity

API_KEY_HEADER = "X-BAPI-API-KEY"
API_KEYS = ("spot", "futures", "v2", "public", "private")
"""ccxt's urls['api'] keys for Bybit; every one is the simulator's base URL."""
WS_PUBLIC = ("spot", "inverse", "option", "linear")
WS_PRIVATE = ("spot", "contract", "usdc", "trade")
"""ccxt.pro's urls['api']['ws'] keys for Bybit; the simulator serves none of them."""

CODES = {
    -2022: 110017,  # reduce-only rule not satisfied
    -2011: 110001,  # order does not exist (or is no longer open)
    -2013: 110001,
    -2019: 110007,  # available balance not enough
    -4116: 110072,  # orderLinkId is duplicate
    -4164: 110094,  # notional below the lower limit
}
"""Binance's codes, as the ledger raises them, to Bybit's (ccxt maps Bybit's to its errors)."""
PARAMS_ERROR = 10001
SIDES = {"Buy": "BUY", "Sell": "SELL"}
INDEX = {"BOTH": 0, "LONG": 1, "SHORT": 2}
POSITION_SIDES = {index: side for side, index in INDEX.items()}
TIME_IN_FORCE = {"GTC": "GTC", "IOC": "IOC", "FOK": "FOK", "PostOnly": "GTX"}
STATUS = {"NEW": "New", "FILLED": "Filled", "CANCELED": "Cancelled", "EXPIRED": "Cancelled"}


def ccxt_config(base_url: str) -> dict:
    """Constructor settings that point ccxt's `bybit` at a simulator: linear markets only.

    The websocket URLs point at it too, so that a ccxt.pro client built from these settings
    cannot reach Bybit by accident: this dialect serves no websocket, and such a client fails."""
    base = base_url.rstrip("/")
    socket = "ws" + base.removeprefix("http") + "/v5/ws"
    return {
        "apiKey": "sim",
        "secret": "sim",
        "urls": {"api": {
            **{key: base for key in API_KEYS},
            "ws": {"public": dict.fromkeys(WS_PUBLIC, socket), "private": dict.fromkeys(WS_PRIVATE, socket)},
        }},
        "options": {"fetchMarkets": {"types": ["linear"]}, "defaultType": "swap", "defaultSubType": "linear"},
    }


@dataclass(frozen=True, slots=True)
class Reply:
    """A fault's reply as Bybit sends it: HTTP status, body (JSON, or text when not JSON), headers."""

    status: int
    body: dict | str
    headers: Mapping[str, str] = field(default_factory=dict)


# The faults in Bybit's words. Each is the reply Bybit documents for that trouble
# (https://bybit-exchange.github.io/docs/v5/error and .../docs/v5/rate-limit), chosen so
# that ccxt's `bybit` (its `exceptions` map and `httpExceptions`, ccxt 4.5's
# python/ccxt/async_support/bybit.py) raises the error Binance's reply to the same fault
# raises through ccxt's `binanceusdm`.
RATE_LIMITED = Rejection(10006, "Too many visits!")
"""The account's rate limit (per UID): HTTP 200, retCode 10006 (v5/rate-limit, "API Rate
Limit"), with the X-Bapi-Limit-* headers saying when the limit resets; ccxt:
RateLimitExceeded, as Binance's 429 -1003."""
IP_LIMITED = "access too frequent"
"""The IP's limit: HTTP 403 "access too frequent", no reset time (v5/rate-limit, "HTTP IP
limit": stop every session and wait at least 10 minutes). Not JSON, so ccxt's bybit maps
the status, 403 to RateLimitExceeded, as Binance's 418 -1003 (an IP ban)."""
REVOKED = Rejection(10003, "API key is invalid.")
"""A deleted or wrong key: retCode 10003 (v5/error); ccxt: AuthenticationError, as Binance's 401 -2015."""
SERVER_ERROR = Rejection(10016, "Server error.")
"""Bybit failing to carry out the request: retCode 10016 (v5/error: "Server error", "internal
server error; service is restarting"); riskd's adapter maps it to OperationFailed, as ccxt
maps Binance's -1001 (ccxt's bybit leaves it a plain ExchangeError)."""
SERVER_TIMEOUT = Rejection(10000, "Server Timeout")
"""Bybit's backend not answering in time, the request's outcome unknown: retCode 10000
(v5/error); riskd's adapter maps it to OperationFailed, as ccxt maps Binance's -1000."""
UNAVAILABLE = "503 Service Temporarily Unavailable"
"""Bybit's gateway with no service behind it: HTTP 503 and a page that is not JSON; ccxt's
bybit maps the status to ExchangeNotAvailable, as Binance's 503 without a code."""
LIMIT = 10
"""The per-second limit the X-Bapi-Limit header reports: order creation's on linear
contracts (v5/rate-limit)."""


class EndpointLimits:
    """What Bybit counts for its X-Bapi-Limit-* headers: requests per API key and endpoint
    in each second (every private endpoint is held to LIMIT here)."""

    def __init__(self) -> None:
        self.second: int | None = None
        self.counts: dict[tuple[str, str], int] = {}

    def take(self, key: str, path: str, now: int) -> dict[str, str]:
        """Count one request at `now` (ms) and give the headers its reply carries."""
        second = now // 1000
        if second != self.second:
            self.second, self.counts = second, {}
        used = self.counts[key, path] = self.counts.get((key, path), 0) + 1
        return limit_headers(max(0, LIMIT - used), (second + 1) * 1000)


def limit_headers(left: int, reset: int) -> dict[str, str]:
    """Bybit's X-Bapi-Limit-* headers: the endpoint's limit, what is left of it, and when it
    resets (epoch ms; the server's time when the limit is not exceeded)."""
    return {"X-Bapi-Limit": str(LIMIT), "X-Bapi-Limit-Status": str(left), "X-Bapi-Limit-Reset-Timestamp": str(reset)}


def fault_reply(kind: str, seconds: float, now: int, headers: Mapping[str, str]) -> Reply:
    """Bybit's reply to the fault `kind` (a fault's kind, or an http_503 fault's body).

    seconds: for http_429, how long until the limit resets; now: the server's time (ms);
    headers: the request's, whose timestamp and receive window the clock-skew refusal quotes.
    """
    if kind == "http_429":
        return Reply(200, rejected(RATE_LIMITED, now), limit_headers(0, now + int(seconds * 1000)))
    if kind == "http_418":
        return Reply(403, IP_LIMITED)
    if kind == "revoked":
        return Reply(200, rejected(REVOKED, now))
    if kind == "clock_skew":  # the message Bybit sends for 10002, its figures included
        message = ("invalid request, please check your server timestamp or recv_window param. "
                   f"req_timestamp[{headers.get('X-BAPI-TIMESTAMP', now)}],server_timestamp[{now}],"
                   f"recv_window[{headers.get('X-BAPI-RECV-WINDOW', 5000)}]")
        return Reply(200, rejected(Rejection(10002, message), now))
    if kind == "internal":
        return Reply(200, rejected(SERVER_ERROR, now))
    if kind == "unknown":
        return Reply(200, rejected(SERVER_TIMEOUT, now))
    if kind == "unavailable":
        return Reply(503, UNAVAILABLE)
    raise ValueError(f"no Bybit reply for the fault {kind!r}")


def envelope(result: Any, now: int) -> dict:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": now}


def rejected(rejection: Rejection, now: int) -> dict:
    """Bybit answers a refused request with HTTP 200 and its own code."""
    code = rejection.code if rejection.code > 0 else CODES.get(rejection.code, PARAMS_ERROR)
    return {"retCode": code, "retMsg": rejection.msg, "result": {}, "retExtInfo": {}, "time": now}


def _side(contract_side: str) -> str:
    return "Buy" if contract_side == "BUY" else "Sell"


def instrument(contract: Contract) -> dict:
    return {
        "symbol": contract.id, "contractType": "LinearPerpetual", "status": "Trading",
        "baseCoin": contract.base, "quoteCoin": "USDT", "settleCoin": "USDT",
        "launchTime": "1585526400000", "deliveryTime": "0", "deliveryFeeRate": "",
        "priceScale": str(contract.price_precision),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": f"{contract.tick}", "maxPrice": "9999999", "tickSize": f"{contract.tick}"},
        "lotSizeFilter": {"maxOrderQty": f"{contract.max_qty}", "minOrderQty": f"{contract.step}",
                          "qtyStep": f"{contract.step}", "postOnlyMaxOrderQty": f"{contract.max_qty}",
                          "maxMktOrderQty": f"{contract.max_qty}", "minNotionalValue": f"{contract.min_notional}"},
        "unifiedMarginTrade": True, "fundingInterval": 480, "copyTrading": "both",
        "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375", "isPreListing": False,
    }


def wallet(ledger: Ledger) -> dict:
    """GET /v5/account/wallet-balance: a unified account whose only coin is USDT."""
    wallet_balance, unrealized = ledger.wallet, ledger.unrealized()
    margin, maint, initial = ledger.margin_balance(), ledger.maint_margin(), ledger.initial_margin()
    rate = maint / margin if margin > 0 else Decimal(1)
    return {"list": [{
        "accountType": "UNIFIED", "totalEquity": money(margin), "totalWalletBalance": money(wallet_balance),
        "totalMarginBalance": money(margin), "totalAvailableBalance": money(ledger.available()),
        "totalPerpUPL": money(unrealized), "totalInitialMargin": money(initial),
        "totalMaintenanceMargin": money(maint), "accountIMRate": f"{initial / margin if margin > 0 else 1:.4f}",
        "accountMMRate": f"{rate:.4f}", "accountLTV": "0",
        "coin": [{
            "coin": "USDT", "equity": money(margin), "usdValue": money(margin),
            "walletBalance": money(wallet_balance), "unrealisedPnl": money(unrealized),
            "locked": "0", "borrowAmount": "0", "accruedInterest": "0", "totalOrderIM": money(ledger.order_margin()),
            "totalPositionIM": money(initial - ledger.order_margin()), "totalPositionMM": money(maint),
            "cumRealisedPnl": "0", "bonus": "0", "availableToWithdraw": "", "availableToBorrow": "",
            "marginCollateral": True, "collateralSwitch": True, "spotHedgingQty": "0",
        }],
    }]}


def position(ledger: Ledger, p: Position) -> dict:
    contract, mark = p.contract, ledger.mark(p.contract)
    liquidation = ledger.liquidation_price(p)
    size = abs(p.amount)
    return {
        "symbol": contract.id, "side": "Buy" if p.amount > 0 else "Sell", "size": quantity(contract, size),
        "positionIdx": INDEX[p.side], "tradeMode": 0, "avgPrice": price(contract, p.entry), "markPrice": price(contract, mark),
        "positionValue": money(size * p.entry), "unrealisedPnl": money(p.unrealized(mark)),
        "liqPrice": price(contract, liquidation) if liquidation > 0 else "", "bustPrice": "",
        "leverage": str(p.leverage), "positionIM": money(ledger.position_margin(p)),
        "positionMM": money(size * mark * MAINTENANCE_RATE), "positionBalance": money(ledger.position_margin(p)),
        "cumRealisedPnl": "0", "positionStatus": "Normal", "autoAddMargin": 0, "riskId": 1,
        "riskLimitValue": "2000000", "takeProfit": "", "stopLoss": "", "trailingStop": "0",
        "tpslMode": "Full", "adlRankIndicator": 2, "isReduceOnly": False, "seq": p.updated,
        "createdTime": str(p.updated or ledger.now()), "updatedTime": str(p.updated or ledger.now()),
    }


def order(o: Order) -> dict:
    c = o.contract
    tif = {"GTX": "PostOnly"}.get(o.time_in_force, o.time_in_force or "IOC")
    return {
        "orderId": str(o.id), "orderLinkId": o.client_id, "symbol": c.id, "side": _side(o.side),
        "orderType": "Market" if o.type == "MARKET" else "Limit", "price": price(c, o.price) if o.price else "0",
        "qty": quantity(c, o.quantity), "leavesQty": quantity(c, o.quantity - o.executed),
        "cumExecQty": quantity(c, o.executed), "cumExecValue": money(o.cum_quote), "cumExecFee": "0",
        "avgPrice": price(c, o.average) if o.executed else "", "orderStatus": STATUS.get(o.status, "New"),
        "timeInForce": tif, "reduceOnly": o.closes, "closeOnTrigger": False, "positionIdx": INDEX[o.position_side],
        "triggerPrice": "", "takeProfit": "", "stopLoss": "", "stopOrderType": "", "cancelType": "UNKNOWN", "tpslMode": "",
        "createdTime": str(o.time), "updatedTime": str(o.updated or o.time), "isLeverage": "",
        "rejectReason": "EC_NoError", "leavesValue": "0", "smpType": "None", "triggerDirection": 0,
    }


def _linear(params: Mapping[str, Any]) -> None:
    if params.get("category", "linear") != "linear":
        raise Rejection(PARAMS_ERROR, f"category {params.get('category')} is not supported by this simulator")


def _place(ledger: Ledger, params: Mapping[str, Any]) -> dict:
    _linear(params)
    index = int(params.get("positionIdx") or 0)
    if (index == 0) == ledger.hedge or index not in POSITION_SIDES:
        raise Rejection(10001, "position idx not match position mode")
    side = SIDES.get(params.get("side"), params.get("side"))
    market = params.get("orderType") == "Market"
    tif = None if market else TIME_IN_FORCE.get(params.get("timeInForce") or "GTC", params.get("timeInForce"))
    # In hedge mode Bybit takes reduceOnly on the side the index names; the ledger, as
    # Binance, knows a closing order there by its side alone.
    reduce_only = params.get("reduceOnly") in (True, "true", "True") and not ledger.hedge
    placed = ledger.place(params.get("symbol"), side, "MARKET" if market else "LIMIT", params.get("qty"),
                          None if market else params.get("price"), tif, reduce_only,
                          params.get("orderLinkId") or None, POSITION_SIDES[index])
    return {"orderId": str(placed.id), "orderLinkId": placed.client_id}


def _cancel(ledger: Ledger, params: Mapping[str, Any]) -> dict:
    _linear(params)
    cancelled = ledger.cancel(params.get("symbol"), params.get("orderId"), params.get("orderLinkId"))
    return {"orderId": str(cancelled.id), "orderLinkId": cancelled.client_id}


def _cancel_all(ledger: Ledger, params: Mapping[str, Any]) -> dict:
    _linear(params)
    symbols = [params["symbol"]] if params.get("symbol") else list(ledger.contracts)
    cancelled = [o for symbol in symbols for o in ledger.cancel_all(symbol)]
    return {"list": [{"orderId": str(o.id), "orderLinkId": o.client_id} for o in cancelled], "success": "1"}


def _positions(ledger: Ledger, params: Mapping[str, Any]) -> dict:
    _linear(params)
    wanted = ledger.contract(params["symbol"]).id if params.get("symbol") else None
    rows = [position(ledger, p) for p in ledger.open_positions() if wanted in (None, p.contract.id)]
    return {"category": "linear", "list": rows, "nextPageCursor": ""}


def _open_orders(ledger: Ledger, params: Mapping[str, Any]) -> dict:
    _linear(params)
    rows = [order(o) for o in ledger.open_orders(params.get("symbol") or None)]
    return {"category": "linear", "list": rows, "nextPageCursor": ""}


def _instruments(ledger: Ledger, params: Mapping[str, Any]) -> dict:
    _linear(params)
    return {"category": "linear", "list": [instrument(c) for c in ledger.contracts.values()], "nextPageCursor": ""}


def _tickers(ledger: Ledger, params: Mapping[str, Any]) -> dict:
    _linear(params)
    rows = [{"symbol": c.id, "lastPrice": price(c, ledger.mark(c)), "markPrice": price(c, ledger.mark(c)),
             "indexPrice": price(c, ledger.mark(c)), "bid1Price": price(c, ledger.mark(c)),
             "ask1Price": price(c, ledger.mark(c)), "volume24h": "0", "turnover24h": "0"}
            for c in ledger.contracts.values() if params.get("symbol") in (None, "", c.id)]
    return {"category": "linear", "list": rows}


API_INFO = {"id": "1", "note": "riskd sim", "apiKey": "sim", "readOnly": 0, "permissions": {
    "ContractTrade": ["Order", "Position"], "Spot": [], "Wallet": ["AccountTransfer"], "Options": [],
    "Derivatives": ["DerivativesTrade"], "Exchange": [], "NFT": [], "BlockTrade": [], "Affiliate": []},
    "unified": 0, "uta": 1, "isMaster": True, "type": 1, "ips": ["*"], "vipLevel": "No VIP", "mktMakerLevel": "0"}
ACCOUNT_INFO = {"unifiedMarginStatus": 5, "marginMode": "REGULAR_MARGIN", "isMasterTrader": False,
                "spotHedgingStatus": "OFF", "updatedTime": "1697078946000", "dcpStatus": "OFF", "timeWindow": 0,
                "smpGroup": 0}

Endpoint = Callable[[Ledger, Mapping[str, Any]], Any]
ROUTES: tuple[tuple[str, str, bool, Endpoint], ...] = (
    ("GET", "/v5/market/time", False, lambda ledger, p: {"timeSecond": str(ledger.now() // 1000),
                                                         "timeNano": str(ledger.now() * 1_000_000)}),
    ("GET", "/v5/market/instruments-info", False, _instruments),
    ("GET", "/v5/market/tickers", False, _tickers),
    ("GET", "/v5/asset/coin/query-info", True, lambda ledger, p: {"rows": [
        {"name": "USDT", "coin": "USDT", "remainAmount": "50000000", "chains": []}]}),
    ("GET", "/v5/user/query-api", True, lambda ledger, p: API_INFO),
    ("GET", "/v5/account/info", True, lambda ledger, p: ACCOUNT_INFO),
    ("GET", "/v5/account/wallet-balance", True, lambda ledger, p: wallet(ledger)),
    ("GET", "/v5/position/list", True, _positions),
    ("GET", "/v5/order/realtime", True, _open_orders),
    ("POST", "/v5/order/create", True, _place),
    ("POST", "/v5/order/cancel", True, _cancel),
    ("POST", "/v5/order/cancel-all", True, _cancel_all),
)
