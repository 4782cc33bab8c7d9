"""What riskd says about its decisions: one sentence for each, built from plain fields."""

from __future__ import annotations

from datetime import timedelta

import pytest

from riskd import wording
from riskd.domain import CommandKind, Remedy, TradingState

from tests.factories import order, position, snapshot

REASON = "drawdown 15.0% is past the limit of 10.0%"
HALTED = TradingState.HALTED


def breach_text(live: bool, **fields) -> str:
    return wording.breach_alert("main", REASON, Remedy.FLATTEN, live, latched=HALTED, **fields)


# --- live or dry-run -------------------------------------------------------------------


def test_the_mode_is_one_phrase_that_says_whether_orders_are_sent():
    assert wording.mode(False) == "DRY-RUN: no order is sent to the exchange"
    assert wording.mode(True) == "LIVE: orders are sent to the exchange"
    assert (wording.mode_name(False), wording.mode_name(True)) == ("DRY-RUN", "LIVE")


def test_dry_run_alerts_say_what_riskd_would_do():
    text = breach_text(live=False)

    assert "riskd would be flattening" in text and wording.mode(False) in text


def test_live_alerts_say_what_riskd_is_doing():
    text = breach_text(live=True)

    assert "DRY-RUN" not in text and "would" not in text
    assert "riskd is flattening" in text


@pytest.mark.parametrize("remedy", list(Remedy))
@pytest.mark.parametrize("live", [True, False])
def test_every_remedy_is_said_in_the_mode_riskd_runs_in(remedy, live):
    text = wording.doing(remedy, live, symbol="BTC/USDT:USDT", fraction=0.25)

    assert text.endswith(".")
    if remedy is Remedy.ALERT:
        assert "riskd" not in text  # nothing is done, live or not
    else:
        assert ("DRY-RUN" in text) is not live and ("would" in text) is not live


def test_a_reduce_says_by_how_much_and_of_what():
    assert "reducing BTC/USDT:USDT by 25.0%" in wording.doing(Remedy.REDUCE, True, "BTC/USDT:USDT", 0.25)
    assert "reducing every position by 50.0%" in wording.doing(Remedy.REDUCE, True, None, 0.5)


# --- breaches, warnings, clears --------------------------------------------------------


def test_a_breach_alert_says_the_value_the_limit_and_how_to_resume_but_leaves_the_account_to_the_record():
    text = breach_text(live=True)

    assert text.startswith(f"BREACH: {REASON}.")
    assert "[main]" not in text  # the alert's record names the account; each medium shows it
    assert "`riskd resume main` or /resume main" in text


def test_a_breach_alert_with_a_duration_says_when_it_resumes():
    text = breach_text(live=True, resume=timedelta(minutes=30))

    assert "30m after the breach ends" in text


def test_a_breach_alert_that_latches_nothing_has_no_resume_hint():
    text = wording.breach_alert("main", REASON, Remedy.ALERT, True)

    assert text == f"BREACH: {REASON}. No action is configured beyond this alert."


def test_a_warning_of_a_breach_not_yet_confirmed_says_so():
    message = wording.warning(REASON, confirm=3)

    assert message == f"{REASON} (breach seen, waiting for 3 ticks to confirm)"
    assert wording.warning_alert(message) == f"Warning: {message}."
    assert wording.warning(REASON) == REASON


def test_a_clear_says_back_to_normal():
    assert wording.clear_alert("drawdown 1.0% is within the limit of 10.0%") == "Back to normal: drawdown 1.0% is within the limit of 10.0%."


def test_a_repeated_breach_event_says_it_persists():
    assert wording.breach(REASON, repeat=True) == f"still breached: {REASON}"
    assert wording.breach(REASON, repeat=False) == REASON


# --- enforcement, commands, the executor -----------------------------------------------


@pytest.mark.parametrize("closing", [True, False])
def test_dry_run_enforcement_alerts_say_what_riskd_would_do(closing):
    text = wording.enforcement_alert(wording.halted_orders(2), live=False, closing=closing)

    assert text.startswith("account is halted: 2 open order(s) that could add exposure; riskd would be")
    assert wording.mode(False) in text


def test_freeze_is_not_announced_as_a_flatten():
    text = wording.command_alert(CommandKind.FREEZE, "alice via telegram", live=True)

    assert "flatten" not in text
    assert text.startswith("Freeze ordered by alice via telegram.")
    assert "positions and their reduce-only orders are kept" in text


def test_a_flatten_or_reduce_command_says_what_riskd_does():
    assert "riskd is flattening the account" in wording.command_alert(CommandKind.FLATTEN, "bob via cli", live=True)
    assert "reducing every position by 30.0%" in wording.command_alert(CommandKind.REDUCE, "bob via cli", True, 0.3)


def test_a_command_result_says_the_state_and_in_dry_run_that_nothing_was_sent():
    assert wording.command_result("main", CommandKind.FREEZE, HALTED, live=True) == "main: freeze done, state halted"
    assert wording.command_result("main", CommandKind.FREEZE, HALTED, live=False).endswith(f"({wording.mode(False)})")


def test_refused_credentials_say_to_fix_the_api_key():
    assert "until the API key is fixed" in wording.credentials_alert("AuthenticationError: invalid key")


def test_an_unconfirmed_action_asks_for_a_look_now():
    text = wording.unconfirmed_alert("flatten", 3, "still open: BTC/USDT:USDT")

    assert text == "Could not confirm flatten after 3 attempts: still open: BTC/USDT:USDT. riskd keeps enforcing; check the account now."


# --- for media without a header ---------------------------------------------------------


def test_plain_text_media_put_the_account_in_front():
    assert wording.tagged("main", "Warning: x.") == "[main] Warning: x."
    assert wording.tagged("", "riskd refused the new configuration") == "riskd refused the new configuration"


def test_figures_are_one_line_with_units():
    read = snapshot(9_500, [position(notional=2_000)], orders=[order("o1")])

    assert wording.figures(read) == "equity 9,500.00 USDT, gross 2,000.00 USDT, 1 position(s), 1 order(s)"


# --- the mark-price stream ---------------------------------------------------------------


def test_a_breach_on_the_stream_is_a_suspicion_that_says_the_account_is_read_first():
    assert wording.stream_breach(REASON, 0) == f"at the stream's mark prices {REASON}; reading the account to confirm"
    assert wording.stream_breach(REASON, 2).endswith("reading the account to confirm (and 2 more)")


def test_an_unconfirmed_stream_breach_says_why_and_for_how_long_the_polls_judge_it():
    refuted = wording.stream_unconfirmed(False, ["drawdown", "leverage"], timedelta(seconds=10))
    failed = wording.stream_unconfirmed(True, ["drawdown"], timedelta(minutes=5))

    assert "the account's own figures do not show it (drawdown, leverage)" in refuted and "left to the polls for 10s" in refuted
    assert "the read of the account failed (drawdown)" in failed and "for 5m" in failed


def test_the_stream_down_and_back_alerts_carry_no_account_tag():
    down, up = wording.stream_down("no mark price for 10 s"), wording.stream_up()

    assert "(no mark price for 10 s)" in down and "polling alone" in down and "stream is back" in up
    assert not down.startswith("[") and not up.startswith("[")
