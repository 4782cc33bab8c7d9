"""SQLite storage: the only module that speaks SQL.

One file in WAL mode, shared by the daemon and the CLI. Every fact riskd sees and
every decision it makes is written here before it is acted on: snapshots, events,
actions, alerts (an outbox the sender drains), commands (how the CLI reaches a running
daemon) and each account's state, so a restarted daemon carries on where it stopped.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence


def _import_sqlite_utils():
    """Import sqlite-utils without letting it import pandas and numpy.

    sqlite-utils imports both when they are installed, only to map their scalar types
    to column types. riskd never hands it either, and the import would cost the daemon
    some 40 MB of its memory budget. Modules that need pandas still import it normally.
    """
    blocked = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # makes `import name` raise ImportError
    try:
        import sqlite_utils
    finally:
        for name in blocked:
            del sys.modules[name]
    return sqlite_utils


sqlite_utils = _import_sqlite_utils()

from riskd.domain import (
    AccountState,
    Action,
    Alert,
    Command,
    CommandKind,
    Event,
    Latch,
    Reading,
    Snapshot,
    Status,
    StepResult,
    TradingState,
    frozen_mapping,
)


class StoreError(Exception):
    """The database cannot be opened or written; the message says which file and why."""


def _text(moment: datetime | None) -> str | None:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds") if moment else None


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def write_problem(path: str | Path) -> str | None:
    """Why riskd could not write the database at `path`, or None if it can. Changes nothing.

    A missing file needs a writable directory; an existing one gets a write that is
    rolled back (opening alone succeeds read-only on a read-only file).
    """
    path = Path(path)
    if str(path) == ":memory:":
        return None
    if not path.exists():
        directory = next(parent for parent in path.absolute().parents if parent.exists())
        return None if os.access(directory, os.W_OK | os.X_OK) else f"{directory} is not writable, so {path} cannot be created"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"{path.parent} is not writable (SQLite creates {path.name}-wal and {path.name}-shm there)"
    try:
        connection = sqlite3.connect(f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=5, isolation_level=None)
        try:
            connection.execute("begin immediate")
            connection.execute("create table riskd_write_probe (x)")
            connection.execute("rollback")
        finally:
            connection.close()
    except sqlite3.Error as error:
        return f"{path}: {error}"
    return None


def _migration_1(db: sqlite_utils.Database) -> None:
    """The first schema: every table riskd uses."""
    db.table("snapshots").create(
        {
            "id": int, "account": str, "at": str, "ok": int, "equity": float, "gross_notional": float,
            "positions": int, "orders": int, "latency": float, "error": str, "balances": str,
        },
        pk="id", not_null={"account", "at"},
    )
    db.table("snapshots").create_index(["account", "at"])
    db.table("positions").create(
        {
            "snapshot_id": int, "account": str, "at": str, "symbol": str, "side": str, "contracts": float,
            "notional": float, "entry_price": float, "mark_price": float, "unrealized_pnl": float,
            "liquidation_price": float, "leverage": float, "kind": str,
        },
        foreign_keys=[("snapshot_id", "snapshots", "id")],
    )
    db.table("positions").create_index(["snapshot_id"])
    db.table("events").create(
        {"id": int, "at": str, "account": str, "kind": str, "breaker": str, "severity": str, "message": str, "data": str},
        pk="id", not_null={"at", "account", "kind"},
    )
    db.table("events").create_index(["account", "at"])
    db.table("actions").create(
        {
            "id": int, "at": str, "account": str, "kind": str, "symbol": str, "side": str, "amount": float,
            "client_order_id": str, "exchange_order_id": str, "status": str, "dry_run": int, "reason": str,
            "error": str, "updated_at": str,
        },
        pk="id", not_null={"at", "account", "kind", "status"},
    )
    db.table("actions").create_index(["account", "at"])
    db.table("alerts").create(
        {
            "id": int, "at": str, "account": str, "severity": str, "key": str, "text": str, "status": str,
            "attempts": int, "next_attempt_at": str, "sent_at": str, "error": str,
        },
        pk="id", not_null={"at", "status"},
    )
    db.table("alerts").create_index(["status", "id"])
    db.table("commands").create(
        {
            "id": int, "at": str, "source": str, "who": str, "account": str, "command": str, "args": str,
            "status": str, "result": str, "handled_at": str,
        },
        pk="id", not_null={"at", "command", "status"},
    )
    db.table("commands").create_index(["status", "id"])
    db.table("state").create({"account": str, "updated_at": str, "data": str, "readings": str}, pk="account")


def _migration_candles(db: sqlite_utils.Database) -> None:
    """The OHLCV cache of the market breakers: one row per account, symbol, timeframe and
    candle open time (epoch ms), so a refresh rewrites the candle that was still open."""
    db.table("candles").create(
        {
            "account": str, "symbol": str, "timeframe": str, "time": int,
            "open": float, "high": float, "low": float, "close": float, "volume": float,
        },
        pk=("account", "symbol", "timeframe", "time"),
    )


MIGRATIONS = [_migration_1, _migration_candles]


class Store:
    """The riskd database. `Store(":memory:")` gives a throwaway one for tests."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=15, check_same_thread=False)
            self.db = sqlite_utils.Database(connection)
            if self.path != ":memory:":
                self.db.enable_wal()
                # In WAL mode, NORMAL syncs at checkpoints instead of every commit: a crash of
                # riskd loses nothing, a power cut at most the last commits, and a tick no
                # longer waits on a disk flush for each of its writes (tens of ms on a VPS).
                self.db.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except (sqlite3.Error, OSError) as error:
            raise StoreError(f"database {self.path}: {error}") from None

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        meta = self.db.table("meta")
        meta.create({"key": str, "value": str}, pk="key", if_not_exists=True)
        row = next(meta.rows_where("key = ?", ["schema_version"]), None)
        version = int(row["value"]) if row else 0
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.db.atomic():
                migration(self.db)
                meta.upsert({"key": "schema_version", "value": str(number)}, pk="key")

    # --- account state --------------------------------------------------------

    def load_state(self, account: str) -> AccountState:
        row = next(self.db.table("state").rows_where("account = ?", [account]), None)
        return _state_from_json(account, json.loads(row["data"])) if row else AccountState(account)

    # --- a tick ----------------------------------------------------------------

    def record_snapshot(self, snapshot: Snapshot) -> int:
        """Keep the tick's figures and positions; a failed read is kept with its error."""
        with self.db.atomic():
            row = self.db.table("snapshots").insert(
                {
                    "account": snapshot.account,
                    "at": _text(snapshot.fetched_at),
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
                {
                    "snapshot_id": snapshot_id,
                    "account": snapshot.account,
                    "at": _text(snapshot.fetched_at),
                    **{key: value for key, value in asdict(position).items() if key != "position_side"},
                    "symbol": position.key,
                    "side": str(position.side),
                }
                for position in snapshot.positions
            )
        return snapshot_id

    def record_step(self, result: StepResult, now: datetime) -> None:
        """The new state, its events and the alerts they cause, in one transaction."""
        with self.db.atomic():
            self._save_state(result.state, now, result.readings)
            self._insert_events(result.events, now)
            self._insert_alerts(result.alerts, now)

    def _save_state(self, state: AccountState, now: datetime, readings: Iterable[Reading] = ()) -> None:
        row = {"account": state.account, "updated_at": _text(now), "data": json.dumps(_state_to_json(state))}
        if readings:
            row["readings"] = json.dumps([{**asdict(reading), "status": str(reading.status)} for reading in readings])
        self.db.table("state").upsert(row, pk="account")

    def readings(self, account: str) -> list[Reading]:
        """The breakers' readings of the account's last tick, as the daemon saw them."""
        row = next(self.db.table("state").rows_where("account = ?", [account]), None)
        items = json.loads(row["readings"]) if row and row.get("readings") else []
        return [Reading(**{**item, "status": Status(item["status"])}) for item in items]

    def state_updated_at(self, account: str) -> datetime | None:
        row = next(self.db.table("state").rows_where("account = ?", [account]), None)
        return _moment(row["updated_at"]) if row else None

    def _insert_events(self, events: Iterable[Event], now: datetime) -> None:
        self.db.table("events").insert_all(
            {
                "at": _text(now),
                "account": event.account,
                "kind": event.kind,
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
                "at": _text(now),
                "account": alert.account,
                "severity": str(alert.severity),
                "key": alert.key,
                "text": alert.text,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": _text(now),
            }
            for alert in alerts
        )

    def record_event(self, event: Event, now: datetime, alert: Alert | None = None) -> None:
        """An event from outside the engine (the executor, the supervisor), with its alert."""
        with self.db.atomic():
            self._insert_events([event], now)
            if alert is not None:
                self._insert_alerts([alert], now)

    # --- actions ---------------------------------------------------------------

    def record_action(self, action: Action, now: datetime, dry_run: bool, **fields: Any) -> int:
        """Write an order or cancel before it is sent; returns its id for the update."""
        row = self.db.table("actions").insert(
            {
                "at": _text(now),
                "account": action.account,
                "kind": str(action.kind),
                "symbol": fields.pop("symbol", action.symbol),
                "status": fields.pop("status", "planned"),
                "dry_run": int(dry_run),
                "reason": action.reason,
                "updated_at": _text(now),
                **fields,
            }
        )
        return row.last_pk

    def update_action(self, action_id: int, now: datetime, **fields: Any) -> None:
        self.db.table("actions").update(action_id, {**fields, "updated_at": _text(now)})

    # --- alerts outbox ---------------------------------------------------------

    def due_alerts(self, now: datetime, limit: int = 50) -> list[dict]:
        """Pending alerts, oldest first, stopping at the first not yet due (keeps order)."""
        rows = list(self.db.table("alerts").rows_where("status = 'pending'", order_by="id", limit=limit))
        due = []
        for row in rows:
            if row["next_attempt_at"] and _moment(row["next_attempt_at"]) > now:
                break
            due.append(row)
        return due

    def mark_alert(self, alert_id: int, now: datetime, status: str, error: str | None = None, retry_at: datetime | None = None) -> None:
        row = self.db.table("alerts").get(alert_id)
        fields = {"status": status, "attempts": row["attempts"] + 1, "error": error}
        if status == "sent":
            fields["sent_at"] = _text(now)
        if retry_at is not None:
            fields["next_attempt_at"] = _text(retry_at)
        self.db.table("alerts").update(alert_id, fields)

    # --- commands --------------------------------------------------------------

    def submit_command(self, command: Command, now: datetime) -> int:
        row = self.db.table("commands").insert(
            {
                "at": _text(now),
                "source": command.source,
                "who": command.who,
                "account": command.account,
                "command": str(command.kind),
                "args": json.dumps({"reason": command.reason, "fraction": command.fraction}),
                "status": "pending",
            }
        )
        return row.last_pk

    def record_refusal(self, source: str, who: str, text: str, reason: str, now: datetime, account: str | None = None) -> int:
        """A command that was not obeyed (unknown sender, bad syntax): kept, with who sent it."""
        row = self.db.table("commands").insert(
            {
                "at": _text(now), "source": source, "who": who, "account": account, "command": text,
                "args": "{}", "status": "refused", "result": reason, "handled_at": _text(now),
            }
        )
        return row.last_pk

    def record_answer(
        self, source: str, who: str, text: str, status: str, result: str, now: datetime, account: str | None = None
    ) -> int:
        """A command answered on the spot (status, a confirmation asked or cancelled): kept, with who."""
        row = self.db.table("commands").insert(
            {
                "at": _text(now), "source": source, "who": who, "account": account, "command": text,
                "args": "{}", "status": status, "result": result, "handled_at": _text(now),
            }
        )
        return row.last_pk

    def muted_until(self) -> datetime | None:
        """Until when info and warning alerts are held back (`/mute`), if they are."""
        row = next(self.db.table("meta").rows_where("key = ?", ["alerts_muted_until"]), None)
        return _moment(row["value"]) if row else None

    def mute_alerts(self, until: datetime | None) -> None:
        if until is None:
            self.db.execute("delete from meta where key = 'alerts_muted_until'")
        else:
            self.db.table("meta").upsert({"key": "alerts_muted_until", "value": _text(until)}, pk="key")

    def equity_history(self, account: str, since: datetime) -> list[tuple[datetime, float]]:
        """(time, equity) of every good snapshot of `account` since `since`, oldest first."""
        rows = self.db.execute(
            "select at, equity from snapshots where account = ? and ok = 1 and at >= ? order by id", [account, _text(since)]
        )
        return [(_moment(at), equity) for at, equity in rows]

    def tally(self, account: str, since: datetime) -> dict[str, int]:
        """Events of each kind, and orders sent or (in dry-run) not sent, since `since`."""
        counts = {
            kind: count
            for kind, count in self.db.execute(
                "select kind, count(*) from events where account = ? and at >= ? group by kind", [account, _text(since)]
            )
        }
        for name, where in (("orders", "status != 'dry_run'"), ("dry_run_orders", "status = 'dry_run'")):
            query = f"select count(*) from actions where account = ? and kind = 'order' and at >= ? and {where}"
            counts[name] = self.db.execute(query, [account, _text(since)]).fetchone()[0]
        return counts

    def pending_commands(self) -> list[tuple[int, Command, datetime]]:
        rows = self.db.table("commands").rows_where("status = 'pending'", order_by="id")
        return [
            (
                row["id"],
                Command(CommandKind(row["command"]), row["account"], row["source"], row["who"], **json.loads(row["args"])),
                _moment(row["at"]),
            )
            for row in rows
        ]

    def finish_command(self, command_id: int, now: datetime, status: str, result: str) -> None:
        self.db.table("commands").update(command_id, {"status": status, "result": result, "handled_at": _text(now)})

    def command(self, command_id: int) -> dict:
        return self.db.table("commands").get(command_id)

    # --- reading ---------------------------------------------------------------

    def latest_snapshot(self, account: str, ok_only: bool = True) -> dict | None:
        where = "account = ? and ok = 1" if ok_only else "account = ?"
        return next(self.db.table("snapshots").rows_where(where, [account], order_by="id desc", limit=1), None)

    def positions_of(self, snapshot_id: int) -> list[dict]:
        return list(self.db.table("positions").rows_where("snapshot_id = ?", [snapshot_id], order_by="symbol"))

    def events(self, account: str | None = None, limit: int = 20) -> list[dict]:
        return self._latest("events", account, limit)

    def actions(self, account: str | None = None, limit: int = 50) -> list[dict]:
        return self._latest("actions", account, limit)

    def alerts(self, limit: int = 50) -> list[dict]:
        return self._latest("alerts", None, limit)

    def commands(self, limit: int = 50) -> list[dict]:
        return self._latest("commands", None, limit)

    def _latest(self, table: str, account: str | None, limit: int) -> list[dict]:
        where, args = ("account = ?", [account]) if account else (None, [])
        rows = list(self.db.table(table).rows_where(where, args, order_by="id desc", limit=limit))
        return rows[::-1]

    def alert_backlog(self) -> tuple[int, datetime | None]:
        """How many alerts wait in the outbox, and since when the oldest has."""
        count, oldest = self.db.execute("select count(*), min(at) from alerts where status = 'pending'").fetchone()
        return count, _moment(oldest)

    def action_counts(self) -> list[tuple[str, str, int]]:
        """(account, status, how many) over the actions still in the database."""
        return self.db.execute("select account, status, count(*) from actions group by account, status").fetchall()

    def prune(self, now: datetime, keep: timedelta) -> int:
        """Delete time series older than `keep`; events, actions and commands stay longer (×4)."""
        cutoff, long_cutoff = _text(now - keep), _text(now - keep * 4)
        removed = 0
        with self.db.atomic():
            old = "snapshot_id in (select id from snapshots where at < ?)"
            self.db.execute(f"delete from positions where {old}", [cutoff])
            for table, limit in (("snapshots", cutoff), ("events", long_cutoff), ("actions", long_cutoff), ("commands", long_cutoff)):
                removed += self.db.execute(f"delete from {table} where at < ?", [limit]).rowcount
            removed += self.db.execute("delete from alerts where status != 'pending' and at < ?", [cutoff]).rowcount
        return removed


    # --- candles ------------------------------------------------------------------

    def record_candles(self, account: str, symbol: str, timeframe: str, rows: Iterable[Sequence[float]]) -> int:
        """Insert or replace candles given as ccxt gives them: [time ms, open, high, low, close, volume]."""
        records = [
            {
                "account": account, "symbol": symbol, "timeframe": timeframe, "time": int(row[0]),
                "open": row[1], "high": row[2], "low": row[3], "close": row[4], "volume": row[5],
            }
            for row in rows
        ]
        if records:
            self.db.table("candles").upsert_all(records, pk=("account", "symbol", "timeframe", "time"))
        return len(records)

    def last_candle_time(self, account: str, symbol: str, timeframe: str) -> int | None:
        """The open time (epoch ms) of the latest cached candle, or None."""
        row = self.db.execute(
            "select max(time) from candles where account = ? and symbol = ? and timeframe = ?", [account, symbol, timeframe]
        ).fetchone()
        return row[0]

    def candles(self, account: str, timeframe: str, symbols: Iterable[str], since: int) -> dict[str, list[tuple]]:
        """Cached candles per symbol from `since` (epoch ms), oldest first."""
        result: dict[str, list[tuple]] = {}
        for symbol in symbols:
            result[symbol] = self.db.execute(
                "select time, open, high, low, close, volume from candles"
                " where account = ? and symbol = ? and timeframe = ? and time >= ? order by time",
                [account, symbol, timeframe, since],
            ).fetchall()
        return result

    def prune_candles(self, before: int) -> int:
        """Delete candles that opened before `before` (epoch ms)."""
        with self.db.atomic():
            return self.db.execute("delete from candles where time < ?", [before]).rowcount


def _state_to_json(state: AccountState) -> dict:
    return {
        "trading_state": str(state.trading_state),
        "reason": state.reason,
        "since": _text(state.since),
        "peak_equity": state.peak_equity,
        "day_start_equity": state.day_start_equity,
        "day_start": _text(state.day_start),
        "last_equity": state.last_equity,
        "last_good_at": _text(state.last_good_at),
        "started_at": _text(state.started_at),
        "latches": {
            name: {"state": str(latch.state), "tripped_at": _text(latch.tripped_at), "reason": latch.reason, "resume": latch.resume}
            for name, latch in state.latches.items()
        },
        "streaks": dict(state.streaks),
        "statuses": {key: str(value) for key, value in state.statuses.items()},
        "last_alerts": {key: _text(value) for key, value in state.last_alerts.items()},
        "halt_exposure": dict(state.halt_exposure) if state.halt_exposure is not None else None,
        "implausible_ticks": state.implausible_ticks,
    }


def _state_from_json(account: str, data: dict) -> AccountState:
    exposure = data.get("halt_exposure")
    return AccountState(
        account=account,
        trading_state=TradingState(data["trading_state"]),
        reason=data.get("reason", ""),
        since=_moment(data.get("since")),
        peak_equity=data.get("peak_equity"),
        day_start_equity=data.get("day_start_equity"),
        day_start=_moment(data.get("day_start")),
        last_equity=data.get("last_equity"),
        last_good_at=_moment(data.get("last_good_at")),
        started_at=_moment(data.get("started_at")),
        latches=frozen_mapping(
            {
                name: Latch(name, TradingState(item["state"]), _moment(item["tripped_at"]), item["reason"], item["resume"])
                for name, item in data.get("latches", {}).items()
            }
        ),
        streaks=frozen_mapping(data.get("streaks", {})),
        statuses=frozen_mapping({key: Status(value) for key, value in data.get("statuses", {}).items()}),
        last_alerts=frozen_mapping({key: _moment(value) for key, value in data.get("last_alerts", {}).items()}),
        halt_exposure=frozen_mapping(exposure) if exposure is not None else None,
        implausible_ticks=data.get("implausible_ticks", 0),
    )
