"""The database's shape: its tables, the migrations that build and carry them forward, and
whether a file can be written at all.

A migration is a function of the open database, run once in a transaction and recorded
as the `schema_version` in `meta`; opening a database runs the ones it has not had yet,
in order, so a file written by any earlier riskd keeps its history and its halted
accounts. A migration, once released, is never edited: a change is a new one.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path

from riskd.domain import ActionStatus


def _import_sqlite_utils():
    """Import sqlite-utils without letting it import pandas and numpy.

    sqlite-utils imports both when they are installed, only to map their scalar types
    to column types. riskd never hands it either, and the import would cost the daemon
    some 40 MB of its memory budget (see BENCHMARKS.md). The two names are blocked only
    while sqlite-utils is imported and removed again afterwards, so modules that need
    pandas (analytics, for a report) still import it normally.
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


HEDGE_SIDES = ("LONG", "SHORT")
"""The position sides of hedge mode, as the exchange adapter records them."""


def _migration_2(db: sqlite_utils.Database) -> None:
    """Columns that say what they hold, and each order and cancel linked to its action.

    - `positions.symbol` held the position's key, which in hedge mode is the symbol and
      the position side (`BTC/USDT:USDT:LONG`): the side moves to `position_side`.
    - `actions.parent_id` names the action an order or cancel row was sent for. Old rows
      get the account's action written just before them: the executor carries out one
      action of an account at a time and writes its orders and cancels after it.
    - `actions.status` held the exchange's status of an answered order (`closed`,
      `open`): it moves to `exchange_status`, and the row is `done` in riskd's words.
    """
    db.table("positions").add_column("position_side", str)
    for side in HEDGE_SIDES:
        suffix = f":{side}"
        db.execute(
            "update positions set position_side = substr(symbol, -?), symbol = substr(symbol, 1, length(symbol) - ?)"
            " where symbol like ?",
            [len(side), len(suffix), f"%{suffix}"],
        )
    db.table("actions").add_column("parent_id", int)
    db.table("actions").add_column("exchange_status", str)
    db.execute(
        "update actions set parent_id = ("
        " select max(action.id) from actions as action"
        " where action.account = actions.account and action.id < actions.id and action.kind not in ('order', 'cancel')"
        ") where kind in ('order', 'cancel')"
    )
    ours = [str(status) for status in ActionStatus]
    db.execute(
        f"update actions set exchange_status = status, status = ? where status not in ({', '.join('?' * len(ours))})",
        [str(ActionStatus.DONE), *ours],
    )


def _migration_3(db: sqlite_utils.Database) -> None:
    """The OHLCV cache of the market breakers: one row per account, symbol, timeframe and
    candle open time (epoch ms), so a refresh rewrites the candle that was still open."""
    db.table("candles").create(
        {
            "account": str, "symbol": str, "timeframe": str, "time": int,
            "open": float, "high": float, "low": float, "close": float, "volume": float,
        },
        pk=("account", "symbol", "timeframe", "time"),
    )


def _migration_4(db: sqlite_utils.Database) -> None:
    """The hook outbox: each call of an account's hook (webhook, command, Freqtrade, lock file),
    written with the step that caused it, and what became of it."""
    db.table("hooks").create(
        {
            "id": int, "at": str, "account": str, "hook": str, "kind": str, "trigger": str, "state": str,
            "reason": str, "status": str, "attempts": int, "next_attempt_at": str, "done_at": str,
            "outcome": str, "error": str,
        },
        pk="id", not_null={"at", "account", "hook", "kind", "trigger", "status"},
    )
    db.table("hooks").create_index(["status", "id"])


def _migration_5(db: sqlite_utils.Database) -> None:
    """Each alert channel besides Telegram (an Apprise URL, known by a hash of it) and how far
    it has got through the alerts, so one dead channel holds back no other and none is lost."""
    db.table("channels").create(
        {
            "channel": str, "label": str, "last_alert_id": int, "attempts": int, "next_attempt_at": str,
            "sent_at": str, "error": str,
        },
        pk="channel", not_null={"last_alert_id"},
    )


def _migration_6(db: sqlite_utils.Database) -> None:
    """Temporary overrides of a breaker's limit: each with who set it, why and until when,
    kept after it ends (`ended_at`) so that a restart neither loses nor repeats one."""
    db.table("overrides").create(
        {
            "id": int, "account": str, "breaker": str, "limit_text": str, "at": str, "until": str,
            "source": str, "who": str, "reason": str, "ended_at": str,
        },
        pk="id", not_null={"account", "breaker", "limit_text", "at", "until"},
    )
    db.table("overrides").create_index(["account", "ended_at"])


def _migration_7(db: sqlite_utils.Database) -> None:
    """The candle cache keyed by venue instead of account: candles are public, the same for
    every account on a venue, so they are fetched and kept once per venue (see
    market_data.market_venue). The old rows are dropped rather than carried over: the
    table is a cache, and the next refresh fetches `market_data.history` again."""
    db.table("candles").drop()
    db.table("candles").create(
        {
            "venue": str, "symbol": str, "timeframe": str, "time": int,
            "open": float, "high": float, "low": float, "close": float, "volume": float,
        },
        pk=("venue", "symbol", "timeframe", "time"),
    )


MIGRATIONS = [_migration_1, _migration_2, _migration_3, _migration_4, _migration_5, _migration_6, _migration_7]


BUSY_PATIENCE = 15.0
"""Seconds a process opening the database waits for another that holds it (the busy timeout)."""


def enable_wal(db: sqlite_utils.Database) -> None:
    """Switch a new database to WAL, waiting while another process opening it does the same.

    SQLite answers "database is locked" at once, without waiting out the busy timeout,
    when another connection is open during the switch; so the switch is tried again
    until BUSY_PATIENCE has passed. The mode stays with the file: only its first opening
    changes it.
    """
    deadline = time.monotonic() + BUSY_PATIENCE
    while True:
        try:
            db.enable_wal()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def migrate(db: sqlite_utils.Database) -> None:
    """Run the migrations this database has not had yet, each in its own transaction.

    Each one first takes the write lock (BEGIN IMMEDIATE) and only then reads the
    version, so processes opening a new database at once (the daemon as systemd starts
    it, and a `riskd status`) take turns: the others wait for the lock (the connection's
    busy timeout) and find the migration done. Reading first and writing after would let
    two of them run the same migration, or give one "database is locked" at once.
    """
    while True:
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            meta = db.table("meta")
            meta.create({"key": str, "value": str}, pk="key", if_not_exists=True)
            row = next(meta.rows_where("key = ?", ["schema_version"]), None)
            version = int(row["value"]) if row else 0
            if version < len(MIGRATIONS):
                MIGRATIONS[version](db)
                meta.upsert({"key": "schema_version", "value": str(version + 1)}, pk="key")
        except BaseException:
            db.conn.rollback()
            raise
        db.conn.commit()
        if version + 1 >= len(MIGRATIONS):
            return
