"""One account's side of the mark-price stream: its marks judged, a breach confirmed by a read.

Why it exists: a poll every 10 s (and `confirm` polls to trip) leaves a crash unseen for
10 to 20 s. Between polls, its venue's websocket (`stream.py`, one connection shared by
the accounts on that venue) hands each account the newest mark prices of the symbols
its last good snapshot holds. A `MarkStream` revalues those positions at the marks and
judges the result with the price-driven breakers (`marks.py`, pure).

Each account judges in its own task, so that one account's confirming read (a whole
tick, which may wait for the venue or for a flatten in progress) never holds back the
marks of the others. While an account is busy, only the newest marks are kept for it
and judged next: older ones are superseded, and nothing queues up.

It never acts on the stream's numbers. A breach it sees asks the daemon for an
immediate read of the account: a normal tick, recorded, judged and acted on like a
scheduled one, so riskd acts only on what the account itself says.

How `confirm` counts: each stream-triggered read is one tick and counts once. While the
stream shows a breach the account's reads have not yet tripped, the reads follow one
another at once (the next starts when the previous is recorded; at most `confirm` for
one mark), so a breach with `confirm: 2` trips two reads after the mark, not two poll
intervals. A read whose own reading of that breaker is not breached (or that failed)
does not confirm it: nothing is done, and the stream asks no further read for that
breaker for one poll interval; the polls judge it meanwhile. A breach already tripped
asks no read: the polls enforce it.

The account's up and down (an event and an alert, the log, `riskd_stream_up`) are its
venue connection's, reported to each account that follows it, once per outage; an
account none of whose symbols had a new mark for the stall time is down on its own
while the connection goes on carrying the others' marks (`VenueStream._follow`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Awaitable, Callable, Mapping

from riskd import wording
from riskd.breakers import BreakerConfig
from riskd.breakers.base import base_name
from riskd.domain import AccountState, Alert, Event, EventKind, Severity, Snapshot, Status, StepResult, alert_key, frozen_mapping
from riskd.marks import PRICE_DRIVEN, price_readings, revalue, unconfirmed_breaches

log = logging.getLogger("riskd.stream")


@dataclass(frozen=True, slots=True)
class Basis:
    """What a mark is judged against: the last good snapshot, the account's state, its breakers, the time."""

    snapshot: Snapshot
    state: AccountState
    breakers: Mapping[str, BreakerConfig]
    now: datetime


@dataclass(eq=False)  # each account's stream is itself: the venue's connection keys its accounts by it
class MarkStream:
    """One account's mark-price stream: `start()`, `stop()`, and figures for /metrics.

    `snapshot` gives the last good snapshot (None before the first good read), whose
    futures positions the venue's connection follows; `basis` gives what a mark is
    judged against; `read` runs an immediate tick and returns its result (None when
    riskd is stopping); `report` records an event with its alert; `hold` is how long an
    unconfirmed breaker is left to the polls (the poll interval).

    The venue's connection (`stream.VenueStream`) calls `offer` with each mark, `lost`
    when the connection fails and `reconnecting` when it opens it again.
    """

    account: str
    snapshot: Callable[[], Snapshot | None]
    basis: Callable[[], Basis | None]
    read: Callable[[], Awaitable[StepResult | None]]
    report: Callable[[Event, Alert | None], None]
    hold: Callable[[], timedelta]
    up: bool = False
    marks_seen: int = 0
    """Marks judged: a mark superseded while the account was busy is not counted."""
    reconnects: int = 0
    reads: int = 0
    """Reads of the account the stream asked for."""
    last_mark_at: float | None = None
    _held: dict[str, float] = field(default_factory=dict)
    _newest: Mapping[str, float] | None = None
    _fresh: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task | None = None
    _reported_down: bool = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"stream:{self.account}")

    async def stop(self) -> None:
        """Cancel the judging and wait for it to end (a read in flight is the daemon's to finish or abandon)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def symbols(self) -> tuple[str, ...]:
        """The symbols whose marks the account needs: its last good snapshot's futures positions."""
        snapshot = self.snapshot()
        if snapshot is None:
            return ()
        return tuple(sorted({p.symbol for p in snapshot.positions if p.kind != "spot" and p.mark_price}))

    # --- what the venue's connection hands over --------------------------------------

    def offer(self, marks: Mapping[str, float]) -> None:
        """The newest marks (unified symbol → mark price), judged as soon as the account is free;
        they replace any the account has not judged yet. Never waits."""
        self.last_mark_at = time.monotonic()
        self._up()
        self._newest = marks
        self._fresh.set()

    def lost(self, problem: str, delay: float | None) -> None:
        """The connection failed or stalled, and is opened again in `delay` seconds; or (None)
        the account's own symbols went quiet on a connection that goes on."""
        self.up = False
        after = f"reconnecting in {delay:g} s" if delay is not None else "until its marks come back"
        log.warning("%s: mark-price stream down (%s); polling alone, %s", self.account, problem, after)
        if self._reported_down:
            return  # one report per outage, however many attempts it takes
        self._reported_down = True
        text = wording.stream_down(problem)
        self.report(Event(self.account, EventKind.STREAM_DOWN, text, severity=Severity.WARNING),
                    Alert(self.account, Severity.WARNING, alert_key(EventKind.STREAM_DOWN), text))

    def reconnecting(self) -> None:
        self.reconnects += 1

    # --- judging -----------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._fresh.wait()
            self._fresh.clear()
            marks, self._newest = self._newest, None
            self.marks_seen += 1
            try:
                await self._judge(marks)
            except Exception:  # a fault in judging one mark (the database, say) must not end the judging
                log.exception("%s: judging a mark failed", self.account)

    async def _judge(self, marks: Mapping[str, float]) -> None:
        """Read the account at once while the marks show a breach it has not yet tripped:
        at most `confirm` reads for one mark, enough to trip it."""
        asked = 0
        while True:
            basis = self.basis()
            if basis is None:
                return
            estimate = revalue(basis.snapshot, marks)
            readings = price_readings(basis.state, estimate, basis.breakers, basis.now)
            clock = time.monotonic()
            breaches = [r for r in unconfirmed_breaches(basis.state, readings) if self._held.get(r.key, 0) <= clock]
            if not breaches or asked >= max(basis.breakers[r.breaker].confirm for r in breaches):
                return
            asked += 1
            text = wording.stream_breach(breaches[0].reason, len(breaches) - 1)
            self._record(EventKind.STREAM_BREACH, Severity.WARNING, text, [r.key for r in breaches])
            self.reads += 1
            try:
                result = await self.read()
            except Exception:  # a tick that fails is the tick's problem, not the stream's: not confirmed
                log.exception("%s: the read the mark stream asked for failed", self.account)
                result = StepResult(basis.state)
            if result is None:
                return
            confirmed = {r.key for r in result.readings if r.status is Status.BREACHED}
            refuted = [r for r in breaches if r.key not in confirmed]
            if refuted:
                until = time.monotonic() + self.hold().total_seconds()
                self._held.update({r.key: until for r in refuted})
                failed = all(r.status is Status.NO_DATA for r in result.readings if base_name(r.breaker) in PRICE_DRIVEN)
                text = wording.stream_unconfirmed(failed, [r.key for r in refuted], self.hold())
                self._record(EventKind.STREAM_UNCONFIRMED, Severity.INFO, text, [r.key for r in refuted])
            if len(refuted) == len(breaches):
                return

    def _record(self, kind: EventKind, severity: Severity, text: str, keys: list[str]) -> None:
        log.log(logging.WARNING if severity is Severity.WARNING else logging.INFO, "%s: stream: %s", self.account, text)
        self.report(Event(self.account, kind, text, severity=severity, data=frozen_mapping({"keys": keys})), None)

    # --- reporting ---------------------------------------------------------------

    def _up(self) -> None:
        if self.up:
            return
        self.up = True
        if not self._reported_down:
            log.info("%s: following the mark-price stream", self.account)
            return
        self._reported_down = False
        text = wording.stream_up()
        log.warning("%s: mark-price stream back", self.account)
        self.report(Event(self.account, EventKind.STREAM_UP, text, severity=Severity.INFO),
                    Alert(self.account, Severity.INFO, alert_key(EventKind.STREAM_UP), text))
