"""A market the simulator lists (a futures contract or a spot pair) and how a request names one.

Why it exists: a USDT perpetual and a spot pair carry the same order filters (tick,
step, minimum notional, maximum quantity), round prices the same way and are named
the same ways in requests (`BTCUSDT`, ccxt's symbol, `BTC/USDT`). `Listing` holds
that once; `Contract` (ledger.py) and `Pair` (spot.py) add only what differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Mapping, TypeVar

from riskd.sim.parameters import Rejection, mandatory

QUOTE = "USDT"


def places(unit: Decimal) -> int:
    """Decimal places of a tick or step size: 0.001 -> 3, 1 -> 0."""
    return max(0, -unit.normalize().as_tuple().exponent)


@dataclass(frozen=True)
class Listing:
    """A market against USDT and the order filters Binance enforces on it."""

    base: str
    tick: Decimal
    step: Decimal
    min_notional: Decimal = Decimal(5)
    max_qty: Decimal = Decimal(10_000_000)

    @property
    def id(self) -> str:
        """Binance's symbol: BTCUSDT."""
        return f"{self.base}{QUOTE}"

    @property
    def symbol(self) -> str:
        """ccxt's symbol: BTC/USDT."""
        return f"{self.base}/{QUOTE}"

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a request may give it: Binance's, ccxt's, and the bare pair."""
        return (self.id, self.symbol, f"{self.base}/{QUOTE}")

    @property
    def price_precision(self) -> int:
        return places(self.tick)

    @property
    def quantity_precision(self) -> int:
        return places(self.step)

    def round_price(self, price: float | Decimal) -> Decimal:
        """The nearest tick to `price`, never below one tick."""
        ticks = (Decimal(str(price)) / self.tick).to_integral_value()
        return max(ticks, Decimal(1)) * self.tick


AnyListing = TypeVar("AnyListing", bound=Listing)


def by_name(listings: Iterable[AnyListing]) -> dict[str, AnyListing]:
    """Each listing under every one of its names, for `find`."""
    return {name: listing for listing in listings for name in listing.names}


def find(names: Mapping[str, AnyListing], symbol: str | None) -> AnyListing:
    """The listing a request's `symbol` parameter names; -1102 when it is missing, -1121 when unknown."""
    if not symbol:
        raise mandatory("symbol")
    try:
        return names[symbol]
    except KeyError:
        raise Rejection(-1121, "Invalid symbol.") from None
