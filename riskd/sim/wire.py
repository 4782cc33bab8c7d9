"""Binance USDⓈ-M futures JSON for the simulator's objects.

Why it exists: ccxt reads Binance's replies field by field (`updateTime` must be
non-zero on an asset, `notional` carries a position's side, `entryPrice` must be
positive, `orderTypes` limits what it will send), so every reply must have Binance's
field names and types: decimals as strings, times and ids as integers. Keeping the
shapes here leaves the server to routing and the ledger to bookkeeping.
"""

from __future__ import annotations

from decimal import Decimal

from riskd.sim.ledger import MAINTENANCE_RATE, TAKER_FEE, ZERO, Contract, Fill, Ledger, Order, Position
from riskd.sim.market import Candle

EIGHT = Decimal("1e-8")
FUNDING_MS = 8 * 3600 * 1000
BRACKET = {"bracket": 1, "initialLeverage": 125, "notionalCap": 1_000_000_000,
           "notionalFloor": 0, "maintMarginRatio": float(MAINTENANCE_RATE), "cum": 0.0}


def money(value: Decimal | float) -> str:
    """Eight decimals, never "-0.00000000"."""
    rounded = Decimal(str(value)).quantize(EIGHT)
    return f"{abs(rounded) if rounded.is_zero() else rounded:f}"


def price(contract: Contract, value: Decimal | float) -> str:
    """Rounded to the tick, with the contract's price precision."""
    ticks = (Decimal(str(value)) / contract.tick).to_integral_value()
    if ticks.is_zero():
        ticks = ZERO  # not "-0.0"
    return f"{ticks * contract.tick:.{contract.price_precision}f}"


def quantity(contract: Contract, value: Decimal) -> str:
    return f"{value:.{contract.quantity_precision}f}"


def symbol_info(contract: Contract, reference: float) -> dict:
    return {
        "symbol": contract.id, "pair": contract.id, "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
        "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": contract.base, "quoteAsset": "USDT", "marginAsset": "USDT",
        "pricePrecision": contract.price_precision, "quantityPrecision": contract.quantity_precision,
        "baseAssetPrecision": 8, "quotePrecision": 8,
        "underlyingType": "COIN", "underlyingSubType": [], "settlePlan": 0,
        "triggerProtect": "0.0500", "liquidationFee": "0.012500", "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": f"{contract.tick}",
             "maxPrice": price(contract, reference * 100), "tickSize": f"{contract.tick}"},
            {"filterType": "LOT_SIZE", "minQty": f"{contract.step}",
             "maxQty": f"{contract.max_qty}", "stepSize": f"{contract.step}"},
            {"filterType": "MARKET_LOT_SIZE", "minQty": f"{contract.step}",
             "maxQty": f"{contract.max_qty}", "stepSize": f"{contract.step}"},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": f"{contract.min_notional}"},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500",
             "multiplierDown": "0.9500", "multiplierDecimal": "4"},
        ],
        "orderTypes": ["LIMIT", "MARKET"],  # all the simulator executes, so ccxt refuses the rest
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        "permissionSets": ["GRID", "COPY"],
    }


def exchange_info(ledger: Ledger) -> dict:
    return {
        "timezone": "UTC", "serverTime": ledger.now(), "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ],
        "exchangeFilters": [],
        "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
        "symbols": [symbol_info(c, float(ledger.mark(c))) for c in ledger.contracts.values()],
    }


def _margins(ledger: Ledger, position: Position) -> dict:
    initial = ledger.position_margin(position)
    orders = ledger.order_margin(position.contract.id)
    return {"initialMargin": money(initial + orders), "maintMargin": money(ledger.maintenance(position)),
            "positionInitialMargin": money(initial), "openOrderInitialMargin": money(orders)}


def account(ledger: Ledger) -> dict:
    """GET /fapi/v3/account: one USDT asset, cross margin, open positions only."""
    wallet, unrealized = ledger.wallet, ledger.unrealized()
    margin, available = ledger.margin_balance(), ledger.available()
    initial, maint = ledger.initial_margin(), ledger.maint_margin()
    positions = ledger.open_positions()
    position_initial = sum((ledger.position_margin(p) for p in positions), ZERO)
    order_initial = ledger.order_margin()
    common = {
        "walletBalance": money(wallet), "unrealizedProfit": money(unrealized),
        "marginBalance": money(margin), "maintMargin": money(maint), "initialMargin": money(initial),
        "positionInitialMargin": money(position_initial), "openOrderInitialMargin": money(order_initial),
        "crossWalletBalance": money(wallet), "crossUnPnl": money(unrealized),
        "availableBalance": money(available), "maxWithdrawAmount": money(max(available, ZERO)),
    }
    return {
        "totalInitialMargin": money(initial), "totalMaintMargin": money(maint),
        "totalWalletBalance": money(wallet), "totalUnrealizedProfit": money(unrealized),
        "totalMarginBalance": money(margin), "totalPositionInitialMargin": money(position_initial),
        "totalOpenOrderInitialMargin": money(order_initial), "totalCrossWalletBalance": money(wallet),
        "totalCrossUnPnl": money(unrealized), "availableBalance": money(available),
        "maxWithdrawAmount": money(max(available, ZERO)),
        "assets": [{"asset": "USDT", **common, "updateTime": ledger.updated}],
        "positions": [{
            "symbol": p.contract.id, "positionSide": p.side, "positionAmt": quantity(p.contract, p.amount),
            "unrealizedProfit": money(p.unrealized(ledger.mark(p.contract))),
            "isolatedMargin": "0", "notional": money(ledger.notional(p)), "isolatedWallet": "0",
            **_margins(ledger, p), "updateTime": p.updated,
        } for p in positions],
    }


def _risk(ledger: Ledger, position: Position) -> dict:
    contract, mark = position.contract, ledger.mark(position.contract)
    sign = 1 if position.amount > 0 else -1
    return {
        "symbol": contract.id, "positionSide": position.side,
        "positionAmt": quantity(contract, position.amount),
        "entryPrice": money(position.entry) if position.amount else "0.0",
        "breakEvenPrice": money(position.entry * (1 + sign * TAKER_FEE)) if position.amount else "0.0",
        "markPrice": money(mark), "unRealizedProfit": money(position.unrealized(mark)),
        "liquidationPrice": price(contract, ledger.liquidation_price(position)),
        "isolatedMargin": "0", "notional": money(ledger.notional(position)), "isolatedWallet": "0",
        "updateTime": position.updated if position.amount else 0,
    }


def position_risk(ledger: Ledger) -> list[dict]:
    """GET /fapi/v3/positionRisk: only non-zero positions; no leverage or margin type."""
    return [{**_risk(ledger, p), "marginAsset": "USDT", **_margins(ledger, p), "adl": 0,
             "bidNotional": "0", "askNotional": "0"} for p in ledger.open_positions()]


def position_risk_v2(ledger: Ledger) -> list[dict]:
    """GET /fapi/v2/positionRisk: every symbol, with leverage and margin type."""
    return [{**_risk(ledger, p), "leverage": str(p.leverage), "maxNotionalValue": "1000000000",
             "marginType": "cross", "isAutoAddMargin": "false"} for p in ledger.positions.values()]


def order(o: Order, query: bool = False) -> dict:
    """An order reply; `query` adds the creation `time` that GET endpoints carry."""
    c = o.contract
    reply = {
        "orderId": o.id, "symbol": c.id, "status": o.status, "clientOrderId": o.client_id,
        "price": price(c, o.price) if o.price else "0", "avgPrice": money(o.average),
        "origQty": quantity(c, o.quantity), "executedQty": quantity(c, o.executed),
        "cumQty": quantity(c, o.executed), "cumQuote": money(o.cum_quote),
        "timeInForce": o.time_in_force, "type": o.type, "reduceOnly": o.reduce_only,
        "closePosition": False, "side": o.side, "positionSide": o.position_side, "stopPrice": "0",
        "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": o.type,
        "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0,
        "updateTime": o.updated,
    }
    if query:
        reply["time"] = o.time
    return reply


def trade(fill: Fill) -> dict:
    o, c = fill.order, fill.order.contract
    return {
        "buyer": o.side == "BUY", "commission": money(fill.commission), "commissionAsset": "USDT",
        "id": fill.id, "maker": fill.maker, "orderId": o.id, "price": price(c, fill.price),
        "qty": quantity(c, fill.quantity), "quoteQty": money(fill.price * fill.quantity),
        "realizedPnl": money(fill.realized), "side": o.side, "positionSide": o.position_side,
        "symbol": c.id, "time": fill.time,
    }


def income(fill: Fill) -> dict:
    """A REALIZED_PNL row of the income history: Binance writes one for each fill that realized PnL."""
    c = fill.order.contract
    return {
        "symbol": c.id, "incomeType": "REALIZED_PNL", "income": money(fill.realized), "asset": "USDT",
        "info": "REALIZED_PNL", "time": fill.time, "tranId": 9_000_000 + fill.id, "tradeId": str(fill.id),
    }


def kline(contract: Contract, candle: Candle, minutes: int) -> list:
    volume = Decimal(str(candle.volume)).quantize(contract.step)
    quote = candle.volume * (candle.open + candle.close) / 2
    return [candle.time, price(contract, candle.open), price(contract, candle.high),
            price(contract, candle.low), price(contract, candle.close), f"{volume:f}",
            candle.time + minutes * 60_000 - 1, money(quote), int(candle.volume) + 1,
            f"{volume / 2:f}", money(quote / 2), "0"]


def ticker(contract: Contract, day: Candle, last: Decimal, now: int) -> dict:
    opened = contract.round_price(day.open)
    change = last - opened
    volume = Decimal(str(day.volume)).quantize(contract.step)
    return {
        "symbol": contract.id, "priceChange": price(contract, change),
        "priceChangePercent": f"{change / opened * 100:.3f}",
        "weightedAvgPrice": price(contract, (day.open + day.close) / 2),
        "lastPrice": price(contract, last), "lastQty": quantity(contract, contract.step),
        "openPrice": price(contract, opened), "highPrice": price(contract, max(day.high, float(last))),
        "lowPrice": price(contract, min(day.low, float(last))), "volume": f"{volume:f}",
        "quoteVolume": money(day.volume * (day.open + day.close) / 2),
        "openTime": day.time, "closeTime": now, "firstId": 1, "lastId": int(day.volume) + 1,
        "count": int(day.volume) + 1,
    }


def depth(contract: Contract, mark: Decimal, now: int) -> dict:
    """GET /fapi/v1/depth: a book one tick either side of the mark, deep enough for any test
    order (bots that price from the order book, as Freqtrade must on Binance futures, need one)."""
    return {
        "lastUpdateId": now, "E": now, "T": now,
        "bids": [[price(contract, mark - contract.tick), "1000000"]],
        "asks": [[price(contract, mark + contract.tick), "1000000"]],
    }


def ticker_price(contract: Contract, last: Decimal, now: int) -> dict:
    return {"symbol": contract.id, "price": price(contract, last), "time": now}


def premium_index(contract: Contract, mark: Decimal, now: int) -> dict:
    return {
        "symbol": contract.id, "markPrice": money(mark), "indexPrice": money(mark),
        "estimatedSettlePrice": money(mark), "lastFundingRate": "0.00010000",
        "interestRate": "0.00010000", "nextFundingTime": (now // FUNDING_MS + 1) * FUNDING_MS,
        "time": now,
    }


def mark_price_update(contract: Contract, mark: Decimal, now: int) -> dict:
    """One event of the `<symbol>@markPrice` and `!markPrice@arr` websocket streams."""
    return {
        "e": "markPriceUpdate", "E": now, "s": contract.id, "p": money(mark), "i": money(mark),
        "P": money(mark), "r": "0.00010000", "T": (now // FUNDING_MS + 1) * FUNDING_MS,
    }


def leverage_bracket(contract: Contract) -> dict:
    """One bracket at 0.4 % maintenance, the rate the ledger liquidates at."""
    return {"symbol": contract.id, "notionalCoef": 1.0, "brackets": [dict(BRACKET)]}
