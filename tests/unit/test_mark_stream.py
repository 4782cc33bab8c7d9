"""The mark stream's judging, driven with plain values: a breach the stream sees, the read it
asks for, and the words for a breach that read does not show."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from riskd.domain import AccountState, Reading, Status, StepResult, frozen_mapping
from riskd.account_stream import Basis, MarkStream
from tests.factories import NOW, policy, position, snapshot

BTC = "BTC/USDT:USDT"


def level_two(status: Status) -> Reading:
    return Reading("drawdown.2", status, None if status is Status.NO_DATA else 0.02, 0.10, 0.08, "drawdown")


@pytest.mark.parametrize(
    ("seen", "why"),
    [
        ((level_two(Status.OK), Reading("stale_data", Status.NO_DATA, None, 60, 45, "no read")), "the account's own figures do not show it"),
        ((level_two(Status.NO_DATA),), "the read of the account failed"),
    ],
)
async def test_a_ladder_levels_breach_the_read_does_not_show_is_worded_by_what_the_read_saw(seen, why):
    state = AccountState(
        "main", peak_equity=10_000, day_start_equity=10_000,
        statuses=frozen_mapping({"drawdown": Status.BREACHED}),  # level 1 already tripped: only drawdown.2 calls for a read
    )
    ladder = policy(drawdown={"levels": [{"limit": "5%", "action": "reduce"}, {"limit": "10%", "action": "flatten"}]})
    held = snapshot(equity=10_000, positions=[position(BTC, notional=10_000, mark_price=100)])
    events = []

    async def read() -> StepResult:
        return StepResult(state, seen)

    stream = MarkStream(
        "main", snapshot=lambda: held, basis=lambda: Basis(held, state, ladder.breakers, NOW), read=read,
        report=lambda event, alert: events.append(event), hold=lambda: timedelta(seconds=10),
    )
    await stream._judge({BTC: 88})  # 12 % down on the stream

    unconfirmed = [event for event in events if event.kind == "stream_unconfirmed"]
    assert stream.reads == 1 and len(unconfirmed) == 1
    assert unconfirmed[0].message.startswith(f"not acted on: {why} (drawdown.2)")


async def test_while_a_read_is_in_flight_only_the_newest_marks_are_judged_next():
    state = AccountState("main", peak_equity=10_000, day_start_equity=10_000)
    drawdown = policy(drawdown={"limit": "10%"})
    held = snapshot(equity=10_000, positions=[position(BTC, notional=10_000, mark_price=100)])
    release, events = asyncio.Event(), []

    async def read() -> StepResult:
        await release.wait()
        return StepResult(state, (Reading("drawdown", Status.OK, 0.01, 0.10, 0.08, "drawdown"),))  # not confirmed

    stream = MarkStream(
        "main", snapshot=lambda: held, basis=lambda: Basis(held, state, drawdown.breakers, NOW), read=read,
        report=lambda event, alert: events.append(event), hold=lambda: timedelta(0),  # held for no time: judged again at once
    )
    stream.start()
    try:
        stream.offer({BTC: 88})  # 12 % down: a read, which waits
        await until(lambda: stream.reads == 1)
        for mark in (99, 87, 85):  # while the read waits: the first two are superseded
            stream.offer({BTC: mark})
        release.set()
        await until(lambda: [event.kind for event in events].count("stream_unconfirmed") == 2)
    finally:
        await stream.stop()

    breaches = [event.message for event in events if event.kind == "stream_breach"]
    assert stream.marks_seen == 2 and stream.reads == 2
    assert len(breaches) == 2 and "drawdown 12.0%" in breaches[0] and "drawdown 15.0%" in breaches[1]  # 88, then the newest


async def until(condition, seconds: float = 5.0) -> None:
    """Wait for `condition()` to hold, letting the stream's task run; fail after `seconds`."""
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.001)
