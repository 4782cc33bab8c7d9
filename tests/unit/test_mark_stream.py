"""The mark stream's judging, driven with plain values: a breach the stream sees, the read it
asks for, and the words for a breach that read does not show."""

from __future__ import annotations

from datetime import timedelta

import pytest

from riskd.domain import AccountState, Reading, Status, StepResult, frozen_mapping
from riskd.stream import Basis, MarkStream
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
        "main", connect=lambda symbols: None, basis=lambda: Basis(held, state, ladder.breakers, NOW), read=read,
        report=lambda event, alert: events.append(event), hold=lambda: timedelta(seconds=10),
    )
    await stream._judge({BTC: 88})  # 12 % down on the stream

    unconfirmed = [event for event in events if event.kind == "stream_unconfirmed"]
    assert stream.reads == 1 and len(unconfirmed) == 1
    assert unconfirmed[0].message.startswith(f"not acted on: {why} (drawdown.2)")
