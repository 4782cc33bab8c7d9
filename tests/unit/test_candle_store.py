"""The candle cache: written as ccxt gives candles, rewritten while open, pruned by age."""

from __future__ import annotations

from riskd.store import Store
from riskd.store.schema import MIGRATIONS

MINUTE = 60_000


def rows(start, closes):
    return [[start + MINUTE * i, close, close + 1, close - 1, close, 2.0] for i, close in enumerate(closes)]


def test_candles_are_cached_per_account_and_symbol_oldest_first():
    store = Store(":memory:")
    assert store.record_candles("main", "BTC/USDT:USDT", "1m", rows(0, [100, 101, 102])) == 3
    store.record_candles("other", "BTC/USDT:USDT", "1m", rows(0, [5]))
    cached = store.candles("main", "1m", ["BTC/USDT:USDT", "ETH/USDT:USDT"], 0)
    assert cached["BTC/USDT:USDT"] == [(0, 100.0, 101.0, 99.0, 100.0, 2.0), (MINUTE, 101.0, 102.0, 100.0, 101.0, 2.0),
                                      (2 * MINUTE, 102.0, 103.0, 101.0, 102.0, 2.0)]
    assert cached["ETH/USDT:USDT"] == []
    assert store.last_candle_time("main", "BTC/USDT:USDT", "1m") == 2 * MINUTE
    assert store.last_candle_time("main", "BTC/USDT:USDT", "5m") is None


def test_the_candle_still_open_is_rewritten_by_the_next_refresh():
    store = Store(":memory:")
    store.record_candles("main", "BTC/USDT:USDT", "1m", rows(0, [100, 101]))
    store.record_candles("main", "BTC/USDT:USDT", "1m", rows(MINUTE, [99, 98]))
    closes = [row[4] for row in store.candles("main", "1m", ["BTC/USDT:USDT"], 0)["BTC/USDT:USDT"]]
    assert closes == [100.0, 99.0, 98.0]


def test_old_candles_are_pruned_and_reads_start_where_asked():
    store = Store(":memory:")
    store.record_candles("main", "BTC/USDT:USDT", "1m", rows(0, [1, 2, 3, 4]))
    assert store.prune_candles(2 * MINUTE) == 2
    assert [row[0] for row in store.candles("main", "1m", ["BTC/USDT:USDT"], 3 * MINUTE)["BTC/USDT:USDT"]] == [3 * MINUTE]


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
    assert store.record_candles("main", "BTC/USDT:USDT", "1m", rows(0, [1])) == 1
    assert store.db.execute("select value from meta where key = 'schema_version'").fetchone()[0] == str(len(MIGRATIONS)) == "6"
