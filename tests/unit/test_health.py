"""The one health judgement behind the watchdog, STATUS, /healthz and /metrics: ticks
completing and recent good reads, judged from plain values at a given time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from riskd import health
from riskd.domain import AccountState, ReadFailure, Snapshot, TradingState

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
LIMIT = timedelta(seconds=30)


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
    from riskd.guard import AccountGuard

    def guard(name, executor):
        return AccountGuard(name, None, executor, None, None, None, last_tick_at=NOW - timedelta(seconds=90))

    acting = guard("main", SimpleNamespace(last_progress=NOW - timedelta(seconds=5)))
    stuck = guard("other", SimpleNamespace(last_progress=None))
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
    timed_out = Snapshot("main", NOW - timedelta(seconds=21), error="timed out", error_kind=ReadFailure.TIMEOUT, latency=20.0)
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
