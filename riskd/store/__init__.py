"""SQLite storage: the only package that speaks SQL.

One file in WAL mode, shared by the daemon and the CLI. Every fact riskd sees and
every decision it makes is written here before it is acted on: snapshots, events,
actions, alerts (an outbox the sender drains), commands (how the CLI reaches a running
daemon) and each account's state, so a restarted daemon carries on where it stopped.

Domain values go in; typed records (`records.py`) and domain values come out, never
rows, so no other module knows a column name. The tables and their migrations are in
`schema.py`.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

from riskd.domain import (
    AccountState,
    Action,
    ActionStatus,
    Alert,
    AlertStatus,
    Command,
    CommandKind,
    CommandStatus,
    Event,
    HookCall,
    LimitOverride,
    OverrideInForce,
    Position,
    Reading,
    Snapshot,
    StepResult,
)
from riskd.store.records import (
    ActionRecord,
    ChannelRecord,
    CommandRecord,
    EventRecord,
    OrderKind,
    OutboxAlert,
    OutboxHook,
    SnapshotRecord,
    StoredState,
    decode_time,
    encode_time,
    position_from_row,
    position_row,
    readings_from_json,
    readings_to_json,
    state_from_json,
    state_to_json,
)
from riskd.store.schema import BUSY_PATIENCE, enable_wal, migrate, sqlite_utils, write_problem

if TYPE_CHECKING:
    from riskd.candles import Row

__all__ = [
    "ActionRecord", "ChannelRecord", "CommandRecord", "EventRecord", "OrderKind", "OutboxAlert", "OutboxHook", "SnapshotRecord", "Store",
    "StoreError", "StoredState", "write_problem",
]


class StoreError(Exception):
    """The database cannot be opened or written; the message says which file and why."""


class Store:
    """The riskd database. `Store(":memory:")` is a throwaway one: for tests, and for
    `riskd check`, which reads every account without touching the daemon's file."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite_utils.Database(sqlite3.connect(self.path, timeout=BUSY_PATIENCE))
            if self.path != ":memory:":
                enable_wal(self.db)
                # In WAL mode, NORMAL syncs at checkpoints instead of every commit: a crash of
                # riskd loses nothing, a power cut at most the last commits, and a tick no
                # longer waits on a disk flush for each of its writes (tens of ms on a VPS).
                self.db.execute("PRAGMA synchronous = NORMAL")
            migrate(self.db)
        except (sqlite3.Error, OSError) as error:
            raise StoreError(f"database {self.path}: {error}") from None

    def close(self) -> None:
        self.db.close()

    # --- account state --------------------------------------------------------

    def load_state(self, account: str) -> AccountState:
        row = self._state_row(account)
        return state_from_json(account, row["data"]) if row else AccountState(account)

    def stored_state(self, account: str) -> StoredState:
        """The account's state, when it was written and its last readings, from one read."""
        row = self._state_row(account)
        if row is None:
            return StoredState(AccountState(account))
        return StoredState(state_from_json(account, row["data"]), decode_time(row["updated_at"]), readings_from_json(row["readings"]))

    def _state_row(self, account: str) -> dict | None:
        return next(self.db.table("state").rows_where("account = ?", [account]), None)

    # --- a tick ----------------------------------------------------------------

    def record_snapshot(self, snapshot: Snapshot) -> int:
        """Keep the tick's figures and positions; a failed read is kept with its error."""
        with self.db.atomic():
            row = self.db.table("snapshots").insert(
                {
                    "account": snapshot.account,
                    "at": encode_time(snapshot.fetched_at),
                    "ok": int(snapshot.ok),
                    "equity": snapshot.equity,
                    "gross_notional": snapshot.gross_notional,
                    "positions": len(snapshot.positions),
                    "orders": len(snapshot.orders),
                    "latency": snapshot.latency,
                    "error": snapshot.error,
                    "balances": json.dumps(dict(snapshot.balances)),
                }
            )
            snapshot_id = row.last_pk
            self.db.table("positions").insert_all(
                {"snapshot_id": snapshot_id, "account": snapshot.account, "at": encode_time(snapshot.fetched_at), **position_row(position)}
                for position in snapshot.positions
            )
        return snapshot_id

    def record_step(self, result: StepResult, now: datetime, hooks: Iterable[HookCall] = ()) -> None:
        """The new state, its events and the alerts and hook calls they cause, in one transaction."""
        with self.db.atomic():
            self._save_state(result.state, now, result.readings)
            self._insert_events(result.events, now)
            self._insert_alerts(result.alerts, now)
            self._insert_hooks(hooks, now)

    def _save_state(self, state: AccountState, now: datetime, readings: Iterable[Reading] = ()) -> None:
        row = {"account": state.account, "updated_at": encode_time(now), "data": state_to_json(state)}
        if readings:
            row["readings"] = readings_to_json(readings)
        self.db.table("state").upsert(row, pk="account")

    def _insert_events(self, events: Iterable[Event], now: datetime) -> None:
        self.db.table("events").insert_all(
            {
                "at": encode_time(now),
                "account": event.account,
                "kind": str(event.kind),
                "breaker": event.breaker,
                "severity": str(event.severity),
                "message": event.message,
                "data": json.dumps(dict(event.data), default=str),
            }
            for event in events
        )

    def _insert_alerts(self, alerts: Iterable[Alert], now: datetime) -> None:
        self.db.table("alerts").insert_all(
            {
                "at": encode_time(now),
                "account": alert.account,
                "severity": str(alert.severity),
                "key": alert.key,
                "text": alert.text,
                "status": str(AlertStatus.PENDING),
                "attempts": 0,
                "next_attempt_at": encode_time(now),
            }
            for alert in alerts
        )

    def _insert_hooks(self, calls: Iterable[HookCall], now: datetime) -> None:
        self.db.table("hooks").insert_all(
            {
                "at": encode_time(now),
                "account": call.account,
                "hook": call.hook,
                "kind": call.kind,
                "trigger": str(call.trigger),
                "state": str(call.state),
                "reason": call.reason,
                "status": str(AlertStatus.PENDING),
                "attempts": 0,
                "next_attempt_at": encode_time(now),
            }
            for call in calls
        )

    def record_event(self, event: Event, now: datetime, alert: Alert | None = None) -> None:
        """An event from outside the engine (the executor, the supervisor), with its alert."""
        with self.db.atomic():
            self._insert_events([event], now)
            if alert is not None:
                self._insert_alerts([alert], now)

    # --- overrides -------------------------------------------------------------

    def add_override(
        self, account: str, override: LimitOverride, source: str, who: str, reason: str, now: datetime,
        event: Event, alert: Alert,
    ) -> int:
        """An override that starts now, with its announcement, in one transaction; returns its id."""
        with self.db.atomic():
            row = self.db.table("overrides").insert(
                {
                    "account": account, "breaker": override.breaker, "limit_text": override.limit,
                    "at": encode_time(now), "until": encode_time(now + override.lasting),
                    "source": source, "who": who, "reason": reason,
                }
            )
            self._insert_events([event], now)
            self._insert_alerts([alert], now)
        return row.last_pk

    def overrides(self, account: str) -> list[OverrideInForce]:
        """The account's overrides not yet ended, oldest first (some may have run out since)."""
        rows = self.db.table("overrides").rows_where("account = ? and ended_at is null", [account], order_by="id")
        return [
            OverrideInForce(
                row["id"], row["account"], row["breaker"], row["limit_text"], decode_time(row["at"]),
                decode_time(row["until"]), f"{row['who']} via {row['source']}", row["reason"] or "",
            )
            for row in rows
        ]

    def end_override(self, override_id: int, now: datetime, event: Event, alert: Alert) -> None:
        """An override that has run out, with its announcement, in one transaction."""
        with self.db.atomic():
            self.db.table("overrides").update(override_id, {"ended_at": encode_time(now)})
            self._insert_events([event], now)
            self._insert_alerts([alert], now)

    # --- actions ---------------------------------------------------------------

    def record_action(self, action: Action, now: datetime, dry_run: bool) -> int:
        """Write an action before it is carried out; returns its id for its orders and updates."""
        return self._insert_action(action, now, dry_run, kind=str(action.kind), symbol=action.symbol, status=ActionStatus.PLANNED)

    def record_order(
        self,
        parent_id: int,
        action: Action,
        kind: OrderKind,
        now: datetime,
        dry_run: bool,
        status: ActionStatus,
        *,
        symbol: str,
        side: str | None = None,
        amount: float | None = None,
        client_order_id: str | None = None,
        exchange_order_id: str | None = None,
    ) -> int:
        """Write one order or cancel of the action `parent_id` before it is sent; returns its id."""
        return self._insert_action(
            action, now, dry_run, kind=str(kind), symbol=symbol, status=status, parent_id=parent_id, side=side,
            amount=amount, client_order_id=client_order_id, exchange_order_id=exchange_order_id,
        )

    def _insert_action(self, action: Action, now: datetime, dry_run: bool, status: ActionStatus, **columns) -> int:
        row = self.db.table("actions").insert(
            {
                "at": encode_time(now),
                "account": action.account,
                "status": str(status),
                "dry_run": int(dry_run),
                "reason": action.reason,
                "updated_at": encode_time(now),
                **columns,
            }
        )
        return row.last_pk

    def update_action(
        self,
        action_id: int,
        now: datetime,
        status: ActionStatus,
        *,
        error: str | None = None,
        exchange_order_id: str | None = None,
        exchange_status: str | None = None,
    ) -> None:
        """Record what became of an action, order or cancel: its status, and what is known of it."""
        known = {"error": error, "exchange_order_id": exchange_order_id, "exchange_status": exchange_status}
        fields = {name: value for name, value in known.items() if value is not None}
        self.db.table("actions").update(action_id, {"status": str(status), **fields, "updated_at": encode_time(now)})

    # --- alerts outbox ---------------------------------------------------------

    def due_alerts(self, now: datetime, limit: int = 50) -> list[OutboxAlert]:
        """Pending alerts, oldest first, stopping at the first not yet due (keeps order)."""
        rows = self.db.table("alerts").rows_where("status = ?", [str(AlertStatus.PENDING)], order_by="id", limit=limit)
        due = []
        for alert in map(OutboxAlert.from_row, rows):
            if alert.next_attempt_at and alert.next_attempt_at > now:
                break
            due.append(alert)
        return due

    def mark_alert(
        self, alert_id: int, now: datetime, status: AlertStatus, error: str | None = None, retry_at: datetime | None = None
    ) -> None:
        row = self.db.table("alerts").get(alert_id)
        fields = {"status": str(status), "attempts": row["attempts"] + 1, "error": error}
        if status == AlertStatus.SENT:
            fields["sent_at"] = encode_time(now)
        if retry_at is not None:
            fields["next_attempt_at"] = encode_time(retry_at)
        self.db.table("alerts").update(alert_id, fields)

    def muted_until(self) -> datetime | None:
        """Until when info and warning alerts are held back (`/mute`), if they are."""
        row = next(self.db.table("meta").rows_where("key = ?", ["alerts_muted_until"]), None)
        return decode_time(row["value"]) if row else None

    def mute_alerts(self, until: datetime | None) -> None:
        if until is None:
            self.db.execute("delete from meta where key = 'alerts_muted_until'")
        else:
            self.db.table("meta").upsert({"key": "alerts_muted_until", "value": encode_time(until)}, pk="key")

    def alert_backlog(self) -> tuple[int, datetime | None]:
        """How many alerts wait in the outbox, and since when the oldest has."""
        count, oldest = self.db.execute(
            "select count(*), min(at) from alerts where status = ?", [str(AlertStatus.PENDING)]
        ).fetchone()
        return count, decode_time(oldest)

    # --- alert channels besides Telegram ----------------------------------------

    def channel(self, channel: str, label: str) -> ChannelRecord:
        """How far `channel` has got; a channel seen for the first time starts after the
        alerts already raised (it is not flooded with history)."""
        row = next(self.db.table("channels").rows_where("channel = ?", [channel]), None)
        if row is None:
            latest = self.db.execute("select coalesce(max(id), 0) from alerts").fetchone()[0]
            row = {"channel": channel, "label": label, "last_alert_id": latest, "attempts": 0}
            self.db.table("channels").insert(row)
            row = self.db.table("channels").get(channel)
        return ChannelRecord.from_row(row)

    def channel_salt(self) -> bytes:
        """The random salt alert channels are keyed under (see riskd.channels), made on first use."""
        row = next(self.db.table("meta").rows_where("key = ?", ["channel_salt"]), None)
        if row is None:
            row = {"key": "channel_salt", "value": secrets.token_hex(32)}
            self.db.table("meta").insert(row, pk="key", ignore=True)
            row = next(self.db.table("meta").rows_where("key = ?", ["channel_salt"]))
        return bytes.fromhex(row["value"])

    def rekey_channel(self, former: str, key: str) -> None:
        """Carry a channel's place over from the key older riskd gave it, if it has one and not the new one yet."""
        with self.db.atomic():
            if self.db.execute("select 1 from channels where channel = ?", [key]).fetchone() is None:
                self.db.execute("update channels set channel = ? where channel = ?", [key, former])

    def alerts_after(self, alert_id: int, limit: int = 50) -> list[OutboxAlert]:
        """The alerts raised after `alert_id`, whatever their status, oldest first."""
        rows = self.db.table("alerts").rows_where("id > ?", [alert_id], order_by="id", limit=limit)
        return [OutboxAlert.from_row(row) for row in rows]

    def channel_passed(self, channel: str, alert_id: int, now: datetime, sent: bool) -> None:
        """The channel is done with `alert_id`: delivered (`sent`), or skipped as muted."""
        fields = {"last_alert_id": alert_id, "attempts": 0, "next_attempt_at": None, "error": None}
        if sent:
            fields["sent_at"] = encode_time(now)
        self.db.table("channels").update(channel, fields)

    def channel_failed(self, channel: str, error: str, retry_at: datetime) -> None:
        """The channel could not take its next alert: try again at `retry_at`."""
        self.db.execute(
            "update channels set attempts = attempts + 1, error = ?, next_attempt_at = ? where channel = ?",
            [error, encode_time(retry_at), channel],
        )

    def channels(self) -> list[ChannelRecord]:
        return [ChannelRecord.from_row(row) for row in self.db.table("channels").rows_where(order_by="channel")]

    # --- hooks outbox ----------------------------------------------------------

    def due_hooks(self, now: datetime, limit: int = 200) -> dict[tuple[str, str], list[OutboxHook]]:
        """Pending hook calls by (account, hook), oldest first, each queue stopping at its first
        call not yet due: a hook's calls keep their order, and one hook never waits on another."""
        rows = self.db.table("hooks").rows_where("status = ?", [str(AlertStatus.PENDING)], order_by="id", limit=limit)
        queues: dict[tuple[str, str], list[OutboxHook]] = {}
        blocked = set()
        for call in map(OutboxHook.from_row, rows):
            queue = (call.account, call.hook)
            if queue in blocked:
                continue
            if call.next_attempt_at and call.next_attempt_at > now:
                blocked.add(queue)
                continue
            queues.setdefault(queue, []).append(call)
        return queues

    def mark_hook(
        self,
        call_id: int,
        now: datetime,
        status: AlertStatus,
        outcome: str | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """What one attempt at a hook call gave: done (`sent`), given up (`failed`) or to retry at `retry_at`."""
        row = self.db.table("hooks").get(call_id)
        fields = {"status": str(status), "attempts": row["attempts"] + 1, "outcome": outcome, "error": error}
        if status is not AlertStatus.PENDING:
            fields["done_at"] = encode_time(now)
        if retry_at is not None:
            fields["next_attempt_at"] = encode_time(retry_at)
        self.db.table("hooks").update(call_id, fields)

    def hook_calls(self, account: str | None = None, limit: int = 50) -> list[OutboxHook]:
        """The latest hook calls, whatever their status, oldest first."""
        return [OutboxHook.from_row(row) for row in self._latest("hooks", account, limit)]

    # --- commands --------------------------------------------------------------

    def submit_command(self, command: Command, now: datetime) -> int:
        row = self.db.table("commands").insert(
            {
                "at": encode_time(now),
                "source": command.source,
                "who": command.who,
                "account": command.account,
                "command": str(command.kind),
                "args": json.dumps({"reason": command.reason, "fraction": command.fraction, **_override_args(command)}),
                "status": str(CommandStatus.PENDING),
            }
        )
        return row.last_pk

    def record_answer(
        self, source: str, who: str, text: str, status: CommandStatus, result: str, now: datetime, account: str | None = None
    ) -> int:
        """A command answered on the spot (refused, a status, a confirmation asked or cancelled): kept, with who sent it."""
        row = self.db.table("commands").insert(
            {
                "at": encode_time(now), "source": source, "who": who, "account": account, "command": text,
                "args": "{}", "status": str(status), "result": result, "handled_at": encode_time(now),
            }
        )
        return row.last_pk

    def pending_commands(self) -> list[tuple[int, Command, datetime]]:
        rows = self.db.table("commands").rows_where("status = ?", [str(CommandStatus.PENDING)], order_by="id")
        return [
            (
                row["id"],
                Command(CommandKind(row["command"]), row["account"], row["source"], row["who"], **_command_args(row["args"])),
                decode_time(row["at"]),
            )
            for row in rows
        ]

    def finish_command(self, command_id: int, now: datetime, status: CommandStatus, result: str) -> None:
        self.db.table("commands").update(command_id, {"status": str(status), "result": result, "handled_at": encode_time(now)})

    def command(self, command_id: int) -> CommandRecord:
        return CommandRecord.from_row(self.db.table("commands").get(command_id))

    # --- reading ---------------------------------------------------------------

    def latest_snapshot(self, account: str, ok_only: bool = True) -> SnapshotRecord | None:
        where = "account = ? and ok = 1" if ok_only else "account = ?"
        row = next(self.db.table("snapshots").rows_where(where, [account], order_by="id desc", limit=1), None)
        return SnapshotRecord.from_row(row) if row else None

    def positions_of(self, snapshot_id: int) -> list[Position]:
        rows = self.db.table("positions").rows_where("snapshot_id = ?", [snapshot_id], order_by="symbol, position_side")
        return [position_from_row(row) for row in rows]

    def events(self, account: str | None = None, limit: int = 20) -> list[EventRecord]:
        """The latest events, oldest first, of one account or of all."""
        return [EventRecord.from_row(row) for row in self._latest("events", account, limit)]

    def actions(self, account: str | None = None, limit: int = 50) -> list[ActionRecord]:
        """The latest actions with their orders and cancels, oldest first."""
        return [ActionRecord.from_row(row) for row in self._latest("actions", account, limit)]

    def alerts(self, limit: int = 50) -> list[OutboxAlert]:
        """The latest alerts in the outbox, whatever their status, oldest first."""
        return [OutboxAlert.from_row(row) for row in self._latest("alerts", None, limit)]

    def _latest(self, table: str, account: str | None, limit: int) -> list[dict]:
        where, args = ("account = ?", [account]) if account else (None, [])
        rows = list(self.db.table(table).rows_where(where, args, order_by="id desc", limit=limit))
        return rows[::-1]

    def equity_history(self, account: str, since: datetime) -> list[tuple[datetime, float]]:
        """(time, equity) of every good snapshot of `account` since `since`, oldest first."""
        rows = self.db.execute(
            "select at, equity from snapshots where account = ? and ok = 1 and at >= ? order by id", [account, encode_time(since)]
        )
        return [(decode_time(at), equity) for at, equity in rows]

    def tally(self, account: str, since: datetime) -> dict[str, int]:
        """Events of each kind, and orders sent or (in dry-run) not sent, since `since`."""
        counts = {
            kind: count
            for kind, count in self.db.execute(
                "select kind, count(*) from events where account = ? and at >= ? group by kind", [account, encode_time(since)]
            )
        }
        orders = "select count(*) from actions where account = ? and at >= ? and parent_id is not null and kind = ?"
        for name, where in (("orders", "status != ?"), ("dry_run_orders", "status = ?")):
            arguments = [account, encode_time(since), str(OrderKind.ORDER), str(ActionStatus.DRY_RUN)]
            counts[name] = self.db.execute(f"{orders} and {where}", arguments).fetchone()[0]
        return counts

    def action_counts(self) -> list[tuple[str, str, int]]:
        """(account, status, how many) over the actions still in the database."""
        return self.db.execute("select account, status, count(*) from actions group by account, status").fetchall()

    def prune(self, now: datetime, keep: timedelta) -> int:
        """Delete time series older than `keep`; events, actions and commands stay longer (×4)."""
        cutoff, long_cutoff = encode_time(now - keep), encode_time(now - keep * 4)
        removed = 0
        with self.db.atomic():
            old = "snapshot_id in (select id from snapshots where at < ?)"
            self.db.execute(f"delete from positions where {old}", [cutoff])
            for table, limit in (("snapshots", cutoff), ("events", long_cutoff), ("actions", long_cutoff), ("commands", long_cutoff)):
                removed += self.db.execute(f"delete from {table} where at < ?", [limit]).rowcount
            for table in ("alerts", "hooks"):
                removed += self.db.execute(f"delete from {table} where status != ? and at < ?", [str(AlertStatus.PENDING), cutoff]).rowcount
            removed += self.db.execute("delete from overrides where ended_at < ?", [long_cutoff]).rowcount
        return removed

    # --- candles ---------------------------------------------------------------

    def record_candles(self, venue: str, symbol: str, timeframe: str, rows: Iterable[Sequence[float]]) -> int:
        """Insert or replace a venue's candles given as ccxt gives them: [time ms, open, high, low, close, volume]."""
        records = [
            {
                "venue": venue, "symbol": symbol, "timeframe": timeframe, "time": int(row[0]),
                "open": row[1], "high": row[2], "low": row[3], "close": row[4], "volume": row[5],
            }
            for row in rows
        ]
        if records:
            self.db.table("candles").upsert_all(records, pk=("venue", "symbol", "timeframe", "time"))
        return len(records)

    def last_candle_time(self, venue: str, symbol: str, timeframe: str) -> int | None:
        """The open time (epoch ms) of the venue's latest cached candle of `symbol`, or None."""
        row = self.db.execute(
            "select max(time) from candles where venue = ? and symbol = ? and timeframe = ?", [venue, symbol, timeframe]
        ).fetchone()
        return row[0]

    def candles(self, venue: str, timeframe: str, symbols: Iterable[str], since: int) -> dict[str, list[Row]]:
        """A venue's cached candles per symbol from `since` (epoch ms), oldest first."""
        result: dict[str, list[Row]] = {}
        for symbol in symbols:
            result[symbol] = self.db.execute(
                "select time, open, high, low, close, volume from candles"
                " where venue = ? and symbol = ? and timeframe = ? and time >= ? order by time",
                [venue, symbol, timeframe, since],
            ).fetchall()
        return result

    def prune_candles(self, before: int) -> int:
        """Delete candles that opened before `before` (epoch ms), on every venue."""
        with self.db.atomic():
            return self.db.execute("delete from candles where time < ?", [before]).rowcount


def _override_args(command: Command) -> dict:
    if command.override is None:
        return {}
    override = command.override
    return {"breaker": override.breaker, "limit": override.limit, "lasting": override.lasting.total_seconds()}


def _command_args(text: str) -> dict:
    """A queued command's arguments; an override's three travel as one LimitOverride."""
    arguments = json.loads(text)
    if "breaker" in arguments:
        lasting = timedelta(seconds=arguments.pop("lasting"))
        arguments["override"] = LimitOverride(arguments.pop("breaker"), arguments.pop("limit"), lasting)
    return arguments
