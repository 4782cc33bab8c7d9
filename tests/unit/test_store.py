"""The SQLite store: what a tick writes, what a restart reads back, the outbox and the command queue."""

from __future__ import annotations

import multiprocessing
import shutil
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest

import riskd.store.schema
from riskd.domain import (
    AccountState,
    Action,
    ActionKind,
    ActionStatus,
    Alert,
    AlertStatus,
    Command,
    CommandKind,
    CommandStatus,
    Event,
    EventKind,
    LimitOverride,
    OverrideInForce,
    Severity,
    Side,
    Status,
    StepResult,
    TradingState,
    frozen_mapping,
)
from riskd.engine import apply_command, step
from riskd.store import OrderKind, OutboxAlert, Store

from tests.factories import (
    NOW,
    TODAY,
    alert,
    command,
    event,
    latch,
    policy,
    position,
    snapshot,
    watched_state,
)

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
TICK = timedelta(seconds=10)
LOSING = snapshot(8_500, [position(BTC, contracts=0.1, notional=5_000)])  # 15 % below the 10,000 peak


@pytest.fixture
def store():
    database = Store(":memory:")
    yield database
    database.close()


def tripped() -> StepResult:
    """The tick on which drawdown trips: flatten, halted, a breach and a state change."""
    rules = policy(drawdown={})
    first = step(watched_state(), LOSING, rules, NOW)
    return step(first.state, LOSING, rules, NOW + TICK)


def texts(alerts: list[OutboxAlert]) -> list[str]:
    return [alert.text for alert in alerts]


# --- a tick in one transaction -----------------------------------------------------------


def test_a_step_writes_its_state_events_and_alerts(store):
    result = tripped()

    store.record_step(result, NOW)

    loaded = store.load_state("main")
    assert loaded.trading_state is TradingState.HALTED
    assert loaded.latches == result.state.latches
    events = store.events("main")
    assert [event.kind for event in events] == [EventKind.BREACH, EventKind.STATE_CHANGE]
    assert events[0].data["action"] == "flatten"
    assert events[0].severity is Severity.CRITICAL and events[0].at == NOW
    assert [(row.key, row.severity, row.status, row.attempts) for row in store.alerts()] == [
        (alert.key, alert.severity, AlertStatus.PENDING, 0) for alert in result.alerts
    ]


def test_when_writing_the_alerts_fails_neither_the_state_nor_the_events_are_written(store, monkeypatch):
    earlier = step(watched_state(), LOSING, policy(drawdown={}), NOW)  # the unconfirmed warning
    store.record_step(earlier, NOW)

    def broken(self, alerts, now):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Store, "_insert_alerts", broken)
    with pytest.raises(sqlite3.OperationalError):
        store.record_step(tripped(), NOW + TICK)

    assert store.load_state("main").trading_state is TradingState.ACTIVE
    assert store.load_state("main").statuses == {"drawdown": Status.WARNING}
    assert [event.kind for event in store.events()] == [EventKind.WARNING]


def test_an_outside_event_and_its_alert_are_written_together_or_not_at_all(store, monkeypatch):
    store.record_event(event("action_unconfirmed"), NOW, alert("could not close BTC"))
    monkeypatch.setattr(Store, "_insert_alerts", lambda self, alerts, now: 1 / 0)

    with pytest.raises(ZeroDivisionError):
        store.record_event(event("action_unconfirmed"), NOW, alert("again"))

    assert len(store.events()) == 1
    assert texts(store.alerts()) == ["could not close BTC"]


def test_an_event_kind_this_version_does_not_know_is_read_as_its_text(store):
    """A database a newer riskd wrote must not make `riskd events` fail after a downgrade."""
    store.record_event(event("action_unconfirmed"), NOW)
    store.db.table("events").insert({"at": NOW.isoformat(), "account": "main", "kind": "hook_failed", "severity": "warning", "message": "later"})

    kinds = [record.kind for record in store.events()]

    assert kinds == [EventKind.ACTION_UNCONFIRMED, "hook_failed"]


# --- account state ---------------------------------------------------------------------


def remembered(halt_exposure) -> AccountState:
    """A state with every field the store must keep, timestamps to the millisecond."""
    return watched_state(
        trading_state=TradingState.HALTED,
        reason="drawdown 15.0% is past the limit of 10.0%",
        since=NOW + timedelta(milliseconds=250),
        peak_equity=10_000.5,
        day_start_equity=9_800.25,
        day_start=TODAY,
        last_equity=8_500.0,
        last_good_at=NOW,
        started_at=None,  # not kept: see test_an_account_never_read_goes_stale_through_the_store
        latches={
            "drawdown": latch("drawdown", tripped_at=NOW - timedelta(minutes=5)),
            "leverage": latch("leverage", state=TradingState.REDUCING, resume="60m", tripped_at=NOW),
        },
        streaks={f"position_loss:{BTC}": 1, "leverage": 0},
        statuses={"drawdown": Status.BREACHED, "leverage": Status.WARNING, "stale_data": Status.OK},
        last_alerts={"breach:drawdown": NOW - timedelta(minutes=5), "state:halted": NOW},
        halt_exposure=halt_exposure,
        implausible_ticks=2,
    )


@pytest.mark.parametrize("halt_exposure", [None, {}, {BTC: -1.5, ETH: 2.0}], ids=["none", "nothing-allowed", "positions"])
def test_load_state_gives_back_the_state_that_was_saved(store, halt_exposure):
    saved = remembered(halt_exposure)

    store.record_step(StepResult(saved), NOW)
    loaded = store.load_state("main")

    assert loaded == saved
    assert (loaded.halt_exposure is None) == (halt_exposure is None)
    assert isinstance(loaded.latches["leverage"].state, TradingState)
    assert isinstance(loaded.statuses["drawdown"], Status)


def test_a_later_step_replaces_the_saved_state(store):
    store.record_step(StepResult(remembered(None)), NOW)
    store.record_step(StepResult(watched_state(9_000)), NOW + TICK)

    assert store.load_state("main").peak_equity == 9_000
    assert store.db.table("state").count == 1  # one row per account, replaced
    assert store.stored_state("main").updated_at == NOW + TICK


def test_an_account_never_seen_starts_active_with_nothing_remembered(store):
    assert store.load_state("spot") == AccountState("spot")
    assert store.load_state("spot").trading_state is TradingState.ACTIVE
    assert (store.stored_state("spot").updated_at, store.stored_state("spot").readings) == (None, ())


def test_an_account_never_read_goes_stale_through_the_store(store):
    rules = policy(stale_data={})
    for seconds in range(0, 130, 10):
        now = NOW + timedelta(seconds=seconds)
        result = step(store.load_state("main"), snapshot(None, error="invalid API key"), rules, now)
        store.record_step(result, now)

    (stale,) = result.readings
    assert stale.status is Status.BREACHED


# --- a file that outlives the daemon ---------------------------------------------------


def test_a_restarted_store_keeps_the_account_halted_with_the_same_peak(tmp_path):
    path = tmp_path / "data" / "riskd.db"
    before = Store(path)
    before.record_step(tripped(), NOW)
    before.close()

    after = Store(path)
    state = after.load_state("main")
    next_tick = step(state, snapshot(10_000), policy(drawdown={}), NOW + timedelta(hours=1))

    assert state.trading_state is TradingState.HALTED
    assert state.peak_equity == 10_000
    assert next_tick.state.trading_state is TradingState.HALTED  # manual resume: the restart does not release it
    after.close()


def test_a_file_store_uses_wal(tmp_path):
    database = Store(tmp_path / "riskd.db")

    assert database.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    database.close()


def schema_version(database: Store) -> str:
    return database.db.table("meta").get("schema_version")["value"]


def test_migrations_are_recorded(store):
    assert schema_version(store) == str(len(riskd.store.schema.MIGRATIONS))


def test_reopening_runs_only_the_migrations_not_yet_applied(tmp_path, monkeypatch):
    path = tmp_path / "riskd.db"
    Store(path).close()
    applied, ran = len(riskd.store.schema.MIGRATIONS), []

    def again(db):
        raise AssertionError("a migration ran a second time")

    def add_notes(db):
        ran.append("notes")
        db.table("notes").create({"id": int, "text": str}, pk="id")

    monkeypatch.setattr(riskd.store.schema, "MIGRATIONS", [again] * applied + [add_notes])
    Store(path).close()
    reopened = Store(path)

    assert ran == ["notes"]
    assert schema_version(reopened) == str(applied + 1)
    assert reopened.db.table("notes").exists()
    reopened.close()


OLD_DATABASE = Path(__file__).parents[1] / "data" / "riskd-038d9e5.sqlite3"
"""Written by riskd at commit 038d9e5 (schema version 1); tests/data/README.md says how."""


@pytest.fixture
def upgraded(tmp_path):
    """The database of 038d9e5, copied and opened by this riskd, which migrates it."""
    path = tmp_path / "riskd.db"
    shutil.copyfile(OLD_DATABASE, path)
    before = sqlite3.connect(path)
    assert before.execute("select value from meta where key = 'schema_version'").fetchone() == ("1",)
    before.close()
    database = Store(path)
    yield database
    database.close()


def test_a_database_of_038d9e5_keeps_its_halted_account_and_its_history(upgraded):
    assert schema_version(upgraded) == str(len(riskd.store.schema.MIGRATIONS))
    state = upgraded.stored_state("main")
    assert state.state.trading_state is TradingState.HALTED
    assert set(state.state.latches) >= {"drawdown", "manual"}
    assert state.state.peak_equity and state.updated_at is not None and state.readings
    kinds = [event.kind for event in upgraded.events("main", 200)]
    assert {EventKind.BREACH, EventKind.STATE_CHANGE, EventKind.COMMAND} <= set(kinds)
    assert upgraded.command(1).status is CommandStatus.DONE and upgraded.command(1).command == "freeze"
    assert upgraded.command(2).status is CommandStatus.REFUSED
    assert {alert.status for alert in upgraded.alerts(200)} == {AlertStatus.SENT, AlertStatus.LOGGED}
    assert upgraded.equity_history("main", NOW - timedelta(days=3650))


def test_a_database_of_038d9e5_has_its_hedge_positions_split_into_symbol_and_side(upgraded):
    latest = upgraded.latest_snapshot("hedge")
    held = upgraded.positions_of(latest.id)

    assert [(p.symbol, p.position_side, p.side, p.contracts) for p in held] == [
        (BTC, "LONG", Side.LONG, 0.1), (BTC, "SHORT", Side.SHORT, 0.05), (ETH, None, Side.LONG, 1.0)
    ]
    assert [p.key for p in held] == [f"{BTC}:LONG", f"{BTC}:SHORT", ETH]  # keys as the daemon used them
    main = upgraded.positions_of(upgraded.latest_snapshot("main").id)
    assert main and all(p.position_side is None and p.symbol.endswith(":USDT") for p in main)


def test_a_database_of_038d9e5_has_its_orders_linked_to_their_action_in_riskds_words(upgraded):
    actions = upgraded.actions("main", 200)
    (flatten,) = [a for a in actions if a.kind is ActionKind.FLATTEN]
    orders = [a for a in actions if a.kind is OrderKind.ORDER]
    cancels = [a for a in actions if a.kind is OrderKind.CANCEL]

    assert flatten.parent_id is None and flatten.status is ActionStatus.DONE
    assert orders and cancels and all(a.parent_id == flatten.id for a in orders + cancels)
    assert all(a.client_order_id.startswith(f"riskd-{flatten.id}-") for a in orders)  # the old link, in the id's text
    assert {(a.status, a.exchange_status) for a in orders} == {(ActionStatus.DONE, "closed")}
    assert all(a.exchange_order_id and a.amount > 0 and a.side in ("buy", "sell") for a in orders)
    assert [(a.status, a.exchange_status) for a in cancels] == [(ActionStatus.DONE, None)]
    assert upgraded.tally("main", NOW - timedelta(days=1))["orders"] == len(orders)


def test_orders_and_cancels_are_linked_to_their_action_and_counted_by_it(store):
    flatten = Action(ActionKind.FLATTEN, "main", "drawdown 12.0% is past the limit of 10.0%")
    first = store.record_action(flatten, NOW, dry_run=False)
    cancel = store.record_order(first, flatten, OrderKind.CANCEL, NOW, False, ActionStatus.SENT, symbol=BTC, exchange_order_id="7")
    order = store.record_order(
        first, flatten, OrderKind.ORDER, NOW, False, ActionStatus.SENT, symbol=BTC, side="sell", amount=0.5, client_order_id="riskd-1"
    )
    store.update_action(cancel, NOW, ActionStatus.DONE)
    store.update_action(order, NOW + TICK, ActionStatus.DONE, exchange_order_id="8", exchange_status="closed")
    store.update_action(first, NOW + TICK, ActionStatus.DONE)
    rehearsal = store.record_action(flatten, NOW, dry_run=True)
    store.record_order(rehearsal, flatten, OrderKind.ORDER, NOW, True, ActionStatus.DRY_RUN, symbol=ETH, side="buy", amount=1)

    rows = store.actions("main")
    assert [(row.kind, row.parent_id, row.status) for row in rows] == [
        (ActionKind.FLATTEN, None, ActionStatus.DONE),
        (OrderKind.CANCEL, first, ActionStatus.DONE),
        (OrderKind.ORDER, first, ActionStatus.DONE),
        (ActionKind.FLATTEN, None, ActionStatus.PLANNED),
        (OrderKind.ORDER, rehearsal, ActionStatus.DRY_RUN),
    ]
    sent = rows[2]
    assert (sent.exchange_order_id, sent.exchange_status, sent.updated_at, sent.dry_run) == ("8", "closed", NOW + TICK, False)
    assert (sent.symbol, sent.side, sent.amount, sent.client_order_id, sent.reason) == (BTC, "sell", 0.5, "riskd-1", flatten.reason)
    counts = store.tally("main", NOW)
    assert (counts["orders"], counts["dry_run_orders"]) == (1, 1)


# --- commands --------------------------------------------------------------------------


def test_an_override_command_keeps_its_breaker_limit_and_duration_while_queued(store):
    asked = Command(CommandKind.OVERRIDE, "main", "cli", "bob", "CPI day", None, LimitOverride("daily_loss", "8%", timedelta(hours=2)))
    command_id = store.submit_command(asked, NOW)
    assert store.pending_commands() == [(command_id, asked, NOW)]


def test_an_override_is_kept_with_its_announcements_until_it_is_ended(store):
    started = Event("main", EventKind.OVERRIDE, "daily_loss 8% until 14:00", "daily_loss", Severity.WARNING)
    alert = Alert("main", Severity.WARNING, "override:daily_loss", "Override: daily_loss 8%")
    asked = LimitOverride("daily_loss", "8%", timedelta(hours=2))
    override_id = store.add_override("main", asked, "telegram", "alice", "CPI day", NOW, started, alert)
    expected = OverrideInForce(override_id, "main", "daily_loss", "8%", NOW, NOW + timedelta(hours=2), "alice via telegram", "CPI day")
    assert store.overrides("main") == [expected]
    assert store.overrides("other") == []
    assert [event.kind for event in store.events("main")] == [EventKind.OVERRIDE]
    assert [row.key for row in store.alerts()] == ["override:daily_loss"]

    ended = Event("main", EventKind.OVERRIDE_ENDED, "back to 5%", "daily_loss")
    store.end_override(override_id, NOW + timedelta(hours=2), ended, Alert("main", Severity.INFO, "override_ended:daily_loss", "back"))
    assert store.overrides("main") == []
    assert [event.kind for event in store.events("main")] == [EventKind.OVERRIDE, EventKind.OVERRIDE_ENDED]


def test_the_orders_seen_for_order_rate_survive_a_restart(store):
    remembered = AccountState("main", orders_seen=frozen_mapping({"1": None, "2": NOW}), orders_followed_since=NOW)
    store.record_step(StepResult(remembered), NOW)
    assert dict(store.load_state("main").orders_seen) == {"1": None, "2": NOW}
    assert store.load_state("main").orders_followed_since == NOW  # a restart is not a first look



def test_a_submitted_command_stays_pending_until_finished(store):
    reduce = command("reduce", who="bob", source="cli", reason="too much BTC", fraction=0.25)
    freeze = command("freeze", who="alice", source="telegram")
    reduce_id = store.submit_command(reduce, NOW)
    freeze_id = store.submit_command(freeze, NOW + TICK)

    assert store.pending_commands() == [(reduce_id, reduce, NOW), (freeze_id, freeze, NOW + TICK)]

    assert store.command(reduce_id).status is CommandStatus.PENDING
    store.finish_command(reduce_id, NOW + 2 * TICK, CommandStatus.DONE, "main: reduce done")

    assert store.pending_commands() == [(freeze_id, freeze, NOW + TICK)]
    row = store.command(reduce_id)
    assert (row.status, row.result, row.handled_at) == (CommandStatus.DONE, "main: reduce done", NOW + 2 * TICK)
    assert (row.command, row.account, row.who, row.source) == ("reduce", "main", "bob", "cli")
    assert row.arguments == {"reason": "too much BTC", "fraction": 0.25}


def test_a_refused_command_is_kept_but_never_pending(store):
    refused_id = store.record_answer("telegram", "mallory", "/flatten main", CommandStatus.REFUSED, "not an authorised user", NOW)

    assert store.pending_commands() == []
    refused = store.command(refused_id)
    assert (refused.status, refused.command, refused.who, refused.result) == (
        CommandStatus.REFUSED, "/flatten main", "mallory", "not an authorised user"
    )
    assert refused.handled_at == NOW


# --- the alert outbox ------------------------------------------------------------------


def queue(database: Store, *messages: str, at=NOW) -> None:
    for message in messages:
        database.record_event(event("warning"), at, alert(message))


def test_due_alerts_come_oldest_first_and_stop_at_the_first_not_yet_due(store):
    queue(store, "first", "second", "third")
    first, second, _ = store.due_alerts(NOW)

    store.mark_alert(first.id, NOW, AlertStatus.SENT)
    store.mark_alert(second.id, NOW, AlertStatus.PENDING, error="Telegram is down", retry_at=NOW + timedelta(minutes=1))

    assert texts(store.due_alerts(NOW + timedelta(seconds=30))) == []  # the third waits behind the second
    assert texts(store.due_alerts(NOW + timedelta(minutes=1))) == ["second", "third"]


def test_mark_alert_counts_attempts_and_records_the_outcome(store):
    queue(store, "breach")
    (row,) = store.due_alerts(NOW)

    store.mark_alert(row.id, NOW, AlertStatus.PENDING, error="timeout", retry_at=NOW + TICK)
    store.mark_alert(row.id, NOW + TICK, AlertStatus.SENT)

    (marked,) = store.alerts()
    assert (marked.status, marked.attempts, marked.error) == (AlertStatus.SENT, 2, None)
    assert marked.sent_at == NOW + TICK
    assert store.due_alerts(NOW + TICK) == []


# --- snapshots, pruning, readings ------------------------------------------------------


def test_a_snapshot_is_kept_with_its_positions_and_a_failed_one_with_its_error(store):
    hedged = [
        position(BTC, side=Side.SHORT, contracts=2, position_side="SHORT", entry_price=61_000, liquidation_price=90_000),
        position(BTC, side=Side.LONG, contracts=1, position_side="LONG", unrealized_pnl=-40.5, leverage=5),
        position(ETH, contracts=3, kind="spot"),
    ]
    good_id = store.record_snapshot(snapshot(10_000, hedged))
    store.record_snapshot(snapshot(None, error="exchange timed out", fetched_at=NOW + TICK))

    latest = store.latest_snapshot("main")
    assert (latest.id, latest.ok, latest.equity, latest.position_count, latest.at) == (good_id, True, 10_000, 3, NOW)
    assert store.latest_snapshot("main", ok_only=False).error == "exchange timed out"
    assert store.latest_snapshot("spot") is None
    assert store.positions_of(good_id) == [hedged[1], hedged[0], hedged[2]]  # by symbol, then position side
    stored = store.db.execute("select symbol, position_side from positions order by rowid").fetchall()
    assert stored == [(BTC, "SHORT"), (BTC, "LONG"), (ETH, None)]  # the symbol column holds the symbol


def test_prune_removes_old_snapshots_and_positions_but_keeps_pending_alerts(store):
    keep, long_ago, old = timedelta(days=7), NOW - timedelta(days=30), NOW - timedelta(days=10)
    old_id = store.record_snapshot(snapshot(positions=[position(BTC)], fetched_at=old))
    new_id = store.record_snapshot(snapshot(positions=[position(BTC)], fetched_at=NOW))
    queue(store, "never delivered", "delivered", at=old)
    delivered = store.alerts()[-1]
    store.mark_alert(delivered.id, old, AlertStatus.SENT)
    store.record_event(event("clear"), long_ago)

    removed = store.prune(NOW, keep)

    assert removed > 0
    assert [row["id"] for row in store.db.table("snapshots").rows] == [new_id]
    assert store.positions_of(old_id) == [] and len(store.positions_of(new_id)) == 1
    assert texts(store.alerts()) == ["never delivered"]
    assert [event.kind for event in store.events()] == [EventKind.WARNING] * 2  # events are kept 4x longer


def test_the_readings_of_the_last_tick_round_trip(store):
    positions = [position(BTC, unrealized_pnl=-100), position(ETH, mark_price=2_000, liquidation_price=1_500)]
    result = step(watched_state(), snapshot(10_000, positions), policy(), NOW)
    blind = step(result.state, snapshot(None, error="timeout"), policy(), NOW + TICK)

    store.record_step(result, NOW)
    assert store.stored_state("main").readings == result.readings
    assert {reading.symbol for reading in store.stored_state("main").readings} >= {BTC, ETH, None}

    store.record_step(blind, NOW + TICK)
    assert store.stored_state("main").readings == blind.readings
    assert any(reading.value is None for reading in store.stored_state("main").readings)


def test_a_command_result_without_readings_keeps_the_last_ticks_readings(store):
    result = tripped()
    store.record_step(result, NOW)

    store.record_step(apply_command(result.state, command("freeze"), None, policy(), NOW + TICK), NOW + TICK)

    assert store.stored_state("main").readings == result.readings
    assert store.stored_state("spot").readings == ()


def _open_when(path: str, start: float, results) -> None:
    """Open the database at `start` (a moment shared with other processes), say how it went."""
    while time.time() < start:
        pass
    try:
        Store(path).close()
        results.put("opened")
    except Exception as error:  # what a user would have seen instead of a running riskd
        results.put(f"{type(error).__name__}: {error}")


def test_processes_opening_a_new_database_at_once_all_open_it_once_migrated(tmp_path):
    # The daemon as systemd starts it and a `riskd status` typed at that moment, say:
    # before, most such starts failed one of them ("database is locked", or a migration
    # run twice: "duplicate column name").
    context = multiprocessing.get_context("fork")
    for trial in range(8):
        path, results = str(tmp_path / f"riskd-{trial}.db"), context.Queue()
        start = time.time() + 0.3
        openers = [context.Process(target=_open_when, args=(path, start, results)) for _ in range(4)]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(30)
        assert sorted(results.get(timeout=5) for _ in openers) == ["opened"] * 4
        with sqlite3.connect(path) as connection:
            version = connection.execute("select value from meta where key = 'schema_version'").fetchone()[0]
        assert int(version) == len(riskd.store.schema.MIGRATIONS)
