"""Plain functions that build riskd's values for tests, with sensible defaults.

Every argument has a default, so a test names only what it is about:
`snapshot(equity=9_000, positions=[position(notional=5_000)])`.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Iterable

from riskd.breakers import BREAKERS, BreakerConfig, Context
from riskd.breakers.base import level_name
from riskd.domain import (
    AccountState, Alert, Command, CommandKind, Event, Latch, Order, Position, Reading, Severity, Side, Snapshot,
    TradingState, frozen_mapping,
)
from riskd.engine import Policy

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
"""The fixed time every test runs at; breakers never read a clock."""


def position(
    symbol: str = "BTC/USDT:USDT",
    *,
    side: str | Side = Side.LONG,
    notional: float = 1_000.0,
    contracts: float | None = None,
    unrealized_pnl: float = 0.0,
    entry_price: float | None = None,
    mark_price: float | None = None,
    liquidation_price: float | None = None,
    leverage: float | None = None,
    kind: str = "derivative",
    position_side: str | None = None,
) -> Position:
    """An open position; `contracts` follows from notional and mark when not given."""
    if contracts is None:
        contracts = notional / mark_price if mark_price else 1.0
    return Position(
        symbol=symbol,
        side=Side(side),
        contracts=contracts,
        notional=notional,
        entry_price=entry_price,
        mark_price=mark_price,
        unrealized_pnl=unrealized_pnl,
        liquidation_price=liquidation_price,
        leverage=leverage,
        kind=kind,
        position_side=position_side,
    )


def order(order_id: str = "1", symbol: str = "BTC/USDT:USDT", **fields) -> Order:
    """An open limit order."""
    values = {"side": "buy", "amount": 1.0, **fields}
    return Order(id=order_id, symbol=symbol, **values)


def snapshot(
    equity: float | None = 10_000.0,
    positions: Iterable[Position] = (),
    *,
    account: str = "main",
    fetched_at: datetime = NOW,
    quote: str = "USDT",
    orders: Iterable[Order] = (),
    balances: dict[str, float] | None = None,
    error: str | None = None,
    margin_ratio: float | None = None,
) -> Snapshot:
    """One tick's read of an account. `snapshot(equity=None, error=...)` is a failed read."""
    return Snapshot(
        account=account,
        fetched_at=fetched_at,
        equity=equity,
        quote=quote,
        positions=tuple(positions),
        orders=tuple(orders),
        balances=dict(balances or {}),
        error=error,
        margin_ratio=margin_ratio,
    )


def state(
    account: str = "main",
    *,
    peak_equity: float | None = None,
    day_start_equity: float | None = None,
    last_good_at: datetime | None = None,
    started_at: datetime | None = None,
    **fields,
) -> AccountState:
    """What riskd remembers about an account; only the figures a test names are set."""
    return AccountState(
        account=account,
        peak_equity=peak_equity,
        day_start_equity=day_start_equity,
        last_good_at=last_good_at,
        started_at=started_at,
        **fields,
    )


def context(
    snapshot: Snapshot | None = None,
    state: AccountState | None = None,
    *,
    now: datetime = NOW,
    account: str = "main",
) -> Context:
    """The inputs of one breaker evaluation; no snapshot means the tick had no usable read."""
    return Context(account=account, state=state if state is not None else AccountState(account), now=now, snapshot=snapshot)


def configure(name: str, **fields) -> BreakerConfig:
    """The named breaker's settings, validated as they would be from YAML."""
    return BREAKERS[name].config.model_validate(fields)


def evaluate(name: str, inputs: Context, **fields) -> tuple[Reading, ...]:
    """The named breaker's readings of `inputs`, with the settings `fields`."""
    return BREAKERS[name].evaluate(inputs, configure(name, **fields))


def only(readings: tuple[Reading, ...]) -> Reading:
    """The one reading a test expects, failing plainly when there are more or none."""
    assert len(readings) == 1, readings
    return readings[0]


def seconds_ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


# --- values for the engine and the store -------------------------------------------

TODAY = datetime(2025, 3, 1, tzinfo=UTC)
"""The start of NOW's trading day at the default reset time, 00:00 UTC."""


def policy(
    *,
    day_reset: time = time(0, 0),
    alert_cooldown: timedelta = timedelta(minutes=15),
    live: bool = False,
    **breakers: dict,
) -> Policy:
    """The engine's view of an account's configuration. Each keyword names a breaker and
    its settings, `policy(drawdown={}, leverage={"limit": 3})`; none gives every breaker
    with its defaults but the opt-in ones. A ladder's levels go by their own names, as
    `Settings.breakers_for` gives them (`drawdown`, `drawdown.2`)."""
    chosen = breakers or {
        name: {} for name, breaker in BREAKERS.items() if not (breaker.config.opt_in or breaker.config.portfolio_only)
    }
    configs = {
        level_name(name, number): level
        for name, fields in chosen.items()
        for number, level in enumerate(BREAKERS[name].config.model_validate(fields).ladder(), start=1)
    }
    return Policy(configs, day_reset=day_reset, alert_cooldown=alert_cooldown, live=live)


def watched_state(equity: float = 10_000.0, *, account: str = "main", **fields) -> AccountState:
    """An account riskd has watched for an hour: last, peak and day-start equity all at
    `equity`, today's day already started, the last good read 10 s before NOW."""
    values = {
        "peak_equity": equity,
        "day_start_equity": equity,
        "day_start": TODAY,
        "last_equity": equity,
        "last_good_at": NOW - timedelta(seconds=10),
        "started_at": NOW - timedelta(hours=1),
        **fields,
    }
    return AccountState(account=account, **values)


def latch(
    breaker: str = "drawdown",
    *,
    state: TradingState = TradingState.HALTED,
    tripped_at: datetime = NOW,
    resume: str = "manual",
    reason: str = "",
) -> Latch:
    """A breaker holding the account in `state` since `tripped_at`."""
    return Latch(breaker, state, tripped_at, reason or f"{breaker} tripped", resume)


def command(
    kind: str | CommandKind = CommandKind.FREEZE,
    *,
    account: str = "main",
    source: str = "telegram",
    who: str = "alice",
    reason: str = "",
    fraction: float | None = None,
) -> Command:
    """A person's instruction for an account."""
    return Command(CommandKind(kind), account, source, who, reason, fraction)


def alert(text: str = "Warning: drawdown 9.0% is near the limit of 10.0%.", *, account: str = "main", severity: Severity = Severity.WARNING, key: str = "warning:drawdown") -> Alert:
    """A message for the owner, as the engine queues it."""
    return Alert(account, severity, key, text)


def event(kind: str = "warning", message: str = "", *, account: str = "main", breaker: str | None = None, severity: Severity = Severity.INFO, **data) -> Event:
    """A fact for the event log."""
    return Event(account, kind, message or kind, breaker, severity, frozen_mapping(data))
