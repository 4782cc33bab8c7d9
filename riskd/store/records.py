"""What the store hands back: typed records of its rows, and the JSON of an account's state.

The rest of riskd reads the database through these values, never through column names,
so a column can be renamed or split by a migration without touching the readers. Each
record is built from one row by `from_row`; times are stored as UTC ISO text to the
millisecond and come back as aware datetimes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any, Mapping

from riskd.domain import (
    AccountState,
    ActionKind,
    ActionStatus,
    AlertStatus,
    CommandStatus,
    EventKind,
    HookTrigger,
    Latch,
    Position,
    Reading,
    Severity,
    Side,
    Status,
    TradingState,
    frozen_mapping,
)


def encode_time(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds") if moment else None


def decode_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class OrderKind(StrEnum):
    """What a row under an action records: one order sent, or one cancel of open orders."""

    ORDER = "order"
    CANCEL = "cancel"


ORDER_KINDS = frozenset(OrderKind)


@dataclass(frozen=True, slots=True)
class OutboxHook:
    """A call of a hook in its outbox: what it is about, and how its delivery stands."""

    id: int
    at: datetime
    account: str
    hook: str
    kind: str
    trigger: HookTrigger
    state: TradingState
    reason: str
    status: AlertStatus
    attempts: int
    next_attempt_at: datetime | None
    done_at: datetime | None
    outcome: str | None
    error: str | None

    @classmethod
    def from_row(cls, row: dict) -> OutboxHook:
        return cls(
            id=row["id"],
            at=decode_time(row["at"]),
            account=row["account"],
            hook=row["hook"],
            kind=row["kind"],
            trigger=HookTrigger(row["trigger"]),
            state=TradingState(row["state"]),
            reason=row["reason"] or "",
            status=AlertStatus(row["status"]),
            attempts=row["attempts"] or 0,
            next_attempt_at=decode_time(row["next_attempt_at"]),
            done_at=decode_time(row["done_at"]),
            outcome=row["outcome"],
            error=row["error"],
        )


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    """How far an alert channel has got: every alert up to `last_alert_id` delivered (or not
    for it: muted), and after a failure, its attempts, when the next is due and why."""

    channel: str
    label: str
    last_alert_id: int
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    error: str | None

    @classmethod
    def from_row(cls, row: dict) -> ChannelRecord:
        return cls(
            channel=row["channel"],
            label=row["label"] or "",
            last_alert_id=row["last_alert_id"],
            attempts=row["attempts"] or 0,
            next_attempt_at=decode_time(row["next_attempt_at"]),
            sent_at=decode_time(row["sent_at"]),
            error=row["error"],
        )


@dataclass(frozen=True, slots=True)
class OutboxAlert:
    """An alert in the outbox: what to say, and how its delivery stands."""

    id: int
    at: datetime
    account: str
    severity: Severity
    key: str
    text: str
    status: AlertStatus
    attempts: int
    next_attempt_at: datetime | None
    sent_at: datetime | None
    error: str | None

    @classmethod
    def from_row(cls, row: dict) -> OutboxAlert:
        return cls(
            id=row["id"],
            at=decode_time(row["at"]),
            account=row["account"] or "",
            severity=Severity(row["severity"]),
            key=row["key"] or "",
            text=row["text"] or "",
            status=AlertStatus(row["status"]),
            attempts=row["attempts"] or 0,
            next_attempt_at=decode_time(row["next_attempt_at"]),
            sent_at=decode_time(row["sent_at"]),
            error=row["error"],
        )


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A recorded event, with when it was written."""

    id: int
    at: datetime
    account: str
    kind: EventKind | str
    """An `EventKind`; a kind this version does not know (written by a newer riskd) stays as text."""
    breaker: str | None
    severity: Severity
    message: str
    data: Mapping[str, Any]

    @classmethod
    def from_row(cls, row: dict) -> EventRecord:
        return cls(
            id=row["id"],
            at=decode_time(row["at"]),
            account=row["account"],
            kind=EventKind(row["kind"]) if row["kind"] in KNOWN_KINDS else row["kind"],
            breaker=row["breaker"],
            severity=Severity(row["severity"]),
            message=row["message"] or "",
            data=frozen_mapping(json.loads(row["data"]) if row["data"] else {}),
        )


KNOWN_KINDS = frozenset(EventKind)


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A person's command: what was asked, by whom, and how riskd answered.

    `command` is the command's kind for a queued command, and the text as sent for one
    answered on the spot (a refusal, a confirmation asked); `account` is None when the
    command named none.
    """

    id: int
    at: datetime
    source: str
    who: str
    account: str | None
    command: str
    arguments: Mapping[str, Any]
    status: CommandStatus
    result: str | None
    handled_at: datetime | None

    @classmethod
    def from_row(cls, row: dict) -> CommandRecord:
        return cls(
            id=row["id"],
            at=decode_time(row["at"]),
            source=row["source"],
            who=row["who"],
            account=row["account"],
            command=row["command"],
            arguments=frozen_mapping(json.loads(row["args"]) if row["args"] else {}),
            status=CommandStatus(row["status"]),
            result=row["result"],
            handled_at=decode_time(row["handled_at"]),
        )


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """An action the executor carried out, or one order or cancel it sent for one.

    An action has no `parent_id`; its orders and cancels name it there. `symbol` is the
    position's key for an action or order (the symbol, and the position side in hedge
    mode) and the symbols whose orders were cancelled for a cancel. `status` is riskd's
    own word; `exchange_status` is an order's status as the exchange reported it.
    """

    id: int
    at: datetime
    account: str
    kind: ActionKind | OrderKind
    symbol: str | None
    side: str | None
    amount: float | None
    client_order_id: str | None
    exchange_order_id: str | None
    status: ActionStatus
    exchange_status: str | None
    dry_run: bool
    reason: str | None
    error: str | None
    updated_at: datetime | None
    parent_id: int | None

    @classmethod
    def from_row(cls, row: dict) -> ActionRecord:
        kind = row["kind"]
        return cls(
            id=row["id"],
            at=decode_time(row["at"]),
            account=row["account"],
            kind=OrderKind(kind) if kind in ORDER_KINDS else ActionKind(kind),
            symbol=row["symbol"],
            side=row["side"],
            amount=row["amount"],
            client_order_id=row["client_order_id"],
            exchange_order_id=row["exchange_order_id"],
            status=ActionStatus(row["status"]),
            exchange_status=row["exchange_status"],
            dry_run=bool(row["dry_run"]),
            reason=row["reason"],
            error=row["error"],
            updated_at=decode_time(row["updated_at"]),
            parent_id=row["parent_id"],
        )


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """The figures of one recorded read of an account; its positions are `Store.positions_of(id)`."""

    id: int
    account: str
    at: datetime
    ok: bool
    equity: float | None
    gross_notional: float | None
    position_count: int
    order_count: int
    latency: float | None
    error: str | None
    balances: Mapping[str, float]

    @classmethod
    def from_row(cls, row: dict) -> SnapshotRecord:
        return cls(
            id=row["id"],
            account=row["account"],
            at=decode_time(row["at"]),
            ok=bool(row["ok"]),
            equity=row["equity"],
            gross_notional=row["gross_notional"],
            position_count=row["positions"] or 0,
            order_count=row["orders"] or 0,
            latency=row["latency"],
            error=row["error"],
            balances=frozen_mapping(json.loads(row["balances"]) if row["balances"] else {}),
        )


@dataclass(frozen=True, slots=True)
class StoredState:
    """An account's state row: what riskd remembers, when it was written, the last readings."""

    state: AccountState
    updated_at: datetime | None = None
    readings: tuple[Reading, ...] = ()


def position_row(position: Position) -> dict:
    """The columns of one position (the snapshot's id, account and time are added by the caller)."""
    return {**asdict(position), "side": str(position.side)}


def position_from_row(row: dict) -> Position:
    return Position(
        symbol=row["symbol"],
        side=Side(row["side"]),
        contracts=row["contracts"],
        notional=row["notional"],
        entry_price=row["entry_price"],
        mark_price=row["mark_price"],
        unrealized_pnl=row["unrealized_pnl"] or 0.0,
        liquidation_price=row["liquidation_price"],
        leverage=row["leverage"],
        kind=row["kind"] or "derivative",
        position_side=row["position_side"],
    )


# --- the state row's JSON ------------------------------------------------------------


def readings_to_json(readings: tuple[Reading, ...] | list[Reading]) -> str:
    return json.dumps([{**asdict(reading), "status": str(reading.status)} for reading in readings])


def readings_from_json(text: str | None) -> tuple[Reading, ...]:
    items = json.loads(text) if text else []
    return tuple(
        Reading(**{**item, "status": Status(item["status"]), "order_ids": tuple(item.get("order_ids", ()))}) for item in items
    )


def state_to_json(state: AccountState) -> str:
    return json.dumps(
        {
            "trading_state": str(state.trading_state),
            "reason": state.reason,
            "since": encode_time(state.since),
            "peak_equity": state.peak_equity,
            "day_start_equity": state.day_start_equity,
            "day_start": encode_time(state.day_start),
            "last_equity": state.last_equity,
            "last_good_at": encode_time(state.last_good_at),
            "started_at": encode_time(state.started_at),
            "latches": {
                name: {
                    "state": str(latch.state), "tripped_at": encode_time(latch.tripped_at),
                    "reason": latch.reason, "resume": latch.resume,
                }
                for name, latch in state.latches.items()
            },
            "streaks": dict(state.streaks),
            "statuses": {key: str(value) for key, value in state.statuses.items()},
            "last_alerts": {key: encode_time(value) for key, value in state.last_alerts.items()},
            "halt_exposure": dict(state.halt_exposure) if state.halt_exposure is not None else None,
            "implausible_ticks": state.implausible_ticks,
            "orders_seen": {key: encode_time(value) for key, value in state.orders_seen.items()},
            "orders_followed_since": encode_time(state.orders_followed_since),
            "losses_counted_from": encode_time(state.losses_counted_from),
        }
    )


def state_from_json(account: str, text: str) -> AccountState:
    data = json.loads(text)
    exposure = data.get("halt_exposure")
    return AccountState(
        account=account,
        trading_state=TradingState(data["trading_state"]),
        reason=data.get("reason", ""),
        since=decode_time(data.get("since")),
        peak_equity=data.get("peak_equity"),
        day_start_equity=data.get("day_start_equity"),
        day_start=decode_time(data.get("day_start")),
        last_equity=data.get("last_equity"),
        last_good_at=decode_time(data.get("last_good_at")),
        started_at=decode_time(data.get("started_at")),
        latches=frozen_mapping(
            {
                name: Latch(name, TradingState(item["state"]), decode_time(item["tripped_at"]), item["reason"], item["resume"])
                for name, item in data.get("latches", {}).items()
            }
        ),
        streaks=frozen_mapping(data.get("streaks", {})),
        statuses=frozen_mapping({key: Status(value) for key, value in data.get("statuses", {}).items()}),
        last_alerts=frozen_mapping({key: decode_time(value) for key, value in data.get("last_alerts", {}).items()}),
        halt_exposure=frozen_mapping(exposure) if exposure is not None else None,
        implausible_ticks=data.get("implausible_ticks", 0),
        orders_seen=frozen_mapping({key: decode_time(value) for key, value in data.get("orders_seen", {}).items()}),
        orders_followed_since=decode_time(data.get("orders_followed_since")),
        losses_counted_from=decode_time(data.get("losses_counted_from")),
    )
