"""Forged, malformed and expired button presses, through the real python-telegram-bot.

A Telegram client can send a callback with any data under any message the bot wrote, or
with none. riskd must carry out none of them, answer each (so the client stops waiting),
record each in `commands` as refused with who sent it, and warn the owner once per
cooldown as for any stranger.
"""

from __future__ import annotations

import asyncio
import time

from riskd.domain import TradingState
from tests.integration.test_telegram import (  # noqa: F401 (fixtures)
    ALICE,
    MALLORY,
    api,
    clock,
    commands_table,
    configure,
    orders_sent,
    running,
    sim_of,
    stored,
    to,
)

FORGED = [
    "confirm:AAAAAAAAAAAAAAAA",          # made up: a token riskd never gave
    "",                                   # empty
    "confirm:" + "x" * 4096,              # overlong
    "flatten:all",                        # not a choice riskd offers
    "cancel:",                            # no token
    "confirm",                            # no separator
    "confirm:\x00\n/flatten",             # control characters
]


async def answered(api, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(api.answers) < count:
        assert time.monotonic() < deadline, f"{len(api.answers)} of {count} presses answered"
        await asyncio.sleep(0.02)


async def test_forged_presses_do_nothing_are_recorded_with_their_sender_and_warn_the_owner_once(configure, api, clock):
    async with running(configure(live=True), clock) as daemon:
        await daemon.tick("demo")
        sim = sim_of(daemon)
        positions = sim.state()["positions"]
        await api.command("/status", ALICE)
        under = await api.wait_for(to(ALICE, "demo"))
        for data in FORGED:
            await api.send_callback(data, MALLORY, under)
        await api.send_callback("confirm:AAAAAAAAAAAAAAAA", MALLORY)  # no message: as from an inline button
        await answered(api, len(FORGED) + 1)
        warning = await api.wait_for(to(ALICE, "ignored a command", "mallory"))
        # a confirmation riskd really asked for, pressed after it was used, is a replay
        await api.command("/freeze demo", ALICE)
        await api.wait_for(to(ALICE, "demo", "halted"))

    assert orders_sent(sim) == [] and sim.state()["positions"] == positions
    assert [text for text in api.said(ALICE["id"]) if "ignored a command" in text] == [warning["text"]]
    assert api.said(MALLORY["id"]) == []
    refused = [row for row in commands_table(daemon) if row["who"].startswith("user 6666")]
    assert len(refused) == len(FORGED) + 1
    assert all(row["status"] == "refused" and "not waiting for" in row["result"] for row in refused)
    assert all(row["who"].startswith("user 6666 (@mallory)") for row in refused)
    assert all(row["command"].startswith("button ") and len(row["command"]) <= 200 for row in refused)
    assert stored(daemon).load_state("demo").trading_state is TradingState.HALTED  # only Alice's freeze


async def test_a_used_or_stale_confirmation_pressed_again_is_refused_and_recorded(configure, api, clock):
    async with running(configure(live=True), clock) as daemon:
        await daemon.tick("demo")
        sim = sim_of(daemon)
        await api.command("/flatten demo", ALICE)
        question = await api.wait_for(lambda message: "Flatten demo?" in message["text"] and "reply_markup" in message)
        confirm = question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        await api.press(question, "Cancel", ALICE)
        await api.wait_for(lambda message: message["message_id"] == question["message_id"] and "Cancelled" in message["text"])
        await api.send_callback(confirm, ALICE, question)  # the Confirm of a decided question, replayed
        await answered(api, 2)

    assert orders_sent(sim) == []
    last = commands_table(daemon)[-1]
    assert (last["status"], last["command"]) == ("refused", f"button {confirm!r}")
    assert last["who"].startswith("user 1001 (@alice)")
