"""Binance spot for the simulator: the account, its JSON, its REST routes.

Why it exists: riskd guards Binance spot accounts too, where there is no position or
margin, only balances (free and locked) that riskd values at the last price and sells
for the quote currency in an emergency. Those orders must meet Binance spot's own
rules: a sell may not exceed the free balance (-2010), a client order id must be unique
among open orders only, there is no reduce-only (an unknown parameter is refused with
-1104), the fee comes out of what is received. `SpotAccount` is that bookkeeping, on
the same prices as the futures account (the simulator feeds both from one `Market`,
so a crash hits both); the rest of this module is the wire format and the routes the
server adds for ccxt's `binance` class with `defaultType: spot`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from itertools import count
from typing import Any, Callable, Iterable, Mapping

from riskd.sim.ledger import ZERO, Fill, Order, Orders, unknown_order
from riskd.sim.listing import QUOTE, Listing, by_name, find
from riskd.sim.parameters import (BUY, SELL, Rejection, decimal, limit_parameters, quantity_parameter,
                                  reject_if_sent, side_and_type)
from riskd.sim.wire import EIGHT, money

SPOT_FEE = Decimal("0.001")  # maker and taker, paid in the asset received
SPOT_TIME_IN_FORCE = ("GTC", "IOC", "FOK")
INSUFFICIENT = Rejection(-2010, "Account has insufficient balance for requested action.")
# POST /api/v3/order parameters the simulator reads; Binance refuses any it does not know.
ORDER_PARAMS = frozenset({
    "symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price",
    "newClientOrderId", "newOrderRespType", "selfTradePreventionMode", "strategyId",
    "strategyType", "recvWindow", "timestamp", "signature",
})


@dataclass(frozen=True)
class Pair(Listing):
    """A spot market: a listing whose LOT_SIZE cap is Binance spot's, lower than futures'."""

    max_qty: Decimal = Decimal(9_000_000)


def _pair(base: str, tick: str, step: str) -> Pair:
    return Pair(base, Decimal(tick), Decimal(step))


# Binance's spot filters for these pairs; each id must be one of the market's symbols.
SPOT_LISTING: tuple[Pair, ...] = (
    _pair("BTC", "0.01", "0.00001"),
    _pair("ETH", "0.01", "0.0001"),
    _pair("SOL", "0.01", "0.001"),
    _pair("BNB", "0.01", "0.001"),
    _pair("XRP", "0.0001", "0.1"),
    _pair("DOGE", "0.00001", "1"),
    _pair("ADA", "0.0001", "0.1"),
    _pair("LINK", "0.01", "0.01"),
)
# 19,700 USDT at the listing prices: 5,000 USDT, 3,000 in BTC, 4,500 in ETH, 6,000 in SOL, 1,200 in BNB.
DEMO_SPOT_BALANCES = {"USDT": "5000", "BTC": "0.05", "ETH": "1.5", "SOL": "40", "BNB": "2"}
# (symbol, side, quantity, limit price, client order id): beyond a 30 % move either way.
DEMO_SPOT_ORDERS = (
    ("BTCUSDT", BUY, "0.01", "40000", "demo-spot-btc-bid"),
    ("ETHUSDT", SELL, "0.5", "4500", "demo-spot-eth-offer"),
)


class SpotAccount:
    """One Binance spot account: free and locked balances, orders, fills.

    No I/O and no prices of its own: callers push last prices in (by pair id) with
    `update_prices`, which also fills the resting limit orders they cross.
    """

    def __init__(self, pairs: Iterable[Pair], balances: Mapping[str, object] | None = None,
                 clock: Callable[[], float] = time.time):
        self.pairs = {p.id: p for p in pairs}
        self._names = by_name(self.pairs.values())
        assets = [QUOTE, *(p.base for p in self.pairs.values())]
        self.free: dict[str, Decimal] = dict.fromkeys(assets, ZERO)
        self.locked: dict[str, Decimal] = dict.fromkeys(assets, ZERO)
        self.prices: dict[str, Decimal] = {}
        self.orders = Orders()
        self.fills: list[Fill] = []
        self._clock = clock
        self._order_ids = count(30_000_000_001)
        self._fill_ids = count(3_000_000_001)
        self.updated = self.now()
        for asset, amount in (balances or {}).items():
            self.deposit(asset, amount)

    def now(self) -> int:
        return int(self._clock() * 1000)

    def pair(self, symbol: str | None) -> Pair:
        return find(self._names, symbol)

    # --- figures -----------------------------------------------------------------

    def price(self, pair: Pair) -> Decimal:
        return self.prices[pair.id]

    def total(self, asset: str) -> Decimal:
        return self.free.get(asset, ZERO) + self.locked.get(asset, ZERO)

    def equity(self) -> Decimal:
        """Every balance valued in USDT at the last prices."""
        return self.total(QUOTE) + sum((self.total(p.base) * self.price(p) for p in self.pairs.values()), ZERO)

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self.orders.open(self.pair(symbol) if symbol else None)

    # --- changes -----------------------------------------------------------------

    def deposit(self, asset: str, amount: object) -> None:
        """Credit a balance directly (a starting portfolio, a transfer in): no order, no fee."""
        asset = asset.upper()
        self.free[asset] = self.free.get(asset, ZERO) + Decimal(str(amount))
        self.locked.setdefault(asset, ZERO)
        self.updated = self.now()

    def update_prices(self, prices: Mapping[str, float]) -> None:
        """New last prices by pair id (others are ignored); fill the limit orders they cross."""
        for pair_id, value in prices.items():
            if pair_id in self.pairs:
                self.prices[pair_id] = self.pairs[pair_id].round_price(float(value))
        for order in self.open_orders():
            if (order.price - self.price(order.contract)) * order.sign >= 0:
                self._fill(order, order.price, maker=True)

    def place(self, symbol: str | None, side: str | None, type: str | None, quantity: object = None,
              price: object = None, time_in_force: str | None = None, client_id: str | None = None,
              quote_quantity: object = None) -> Order:
        """Accept or reject an order as Binance spot would; fill it at once if it can.

        Market orders and crossing limits fill at the last price; resting limits lock what
        they may spend (quote to buy, base to sell) until they fill at their limit.
        """
        pair = self.pair(symbol)
        side, type = side_and_type(side, type)
        last = self.price(pair)
        if type == "MARKET":
            reject_if_sent("price", price)
            reject_if_sent("timeInForce", time_in_force)
            if quote_quantity not in (None, ""):
                if quantity not in (None, ""):
                    raise Rejection(-1106, "Parameter 'quoteOrderQty' sent when not required.")
                spend = decimal(quote_quantity, "quoteOrderQty")
                amount = self._quantity(pair, (spend / last).quantize(pair.step, ROUND_DOWN))
            else:
                amount = self._quantity(pair, quantity)
            limit, time_in_force, reference = ZERO, "GTC", last
        else:
            limit, time_in_force = self._limit(pair, price, time_in_force)
            amount, reference = self._quantity(pair, quantity), limit
        if amount * reference < pair.min_notional:
            raise Rejection(-1013, "Filter failure: NOTIONAL")
        if client_id and any(o.client_id == client_id for o in self.open_orders()):
            raise Rejection(-2010, "Duplicate order sent.")
        asset, needed = (QUOTE, amount * reference) if side == BUY else (pair.base, amount)
        if self.free.get(asset, ZERO) < needed:
            raise INSUFFICIENT
        now = self.now()
        order_id = next(self._order_ids)
        order = Order(order_id, client_id or f"sim-{order_id}", pair, side, type, amount, limit,  # type: ignore[arg-type]
                      time_in_force, False, now, updated=now)
        self.orders.add(order)
        if type == "MARKET" or (limit - last) * order.sign >= 0:
            self._fill(order, last, maker=False)
        elif time_in_force in ("IOC", "FOK"):
            self._close(order, "EXPIRED")
        else:
            self.free[asset] -= needed
            self.locked[asset] += needed
        self.updated = now
        return order

    def order(self, symbol: str | None, order_id: object = None, client_id: str | None = None) -> Order:
        """An order by id or client order id (the latest with it); -2013 if there is none."""
        return self.orders.find(self.pair(symbol), order_id, client_id)

    def cancel(self, symbol: str | None, order_id: object = None, client_id: str | None = None) -> Order:
        order = self.orders.cancellable(self.pair(symbol), order_id, client_id)
        self._release(order)
        self._close(order, "CANCELED")
        return order

    def cancel_all(self, symbol: str | None) -> list[Order]:
        """Cancel the symbol's open orders; Binance answers -2011 when there are none."""
        orders = self.open_orders(self.pair(symbol).id)
        if not orders:
            raise unknown_order()
        for order in orders:
            self._release(order)
            self._close(order, "CANCELED")
        return orders

    # --- helpers -----------------------------------------------------------------

    def _quantity(self, pair: Pair, quantity: object) -> Decimal:
        amount = quantity_parameter(quantity)
        if amount < pair.step or amount > pair.max_qty or amount % pair.step:
            raise Rejection(-1013, "Filter failure: LOT_SIZE")
        return amount

    def _limit(self, pair: Pair, price: object, time_in_force: str | None) -> tuple[Decimal, str]:
        limit, time_in_force = limit_parameters(price, time_in_force, SPOT_TIME_IN_FORCE)
        if limit < pair.tick or limit % pair.tick:
            raise Rejection(-1013, "Filter failure: PRICE_FILTER")
        return limit, time_in_force

    def _release(self, order: Order) -> None:
        """Unlock what a resting order still holds."""
        left = order.quantity - order.executed
        asset, held = (QUOTE, left * order.price) if order.side == BUY else (order.contract.base, left)
        self.locked[asset] -= held
        self.free[asset] += held

    def _close(self, order: Order, status: str) -> None:
        order.status = status
        order.updated = self.updated = self.now()

    def _fill(self, order: Order, price: Decimal, maker: bool) -> None:
        """Fill the rest of `order` at `price` and receive less the fee. A maker fill is a
        resting order's, paid from what it locked."""
        base = order.contract.base
        quantity = order.quantity - order.executed
        cost = quantity * price
        if maker:
            self._release(order)
        if order.side == BUY:
            commission = (quantity * SPOT_FEE).quantize(EIGHT)
            self.free[QUOTE] -= cost
            self.free[base] += quantity - commission
        else:
            commission = (cost * SPOT_FEE).quantize(EIGHT)
            self.free[base] -= quantity
            self.free[QUOTE] += cost - commission
        order.executed += quantity
        order.cum_quote += cost
        self._close(order, "FILLED")
        self.fills.append(Fill(next(self._fill_ids), order, price, quantity, commission, ZERO, maker, order.updated))


def commission_asset(fill: Fill) -> str:
    return fill.order.contract.base if fill.order.side == BUY else QUOTE


# --- Binance spot JSON -----------------------------------------------------------------

def _decimals(value: Decimal) -> str:
    """Binance spot writes every price and quantity with eight decimals."""
    return money(value)


def symbol_info(pair: Pair, reference: Decimal) -> dict:
    return {
        "symbol": pair.id, "status": "TRADING", "baseAsset": pair.base, "baseAssetPrecision": 8,
        "quoteAsset": QUOTE, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],  # all the simulator executes, so ccxt refuses the rest
        "icebergAllowed": False, "ocoAllowed": False, "otoAllowed": False,
        "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False, "cancelReplaceAllowed": False,
        "amendAllowed": False, "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": _decimals(pair.tick),
             "maxPrice": _decimals(pair.round_price(reference * 100)), "tickSize": _decimals(pair.tick)},
            {"filterType": "LOT_SIZE", "minQty": _decimals(pair.step), "maxQty": _decimals(pair.max_qty),
             "stepSize": _decimals(pair.step)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": _decimals(pair.max_qty),
             "stepSize": "0.00000000"},
            {"filterType": "NOTIONAL", "minNotional": _decimals(pair.min_notional), "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def exchange_info(account: SpotAccount, params: Mapping[str, str]) -> dict:
    pairs = [account.pair(s) for s in _symbols(params)] or list(account.pairs.values())
    return {
        "timezone": "UTC", "serverTime": account.now(),
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
        ],
        "exchangeFilters": [],
        "symbols": [symbol_info(p, account.price(p)) for p in pairs],
    }


def account_reply(account: SpotAccount) -> dict:
    """GET /api/v3/account: every listed asset, zero or not, as Binance sends by default."""
    rate = _decimals(SPOT_FEE)
    return {
        "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
        "commissionRates": {"maker": rate, "taker": rate, "buyer": "0.00000000", "seller": "0.00000000"},
        "canTrade": True, "canWithdraw": False, "canDeposit": True, "brokered": False,
        "requireSelfTradePrevention": False, "preventSor": False, "updateTime": account.updated,
        "accountType": "SPOT",
        "balances": [{"asset": asset, "free": _decimals(account.free[asset]),
                      "locked": _decimals(account.locked[asset])} for asset in account.free],
        "permissions": ["SPOT"], "uid": 354937868,
    }


def order_reply(o: Order, kind: str = "query", fills: Iterable[Fill] = ()) -> dict:
    """An order as POST ("new", with its fills), GET ("query") or DELETE ("cancel") return it."""
    reply = {
        "symbol": o.contract.id, "orderId": o.id, "orderListId": -1, "clientOrderId": o.client_id,
        "price": _decimals(o.price), "origQty": _decimals(o.quantity), "executedQty": _decimals(o.executed),
        "cummulativeQuoteQty": _decimals(o.cum_quote), "status": o.status, "timeInForce": o.time_in_force,
        "type": o.type, "side": o.side, "selfTradePreventionMode": "EXPIRE_MAKER",
    }
    if kind == "new":
        return {**reply, "transactTime": o.updated, "origQuoteOrderQty": "0.00000000", "workingTime": o.time,
                "fills": [{"price": _decimals(f.price), "qty": _decimals(f.quantity),
                           "commission": _decimals(f.commission), "commissionAsset": commission_asset(f),
                           "tradeId": f.id} for f in fills]}
    if kind == "cancel":
        return {**reply, "origClientOrderId": o.client_id, "clientOrderId": f"cancel-{o.id}",
                "transactTime": o.updated}
    return {**reply, "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": o.time,
            "updateTime": o.updated, "isWorking": True, "workingTime": o.time, "origQuoteOrderQty": "0.00000000"}


def ticker(pair: Pair, day: Any, last: Decimal, now: int) -> dict:
    opened = pair.round_price(day.open)
    change = last - opened
    volume = Decimal(str(day.volume)).quantize(pair.step)
    return {
        "symbol": pair.id, "priceChange": _decimals(change),
        "priceChangePercent": f"{change / opened * 100:.3f}",
        "weightedAvgPrice": _decimals(pair.round_price((day.open + day.close) / 2)),
        "prevClosePrice": _decimals(opened), "lastPrice": _decimals(last), "lastQty": _decimals(pair.step),
        "bidPrice": _decimals(last - pair.tick), "bidQty": _decimals(pair.step * 100),
        "askPrice": _decimals(last), "askQty": _decimals(pair.step * 100),
        "openPrice": _decimals(opened), "highPrice": _decimals(max(pair.round_price(day.high), last)),
        "lowPrice": _decimals(min(pair.round_price(day.low), last)), "volume": _decimals(volume),
        "quoteVolume": _decimals(volume * last), "openTime": day.time, "closeTime": now,
        "firstId": 1, "lastId": int(day.volume) + 1, "count": int(day.volume) + 1,
    }


# --- routes: (simulator, params) -> JSON -----------------------------------------------

def _symbols(params: Mapping[str, str]) -> list[str]:
    """`symbol`, or `symbols` as Binance takes it: a JSON array, ["BTCUSDT","BNBUSDT"]."""
    if params.get("symbol"):
        return [params["symbol"]]
    if not params.get("symbols"):
        return []
    try:
        symbols = json.loads(params["symbols"])
    except ValueError:
        symbols = None
    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
        raise Rejection(-1100, "Illegal characters found in parameter 'symbols'; legal range is"
                               " '^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'.")
    return symbols


def _tickers(simulator: Any, params: Mapping[str, str]) -> Any:
    account, market = simulator.spot, simulator.market
    pairs = [account.pair(s) for s in _symbols(params)] or list(account.pairs.values())
    rows = [ticker(p, market.day(p.id), account.price(p), account.now()) for p in pairs]
    return rows[0] if params.get("symbol") else rows


def _prices(simulator: Any, params: Mapping[str, str]) -> Any:
    account = simulator.spot
    pairs = [account.pair(s) for s in _symbols(params)] or list(account.pairs.values())
    rows = [{"symbol": p.id, "price": _decimals(account.price(p))} for p in pairs]
    return rows[0] if params.get("symbol") else rows


def _new_order(simulator: Any, params: Mapping[str, str]) -> dict:
    unread = set(params) - ORDER_PARAMS
    if unread:
        raise Rejection(-1104, f"Not all sent parameters were read; read '{len(params) - len(unread)}'"
                               f" parameter(s) but was sent '{len(params)}'.")
    account = simulator.spot
    fills_before = len(account.fills)
    order = account.place(params.get("symbol"), params.get("side"), params.get("type"), params.get("quantity"),
                          params.get("price"), params.get("timeInForce"), params.get("newClientOrderId"),
                          params.get("quoteOrderQty"))
    return order_reply(order, "new", account.fills[fills_before:])


def _find_order(simulator: Any, params: Mapping[str, str]) -> dict:
    order = simulator.spot.order(params.get("symbol"), params.get("orderId"), params.get("origClientOrderId"))
    return order_reply(order)


def _cancel_order(simulator: Any, params: Mapping[str, str]) -> dict:
    order = simulator.spot.cancel(params.get("symbol"), params.get("orderId"), params.get("origClientOrderId"))
    return order_reply(order, "cancel")


def _cancel_all(simulator: Any, params: Mapping[str, str]) -> list:
    return [order_reply(o, "cancel") for o in simulator.spot.cancel_all(params.get("symbol"))]


def _open_orders(simulator: Any, params: Mapping[str, str]) -> list:
    return [order_reply(o) for o in simulator.spot.open_orders(params.get("symbol"))]


ROUTES: tuple[tuple[str, str, bool, Callable[[Any, Mapping[str, str]], Any]], ...] = (
    ("GET", "/api/v3/ping", False, lambda s, p: {}),
    ("GET", "/api/v3/time", False, lambda s, p: {"serverTime": s.spot.now()}),
    ("GET", "/api/v3/exchangeInfo", False, lambda s, p: exchange_info(s.spot, p)),
    ("GET", "/api/v3/ticker/24hr", False, _tickers),
    ("GET", "/api/v3/ticker/price", False, _prices),
    ("GET", "/api/v3/account", True, lambda s, p: account_reply(s.spot)),
    ("GET", "/api/v3/openOrders", True, _open_orders),
    ("POST", "/api/v3/order", True, _new_order),
    ("GET", "/api/v3/order", True, _find_order),
    ("DELETE", "/api/v3/order", True, _cancel_order),
    ("DELETE", "/api/v3/openOrders", True, _cancel_all),
)
