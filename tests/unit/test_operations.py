"""The pure parts of running riskd as a service: sd_notify messages, the health judgement,
what a reload may change, log lines for the journal, and how `check` judges what it finds."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
import yaml

from riskd import checks, health
from riskd.config import load_settings, reloadable
from riskd.domain import AccountState, Snapshot, TradingState
from riskd.logs import OneLine, to_journal
from riskd.notify import Notifier
from riskd.store import write_problem

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
LIMIT = timedelta(seconds=30)


# --- sd_notify ----------------------------------------------------------------------------------

def test_the_watchdog_interval_comes_from_systemd_and_only_for_this_process():
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "60000000"})
    assert (notifier.enabled, notifier.watchdog_seconds) == (True, 60.0)
    watched = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "60000000"}
    assert Notifier.from_environment({**watched, "WATCHDOG_PID": "1"}).watchdog_seconds is None  # meant for another
    assert Notifier.from_environment({**watched, "WATCHDOG_PID": str(os.getpid())}).watchdog_seconds == 60
    outside = Notifier.from_environment({})
    assert (outside.enabled, outside.watchdog_seconds) == (False, None)
    outside.ready("nothing happens")


@pytest.fixture
def abstract_socket():
    name = f"riskd-test-{uuid.uuid4().hex[:12]}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        receiver.settimeout(1)
        yield "@" + name, receiver


def test_messages_reach_an_abstract_socket_one_datagram_each(abstract_socket):
    address, receiver = abstract_socket
    notifier = Notifier(address)
    notifier.ready("1 account:\n1 active")
    notifier.alive("ok")
    notifier.stopping()
    assert receiver.recv(4096) == b"READY=1\nSTATUS=1 account: 1 active"
    assert receiver.recv(4096) == b"WATCHDOG=1\nSTATUS=ok"
    assert receiver.recv(4096) == b"STOPPING=1\nSTATUS=stopping"


def test_sending_never_blocks_or_raises_when_systemd_does_not_read(abstract_socket, tmp_path):
    address, _ = abstract_socket
    started = time.monotonic()
    for _ in range(200):  # far past the kernel's queue of unread datagrams
        Notifier(address).alive("ok")
    Notifier(str(tmp_path / "nobody-listens")).ready("ok")
    assert time.monotonic() - started < 1


# --- health -------------------------------------------------------------------------------------

def runner(name: str, tick_age: float | None, read_age: float | None, error: str | None = None) -> SimpleNamespace:
    good = Snapshot(name, NOW - timedelta(seconds=read_age), equity=100.0) if read_age is not None else None
    failed = Snapshot(name, NOW, error=error, error_kind="network") if error else good
    tick = NOW - timedelta(seconds=tick_age) if tick_age is not None else None
    return SimpleNamespace(name=name, last_tick_at=tick, last_snapshot=good, last_read=failed, alive_at=tick)


def test_healthy_when_every_account_ticked_and_was_read_recently():
    runners = [runner("main", 5, 5), runner("alt", 29, 29)]
    assert health.overdue(runners, NOW, LIMIT) == {}
    assert health.problems(runners, NOW, LIMIT) == []


def test_a_long_action_that_keeps_making_exchange_calls_is_not_overdue():
    from riskd.supervisor import AccountRunner

    executor = SimpleNamespace(last_progress=NOW - timedelta(seconds=5))
    acting = AccountRunner("main", None, None, None, executor, last_tick_at=NOW - timedelta(seconds=90))
    stuck = AccountRunner("other", None, None, None, SimpleNamespace(last_progress=None), last_tick_at=NOW - timedelta(seconds=90))
    assert acting.alive_at == NOW - timedelta(seconds=5)
    assert health.overdue([acting, stuck], NOW, LIMIT) == {"other": "other: no tick completed for 90s"}


def test_a_hung_tick_is_overdue_and_a_failed_read_is_not():
    hung, blind = runner("main", 45, 45), runner("alt", 2, 40, error="the exchange is unreachable")
    assert health.overdue([hung, blind], NOW, LIMIT) == {"main": "main: no tick completed for 45s"}
    assert health.problems([hung, blind], NOW, LIMIT) == [
        "main: no tick completed for 45s",
        "alt: no good read of the account for 40s; last error: the exchange is unreachable",
    ]


def test_before_the_first_tick_and_before_the_first_good_read():
    assert health.problems([runner("main", None, None)], NOW, LIMIT) == ["main: no tick completed yet"]
    never = runner("main", 1, None, error="rate limited")
    assert health.problems([never], NOW, LIMIT) == [
        "main: no good read of the account since start; last error: rate limited"
    ]


def test_a_venue_slower_than_the_poll_interval_does_not_make_health_flap():
    # Reads of 2.5 s at a 1 s poll interval: a tick starts at each whole second when none
    # is running (as the scheduler runs them), and health is sampled every 0.25 s.
    poll, read = 1.0, 2.5
    limit = health.freshness(timedelta(seconds=poll))
    start, good, tick_done, running_until, verdicts = NOW, None, None, None, []
    for step in range(0, 240):
        t = step * 0.25
        if running_until is not None and t >= running_until:
            tick_done, running_until = start + timedelta(seconds=t), None
            good = Snapshot("main", start + timedelta(seconds=t - read), equity=100.0, latency=read)
        if running_until is None and t % poll == 0 and t > 0 or step == 0:
            running_until = t + read
        if good is not None:
            watched = SimpleNamespace(name="main", last_tick_at=tick_done, last_snapshot=good, last_read=good, alive_at=tick_done)
            verdicts.append(health.problems([watched], start + timedelta(seconds=t), limit))
    assert len(verdicts) > 200 and all(verdict == [] for verdict in verdicts)


def test_a_slow_venue_that_stops_answering_still_goes_stale_at_its_own_pace():
    slow = Snapshot("main", NOW - timedelta(seconds=8), equity=100.0, latency=2.5)
    watched = SimpleNamespace(name="main", last_tick_at=NOW - timedelta(seconds=5.5), last_snapshot=slow,
                              last_read=slow, alive_at=NOW - timedelta(seconds=5.5))
    limit = health.freshness(timedelta(seconds=1))
    assert health.problems([watched], NOW, limit) == ["main: no good read of the account for 8s; last error: unknown"]
    assert health.overdue([watched], NOW + timedelta(seconds=2.1), limit) == {"main": "main: no tick completed for 8s"}


def test_a_read_that_fails_after_a_long_timeout_does_not_stretch_the_limit():
    good = Snapshot("main", NOW - timedelta(seconds=40), equity=100.0, latency=0.05)
    timed_out = Snapshot("main", NOW - timedelta(seconds=21), error="timed out", error_kind="timeout", latency=20.0)
    watched = SimpleNamespace(name="main", last_tick_at=NOW - timedelta(seconds=1), last_snapshot=good,
                              last_read=timed_out, alive_at=NOW - timedelta(seconds=1))
    assert health.problems([watched], NOW, LIMIT) == ["main: no good read of the account for 40s; last error: timed out"]


def test_the_status_line_counts_states_names_the_troubled_and_gives_the_oldest_tick():
    runners = [runner("main", 3, 3), runner("alt", 12, 12), runner("spot", 45, 45)]
    states = {
        "main": AccountState("main"),
        "alt": AccountState("alt", trading_state=TradingState.HALTED),
        "spot": AccountState("spot", trading_state=TradingState.HALTED),
    }
    assert health.summary(runners, states, NOW, LIMIT) == (
        "3 accounts: 1 active, 2 halted (alt, spot); last tick 45s ago; spot: no tick completed for 45s"
    )


# --- reload -------------------------------------------------------------------------------------

def settings(tmp_path, name: str = "config.yaml", **document):
    base = {"accounts": {"demo": {"exchange": "sim"}}, "database": "riskd.db"}
    path = tmp_path / name
    path.write_text(yaml.safe_dump({**base, **document}))
    return load_settings(path)


def test_breakers_live_and_poll_interval_apply_at_once(tmp_path):
    old = settings(tmp_path)
    new = settings(tmp_path, "new.yaml", live=True, poll_interval="5s", breakers={"drawdown": {"limit": "8%"}},
                   accounts={"demo": {"exchange": "sim", "breakers": {"leverage": {"limit": "3x"}}}})
    effective, restart = reloadable(old, new)
    assert restart == []
    assert (effective.live, effective.poll_interval) == (True, timedelta(seconds=5))
    assert effective.breakers_for("demo")["drawdown"].limit == pytest.approx(0.08)
    assert effective.breakers_for("demo")["leverage"].limit == 3


def test_connections_accounts_and_the_database_wait_for_a_restart(tmp_path):
    old = settings(tmp_path, accounts={"demo": {"exchange": "sim"}, "gone": {"exchange": "sim"}})
    new = settings(
        tmp_path, "new.yaml", database="elsewhere.db", http={"enabled": True},
        accounts={"demo": {"exchange": "sim", "sim": {"seed": 8}, "breakers": {"leverage": {"limit": "3x"}}},
                  "added": {"exchange": "sim"}},
    )
    effective, restart = reloadable(old, new)
    assert restart == ["database", "http", "accounts.demo", "accounts.gone (removed)", "accounts.added (added)"]
    assert (effective.database, effective.http.enabled) == (old.database, False)
    assert set(effective.accounts) == {"demo", "gone"}
    assert effective.accounts["demo"].sim.seed == 7  # the running connection stays ...
    assert effective.breakers_for("demo")["leverage"].limit == 3  # ... its limits change


# --- logs ---------------------------------------------------------------------------------------

def record(message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("riskd", level, __file__, 1, message, (), None)


def test_a_text_line_has_a_time_and_a_multi_line_message_becomes_one_line():
    line = OneLine().format(record("configuration refused:\n  poll_interval: bad"))
    assert line.endswith(" WARNING riskd: configuration refused: |   poll_interval: bad")
    assert line[:4].isdigit() and "\n" not in line


def test_in_the_journal_lines_carry_the_priority_and_no_time_of_their_own():
    assert OneLine(journal=True).format(record("lost", logging.ERROR)) == "<3>ERROR riskd: lost"
    line = OneLine(json_lines=True, journal=True).format(record("a\nb", logging.INFO))
    assert line.startswith("<6>{") and json.loads(line[3:]) == {"level": "INFO", "logger": "riskd", "message": "a\nb"}


def test_a_json_line_outside_the_journal_has_its_time():
    entry = json.loads(OneLine(json_lines=True).format(record("hello")))
    assert set(entry) == {"time", "level", "logger", "message"} and entry["time"].endswith("+00:00")


def test_the_journal_is_recognised_by_the_device_and_inode_of_stderr(tmp_path, monkeypatch):
    with open(tmp_path / "stream", "w") as stream:
        status = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino}")
        assert to_journal(stream)
        monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino + 1}")  # inherited, then redirected
        assert not to_journal(stream)


# --- check's judgements ---------------------------------------------------------------------------

def test_a_binance_key_that_can_withdraw_is_a_loud_warning():
    finding = checks.binance_permissions("main", {"enableReading": True, "enableFutures": True, "enableWithdrawals": True})
    assert finding.level == checks.WARNING and "WITHDRAWALS ARE ENABLED" in str(finding)
    safe = checks.binance_permissions("main", {"enableReading": True, "enableFutures": True, "ipRestrict": True})
    assert (safe.level, safe.text) == (checks.OK, "API key may: read, futures trading; no withdrawals")
    transfer = checks.binance_permissions("main", {"enableReading": True, "permitsUniversalTransfer": True})
    assert transfer.level == checks.WARNING and "transfer funds" in transfer.text


def test_an_okx_key_that_can_withdraw_is_a_loud_warning():
    assert checks.okx_permissions("main", {"data": [{"perm": "read_only,trade,withdraw"}]}).level == checks.WARNING
    finding = checks.okx_permissions("main", {"data": [{"perm": "read_only,trade"}]})
    assert (finding.level, finding.text) == (checks.OK, "API key may: read_only, trade; no withdrawals")


def test_env_file_permissions(tmp_path):
    secrets = tmp_path / "riskd.env"
    secrets.write_text("RISKD_LIVE=false\n")
    for mode, level in ((0o600, checks.OK), (0o640, checks.OK), (0o644, checks.WARNING), (0o660, checks.WARNING)):
        secrets.chmod(mode)
        assert checks.env_file_permissions(secrets).level == level, oct(mode)


def test_the_database_write_probe_changes_nothing(tmp_path):
    assert write_problem(tmp_path / "new" / "riskd.db") is None
    assert not (tmp_path / "new").exists()
    (tmp_path / "notes.db").write_text("not a database")
    assert write_problem(tmp_path / "notes.db") == f"{tmp_path / 'notes.db'}: file is not a database"
