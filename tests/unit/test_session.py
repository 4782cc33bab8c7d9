"""The Telegram dispatcher records every command exactly once, whatever its runner did."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from riskd.commands import Refusal
from riskd.store import Store
from riskd.telegram.bot import answer
from riskd.telegram.menu import Spec
from riskd.telegram.session import Reply, Request, Session, Usage

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc)
REQUEST = Request(("main",), "/thing main", "user 1 (@owner) in chat 1", 1)


@pytest.fixture
def session():
    store = Store(":memory:")
    yield Session(lambda: None, store, lambda: NOW)
    store.close()


def spec(run) -> Spec:
    return Spec("thing", "ACCOUNT", "does a thing", "/thing main", run)


def recorded(session: Session) -> list[tuple[str, str, str]]:
    rows = session.store.db.table("commands").rows_where(order_by="id")
    return [(row["command"], row["status"], row["result"]) for row in rows]


async def test_an_answer_is_recorded_once_with_what_the_reply_says(session):
    async def run(session, request):
        return Reply("shown here", recorded="shown", account="main")

    reply = await answer(session, spec(run), REQUEST, NOW)
    assert reply.text == "shown here"
    assert recorded(session) == [("/thing main", "done", "shown")]


async def test_a_usage_error_and_a_refusal_are_each_recorded_once_as_refused(session):
    async def wrong(session, request):
        raise Usage("'x' is not a number")

    async def refused(session, request):
        raise Refusal("no account named 'x'")

    usage = await answer(session, spec(wrong), REQUEST, NOW)
    refusal = await answer(session, spec(refused), REQUEST, NOW)
    assert "Usage: /thing ACCOUNT, for example /thing main" in usage.text
    assert refusal.text == "⛔ no account named 'x'"
    assert recorded(session) == [
        ("/thing main", "refused", "usage: 'x' is not a number"),
        ("/thing main", "refused", "no account named 'x'"),
    ]


async def test_a_command_sent_while_riskd_was_down_is_refused_once_and_not_run(session):
    ran = []

    async def run(session, request):
        ran.append(request)
        return Reply("ran", recorded="shown")

    reply = await answer(session, spec(run), REQUEST, NOW - timedelta(minutes=6))
    assert ran == [] and "nothing was done" in reply.text
    assert recorded(session) == [("/thing main", "refused", "sent at 2026-03-02 02:54:00 UTC while riskd was not running")]


async def test_a_command_recorded_elsewhere_is_not_recorded_again(session):
    async def queued(session, request):
        return Reply("✅ main: freeze done")  # commands.submit recorded it when it was queued

    await answer(session, spec(queued), REQUEST, NOW)
    assert recorded(session) == []
