"""Telegram's words: alert and answer formatting, and the command table against the README."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from riskd import messages, wording
from riskd.commands import CATALOGUE, AccountStatus
from riskd.domain import AlertStatus, CommandKind, EventKind, Position, Reading, Remedy, Severity, Side, Status, TradingState, alert_key, frozen_mapping
from riskd.store import EventRecord, OutboxAlert
from riskd.telegram.menu import COMMANDS
from tests.fakes.telegram_api import plain_text

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=timezone.utc)
README = Path(__file__).parents[2] / "README.md"


def row(text: str, severity: str = "critical", account: str = "main", key: str = "breach:drawdown", ago: float = 1.0) -> OutboxAlert:
    at = NOW - timedelta(seconds=ago)
    return OutboxAlert(1, at, account, Severity(severity), key, text, AlertStatus.PENDING, 0, at, None, None)


def account_status(**fields) -> AccountStatus:
    values = dict(
        account="main", exchange="binanceusdm", live=True, trading_state=TradingState.ACTIVE, reason="", since=None,
        updated_at=NOW - timedelta(seconds=12), equity=9_500.0, peak_equity=10_000.0, day_start_equity=9_800.0,
        quote="USDT", readings=[], positions=[],
    )
    return AccountStatus(**{**values, **fields})


def test_an_alert_says_how_bad_which_account_what_happened_and_what_to_do():
    text = wording.breach_alert(
        "main", "drawdown 12.0% is past the limit of 10.0%", Remedy.FLATTEN, True, latched=TradingState.HALTED
    )
    message = messages.alert(row(text), NOW)
    shown = plain_text(message)
    assert shown.splitlines()[0] == "🚨 CRITICAL · main"
    assert shown.splitlines()[1].startswith("🚨 BREACH: drawdown 12.0% is past the limit of 10.0%")
    assert "<code>riskd resume main</code>" in message
    assert shown.splitlines()[-1].startswith("Next: /breakers main")
    assert "late" not in shown


@pytest.mark.parametrize("text", ["position <BTC/USDT> lost 5% & more", "a </b> tag & &amp; <script>alert(1)</script>", "`<i>` & `"])
def test_anything_an_alert_carries_is_escaped_into_valid_telegram_html(text):
    message = messages.alert(row(text, account="a<b>&c"), NOW)
    shown = plain_text(message)  # raises, as Telegram's 400 would, on HTML it cannot parse
    assert text.replace("`", "") in shown.replace("`", "")
    assert "a<b>&c" in shown


def test_an_alert_delivered_late_says_when_it_was_raised():
    message = plain_text(messages.alert(row("Back to normal: drawdown 1.0%.", "info", key="clear:drawdown", ago=5400), NOW))
    assert "Delivered late: this was raised at 2026-03-02 01:30:00 UTC, 90m ago." in message
    assert "Next:" not in message  # nothing to do about a recovery


@pytest.mark.parametrize(
    ("key", "mark", "steps"),
    [
        (alert_key(EventKind.BREACH, "drawdown"), "🚨", "/breakers main to see every limit"),
        (alert_key(EventKind.WARNING, "position_loss:BTC/USDT:USDT"), "⚠️", "/freeze main to stop new trading now"),
        (alert_key(EventKind.ENFORCE, "orders"), "🛑", "/events to see what riskd did"),
        (alert_key(EventKind.ACTION_UNCONFIRMED, "flatten"), "🆘", "check the exchange now"),
        (alert_key(EventKind.STATE_CHANGE, "halted"), "", "/status · /breakers main"),
        (alert_key(EventKind.CREDENTIALS_REFUSED), "🔑", None),
    ],
)
def test_an_alert_is_marked_and_followed_by_next_steps_by_its_kind(key, mark, steps):
    lines = plain_text(messages.alert(row("something happened.", key=key), NOW)).splitlines()

    assert lines[1] == f"{mark} something happened.".strip()
    if steps:
        assert lines[-1].startswith("Next: ") and steps in lines[-1]
    else:
        assert not any(line.startswith("Next:") for line in lines)


def test_breakers_are_listed_with_what_each_one_measures():
    readings = [
        Reading("position_loss", Status.OK, 0.01, 0.03, 0.024, "ok", "BTC/USDT:USDT"),
        Reading("position_loss", Status.OK, 0.02, 0.03, 0.024, "ok", "ETH/USDT:USDT"),
    ]
    shown = plain_text(messages.breakers([account_status(readings=readings)]))

    assert shown.count("one position's unrealized loss as a share of equity") == 1  # once per breaker


def test_status_shows_figures_with_units_and_only_breakers_that_need_a_look():
    readings = [
        Reading("drawdown", Status.WARNING, 0.05, 0.06, 0.048, "drawdown 5.0% is near the limit of 6.0%"),
        Reading("leverage", Status.OK, 1.2, 5.0, 4.0, "leverage 1.2x is within the limit of 5.0x"),
    ]
    shown = plain_text(messages.status([account_status(readings=readings)], NOW))
    assert "main · binanceusdm · LIVE" in shown
    assert "Equity 9,500.00 USDT · day PnL -300.00 USDT (-3.1%) · drawdown 5.0%" in shown
    assert "⚠️ drawdown 5.0% (limit 6.0%): WARNING" in shown
    assert "leverage" not in shown
    assert "Last read 12s ago" in shown


def test_an_account_never_read_says_so():
    shown = plain_text(messages.status([account_status(updated_at=None)], NOW))
    assert "No tick recorded yet" in shown


def test_a_message_too_long_for_telegram_is_cut_at_a_line():
    rows = [EventRecord(1, NOW, "main", EventKind.BREACH, None, Severity.CRITICAL, "x" * 100, frozen_mapping())] * 100
    message = messages.events(rows)
    assert len(message) <= messages.LIMIT and message.endswith("(cut: too long for one message)")
    plain_text(message)


def test_positions_name_each_by_its_key_with_its_figures():
    hedged = Position("BTC/USDT:USDT", Side.SHORT, 0.5, 30_000.0, 61_000.0, 60_000.0, 500.0, 90_000.0, 5.0, position_side="SHORT")
    plain_position = Position("ETH/USDT:USDT", Side.LONG, 2.0, 6_000.0, unrealized_pnl=-12.5)

    shown = plain_text(messages.positions([account_status(positions=[hedged, plain_position])]))

    assert shown.splitlines() == [
        "main: 2 position(s)",
        "BTC/USDT:USDT:SHORT short 0.5 · 30,000.00 USDT · uPnL +500.00 USDT · entry 61,000 · mark 60,000 · liq. 90,000",
        "ETH/USDT:USDT long 2 · 6,000.00 USDT · uPnL -12.50 USDT",
    ]


def test_events_show_time_account_kind_breaker_and_message():
    event = EventRecord(
        7, NOW + timedelta(seconds=5), "main", EventKind.BREACH, "drawdown", Severity.CRITICAL, "drawdown 12% > 10%", frozen_mapping()
    )

    assert plain_text(messages.events([event])) == "03:00:05 🚨 main breach [drawdown]: drawdown 12% > 10%"


def test_the_shared_commands_take_their_arguments_and_help_from_the_catalogue():
    specs = {spec.name: spec for spec in COMMANDS}
    for verb in CATALOGUE:
        assert specs[verb.name].usage == f"/{verb.name} {verb.usage}".strip()
        assert specs[verb.name].summary == verb.help


def test_every_command_fits_telegrams_menu_and_is_documented_with_its_example():
    readme = README.read_text(encoding="utf-8").replace("\\|", "|")  # a | in a table cell is written \|
    for spec in COMMANDS:
        assert re.fullmatch(r"[a-z0-9_]{1,32}", spec.name) and 3 <= len(spec.summary) <= 256
        assert spec.example.startswith(f"/{spec.name}")
        assert spec.usage in readme, f"README does not document {spec.usage}"
        assert spec.example in readme, f"README has no example of /{spec.name}"


def test_the_terminal_status_table_has_the_same_figures_as_telegram_and_every_breaker():
    halted = account_status(
        trading_state=TradingState.HALTED, reason="drawdown 12.0% is past the limit of 10.0%", since=NOW,
        readings=[
            Reading("drawdown", Status.BREACHED, 0.05, 0.10, 0.08, "drawdown"),
            Reading("leverage", Status.OK, 1.2, 5.0, 4.0, "leverage"),
        ],
        positions=[Position("BTC/USDT:USDT", Side.LONG, 0.5, 30_000.0, unrealized_pnl=-120.0)],
    )
    table = messages.status_table([halted, account_status(account="alt", updated_at=None)], NOW)
    lines = table.splitlines()
    assert lines[0] == "main (binanceusdm, LIVE): HALTED since 2026-03-02 03:00:00 UTC"
    assert lines[1] == "  reason: drawdown 12.0% is past the limit of 10.0%"
    assert "day PnL -300.00 USDT (-3.1%)" in lines[2] and "drawdown 5.0" in lines[2] and "last tick 12s ago" in lines[2]
    assert messages.plain(messages.status([halted], NOW)).count("day PnL -300.00 USDT (-3.1%)") == 1  # one formula
    assert re.fullmatch(r"  drawdown +5\.0+% +10\.0+% +BREACHED", lines[4])
    assert re.fullmatch(r"  leverage +1\.20x +5\.00x +OK", lines[5])
    assert lines[6] == "  position BTC/USDT:USDT: long 0.5, 30,000.00 USDT, uPnL -120.00"
    assert lines[7:] == ["alt (binanceusdm, LIVE): ACTIVE", "  no tick recorded yet: is riskd running?"]


def test_the_terminal_event_list_has_one_line_per_event_and_says_when_there_is_none():
    rows = [EventRecord(1, NOW, "main", EventKind.BREACH, "drawdown", Severity.CRITICAL, "past", frozen_mapping())]
    assert messages.events_table(rows) == "2026-03-02T03:00:00  main         critical  breach [drawdown]: past"
    assert messages.events_table([]) == "no events recorded yet"


def test_the_confirmation_question_names_the_target_and_whether_orders_are_real():
    everyone = messages.target(None, ["main", "alt"])
    assert everyone == "every account (main, alt)"
    flatten = messages.plain(messages.question(CommandKind.FLATTEN, everyone, live=True))
    assert flatten.startswith("🛑 Flatten every account (main, alt)?") and flatten.endswith(f"{wording.mode(True)}.")
    reduce = messages.plain(messages.question(CommandKind.REDUCE, "<main>", live=False, fraction=0.25))
    assert reduce.startswith("⚠️ Reduce every position of <main> by 25.0%?") and "DRY-RUN" in reduce
