"""One simulated exchange: a futures account and a spot account, their market and faults.

Why it exists: the server, the demo and in-process tests all need the same object
to drive: it keeps both accounts in step with one market (so a crash hits both),
runs Binance's countdown cancel, logs API requests, and offers every control
(prices, scenarios, faults, third-party orders) as a plain method.
`Simulator.demo()` builds the portfolios the daemon's keyless "exchange: sim" account,
the demo and the tests start from.
"""

from __future__ import annotations

import time
from collections import deque
from decimal import Decimal
from typing import Callable, Iterable

from riskd.sim.faults import Fault, Faults
from riskd.sim.ledger import Contract, Ledger, Order
from riskd.sim.market import VOLATILITY, Market, scenario
from riskd.sim.spot import DEMO_SPOT_BALANCES, DEMO_SPOT_ORDERS, SPOT_LISTING, Pair, SpotAccount

REQUEST_LOG = 10_000
"""Requests kept for tests and `/_sim/requests`: the newest ones, so the log cannot grow without end."""
EMBEDDED_REQUEST_LOG = 1_000
"""Inside riskd (`exchange: sim`) the log is read by no one but tests; about a ten-second
poll's hour of requests, so memory stops growing within the first hour of running."""


def _contract(base: str, tick: str, step: str, min_notional: int = 5) -> Contract:
    return Contract(base, Decimal(tick), Decimal(step), Decimal(min_notional))


# (contract, starting price): Binance-like filters, round prices.
LISTING: tuple[tuple[Contract, float], ...] = (
    (_contract("BTC", "0.1", "0.001", 100), 60_000.0),
    (_contract("ETH", "0.01", "0.001", 20), 3_000.0),
    (_contract("SOL", "0.01", "1"), 150.0),
    (_contract("BNB", "0.01", "0.01"), 600.0),
    (_contract("XRP", "0.0001", "0.1"), 0.6),
    (_contract("DOGE", "0.00001", "1"), 0.15),
    (_contract("ADA", "0.0001", "1"), 0.45),
    (_contract("AVAX", "0.001", "1"), 35.0),
    (_contract("LINK", "0.001", "0.01"), 15.0),
    (_contract("DOT", "0.001", "0.1"), 7.0),
    (_contract("LTC", "0.01", "0.001"), 85.0),
    (_contract("TRX", "0.00001", "1"), 0.12),
    (_contract("BCH", "0.01", "0.001"), 450.0),
    (_contract("NEAR", "0.001", "1"), 5.0),
    (_contract("ATOM", "0.001", "0.01"), 8.0),
    (_contract("APT", "0.001", "0.1"), 9.0),
    (_contract("ARB", "0.0001", "0.1"), 1.0),
    (_contract("OP", "0.0001", "0.1"), 2.0),
    (_contract("FIL", "0.001", "0.1"), 5.0),
    (_contract("ETC", "0.001", "0.01"), 25.0),
    (_contract("UNI", "0.001", "1"), 10.0),
    (_contract("XLM", "0.00001", "1"), 0.11),
    (_contract("SUI", "0.0001", "0.1"), 1.5),
    (_contract("INJ", "0.001", "0.1"), 25.0),
    (_contract("AAVE", "0.01", "0.1"), 150.0),
)

DEMO_WALLET = 10_000
# (symbol, signed amount, entry): gross 18,000 USDT at start, 1.8x the equity.
DEMO_POSITIONS = (
    ("BTCUSDT", "0.15", "58500"),
    ("ETHUSDT", "-2", "3040"),
    ("SOLUSDT", "20", "156"),
)
# (symbol, side, quantity, limit price, reduce only, client order id): beyond a 30 % crash.
DEMO_ORDERS = (
    ("BTCUSDT", "BUY", "0.02", "38000", False, "demo-btc-bid"),
    ("BTCUSDT", "SELL", "0.05", "90000", True, "demo-btc-take-profit"),
    ("ETHUSDT", "SELL", "0.5", "4200", False, "demo-eth-offer"),
    ("SOLUSDT", "SELL", "10", "230", True, "demo-sol-take-profit"),
)


class Simulator:
    """A Binance USDⓈ-M futures account (`ledger`) and a Binance spot account (`spot`) on
    one set of simulated prices, driven in-process or over HTTP.

    The spot pairs are those of `spot_listing` that the futures listing also has: each
    spot price is the futures mark of the same id, rounded to the spot tick.
    """

    def __init__(self, listing: Iterable[tuple[Contract, float]] = LISTING,
                 wallet: float = DEMO_WALLET, seed: int = 0,
                 clock: Callable[[], float] = time.time, volatility: float = VOLATILITY,
                 spot_listing: Iterable[Pair] = SPOT_LISTING, hedge: bool = False,
                 request_log: int = REQUEST_LOG):
        listing = list(listing)
        self.clock = clock
        self.ledger = Ledger((c for c, _ in listing), wallet, clock, hedge)
        self.market = Market({c.id: p for c, p in listing}, seed, clock, volatility)
        self.spot = SpotAccount((p for p in spot_listing if p.id in self.ledger.contracts), clock=clock)
        self.faults = Faults(clock)
        self.requests: deque[dict] = deque(maxlen=request_log)
        self.countdowns: dict[str, int] = {}  # contract id -> epoch ms when its orders go
        self.sync()

    @classmethod
    def demo(cls, seed: int = 7, clock: Callable[[], float] = time.time,
             volatility: float = VOLATILITY, hedge: bool = False, request_log: int = REQUEST_LOG) -> Simulator:
        """Futures: 10,000 USDT wallet; BTC long 0.15, ETH short 2, SOL long 20; four far
        limit orders. Spot: 5,000 USDT, 0.05 BTC, 1.5 ETH, 40 SOL, 2 BNB; two far limit orders."""
        simulator = cls(LISTING, DEMO_WALLET, seed, clock, volatility, hedge=hedge, request_log=request_log)
        for symbol, amount, entry in DEMO_POSITIONS:
            simulator.ledger.open_position(symbol, amount, entry)
        for symbol, side, quantity, price, reduce_only, client_id in DEMO_ORDERS:
            simulator.place_order(symbol, side, quantity, "LIMIT", price,
                                  reduce_only=reduce_only, client_order_id=client_id)
        for asset, amount in DEMO_SPOT_BALANCES.items():
            simulator.spot.deposit(asset, amount)
        for symbol, side, quantity, price, client_id in DEMO_SPOT_ORDERS:
            simulator.place_spot_order(symbol, side, quantity, "LIMIT", price, client_order_id=client_id)
        return simulator

    def sync(self) -> None:
        """Bring the accounts up to the clock: due countdown cancels, then new prices."""
        now = self.ledger.now()
        for contract_id, deadline in list(self.countdowns.items()):
            if now >= deadline:
                self.ledger.cancel_all(contract_id)
                del self.countdowns[contract_id]
        prices = self.market.prices()
        self.ledger.update_marks(prices)
        self.spot.update_prices(prices)

    # --- controls ----------------------------------------------------------------

    def set_price(self, symbol: str, price: float) -> None:
        self.market.set_price(self.ledger.contract(symbol).id, float(price))
        self.sync()

    def move(self, fraction: float) -> None:
        """Move every price by `fraction` at once: -0.2 is a 20 % fall."""
        self.market.move(float(fraction))
        self.sync()

    def run_scenario(self, name: str | None, **params: float) -> None:
        """Start a scenario from `market.SCENARIOS` now; None or "none" ends the current one."""
        self.market.run(None if name in (None, "none") else scenario(name, **params))
        self.sync()

    def add_fault(self, kind: str, duration: float | None = None, count: int | None = None,
                  path: str = "", seconds: float | None = None, body: str | None = None, symbol: str = "") -> Fault:
        return self.faults.add(kind, duration, count, path, seconds, body, symbol)

    def clear_faults(self) -> int:
        return self.faults.clear()

    def place_order(self, symbol: str, side: str, quantity: object, type: str = "MARKET",
                    price: object = None, *, reduce_only: bool = False,
                    client_order_id: str | None = None, time_in_force: str | None = None,
                    position_side: str | None = None) -> Order:
        """An order on this account from someone other than the guardian (another bot).

        In hedge mode a reduce-only order becomes one on the side it closes, and an order
        naming no side opens the side it buys or sells (BUY: LONG, SELL: SHORT).
        """
        self.sync()
        if time_in_force is None and type.upper() == "LIMIT":
            time_in_force = "GTC"
        if self.ledger.hedge and position_side is None:
            buying = side.upper() == "BUY"
            position_side = "LONG" if buying != reduce_only else "SHORT"
            reduce_only = False
        return self.ledger.place(symbol, side, type, quantity, price, time_in_force,
                                 reduce_only, client_order_id, position_side)

    def place_spot_order(self, symbol: str, side: str, quantity: object = None, type: str = "MARKET",
                         price: object = None, *, client_order_id: str | None = None,
                         time_in_force: str | None = None, quote_quantity: object = None) -> Order:
        """A spot order from someone other than the guardian; `quote_quantity` buys for an amount of USDT."""
        self.sync()
        if time_in_force is None and type.upper() == "LIMIT":
            time_in_force = "GTC"
        return self.spot.place(symbol, side, type, quantity, price, time_in_force, client_order_id,
                               quote_quantity)

    def countdown(self, symbol: str, milliseconds: int) -> None:
        """Binance's dead man's switch: cancel the symbol's orders unless renewed; 0 stops it."""
        contract_id = self.ledger.contract(symbol).id
        if milliseconds > 0:
            self.countdowns[contract_id] = self.ledger.now() + milliseconds
        else:
            self.countdowns.pop(contract_id, None)

    def log_request(self, method: str, path: str, params: dict) -> dict:
        entry = {"time": self.ledger.now(), "method": method, "path": path,
                 "params": dict(params), "faults": []}
        self.requests.append(entry)
        return entry

    def clear_requests(self) -> int:
        cleared = len(self.requests)
        self.requests.clear()
        return cleared

    def state(self) -> dict:
        """A plain-JSON summary for people and tests, in unified symbols."""
        self.sync()
        ledger = self.ledger
        return {
            "time": ledger.now(),
            "prices": {c.symbol: float(ledger.mark(c)) for c in ledger.contracts.values()},
            "hedge": ledger.hedge,
            "wallet": float(ledger.wallet),
            "unrealized": float(ledger.unrealized()),
            "equity": float(ledger.margin_balance()),
            "available": float(ledger.available()),
            "positions": [{
                "symbol": p.contract.symbol, "positionSide": p.side, "amount": float(p.amount), "entry": float(p.entry),
                "mark": float(ledger.mark(p.contract)), "notional": float(ledger.notional(p)),
                "unrealized": float(p.unrealized(ledger.mark(p.contract))), "leverage": p.leverage,
                "liquidationPrice": float(ledger.liquidation_price(p)),
            } for p in ledger.open_positions()],
            "openOrders": [{
                "orderId": o.id, "clientOrderId": o.client_id, "symbol": o.contract.symbol,
                "side": o.side, "type": o.type, "price": float(o.price),
                "quantity": float(o.quantity), "reduceOnly": o.reduce_only,
                "positionSide": o.position_side, "closes": o.closes,
            } for o in ledger.open_orders()],
            "fills": len(ledger.fills),
            "liquidations": len(ledger.liquidations),
            "scenario": self.market.scenario.name if self.market.scenario else None,
            "faults": [f.to_dict() for f in self.faults.active()],
            "spot": self.spot_state(),
        }

    def spot_state(self) -> dict:
        """The spot account in plain JSON: non-zero balances, prices, equity in USDT, open orders."""
        self.sync()
        spot = self.spot
        return {
            "prices": {p.symbol: float(spot.price(p)) for p in spot.pairs.values()},
            "balances": {asset: {"free": float(spot.free[asset]), "locked": float(spot.locked[asset]),
                                 "total": float(spot.total(asset))}
                         for asset in spot.free if spot.total(asset)},
            "equity": float(spot.equity()),
            "openOrders": [{
                "orderId": o.id, "clientOrderId": o.client_id, "symbol": o.contract.symbol,
                "side": o.side, "type": o.type, "price": float(o.price), "quantity": float(o.quantity),
            } for o in spot.open_orders()],
            "fills": len(spot.fills),
        }
