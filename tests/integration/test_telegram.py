"""riskd's Telegram bot end to end: the real python-telegram-bot against a fake Bot API.

The daemon runs as `riskd run` runs it: the embedded exchange through real ccxt, the
bot polling on the daemon's loop, and the command and alert jobs on their one-second
turns (here `running()` runs them, faster where the test is not about timing). The fake
Telegram (tests/fakes/telegram_api.py) is pointed at with `telegram.base_url`; the
people in it are played by the tests. The daemon's clock runs with real time, so
backoff waits really pass, and can be pushed forward to make time fly.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from contextlib import asynccontextmanager, suppress

import pytest
import yaml
from pydantic import SecretStr

from riskd import checks, logs
from riskd.config import PORTFOLIO, PortfolioSettings, load_settings
from riskd.domain import Alert, Event, Severity, TradingState
from riskd.store import OutboxAlert, Store
from riskd.supervisor import Daemon
from riskd.telegram.bot import STOP_LIMIT
from riskd.telegram.menu import COMMANDS
from riskd.units import format_money
from tests.fakes.telegram_api import SETTLING, FakeTelegram, group_chat, user
from tests.timing import limit

from .conftest import Clock, orders_sent

TOKEN = "700001:AAH-riskd-test-token_0123456789abcdefXYZ"
ALICE, BOB, MALLORY = user(1001, "alice"), user(1002, "bob"), user(6666, "mallory")
DESK = group_chat(-100777)


@pytest.fixture
def clock() -> Clock:
    """Here real time passes on the clock too."""
    return Clock(real_time=True)


@pytest.fixture
async def api(clock):
    fake = FakeTelegram(TOKEN, clock=clock.epoch)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def configure(tmp_path, api, monkeypatch):
    """Settings for one simulated account whose drawdown limit a 20 % fall breaches at once."""
    monkeypatch.setenv("RISKD_TELEGRAM__TOKEN", TOKEN)
    monkeypatch.chdir(tmp_path)

    def write(live: bool = False, **telegram_settings):
        document = {
            "live": live,
            "database": str(tmp_path / "riskd.db"),
            "accounts": {"demo": {"exchange": "sim", "sim": {"seed": 7, "volatility": 0}}},
            "breakers": {"drawdown": {"limit": "5%", "confirm": 1, "action": "flatten"}},
            "telegram": {
                "chat_ids": [ALICE["id"]], "base_url": api.url, "timeout": "3s",
                "backoff": "50ms", "backoff_max": "400ms", **telegram_settings,
            },
        }
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(document))
        return load_settings(path)

    return write


async def every(seconds: float, job) -> None:
    while True:
        await job()
        await asyncio.sleep(seconds)


@asynccontextmanager
async def running(settings, clock, alerts_every: float = 0.1, listen: bool = True):
    """A daemon as `riskd run` has it, minus the tick schedule: ticks are the test's to call."""
    daemon = Daemon(settings, clock=clock)
    await daemon.startup()
    jobs = [asyncio.create_task(every(0.05, daemon.process_commands)),
            asyncio.create_task(every(alerts_every, daemon.deliver_alerts))]
    try:
        if listen:
            daemon.telegram.start()
            deadline = time.monotonic() + 5
            while not daemon.telegram.application.updater.running:
                assert time.monotonic() < deadline, "the bot did not start polling"
                await asyncio.sleep(0.02)
        yield daemon
    finally:
        for job in jobs:
            job.cancel()
        with suppress(asyncio.CancelledError):
            await asyncio.gather(*jobs)
        await daemon.shutdown()


async def outbox_drained(daemon: Daemon, timeout: float = 5.0) -> list[OutboxAlert]:
    """Wait until no alert is pending any more; returns the outbox."""
    deadline = time.monotonic() + timeout
    while any(row.status == "pending" for row in daemon.store.alerts(500)):
        assert time.monotonic() < deadline, "alerts still pending"
        await asyncio.sleep(0.05)
    return daemon.store.alerts(500)


def sim_of(daemon: Daemon):
    return daemon.simulator("demo")


def stored(daemon: Daemon) -> Store:
    """The daemon's database, also after it has stopped."""
    return Store(daemon.settings.database)


def commands_table(daemon: Daemon) -> list[dict]:
    """Every command row as stored, oldest first."""
    return list(stored(daemon).db.table("commands").rows_where(order_by="id"))


def to(chat: dict, *words: str):
    """A predicate: a message in `chat` whose text has every word."""
    return lambda message: message["chat"]["id"] == chat["id"] and all(word in message["text"] for word in words)


# --- commands ----------------------------------------------------------------------


async def test_status_from_an_allowed_chat_is_answered_with_the_account_figures(configure, api, clock):
    async with running(configure(), clock) as daemon:
        await daemon.tick("demo")
        equity = daemon.store.load_state("demo").last_equity
        await api.command("/status", ALICE)
        answer = await api.wait_for(to(ALICE, "demo", "Equity"))

    assert format_money(equity, "USDT") in answer["text"]
    assert "ACTIVE" in answer["text"] and "DRY-RUN" in answer["text"] and "drawdown" in answer["text"]
    assert [item["command"] for item in api.menu] == [spec.name for spec in COMMANDS]
    row = commands_table(daemon)[-1]
    assert (row["source"], row["who"], row["command"], row["status"]) == (
        "telegram", "user 1001 (@alice) in chat 1001", "/status", "done",
    )


async def test_status_shows_the_portfolio_after_the_accounts(configure, api, clock):
    portfolio = PortfolioSettings.model_validate({"breakers": {"drawdown": {"limit": "8%"}}})
    async with running(configure().model_copy(update={"portfolio": portfolio}), clock) as daemon:
        await daemon.tick("demo")
        await daemon.check_portfolio()
        equity = daemon.store.load_state(PORTFOLIO).last_equity
        assert equity == daemon.store.load_state("demo").last_equity  # one account: the sum is its equity
        await api.command("/status", ALICE)
        answer = await api.wait_for(to(ALICE, "demo", "portfolio"))

    accounts, portfolio = answer["text"].split("portfolio · sum of demo · DRY-RUN")
    assert "demo" in accounts and "State: ACTIVE" in portfolio
    assert format_money(equity, "USDT") in portfolio
    assert "every breaker within its limits" in portfolio


async def test_a_strangers_flatten_does_nothing_gets_no_answer_and_warns_the_owner_once(configure, api, clock):
    async with running(configure(live=True), clock) as daemon:
        await daemon.tick("demo")
        sim = sim_of(daemon)
        positions = sim.state()["positions"]
        await api.command("/flatten demo", MALLORY)
        await api.command("/flatten", MALLORY)
        warning = await api.wait_for(to(ALICE, "ignored a command", "mallory"))
        await api.settled(ALICE)  # both commands handled: an answer to either would have been sent
        await outbox_drained(daemon)  # and a second warning, were one raised, delivered

    assert api.said(MALLORY["id"]) == []
    assert [text for text in api.said(ALICE["id"]) if "ignored a command" in text] == [warning["text"]]
    assert orders_sent(sim) == [] and sim.state()["positions"] == positions
    assert stored(daemon).load_state("demo").trading_state is TradingState.ACTIVE
    refused = [row for row in commands_table(daemon) if row["status"] == "refused"]
    # the last is settled()'s press, refused as any press riskd did not ask for
    assert [row["command"] for row in refused] == ["/flatten demo", "/flatten", f"button {SETTLING!r}"]
    assert all(row["who"] == "user 6666 (@mallory) in chat 6666" for row in refused[:2])
    assert all("chat 6666 is not in telegram.chat_ids" in row["result"] for row in refused[:2])


async def test_in_a_group_only_administrators_are_obeyed_unless_users_are_listed(configure, api, clock):
    api.administrators[DESK["id"]] = {ALICE["id"]}
    async with running(configure(chat_ids=[DESK["id"]]), clock) as daemon:
        await api.command("/status", MALLORY, DESK)
        await api.command("/status@riskd_test_bot", ALICE, DESK)
        await api.wait_for(to(DESK, "demo", "State"))
        await api.command("/status@another_bot", MALLORY, DESK)
        await api.settled(ALICE, DESK)  # handled, and an answer to it would have been sent

    assert len([text for text in api.said(DESK["id"]) if "State" in text]) == 1
    rows = commands_table(daemon)
    # the last is settled()'s press, refused as any press riskd did not ask for
    assert [(row["who"].split()[1], row["status"]) for row in rows] == [("6666", "refused"), ("1001", "done"), ("1001", "refused")]
    assert "not an administrator" in rows[0]["result"]


async def test_riskd_guards_while_telegram_is_down_at_start_and_the_bot_comes_up_after(configure, api, clock):
    api.fail(502)  # every method, getMe included
    async with running(configure(), clock, listen=False) as daemon:
        started = time.monotonic()
        daemon.telegram.start()
        assert time.monotonic() - started < 0.1
        result = await daemon.tick("demo")
        assert result.state.last_equity is not None
        await api.answered("getMe", count=2)  # refused, and tried again after the backoff
        assert not daemon.telegram.application.updater.running

        api.heal()
        await api.command("/status", ALICE)
        await api.wait_for(to(ALICE, "demo", "Equity"), timeout=5)


async def test_flatten_asks_for_confirmation_and_only_the_asker_can_confirm(configure, api, clock):
    settings = configure(live=True, chat_ids=[DESK["id"]], user_ids=[ALICE["id"], BOB["id"]])
    async with running(settings, clock) as daemon:
        await daemon.tick("demo")
        sim = sim_of(daemon)

        await api.command("/flatten demo", ALICE, DESK)
        question = await api.wait_for(to(DESK, "Flatten demo?", "LIVE"))
        await api.press(question, "Confirm", BOB)
        await api.wait_for(lambda message: bool(api.answers))
        assert "Only the person" in api.answers[-1]["text"]
        await api.press(question, "Cancel", ALICE)
        await api.wait_for(lambda message: message["message_id"] == question["message_id"] and "Cancelled" in message["text"])
        assert orders_sent(sim) == [] and len(sim.state()["positions"]) == 3

        await api.command("/flatten demo", ALICE, DESK)
        question = await api.wait_for(lambda message: "Flatten demo?" in message["text"] and "reply_markup" in message)
        await api.press(question, "Confirm", ALICE)
        done = await api.wait_for(lambda message: message["message_id"] == question["message_id"] and "flatten done" in message["text"])

    assert "reply_markup" not in done  # the buttons are gone once it is decided
    assert sim.state()["positions"] == [] and sim.state()["openOrders"] == []
    sent = orders_sent(sim)
    assert sent and all(entry["params"].get("reduceOnly") == "true" for entry in sent)
    assert stored(daemon).load_state("demo").trading_state is TradingState.HALTED
    rows = [(row["who"].split()[1], row["command"], row["status"]) for row in commands_table(daemon)]
    assert rows == [
        ("1001", "/flatten demo", "asked"),
        ("1002", "confirm button of /flatten demo", "refused"),
        ("1001", "/flatten demo", "cancelled"),
        ("1001", "/flatten demo", "asked"),
        ("1001", "flatten", "done"),
    ]
    assert len(api.answers) == 3  # every press was answered


async def test_override_asks_first_then_changes_the_limit_for_a_while_and_says_so(configure, api, clock):
    async with running(configure(), clock) as daemon:
        await daemon.tick("demo")
        await api.command("/override demo drawdown ten 2h", ALICE)
        await api.wait_for(to(ALICE, "drawdown:", "expected a percentage"))
        await api.command("/override demo drawdown 8% 2h news day", ALICE)
        question = await api.wait_for(lambda message: "Set drawdown's limit of demo to 8% for 2.0h?" in message["text"])
        assert "reverts by itself" in question["text"] and "reply_markup" in question
        assert daemon.store.pending_commands() == []  # nothing happens before Confirm
        await api.press(question, "Confirm", ALICE)
        await api.wait_for(lambda message: message["message_id"] == question["message_id"] and "drawdown's limit is 8.0% until" in message["text"])
        await api.wait_for(to(ALICE, "Override: drawdown's limit is 8.0% instead of 5.0%", "news day"))
        await daemon.tick("demo")
        reading = next(r for r in daemon.store.stored_state("demo").readings if r.breaker == "drawdown")
        assert reading.limit == pytest.approx(0.08)

    rows = [(row["command"], row["status"]) for row in commands_table(daemon)]
    assert rows == [
        ("/override demo drawdown ten 2h", "refused"),
        ("/override demo drawdown 8% 2h news day", "asked"),
        ("override", "done"),
    ]


async def test_a_limit_in_money_can_be_overridden_written_in_one_word_or_two(configure, api, clock):
    async with running(configure(), clock) as daemon:
        await daemon.tick("demo")
        for text, limit in (("/override demo daily_loss 500 USDT 2h CPI day", "500 USDT"), ("/override demo daily_loss 600USDT 2h", "600USDT")):
            await api.command(text, ALICE)
            question = await api.wait_for(to(ALICE, f"Set daily_loss's limit of demo to {limit} for 2.0h?"))
            await api.press(question, "Confirm", ALICE)
            await api.wait_for(lambda message: message["message_id"] == question["message_id"] and "until" in message["text"])
        await daemon.tick("demo")
        reading = next(r for r in daemon.store.stored_state("demo").readings if r.breaker == "daily_loss")
        assert (reading.limit, reading.currency) == (600.0, "USDT")

    overrides = [row for row in commands_table(daemon) if row["command"] == "override"]
    assert [row["status"] for row in overrides] == ["done", "done"]
    assert [(yaml.safe_load(row["args"])["limit"], yaml.safe_load(row["args"])["reason"]) for row in overrides] == [
        ("500 USDT", "CPI day"), ("600USDT", ""),
    ]


async def test_the_portfolio_holds_its_accounts_until_it_is_resumed_from_telegram(configure, api, clock):
    portfolio = PortfolioSettings.model_validate(
        {"breakers": {"gross_exposure": {"limit": "0.01x", "confirm": 1, "action": "halt"}}}  # the demo's position is past it
    )
    async with running(configure().model_copy(update={"portfolio": portfolio}), clock) as daemon:
        await daemon.tick("demo")
        assert (await daemon.check_portfolio()).state.trading_state is TradingState.HALTED
        await daemon.tick("demo")
        assert stored(daemon).load_state("demo").trading_state is TradingState.HALTED

        await api.command("/resume demo", ALICE)
        await api.wait_for(to(ALICE, "demo: still halted, held by the portfolio; resume portfolio to release it"))
        assert stored(daemon).load_state("demo").trading_state is TradingState.HALTED

        await api.command("/resume portfolio", ALICE)
        question = await api.wait_for(to(ALICE, "Resume portfolio?", "gross exposure"))
        await api.press(question, "Confirm", ALICE)
        await api.wait_for(lambda message: message["message_id"] == question["message_id"] and "portfolio: resume done" in message["text"])

    assert stored(daemon).load_state(PORTFOLIO).trading_state is TradingState.ACTIVE
    assert stored(daemon).load_state("demo").trading_state is TradingState.ACTIVE  # its tick let go of the portfolio's latch
    assert [row["status"] for row in commands_table(daemon) if row["command"] == "resume"] == ["done", "done"]


async def test_a_confirmation_expires_after_a_minute(configure, api, clock):
    async with running(configure(live=True), clock) as daemon:
        await daemon.tick("demo")
        await api.command("/reduce demo 50%", ALICE)
        question = await api.wait_for(to(ALICE, "Reduce every position of demo by 50.0%"))
        clock.advance(61)
        await api.press(question, "Confirm", ALICE)
        await api.wait_for(lambda message: message["message_id"] == question["message_id"] and "Expired" in message["text"])

    assert orders_sent(sim_of(daemon)) == []
    assert commands_table(daemon)[-1]["status"] == "expired"


async def test_resume_of_a_breached_account_asks_first_and_freeze_does_not(configure, api, clock):
    async with running(configure(), clock) as daemon:
        await daemon.tick("demo")
        await api.command("/freeze demo going to sleep", ALICE)
        await api.wait_for(to(ALICE, "freeze done, state halted"))
        await api.command("/resume demo", ALICE)
        await api.wait_for(to(ALICE, "resume done, state active"))

        sim_of(daemon).move(-0.20)
        await daemon.tick("demo")
        await api.command("/resume demo", ALICE)
        question = await api.wait_for(to(ALICE, "Resume demo?", "drawdown"))
        await api.press(question, "Confirm", ALICE)
        await api.wait_for(lambda message: message["message_id"] == question["message_id"] and "resume done" in message["text"])

    assert stored(daemon).load_state("demo").trading_state is TradingState.ACTIVE
    freeze = next(row for row in commands_table(daemon) if row["command"] == "freeze")
    assert freeze["who"] == "user 1001 (@alice) in chat 1001" and freeze["status"] == "done"
    assert "going to sleep" in next(e.message for e in stored(daemon).events("demo", 100) if e.kind == "state_change")


async def test_a_command_sent_while_riskd_was_down_is_not_carried_out_late(configure, api, clock):
    settings = configure()
    await api.command("/freeze demo", ALICE)  # Telegram keeps it until a bot asks for its updates
    clock.advance(600)
    async with running(settings, clock) as daemon:
        await api.wait_for(to(ALICE, "while riskd was not running", "nothing was done"))

    assert commands_table(daemon)[-1]["status"] == "refused"
    assert stored(daemon).load_state("demo").trading_state is TradingState.ACTIVE


async def test_malformed_commands_get_a_usage_line_and_are_recorded(configure, api, clock):
    attempts = {
        "/reduce demo": "Usage: /reduce ACCOUNT PERCENT, for example /reduce main 50%",
        "/reduce demo 250": "ambiguous",
        "/events lots": "Usage: /events [N]",
        "/events ²": "Usage: /events [N]",
        "/positions nowhere": "no account named 'nowhere'",
        "/mute forever": "Usage: /mute DURATION|off",
        "/sell everything": "Unknown command",
    }
    async with running(configure(), clock) as daemon:
        for text, expected in attempts.items():
            await api.command(text, ALICE)
            await api.wait_for(to(ALICE, expected))

    assert not any("Traceback" in text or "Error" in text for text in api.said())
    rows = commands_table(daemon)
    assert [row["command"] for row in rows] == list(attempts)
    assert {row["status"] for row in rows} == {"refused"}


async def test_events_breakers_positions_report_and_help_answer(configure, api, clock):
    async with running(configure(), clock) as daemon:
        await daemon.tick("demo")
        sim_of(daemon).move(-0.20)
        await daemon.tick("demo")
        for command, words in [
            ("/breakers demo", ("drawdown", "limit 5.0%", "BREACHED")),
            ("/positions", ("BTC/USDT:USDT long 0.15", "uPnL")),
            ("/events 5", ("breach",)),
            ("/report", ("Breaches 1", "Day PnL")),
            ("/help", ("/flatten [ACCOUNT] [reason]", "/mute DURATION|off")),
        ]:
            await api.command(command, ALICE)
            await api.wait_for(to(ALICE, *words))


# --- forged button presses --------------------------------------------------------
# A Telegram client can send a callback with any data under any message the bot wrote, or
# with none. riskd must carry out none of them, answer each (so the client stops waiting),
# record each in `commands` as refused with who sent it, and warn the owner once per
# cooldown as for any stranger.

FORGED = [
    "confirm:AAAAAAAAAAAAAAAA",          # made up: a token riskd never gave
    "",                                   # empty
    "confirm:" + "x" * 4096,              # overlong
    "flatten:all",                        # not a choice riskd offers
    "cancel:",                            # no token
    "confirm",                            # no separator
    "confirm:\x00\n/flatten",             # control characters
]


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
        await api.answered("answerCallbackQuery", count=len(FORGED) + 1)
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
        await api.answered("answerCallbackQuery", count=2)

    assert orders_sent(sim) == []
    last = commands_table(daemon)[-1]
    assert (last["status"], last["command"]) == ("refused", f"button {confirm!r}")
    assert last["who"].startswith("user 1001 (@alice)")


# --- alerts ------------------------------------------------------------------------


async def test_a_breach_reaches_the_chat_within_two_seconds_of_its_tick(configure, api, clock):
    async with running(configure(), clock, alerts_every=1.0) as daemon:  # the scheduler's cadence
        await daemon.tick("demo")
        sim_of(daemon).move(-0.20)
        await daemon.tick("demo")
        seen = time.monotonic()
        alert = await api.wait_for(to(ALICE, "EMERGENCY", "BREACH", "drawdown"), timeout=2.0)
        assert time.monotonic() - seen < limit(2.0)

    assert "demo" in alert["text"] and "riskd would be flattening" in alert["text"] and "DRY-RUN" in alert["text"]
    assert "Next: /breakers demo" in alert["text"]
    assert "<b>" in alert["html"] and not alert["silent"]


async def test_through_502s_and_429s_alerts_arrive_later_in_order_and_the_flatten_is_not_delayed(configure, api, clock):
    async with running(configure(live=True), clock, listen=False) as daemon:
        await daemon.tick("demo")
        await outbox_drained(daemon)  # the first tick's alerts, if any, are out
        api.fail(502, "sendMessage", count=1, latency=1.5)
        api.fail(502, "sendMessage", count=2)
        api.fail(429, "sendMessage", count=1, retry_after=1)
        daemon.store.record_event(
            Event("demo", "test", "before"), clock(), Alert("demo", Severity.WARNING, "test", "an alert before the crash"),
        )
        await api.in_flight("sendMessage")  # the sender is now stuck on a 502 that takes 1.5 s to come
        sim = sim_of(daemon)
        sim.move(-0.20)
        started = time.monotonic()
        await daemon.tick("demo")
        took = time.monotonic() - started
        assert sim.state()["positions"] == [] and orders_sent(sim)
        assert took < limit(1.5), f"the tick took {took:.2f}s while Telegram was failing"

        rows = await outbox_drained(daemon, timeout=15)

    assert rows and {row.status for row in rows} == {"sent"}
    delivered = [message["text"] for message in api.messages]
    assert len(delivered) == len(rows)  # none lost, none twice
    for row, text in zip(rows, delivered):
        assert row.text.replace("`", "")[:60] in text  # in order
    assert any(row.attempts > 1 and "RetryAfter" in (row.error or "") for row in rows)
    sends = api.calls("sendMessage")
    assert [call["status"] for call in sends[:4]] == [502, 502, 502, 429]
    assert sends[4]["at"] - sends[3]["at"] >= 1.0, "retry_after was not honoured"


async def test_alerts_pending_at_shutdown_are_delivered_after_a_restart_marked_late(configure, api, clock):
    settings = configure()
    api.fail(502, "sendMessage")
    async with running(settings, clock, listen=False) as daemon:
        await daemon.tick("demo")
        sim_of(daemon).move(-0.20)
        await daemon.tick("demo")
        await api.answered("sendMessage")  # tried, and refused
    pending = [row for row in Store(settings.database).alerts(100) if row.status == "pending"]
    assert pending and api.messages == []

    api.heal()
    clock.advance(600)
    async with running(settings, clock, listen=False) as daemon:
        rows = await outbox_drained(daemon)

    assert all(row.status == "sent" for row in rows) and len(api.messages) == len(rows) == len(pending)
    assert all("Delivered late: this was raised at 2026-03-02 12:00" in message["text"] for message in api.messages)


async def test_a_chat_telegram_does_not_know_does_not_hold_back_the_others(configure, api, clock):
    api.unknown_chats.add(424242)
    async with running(configure(chat_ids=[424242, ALICE["id"]]), clock, listen=False) as daemon:
        for number in (1, 2):
            daemon.store.record_event(
                Event("demo", "test", f"condition {number}"), clock(),
                Alert("demo", Severity.CRITICAL, f"test:{number}", f"condition {number}"),
            )
        rows = await outbox_drained(daemon)

    assert api.said(ALICE["id"])[0].endswith("condition 1")
    assert [row.status for row in rows] == ["sent", "sent"]
    assert all("chat 424242: chat not found" in row.error.lower() for row in rows)


async def test_a_chat_that_blocked_the_bot_does_not_hold_back_the_others(configure, api, clock):
    api.blocked_chats.add(BOB["id"])
    async with running(configure(chat_ids=[BOB["id"], ALICE["id"]]), clock, listen=False) as daemon:
        daemon.store.record_event(
            Event("demo", "test", "condition"), clock(), Alert("demo", Severity.CRITICAL, "test", "condition")
        )
        rows = await outbox_drained(daemon)

    assert api.said(ALICE["id"])[0].endswith("condition")
    assert rows[-1].status == "sent" and "blocked" in rows[-1].error


async def test_a_hanging_telegram_cannot_hold_up_a_stop(configure, api, clock):
    async with running(configure(timeout="10s"), clock) as daemon:
        api.fail(502, latency=60)  # every call now hangs for a minute
        daemon.store.record_event(Event("demo", "test", "x"), clock(), Alert("demo", Severity.CRITICAL, "test", "x"))
        await api.in_flight("sendMessage")  # the alert job is stuck sending it
        daemon.stop()
        stopping = time.monotonic()
    assert time.monotonic() - stopping < limit(2 * STOP_LIMIT + 1)
    assert [row.status for row in Store(daemon.settings.database).alerts()] == ["pending"]  # for the next start


async def test_mute_holds_back_info_and_warnings_but_never_critical_alerts(configure, api, clock):
    async with running(configure(), clock) as daemon:
        await api.command("/mute 1h", ALICE)
        await api.wait_for(to(ALICE, "muted until"))
        assert Store(daemon.settings.database).muted_until() > clock()  # in the database, so a restart keeps it
        now = clock()
        for severity in (Severity.WARNING, Severity.CRITICAL, Severity.INFO):
            daemon.store.record_event(
                Event("demo", "test", f"a {severity} condition", severity=severity), now,
                Alert("demo", severity, f"test:{severity}", f"a {severity} condition"),
            )
        statuses = {row.text: row.status for row in await outbox_drained(daemon)}

        await api.command("/mute off", ALICE)
        await api.wait_for(to(ALICE, "no longer muted"))
        daemon.store.record_event(Event("demo", "test", "x"), clock(), Alert("demo", Severity.INFO, "clear:x", "Back to normal: x."))
        back = await api.wait_for(to(ALICE, "Back to normal"))

    assert statuses == {"a warning condition": "muted", "a critical condition": "sent", "a info condition": "muted"}
    assert back["silent"]  # info alerts arrive without a sound


# --- secrets -----------------------------------------------------------------------


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {name: logging.getLogger(name).level for name in logs.QUIET}
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def verbose_logging() -> None:
    """riskd's own log set-up, then python-telegram-bot and httpx at their most verbose."""
    logs.setup("DEBUG")
    for name in ("telegram", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)


async def test_the_token_is_in_no_log_line_database_row_or_error(configure, api, clock, capsys, restore_logging, tmp_path):
    verbose_logging()  # here, not in a fixture: capsys captures each phase of a test on its own stream
    settings = configure(live=True)
    async with running(settings, clock) as daemon:
        await daemon.tick("demo")
        await api.command("/status", ALICE)
        await api.wait_for(to(ALICE, "Equity"))
        api.fail(502, "sendMessage", count=2)
        api.fail(429, "sendMessage", count=1, retry_after=1)
        sim_of(daemon).move(-0.20)
        await daemon.tick("demo")
        await api.wait_for(to(ALICE, "BREACH"), timeout=10)
        await outbox_drained(daemon)

    wrong = "700001:AAH-a-wrong-token-riskd-tests-98765"  # Telegram answers 401; PTB puts it in its error
    refused = settings.model_copy(update={"telegram": settings.telegram.model_copy(update={"token": SecretStr(wrong)})})
    async with running(refused, clock, listen=False) as daemon:
        daemon.telegram.start()
        await daemon.telegram.starting  # gives up: a refused token does not heal by retrying
        daemon.store.record_event(Event("demo", "test", "x"), clock(), Alert("demo", Severity.CRITICAL, "test", "x"))
        deadline = time.monotonic() + 5
        while not (error := next(row for row in daemon.store.alerts() if row.key == "test").error):
            assert time.monotonic() < deadline, "the alert was never tried"
            await asyncio.sleep(0.05)
    finding = await checks.telegram(refused)

    logged = capsys.readouterr().err
    assert error.startswith("InvalidToken")  # kept pending: the alert waits for a good token
    assert "/bot***/getUpdates" in logged and "Bad Gateway" in logged  # the verbose lines were there, scrubbed
    assert "token was rejected" in logged and finding.level == checks.FAILURE
    dump = "\n".join(sqlite3.connect(tmp_path / "riskd.db").iterdump())
    for secret in (TOKEN, TOKEN.split(":")[1], wrong, wrong.split(":")[1]):
        assert secret not in logged
        assert secret not in dump
        assert secret not in str(finding)

