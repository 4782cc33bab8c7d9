"""Is riskd doing its job? One judgement for the systemd watchdog, STATUS, /healthz and /metrics.

Two questions, different on purpose, both against the same freshness limit
(STALE_TICKS poll intervals, or STALE_TICKS of the account's own reads when the venue
takes longer than a poll interval to answer: ticks cannot come faster than reads
complete, so a slow but working venue must not read as a stalled one):

- Do every account's ticks keep completing? A failed read completes a tick: riskd is
  working, the exchange is not. Only this question feeds the watchdog, because a
  restart cures a hung tick or a wedged loop, never an exchange outage.
- Has riskd had a good read of every account lately? /healthz answers this one, for
  the operator who must know when riskd cannot see an account, whatever the cause.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable, Mapping, Protocol

from riskd.domain import AccountState, Snapshot, TradingState
from riskd.units import format_duration

STALE_TICKS = 3
"""An account is overdue when its last tick (or good read) is older than this many poll intervals."""


class Watched(Protocol):
    """What the judgement reads of an account at run time (riskd.guard.AccountGuard is one)."""

    name: str
    last_tick_at: datetime | None
    last_snapshot: Snapshot | None
    last_read: Snapshot | None
    alive_at: datetime | None
    """The last completed tick, or the last exchange call of an action still under way."""


def freshness(poll_interval: timedelta) -> timedelta:
    return poll_interval * STALE_TICKS


def allowance(runner: Watched, limit: timedelta) -> timedelta:
    """The freshness limit for one account, judged by the reads that complete.

    When a read takes longer than a poll interval, ticks follow one another as reads
    end, and a good read can be as old as two reads and a poll interval when the next
    one lands. So the limit is STALE_TICKS of the latest good read's duration when that
    is longer than the poll-interval limit. Only good reads set the pace: a read that
    never completes, or fails after a long timeout, adds nothing, so a hung or failing
    venue still goes stale at the last known good pace.
    """
    read = runner.last_snapshot
    if read is None or not read.latency:
        return limit
    return max(limit, timedelta(seconds=read.latency) * STALE_TICKS)


def overdue(runners: Iterable[Watched], now: datetime, limit: timedelta) -> dict[str, str]:
    """Accounts whose ticks stopped completing: name → how long ago the last one did."""
    found = {}
    for runner in runners:
        if runner.alive_at is None:
            found[runner.name] = f"{runner.name}: no tick completed yet"
        elif now - runner.alive_at > allowance(runner, limit):
            found[runner.name] = f"{runner.name}: no tick completed for {format_duration(now - runner.alive_at)}"
    return found


def problems(runners: Iterable[Watched], now: datetime, limit: timedelta) -> list[str]:
    """Everything that makes riskd unhealthy: overdue ticks, and accounts it cannot read."""
    runners = list(runners)
    late = overdue(runners, now, limit)
    found = list(late.values())
    for runner in runners:
        if runner.name in late:
            continue
        good = runner.last_snapshot
        if good is None or now - good.fetched_at > allowance(runner, limit):
            since = "since start" if good is None else f"for {format_duration(now - good.fetched_at)}"
            error = runner.last_read.error if runner.last_read is not None and runner.last_read.error else "unknown"
            found.append(f"{runner.name}: no good read of the account {since}; last error: {error}")
    return found


def summary(runners: Iterable[Watched], states: Mapping[str, AccountState], now: datetime, limit: timedelta) -> str:
    """One line for `systemctl status`: accounts by trading state, the oldest tick, the first problem."""
    runners = list(runners)
    parts = []
    for trading_state in TradingState:
        names = [name for name, state in states.items() if state.trading_state is trading_state]
        if names:
            who = "" if trading_state is TradingState.ACTIVE else f" ({', '.join(names)})"
            parts.append(f"{len(names)} {trading_state}{who}")
    line = f"{len(runners)} account{'s' if len(runners) != 1 else ''}: {', '.join(parts)}"
    ticks = [runner.last_tick_at for runner in runners]
    if ticks and None not in ticks:
        line += f"; last tick {format_duration(max(now - min(ticks), timedelta(0)))} ago"
    found = problems(runners, now, limit)
    if found:
        line += f"; {found[0]}" + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")
    return line
