"""The last good snapshot revalued at new mark prices, judged by the same pure breakers.

Why it exists: between two reads of an account riskd follows the venue's public mark
prices (`stream.py`). A mark alone says nothing about the account, but with the
positions of the last good snapshot it gives what the account would read now: each
position's notional and unrealized PnL at the new mark, and equity moved by the change
in unrealized PnL. The price-driven breakers judge that estimate with their own code.

What comes out is a suspicion, never a decision: the daemon confirms it with a read of
the account (a normal tick) before anything is done, so riskd acts only on what the
account itself says. Like the engine, this module reads no clock, database or network.

Approximations, all of which the confirming read corrects: the liquidation price is
the one last read (a cross-margin position's moves with the rest of the account), and
funding and fees since the read are not counted.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Mapping

from riskd.breakers import BREAKERS, BreakerConfig, Context
from riskd.breakers.base import as_level, base_name
from riskd.domain import AccountState, Reading, Side, Snapshot, Status

PRICE_DRIVEN = (
    "drawdown", "daily_loss", "position_loss", "leverage", "concentration", "liquidation_distance", "position_size",
)
"""The breakers a mark price can move. `stale_data` measures time, the runaway-bot
guards on orders and the number of positions count things, and `loss_streak` counts
closed trades: no mark moves them."""


def revalue(snapshot: Snapshot, marks: Mapping[str, float]) -> Snapshot:
    """`snapshot` as it would read at `marks` (unified symbol → mark price).

    A position's notional scales with its mark; its unrealized PnL and the account's
    equity change by what the position gained or lost from its last mark to the new
    one. Positions without a new mark (or without a mark to start from) keep theirs.
    Spot holdings change equity and value, and keep their (zero) unrealized PnL.
    """
    positions, change = [], 0.0
    for position in snapshot.positions:
        mark = marks.get(position.symbol)
        if mark is None or mark <= 0 or not position.mark_price:
            positions.append(position)
            continue
        ratio = mark / position.mark_price
        gain = (1 if position.side is Side.LONG else -1) * position.notional * (ratio - 1)
        change += gain
        pnl = position.unrealized_pnl if position.kind == "spot" else position.unrealized_pnl + gain
        positions.append(replace(position, mark_price=mark, notional=position.notional * ratio, unrealized_pnl=pnl))
    equity = None if snapshot.equity is None else snapshot.equity + change
    return replace(snapshot, positions=tuple(positions), equity=equity)


def price_readings(
    state: AccountState, snapshot: Snapshot, breakers: Mapping[str, BreakerConfig], now: datetime
) -> tuple[Reading, ...]:
    """The price-driven breakers' readings of `snapshot` against the remembered `state`
    (the peak and day-start equity drawdown and daily loss are measured from). A ladder's
    levels are judged under their own names (`drawdown.2`), as the engine's tick does, so
    a breach is compared with the status the account's reads hold for that level."""
    context = Context(state.account, state, now, snapshot)
    return tuple(
        as_level(reading, name)
        for name, config in breakers.items()
        if base_name(name) in PRICE_DRIVEN
        for reading in BREAKERS[base_name(name)].evaluate(context, config)
    )


def unconfirmed_breaches(state: AccountState, readings: tuple[Reading, ...]) -> tuple[Reading, ...]:
    """The breached readings the account's own reads have not already tripped.

    A breach the last tick already holds as breached needs no extra read: the polls
    keep enforcing it. Only a new breach, or one still counting towards `confirm`, is
    worth reading the account for at once.
    """
    return tuple(
        reading
        for reading in readings
        if reading.status is Status.BREACHED and state.statuses.get(reading.key) != Status.BREACHED
    )
