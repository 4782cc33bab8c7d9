"""How the simulated markets read an order request and refuse a bad one.

Why it exists: Binance futures and Binance spot read the same parameters (side, type,
quantity, price, time in force) in the same order and refuse a missing, malformed or
unwanted one with the same codes and messages; only the filters applied afterwards
differ by market. Both accounts read requests through these functions, so the two
cannot drift apart.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

BUY, SELL = "BUY", "SELL"


class Rejection(Exception):
    """A request the exchange refuses, with Binance's error code, message and HTTP status."""

    def __init__(self, code: int, msg: str, status: int = 400):
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status


def mandatory(name: str) -> Rejection:
    return Rejection(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def decimal(value: object, name: str) -> Decimal:
    """A request parameter as a Decimal, or Binance's malformed-parameter rejection."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise mandatory(name) from None
    if not number.is_finite():
        raise mandatory(name)
    return number


def reject_if_sent(name: str, value: object) -> None:
    """Refuse a parameter this order type does not take (a market order's price, say)."""
    if value not in (None, ""):
        raise Rejection(-1106, f"Parameter '{name}' sent when not required.")


def side_and_type(side: str | None, type: str | None) -> tuple[str, str]:
    """An order's side and type, upper-cased; MARKET and LIMIT are all the simulator executes."""
    side, type = (side or "").upper(), (type or "").upper()
    if side not in (BUY, SELL):
        raise Rejection(-1117, "Invalid side.")
    if type not in ("MARKET", "LIMIT"):
        raise Rejection(-1116, "Invalid orderType.")
    return side, type


def quantity_parameter(quantity: object) -> Decimal:
    """An order's quantity, present and well formed; the market's lot filter comes after."""
    if quantity in (None, ""):
        raise mandatory("quantity")
    return decimal(quantity, "quantity")


def limit_parameters(price: object, time_in_force: str | None,
                     accepted: tuple[str, ...]) -> tuple[Decimal, str]:
    """A limit order's price and time in force (one of `accepted`, -1115 otherwise),
    present and well formed; the market's price filter comes after."""
    if price in (None, ""):
        raise mandatory("price")
    if not time_in_force:
        raise mandatory("timeInForce")
    if time_in_force not in accepted:
        raise Rejection(-1115, "Invalid timeInForce.")
    return decimal(price, "price"), time_in_force
