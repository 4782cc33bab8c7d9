"""The values riskd passes around: what it saw, what it decided, what it remembers.

Everything here is an immutable value with no behaviour beyond simple derived
figures, so the engine and the breakers can be pure functions of these values and
tests can build them by hand. Nothing in this module imports the rest of riskd.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from types import MappingProxyType
from typing import Mapping


def frozen_mapping(values: Mapping | None = None) -> Mapping:
    """A read-only view of a copy of `values`, so frozen dataclasses stay frozen."""
    return MappingProxyType(dict(values or {}))


class TradingState(StrEnum):
    """How much trading an account may do, from most to least permissive."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"

    @property
    def severity(self) -> int:
        return list(TradingState).index(self)


class Status(StrEnum):
    """Where a breaker's reading stands against its limit."""

    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"
    NO_DATA = "no_data"


class Severity(StrEnum):
    """How loudly an alert must reach a person."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"
    EMERGENCY = "emergency"


class ActionKind(StrEnum):
    """What the executor can do to an account."""

    CANCEL_ORDERS = "cancel_orders"
    REDUCE = "reduce"
    CLOSE = "close"
    FLATTEN = "flatten"


class Remedy(StrEnum):
    """What a breaker's configuration asks for when it trips, mildest first."""

    ALERT = "alert"
    CANCEL = "cancel"
    REDUCE = "reduce"
    CLOSE = "close"
    HALT = "halt"
    FLATTEN = "flatten"


class EventKind(StrEnum):
    """What an event records. The values are stored: changing one needs a migration."""

    WARNING = "warning"
    BREACH = "breach"
    CLEAR = "clear"
    RELEASED = "released"
    STATE_CHANGE = "state_change"
    ENFORCE = "enforce"
    COMMAND = "command"
    CREDENTIALS_REFUSED = "credentials_refused"
    IMPLAUSIBLE_SNAPSHOT = "implausible_snapshot"
    IMPLAUSIBLE_ACCEPTED = "implausible_accepted"
    ACTION_UNCONFIRMED = "action_unconfirmed"
    STRANGER = "stranger"
    HTTP_FAILED = "http_failed"
    CONFIG_REFUSED = "config_refused"
    OVERRIDE = "override"
    OVERRIDE_ENDED = "override_ended"
    STREAM_BREACH = "stream_breach"
    STREAM_UNCONFIRMED = "stream_unconfirmed"
    STREAM_DOWN = "stream_down"
    STREAM_UP = "stream_up"
    REPORT = "report"
    RATE_LIMITED = "rate_limited"
    RATE_BUDGET = "rate_budget"
    LOCK_FILE_FAILED = "lock_file_failed"


class ReadFailure(StrEnum):
    """Why reading an account failed, as far as riskd can tell from the exchange's reply."""

    AUTH = "auth"
    RATE_LIMIT = "rate_limit"
    TIMEOUT = "timeout"
    NETWORK = "network"
    MALFORMED = "malformed"
    REJECTED = "rejected"


class AlertStatus(StrEnum):
    """Where an alert stands in the outbox."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    MUTED = "muted"
    LOGGED = "logged"


class CommandStatus(StrEnum):
    """Where a person's command stands."""

    PENDING = "pending"
    ASKED = "asked"
    DONE = "done"
    FAILED = "failed"
    REFUSED = "refused"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class ActionStatus(StrEnum):
    """Where an action, or one of its orders and cancels, stands in riskd's own words."""

    PLANNED = "planned"
    DRY_RUN = "dry_run"
    SENT = "sent"
    DONE = "done"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"
    INTERRUPTED = "interrupted"


class HookTrigger(StrEnum):
    """The moments an account's hooks are called at: a state change to reducing or to
    halted, a flatten, and a return to active."""

    REDUCING = "reducing"
    HALTED = "halted"
    FLATTEN = "flatten"
    RESUME = "resume"


RISKD = ""
"""The account named by events and alerts about riskd itself rather than one account."""

_ALERT_PREFIXES = {
    EventKind.STATE_CHANGE: "state",
    EventKind.ACTION_UNCONFIRMED: "unconfirmed",
    EventKind.CREDENTIALS_REFUSED: "auth",
}
"""Alert keys that predate `EventKind` and are stored (the cooldowns in `last_alerts`)."""


def alert_key(kind: EventKind, subject: str = "") -> str:
    """The cooldown key of an alert: its kind, and what it is about when there can be several."""
    prefix = _ALERT_PREFIXES.get(kind, kind.value)
    return f"{prefix}:{subject}" if subject else prefix


def alert_kind(key: str) -> EventKind | None:
    """The kind an alert key was built from by `alert_key`; None for a key it did not build."""
    prefix = key.split(":", 1)[0]
    for kind in EventKind:
        if _ALERT_PREFIXES.get(kind, kind.value) == prefix:
            return kind
    return None


def utcnow() -> datetime:
    """The daemon's clock; tests pass their own."""
    return datetime.now(timezone.utc)


class Side(StrEnum):
    LONG = "long"
    SHORT = "short"


@dataclass(frozen=True, slots=True)
class Position:
    """One open exposure. Spot holdings are long positions of kind `spot`.

    `contracts` is always positive; `side` carries the direction. `notional` is the
    absolute value in the quote currency at the mark price.
    """

    symbol: str
    side: Side
    contracts: float
    notional: float
    entry_price: float | None = None
    mark_price: float | None = None
    unrealized_pnl: float = 0.0
    liquidation_price: float | None = None
    leverage: float | None = None
    kind: str = "derivative"
    position_side: str | None = None

    @property
    def key(self) -> str:
        """Identifies the position, also in hedge mode where a symbol has two."""
        return f"{self.symbol}:{self.position_side}" if self.position_side else self.symbol


@dataclass(frozen=True, slots=True)
class Order:
    """One open order on the exchange."""

    id: str
    symbol: str
    side: str
    amount: float
    reduce_only: bool = False
    remaining: float | None = None
    price: float | None = None
    """The limit (or trigger) price; None for an order with neither."""
    opened_at: datetime | None = None
    """When the exchange says it was placed, when it says."""
    contract_size: float = 1.0
    """What one unit of `amount` is: base currency per contract, or quote for an inverse one."""
    inverse: bool = False

    @property
    def notional(self) -> float | None:
        """What the rest of the order is worth at its price, in the quote currency, as a
        position's is: amount × contract size × price (an inverse contract's size is already in it)."""
        amount = abs(self.remaining if self.remaining is not None else self.amount) * self.contract_size
        if self.inverse:
            return amount
        return amount * self.price if self.price else None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything riskd read from one account in one tick.

    A snapshot whose read failed has `error` set and holds no figures; the engine
    treats it as missing data, never as an account worth zero.
    """

    account: str
    fetched_at: datetime
    latency: float = 0.0
    equity: float | None = None
    quote: str = "USDT"
    balances: Mapping[str, float] = field(default_factory=frozen_mapping)
    positions: tuple[Position, ...] = ()
    orders: tuple[Order, ...] = ()
    error: str | None = None
    error_kind: ReadFailure | None = None
    """Why the read failed, when `error` is set."""
    margin_ratio: float | None = None
    """The venue's account-level maintenance margin over margin balance (1 liquidates);
    None where the venue reports none (spot, or a venue riskd has no profile for)."""

    @property
    def ok(self) -> bool:
        return self.error is None and self.equity is not None

    @property
    def gross_notional(self) -> float:
        return sum(position.notional for position in self.positions)

    @property
    def exposure(self) -> dict[str, float]:
        """Contracts held per position key, signed (short is negative)."""
        return {
            position.key: position.contracts if position.side is Side.LONG else -position.contracts
            for position in self.positions
        }


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """Realized PnL the venue booked for one fill that closed (part of) a position."""

    id: str
    symbol: str
    pnl: float
    closed_at: datetime


@dataclass(frozen=True, slots=True)
class TradeHistory:
    """The account's recent closed trades as last read (its own job, never the tick), oldest first.

    `read_at` is None until a first read succeeded; `error` says why the latest read failed.
    """

    trades: tuple[ClosedTrade, ...] = ()
    read_at: datetime | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """What one breaker saw: a value against a limit, and why, in words."""

    breaker: str
    status: Status
    value: float | None
    limit: float
    warn_at: float
    reason: str
    symbol: str | None = None
    currency: str | None = None
    """The currency of the value and limit when the limit is written in money."""
    order_ids: tuple[str, ...] = ()
    """The orders at fault, for breakers that name them (open_orders, order_size)."""

    @property
    def key(self) -> str:
        """Names the condition: the breaker, and the position for per-position ones."""
        return f"{self.breaker}:{self.symbol}" if self.symbol else self.breaker


@dataclass(frozen=True, slots=True)
class Action:
    """An instruction to the executor, with the reason a person will read."""

    kind: ActionKind
    account: str
    reason: str
    symbol: str | None = None
    fraction: float | None = None
    order_ids: tuple[str, ...] = ()
    contracts: float | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """A message for the owner. `key` names the condition for the cooldown."""

    account: str
    severity: Severity
    key: str
    text: str


@dataclass(frozen=True, slots=True)
class Event:
    """A fact worth keeping: a warning, a breach, a clear, a state change."""

    account: str
    kind: EventKind
    message: str
    breaker: str | None = None
    severity: Severity = Severity.INFO
    data: Mapping = field(default_factory=frozen_mapping)


@dataclass(frozen=True, slots=True)
class Latch:
    """A breaker that tripped and holds the account until its resume policy allows."""

    breaker: str
    state: TradingState
    tripped_at: datetime
    reason: str
    resume: str


@dataclass(frozen=True, slots=True)
class AccountState:
    """What riskd remembers about an account between ticks (and restarts)."""

    account: str
    trading_state: TradingState = TradingState.ACTIVE
    reason: str = ""
    since: datetime | None = None
    peak_equity: float | None = None
    day_start_equity: float | None = None
    day_start: datetime | None = None
    last_equity: float | None = None
    last_good_at: datetime | None = None
    started_at: datetime | None = None
    latches: Mapping[str, Latch] = field(default_factory=frozen_mapping)
    streaks: Mapping[str, int] = field(default_factory=frozen_mapping)
    statuses: Mapping[str, Status] = field(default_factory=frozen_mapping)
    last_alerts: Mapping[str, datetime] = field(default_factory=frozen_mapping)
    halt_exposure: Mapping[str, float] | None = None
    implausible_ticks: int = 0
    losses_counted_from: datetime | None = None
    """Losing trades closed before this do not count towards loss_streak: it is set when the
    streak halts the account and when a person resumes it, so a streak is acted on once."""
    orders_seen: Mapping[str, datetime | None] = field(default_factory=frozen_mapping)
    """Order ids open or recently seen, with when each first appeared (None: already open at
    riskd's first look), for the order_rate breaker."""
    orders_followed_since: datetime | None = None
    """When riskd began following the account's orders for order_rate (None while no
    order_rate is in force): the orders open at that first look are not arrivals."""


class CommandKind(StrEnum):
    """What a person can ask of riskd, from any transport."""

    FREEZE = "freeze"
    RESUME = "resume"
    FLATTEN = "flatten"
    REDUCE = "reduce"
    OVERRIDE = "override"


@dataclass(frozen=True, slots=True)
class LimitOverride:
    """What a person asks of `override`: one breaker's limit, as written, for a while."""

    breaker: str
    limit: str
    lasting: timedelta


@dataclass(frozen=True, slots=True)
class OverrideInForce:
    """An override as recorded: whose, why, and until when it holds (then it reverts by itself)."""

    id: int
    account: str
    breaker: str
    limit: str
    started_at: datetime
    until: datetime
    who: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Command:
    """A person's instruction for one account, with who gave it and through what."""

    kind: CommandKind
    account: str
    source: str
    who: str
    reason: str = ""
    fraction: float | None = None
    override: LimitOverride | None = None


@dataclass(frozen=True, slots=True)
class StepResult:
    """The engine's answer for one tick."""

    state: AccountState
    readings: tuple[Reading, ...] = ()
    actions: tuple[Action, ...] = ()
    events: tuple[Event, ...] = ()
    alerts: tuple[Alert, ...] = ()


@dataclass(frozen=True, slots=True)
class HookCall:
    """One call of one account's hook, written to the hook outbox with the step that caused it."""

    account: str
    hook: str
    kind: str
    trigger: HookTrigger
    state: TradingState
    reason: str
