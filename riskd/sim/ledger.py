"""The simulated futures account: contracts, wallet, positions, orders, fills.

Why it exists: the guardian's sums (equity, exposure, liquidation distance) and its
emergency orders (reduce-only closes, cancels) must meet the same rules in tests and
demos as they meet on Binance USDⓈ-M futures: one-way mode, cross margin, taker and
maker fees, reduce-only that never flips, Binance's error codes. This module holds
that bookkeeping and nothing else: no I/O, no prices of its own (callers push marks
in with `update_marks`), time only from the injected clock. Amounts are Decimals so
step and tick checks are exact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from itertools import count
from typing import Callable, Iterable, Mapping

from riskd.sim.listing import QUOTE, Listing, by_name, find
from riskd.sim.parameters import (BUY, SELL, Rejection, decimal, limit_parameters, quantity_parameter,
                                  reject_if_sent, side_and_type)

TAKER_FEE = Decimal("0.0004")
MAKER_FEE = Decimal("0.0002")
MAINTENANCE_RATE = Decimal("0.004")
DEFAULT_LEVERAGE = 10
MAX_LEVERAGE = 125
ZERO = Decimal(0)
TIME_IN_FORCE = ("GTC", "IOC", "FOK", "GTX")


@dataclass(frozen=True)
class Contract(Listing):
    """A USDT-margined perpetual: a listing whose ccxt symbol names its settle currency."""

    @property
    def symbol(self) -> str:
        """ccxt's symbol: BTC/USDT:USDT."""
        return f"{self.base}/{QUOTE}:{QUOTE}"


@dataclass
class Position:
    """One symbol's position: signed amount (short < 0), average entry. `side` is BOTH in
    one-way mode; in hedge mode a symbol has a LONG one (amount >= 0) and a SHORT one."""

    contract: Contract
    amount: Decimal = ZERO
    entry: Decimal = ZERO
    leverage: int = DEFAULT_LEVERAGE
    updated: int = 0
    side: str = "BOTH"

    def unrealized(self, mark: Decimal) -> Decimal:
        return (mark - self.entry) * self.amount


@dataclass
class Order:
    """An order as Binance tracks it; `status` is NEW, FILLED, CANCELED or EXPIRED."""

    id: int
    client_id: str
    contract: Contract
    side: str
    type: str
    quantity: Decimal
    price: Decimal
    time_in_force: str
    reduce_only: bool
    time: int
    status: str = "NEW"
    position_side: str = "BOTH"
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    updated: int = 0

    @property
    def sign(self) -> int:
        return 1 if self.side == BUY else -1

    @property
    def closes(self) -> bool:
        return closing(self.side, self.position_side, self.reduce_only)

    @property
    def is_open(self) -> bool:
        return self.status == "NEW"

    @property
    def average(self) -> Decimal:
        return self.cum_quote / self.executed if self.executed else ZERO


def closing(side: str, position_side: str, reduce_only: bool) -> bool:
    """Whether an order can only shrink its position: reduce-only, or in hedge mode the side
    that runs against its position side (SELL on LONG, BUY on SHORT)."""
    return reduce_only or side == {"LONG": SELL, "SHORT": BUY}.get(position_side)


@dataclass(frozen=True)
class Fill:
    """One execution of an order, with its fee and the PnL it realized."""

    id: int
    order: Order
    price: Decimal
    quantity: Decimal
    commission: Decimal
    realized: Decimal
    maker: bool
    time: int


def unknown_order() -> Rejection:
    """Binance's answer to a cancel of an order it does not hold open; a fresh one each
    time, as an exception raised twice would carry both tracebacks."""
    return Rejection(-2011, "Unknown order sent.")


class Orders(dict[int, Order]):
    """An account's orders by id, also by client order id (the latest with it).

    Why it exists: both markets look an order up, list the open ones and find the one
    a cancel names the same way, with the same Binance codes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.by_client_id: dict[str, Order] = {}

    def add(self, order: Order) -> None:
        self[order.id] = order
        self.by_client_id[order.client_id] = order

    def open(self, listing: Listing | None = None) -> list[Order]:
        """The open orders, of every listing or of one."""
        return [o for o in self.values() if o.is_open and listing in (None, o.contract)]

    def find(self, listing: Listing, order_id: object = None, client_id: str | None = None) -> Order:
        """An order on `listing` by id, else by client order id; -2013 when there is none."""
        if order_id not in (None, ""):
            found = self.get(int(decimal(order_id, "orderId")))
        elif client_id:
            found = self.by_client_id.get(client_id)
        else:
            raise Rejection(-1102, "Param 'origClientOrderId' or 'orderId' must be sent,"
                                   " but both were empty/null!")
        if found is None or found.contract != listing:
            raise Rejection(-2013, "Order does not exist.")
        return found

    def cancellable(self, listing: Listing, order_id: object = None, client_id: str | None = None) -> Order:
        """The open order a cancel names; -2011 when it is unknown or no longer open."""
        try:
            order = self.find(listing, order_id, client_id)
        except Rejection as missing:
            if missing.code != -2013:
                raise
            raise unknown_order() from None
        if not order.is_open:
            raise unknown_order()
        return order


class Ledger:
    """One cross-margin account on a set of USDT perpetuals, in one-way mode or, with
    `hedge`, in hedge mode (a long and a short position per symbol)."""

    def __init__(self, contracts: Iterable[Contract], wallet: Decimal | float,
                 clock: Callable[[], float] = time.time, hedge: bool = False):
        self.contracts = {c.id: c for c in contracts}
        self._names = by_name(self.contracts.values())
        self.wallet = Decimal(str(wallet))
        self.hedge = hedge
        sides = ("LONG", "SHORT") if hedge else ("BOTH",)
        self.positions = {(c.id, side): Position(c, side=side) for c in self.contracts.values() for side in sides}
        self.marks: dict[str, Decimal] = {}
        self.orders = Orders()
        self.fills: list[Fill] = []
        self.liquidations: list[Order] = []
        self._clock = clock
        self._order_ids = count(4_000_000_001)
        self._fill_ids = count(500_000_001)
        self.updated = self.now()

    def now(self) -> int:
        return int(self._clock() * 1000)

    def contract(self, symbol: str | None) -> Contract:
        return find(self._names, symbol)

    # --- figures -----------------------------------------------------------------

    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.amount != 0]

    def position(self, contract: Contract, side: str = "BOTH") -> Position:
        """The position of `contract` on `side`: BOTH in one-way mode, LONG or SHORT in hedge mode."""
        return self.positions[(contract.id, side)]

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        return self.orders.open(self.contract(symbol) if symbol else None)

    def mark(self, contract: Contract) -> Decimal:
        return self.marks[contract.id]

    def notional(self, position: Position) -> Decimal:
        """Signed notional at mark."""
        return position.amount * self.mark(position.contract)

    def unrealized(self) -> Decimal:
        return sum((p.unrealized(self.mark(p.contract)) for p in self.open_positions()), ZERO)

    def margin_balance(self) -> Decimal:
        return self.wallet + self.unrealized()

    def position_margin(self, position: Position) -> Decimal:
        return abs(self.notional(position)) / position.leverage

    def order_margin(self, symbol: str | None = None) -> Decimal:
        """Initial margin held by resting orders that could add to a position."""
        return sum((o.quantity * o.price / self.position(o.contract, o.position_side).leverage
                    for o in self.open_orders(symbol) if not o.closes), ZERO)

    def maintenance(self, position: Position) -> Decimal:
        return abs(self.notional(position)) * MAINTENANCE_RATE

    def initial_margin(self) -> Decimal:
        return sum((self.position_margin(p) for p in self.open_positions()), self.order_margin())

    def maint_margin(self) -> Decimal:
        return sum((self.maintenance(p) for p in self.open_positions()), ZERO)

    def available(self) -> Decimal:
        return self.margin_balance() - self.initial_margin()

    def liquidation_price(self, position: Position) -> Decimal:
        """Mark at which this position alone would bring the account to maintenance margin.

        Cross margin: the other positions' PnL and maintenance are held at current marks.
        Zero when no positive price would liquidate (Binance reports "0" then).
        """
        if position.amount == 0:
            return ZERO
        others = [p for p in self.open_positions() if p is not position]
        cushion = (self.wallet + sum((p.unrealized(self.mark(p.contract)) for p in others), ZERO)
                   - sum((self.maintenance(p) for p in others), ZERO))
        size = abs(position.amount)
        if position.amount > 0:
            price = (size * position.entry - cushion) / (size * (1 - MAINTENANCE_RATE))
        else:
            price = (size * position.entry + cushion) / (size * (1 + MAINTENANCE_RATE))
        return max(price, ZERO)

    # --- orders ------------------------------------------------------------------

    def place(self, symbol: str | None, side: str | None, type: str | None, quantity: object,
              price: object = None, time_in_force: str | None = None, reduce_only: bool = False,
              client_id: str | None = None, position_side: str | None = None) -> Order:
        """Accept or reject an order as Binance would; fill it at once if it can.

        Fills are at the mark (market, or a limit that crosses it) or, later, at the limit
        price. IOC/FOK limits that cannot fill at once, and post-only (GTX) limits that
        would, end EXPIRED.
        """
        contract = self.contract(symbol)
        side, type = side_and_type(side, type)
        amount = self._quantity(contract, quantity)
        limit, time_in_force = self._price(contract, type, price, time_in_force)
        if client_id and client_id in self.orders.by_client_id:
            raise Rejection(-4116, "ClientOrderId is duplicated.")
        position_side = self._position_side(position_side, reduce_only)
        position = self.position(contract, position_side)
        sign = 1 if side == BUY else -1
        mark = self.mark(contract)
        if closing(side, position_side, reduce_only):
            if position.amount * sign >= 0:
                raise Rejection(-2022, "ReduceOnly Order is rejected.")
        else:
            self._check_opening(contract, position, sign, amount, limit or mark)
        order = self._new_order(contract, side, type, amount, limit, time_in_force, reduce_only, client_id,
                                position_side)
        crosses = type == "MARKET" or (limit - mark) * sign >= 0
        if crosses and time_in_force != "GTX":
            self._fill(order, mark, maker=False)
        elif crosses or time_in_force in ("IOC", "FOK"):
            self._close(order, "EXPIRED")
        return order

    def cancel(self, symbol: str | None, order_id: object = None, client_id: str | None = None) -> Order:
        order = self.orders.cancellable(self.contract(symbol), order_id, client_id)
        self._close(order, "CANCELED")
        return order

    def cancel_all(self, symbol: str | None) -> list[Order]:
        orders = self.open_orders(self.contract(symbol).id)
        for order in orders:
            self._close(order, "CANCELED")
        return orders

    def order(self, symbol: str | None, order_id: object = None, client_id: str | None = None) -> Order:
        return self.orders.find(self.contract(symbol), order_id, client_id)

    def set_leverage(self, symbol: str | None, leverage: object) -> Position:
        contract = self.contract(symbol)
        value = decimal(leverage, "leverage")
        if value != value.to_integral_value() or not 1 <= value <= MAX_LEVERAGE:
            raise Rejection(-4028, f"Leverage {leverage} is not valid")
        sides = [p for p in self.positions.values() if p.contract == contract]
        for position in sides:  # a symbol's leverage is one setting, both sides in hedge mode
            position.leverage = int(value)
            position.updated = self.updated = self.now()
        return sides[0]

    def open_position(self, symbol: str, amount: Decimal | str, entry: Decimal | str,
                      leverage: int = DEFAULT_LEVERAGE) -> Position:
        """Set a position directly (a starting portfolio), with no order, fill or fee; in
        hedge mode on the side the amount's sign says."""
        side = ("LONG" if Decimal(amount) > 0 else "SHORT") if self.hedge else "BOTH"
        position = self.position(self.contract(symbol), side)
        position.amount, position.entry = Decimal(amount), Decimal(entry)
        position.leverage = leverage
        position.updated = self.updated = self.now()
        return position

    # --- market moves ------------------------------------------------------------

    def update_marks(self, prices: Mapping[str, float]) -> None:
        """New mark prices by contract id: fill limit orders they cross, then liquidate if due."""
        for contract_id, price in prices.items():
            self.marks[contract_id] = self.contracts[contract_id].round_price(float(price))
        for order in self.open_orders():
            crossed = (order.price - self.mark(order.contract)) * order.sign >= 0
            if order.is_open and order.type == "LIMIT" and crossed:  # a fill may expire others
                self._fill(order, order.price, maker=True)
        if self.open_positions() and self.margin_balance() <= self.maint_margin():
            self._liquidate()

    def _liquidate(self) -> None:
        """Cross-margin liquidation: cancel every order, close every position at mark."""
        for order in self.open_orders():
            self._close(order, "CANCELED")
        for position in self.open_positions():
            side = SELL if position.amount > 0 else BUY
            order = self._new_order(position.contract, side, "MARKET", abs(position.amount), ZERO,
                                    "GTC", not self.hedge, f"autoclose-{self.now()}-{position.contract.id}-{position.side}",
                                    position.side)
            self._fill(order, self.mark(position.contract), maker=False)
            self.liquidations.append(order)
        self.wallet = max(self.wallet, ZERO)  # the insurance fund takes what is left

    # --- helpers -----------------------------------------------------------------

    def _quantity(self, contract: Contract, quantity: object) -> Decimal:
        amount = quantity_parameter(quantity)
        if amount <= 0:
            raise Rejection(-4003, "Quantity less than or equal to zero.")
        if amount % contract.step:
            raise Rejection(-1111, "Precision is over the maximum defined for this asset.")
        if amount > contract.max_qty:
            raise Rejection(-4005, "Quantity greater than max quantity.")
        return amount

    def _price(self, contract: Contract, type: str, price: object,
               time_in_force: str | None) -> tuple[Decimal, str]:
        if type == "MARKET":
            reject_if_sent("price", price)
            return ZERO, "GTC"
        limit, time_in_force = limit_parameters(price, time_in_force, TIME_IN_FORCE)
        if limit <= 0:
            raise Rejection(-4001, "Price less than 0.")
        if limit % contract.tick:
            raise Rejection(-4014, "Price not increased by tick size.")
        return limit, time_in_force

    def _check_opening(self, contract: Contract, position: Position, sign: int,
                       amount: Decimal, reference: Decimal) -> None:
        notional = amount * reference
        if notional < contract.min_notional:
            raise Rejection(-4164, f"Order's notional must be no smaller than {contract.min_notional}"
                                   " (unless you choose reduce only).")
        closing = abs(position.amount) if position.amount * sign < 0 else ZERO
        added = max(amount - closing, ZERO)
        if added and added * reference / position.leverage > self.available():
            raise Rejection(-2019, "Margin is insufficient.")

    def _new_order(self, contract: Contract, side: str, type: str, quantity: Decimal, price: Decimal,
                   time_in_force: str, reduce_only: bool, client_id: str | None,
                   position_side: str = "BOTH") -> Order:
        now = self.now()
        order_id = next(self._order_ids)
        order = Order(order_id, client_id or f"sim-{order_id}", contract, side, type, quantity,
                      price, time_in_force, reduce_only, now, updated=now, position_side=position_side)
        self.orders.add(order)
        return order

    def _position_side(self, position_side: str | None, reduce_only: bool) -> str:
        """The position side an order names, checked against the account's mode as Binance does."""
        side = (position_side or "BOTH").upper()
        if self.hedge:
            if side not in ("LONG", "SHORT"):
                raise Rejection(-4061, "Order's position side does not match user's setting.")
            if reduce_only:
                raise Rejection(-1106, "Parameter 'reduceonly' sent when not required.")
        elif side != "BOTH":
            raise Rejection(-4061, "Order's position side does not match user's setting.")
        return side

    def _close(self, order: Order, status: str) -> None:
        order.status = status
        order.updated = self.updated = self.now()

    def _fill(self, order: Order, price: Decimal, maker: bool) -> None:
        position = self.position(order.contract, order.position_side)
        quantity = order.quantity - order.executed
        if order.closes:
            if position.amount * order.sign >= 0:
                self._close(order, "EXPIRED")  # nothing left to reduce
                return
            quantity = min(quantity, abs(position.amount))  # never flips
            order.quantity = order.executed + quantity
        old = position.amount
        realized = ZERO
        if old * order.sign < 0:
            closed = min(abs(old), quantity)
            realized = (price - position.entry) * closed * (1 if old > 0 else -1)
        new = old + quantity * order.sign
        if new == 0:
            position.entry = ZERO
            for resting in self.open_orders(order.contract.id):
                if resting.reduce_only and resting.position_side == position.side:
                    self._close(resting, "EXPIRED")  # Binance drops reduce-only orders with the position
        elif old == 0 or old * new < 0:
            position.entry = price
        elif abs(new) > abs(old):
            position.entry = (abs(old) * position.entry + quantity * price) / abs(new)
        position.amount = new
        commission = quantity * price * (MAKER_FEE if maker else TAKER_FEE)
        self.wallet += realized - commission
        order.executed += quantity
        order.cum_quote += quantity * price
        self._close(order, "FILLED")
        position.updated = order.updated
        self.fills.append(Fill(next(self._fill_ids), order, price, quantity, commission,
                               realized, maker, order.updated))
