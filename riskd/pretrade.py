"""The pre-trade check: may this order be placed now, and how much room is left under each limit?

Why: a bot that asks before it trades is never fought by riskd afterwards. riskd
cancels what a halted or reducing account should not hold, and trips breakers on
exposure it sees after the fact; the same rules, asked beforehand, let a bot skip an
entry instead of having it cancelled or closed on the next tick.

The check is a pure function of the last good snapshot, the account's trading state
and its limits: no clock, database or network, so it answers in microseconds and is
tested with plain values. It follows the engine's own rules: while halted only
reduce-only orders stay (the engine cancels every other order); while reducing an
order that would grow or flip a position is cancelled; while active an order that
adds exposure must leave every limit it touches unbreached, judged exactly as the
breaker would: a leverage, concentration or size at its limit is a breach, an order
count at its limit is not (at most N orders; the one past it is).

In hedge mode a symbol has a long and a short position, each its own: an order is
judged against the side it is for (`position_side`, or the side ccxt would send it to:
a buy opens the long side, a reduce-only buy closes the short side), and an order that
closes a side counts as reduce-only, as the venue and the engine treat it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping

from riskd.domain import Position, Side, Snapshot, TradingState
from riskd.engine import adds_exposure
from riskd.units import format_money, format_percent

LIMITS = ("leverage", "concentration", "position_size", "open_orders")
"""The limits an order can push against, by breaker name: leverage and concentration are
multiples of equity (or, written in money, the notional itself), position_size is the
symbol's notional in the quote currency, and open_orders a count. A limit is checked
when the account has that breaker enabled."""


@dataclass(frozen=True, slots=True)
class Intent:
    """An order a bot means to place: `side` buy or sell, `amount` in contracts (base units), `price` in quote.

    `position_side` is long or short for an account in hedge mode (None in one-way mode).
    """

    symbol: str
    side: str
    amount: float
    price: float | None = None
    reduce_only: bool = False
    position_side: str | None = None


@dataclass(frozen=True, slots=True)
class Room:
    """One limit the order touches: where it stands now, after the order, and the room left.

    `room` is what may still be added after this order before the limit trips: notional
    in the quote currency, or orders for `open_orders` (`unit` says which). Negative
    when the order would go past the limit.
    """

    limit: str
    value: float
    after: float
    maximum: float
    room: float
    unit: str
    money: bool = False
    """Whether `value`, `after` and `maximum` are amounts in the quote currency rather than ratios or counts."""

    @property
    def breached(self) -> bool:
        if self.unit == "orders":
            return self.after > self.maximum  # at most N: the breaker trips on the one past it (breakers/counts.py)
        return self.after >= self.maximum or math.isclose(self.after, self.maximum, rel_tol=1e-9)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer: allowed or not, why in one sentence, the order's notional and the room left."""

    allowed: bool
    reason: str
    notional: float | None = None
    rooms: tuple[Room, ...] = ()


def check(
    intent: Intent,
    trading_state: TradingState,
    state_reason: str,
    snapshot: Snapshot | None,
    limits: Mapping[str, float],
    problem: str | None = None,
    money: frozenset[str] = frozenset(),
) -> Verdict:
    """Judge `intent` against the account as riskd last saw it.

    `limits` maps a name of LIMITS to its limit (others are ignored), `money` names those
    written in money (`limit: 50000 USDT`); `problem` says why riskd cannot vouch for its
    view of the account (no recent good read), if so.
    """
    if snapshot is None or not snapshot.ok or problem is not None:
        why = problem or "riskd has no good read of the account yet"
        if intent.reduce_only:
            return Verdict(True, f"allowed: a reduce-only order can only shrink a position, though {why}")
        return Verdict(False, f"refused: riskd cannot guard what it cannot see ({why})")
    side = _position_side(intent, snapshot)
    mine = [position for position in snapshot.positions if _is_mine(position, intent.symbol, side)]
    held = sum(position.contracts if position.side is Side.LONG else -position.contracts for position in mine)
    adding = adds_exposure(intent.side, intent.amount, held)
    closing = side is not None and (intent.side == "buy") != (side == "long")
    if closing and not intent.reduce_only:
        # a hedge-mode order that closes a side is reduce-only to the venue and the engine
        if held == 0:
            return Verdict(False, f"refused: the order closes the {side} side, and there is no {side} {intent.symbol} position")
        intent = replace(intent, reduce_only=True)
    if intent.reduce_only and adding and held == 0:
        return Verdict(False, f"refused: a reduce-only order has nothing to reduce, there is no {_sided(side)}{intent.symbol} position")
    if intent.reduce_only and adding and (held > 0) == (intent.side == "buy"):
        return Verdict(False, f"refused: a reduce-only {intent.side} cannot reduce a {_direction(held)} {intent.symbol} position")
    price = intent.price or _mark(snapshot, intent.symbol)
    rooms = _rooms(intent, held, side, price, snapshot, limits, money) if price else ()
    notional = intent.amount * price if price else None
    match trading_state:
        case TradingState.HALTED if not intent.reduce_only:
            return Verdict(False, f"refused: the account is halted ({state_reason}); only reduce-only orders stay", notional, rooms)
        case TradingState.REDUCING if adding and not intent.reduce_only:
            return Verdict(
                False, f"refused: the account is reducing ({state_reason}); orders that add exposure are cancelled", notional, rooms
            )
    if intent.reduce_only or not adding:
        return Verdict(True, "allowed: the order does not add exposure", notional, rooms)
    if not price:
        return Verdict(False, f"refused: give a price; riskd holds no {intent.symbol} position to price the order from")
    if snapshot.equity <= 0:
        equity = format_money(snapshot.equity, snapshot.quote)
        return Verdict(False, f"refused: equity is {equity}, so any exposure is past every limit", notional, rooms)
    breached = [room for room in rooms if room.breached]
    if breached:
        words = "; ".join(_breach(room, snapshot.quote) for room in breached)
        return Verdict(False, f"refused: {words}", notional, rooms)
    return Verdict(True, "allowed: within every limit", notional, rooms)


def _rooms(
    intent: Intent, held: float, side: str | None, price: float, snapshot: Snapshot, limits: Mapping[str, float], money: frozenset[str]
) -> tuple[Room, ...]:
    """Each configured limit before and after the order fills at `price`; in hedge mode the
    order's side is one position and the other side another, so the two add up in the gross."""
    equity = snapshot.equity
    signed = intent.amount if intent.side == "buy" else -intent.amount
    after_held = held + signed
    if intent.reduce_only and held * after_held < 0:
        after_held = 0.0  # a reduce-only order is cut at the position's size by the exchange
    mine = sum(position.notional for position in snapshot.positions if _is_mine(position, intent.symbol, side))
    others = [position.notional for position in snapshot.positions if not _is_mine(position, intent.symbol, side)]
    mine_after = abs(after_held) * price
    gross, gross_after = snapshot.gross_notional, snapshot.gross_notional - mine + mine_after
    largest, largest_after = max([*others, mine], default=0.0), max([*others, mine_after], default=0.0)
    orders = len(snapshot.orders)
    rooms = []
    for name in LIMITS:
        if name not in limits:
            continue
        limit = limits[name]
        if name == "open_orders":
            rooms.append(Room(name, orders, orders + 1, limit, limit - (orders + 1), "orders"))
        elif name == "position_size":
            rooms.append(Room(name, mine, mine_after, limit, limit - mine_after, snapshot.quote, money=True))
        else:
            value, after = (gross, gross_after) if name == "leverage" else (largest, largest_after)
            if name in money:
                rooms.append(Room(name, value, after, limit, limit - after, snapshot.quote, money=True))
            elif equity > 0:
                rooms.append(Room(name, value / equity, after / equity, limit, limit * equity - after, snapshot.quote))
    return tuple(rooms)


def _position_side(intent: Intent, snapshot: Snapshot) -> str | None:
    """The hedge-mode side the order is for: as given, or, when the account holds a hedge-mode
    position in the symbol, the side ccxt sends it to; None in one-way mode."""
    if intent.position_side is not None:
        return intent.position_side
    if any(position.symbol == intent.symbol and position.position_side for position in snapshot.positions):
        return "long" if (intent.side == "buy") != intent.reduce_only else "short"
    return None


def _is_mine(position: Position, symbol: str, side: str | None) -> bool:
    """Whether `position` is the one the order trades: the symbol's, and in hedge mode the side's."""
    return position.symbol == symbol and (side is None or position.side is Side(side))


def _sided(side: str | None) -> str:
    return f"{side} " if side else ""


def _mark(snapshot: Snapshot, symbol: str) -> float | None:
    return next((position.mark_price for position in snapshot.positions if position.symbol == symbol and position.mark_price), None)


def _direction(held: float) -> str:
    return "long" if held > 0 else "short"


def _breach(room: Room, quote: str) -> str:
    if room.unit == "orders":
        return f"open_orders would be {room.after:.0f}, past the limit of {room.maximum:.0f}"
    if room.money:
        return f"{room.limit} would be {format_money(room.after, quote)}, past the limit of {format_money(room.maximum, quote)}"
    if room.limit == "concentration":
        return f"concentration would be {format_percent(room.after)}, past the limit of {format_percent(room.maximum)}"
    return f"leverage would be {room.after:.2f}x, past the limit of {room.maximum:.2f}x"
