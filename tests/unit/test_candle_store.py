"""The candle cache: one per venue, written as ccxt gives candles, rewritten while open, pruned by age;
and migration 7, which keys it by venue instead of account."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from riskd.store import Store
from riskd.store.schema import MIGRATIONS

MINUTE = 60_000
VENUE, OTHER = "binanceusdm:future@127.0.0.1:8001", "binanceusdm:future@127.0.0.1:8002"
OLD_DATABASE = Path(__file__).parents[1] / "data" / "riskd-038d9e5.sqlite3"


def rows(start, closes):
    return [[start + MINUTE * i, close, close + 1, close - 1, close, 2.0] for i, close in enumerate(closes)]


def test_candles_are_cached_per_venue_and_symbol_oldest_first():
    store = Store(":memory:")
    assert store.record_candles(VENUE, "BTC/USDT:USDT", "1m", rows(0, [100, 101, 102])) == 3
    store.record_candles(OTHER, "BTC/USDT:USDT", "1m", rows(0, [5]))
    cached = store.candles(VENUE, "1m", ["BTC/USDT:USDT", "ETH/USDT:USDT"], 0)
    assert cached["BTC/USDT:USDT"] == [(0, 100.0, 101.0, 99.0, 100.0, 2.0), (MINUTE, 101.0, 102.0, 100.0, 101.0, 2.0),
                                      (2 * MINUTE, 102.0, 103.0, 101.0, 102.0, 2.0)]
    assert cached["ETH/USDT:USDT"] == []
    assert store.last_candle_time(VENUE, "BTC/USDT:USDT", "1m") == 2 * MINUTE
    assert store.last_candle_time(VENUE, "BTC/USDT:USDT", "5m") is None


def test_the_candle_still_open_is_rewritten_by_the_next_refresh():
    store = Store(":memory:")
    store.record_candles(VENUE, "BTC/USDT:USDT", "1m", rows(0, [100, 101]))
    store.record_candles(VENUE, "BTC/USDT:USDT", "1m", rows(MINUTE, [99, 98]))
    closes = [row[4] for row in store.candles(VENUE, "1m", ["BTC/USDT:USDT"], 0)["BTC/USDT:USDT"]]
    assert closes == [100.0, 99.0, 98.0]


def test_old_candles_are_pruned_and_reads_start_where_asked():
    store = Store(":memory:")
    store.record_candles(VENUE, "BTC/USDT:USDT", "1m", rows(0, [1, 2, 3, 4]))
    assert store.prune_candles(2 * MINUTE) == 2
    assert [row[0] for row in store.candles(VENUE, "1m", ["BTC/USDT:USDT"], 3 * MINUTE)["BTC/USDT:USDT"]] == [3 * MINUTE]


def test_a_database_from_before_the_candles_gains_the_table(tmp_path):
    path = tmp_path / "riskd.db"
    import sqlite_utils

    old = sqlite_utils.Database(path)
    old.table("meta").create({"key": str, "value": str}, pk="key")
    for migration in MIGRATIONS[:2]:  # the schema before the candles: migrations 1 and 2
        migration(old)
    old.table("meta").insert({"key": "schema_version", "value": "2"})
    old.close()
    store = Store(path)
    assert store.record_candles(VENUE, "BTC/USDT:USDT", "1m", rows(0, [1])) == 1
    assert store.db.execute("select value from meta where key = 'schema_version'").fetchone()[0] == str(len(MIGRATIONS)) == "7"


def columns(db: sqlite3.Connection) -> list[str]:
    return [row[1] for row in db.execute("pragma table_info(candles)")]


def test_migration_7_keys_the_cached_candles_by_venue_and_drops_the_rows_kept_per_account(tmp_path):
    path = tmp_path / "riskd.db"
    import sqlite_utils

    old = sqlite_utils.Database(path)
    old.table("meta").create({"key": str, "value": str}, pk="key")
    for migration in MIGRATIONS[:6]:
        migration(old)
    old.table("meta").insert({"key": "schema_version", "value": "6"})
    old.table("candles").insert_all(
        {"account": account, "symbol": "BTC/USDT:USDT", "timeframe": "1m", "time": MINUTE * i, "open": 1.0, "high": 1.0,
         "low": 1.0, "close": 1.0, "volume": 1.0}
        for account in ("main", "other") for i in range(3)
    )
    old.close()
    store = Store(path)
    assert columns(store.db.conn) == ["venue", "symbol", "timeframe", "time", "open", "high", "low", "close", "volume"]
    assert store.db.execute("select count(*) from candles").fetchone()[0] == 0  # a cache: fetched again, not carried over
    assert store.last_candle_time("main", "BTC/USDT:USDT", "1m") is None
    store.record_candles(VENUE, "BTC/USDT:USDT", "1m", rows(0, [1, 2]))
    store.record_candles(VENUE, "BTC/USDT:USDT", "1m", rows(MINUTE, [3]))  # the open candle rewritten, not doubled
    assert [row[4] for row in store.candles(VENUE, "1m", ["BTC/USDT:USDT"], 0)["BTC/USDT:USDT"]] == [1.0, 3.0]
    store.close()


def test_the_038d9e5_database_comes_through_migration_7_with_its_history(tmp_path):
    path = tmp_path / "riskd.db"
    shutil.copyfile(OLD_DATABASE, path)
    store = Store(path)
    assert store.db.execute("select value from meta where key = 'schema_version'").fetchone()[0] == "7"
    assert columns(store.db.conn)[0] == "venue"
    assert store.record_candles(VENUE, "BTC/USDT:USDT", "1m", rows(0, [1])) == 1
    assert store.latest_snapshot("main") is not None and store.events("main", 10)  # the rest untouched
    store.close()
