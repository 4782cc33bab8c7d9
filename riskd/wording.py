"""Every sentence riskd says about a decision, built from the decision's fields.

The engine decides and the executor, supervisor and bot act; what they say about it
(alert texts, event messages, the reasons of actions, whether riskd sends orders) is
written here, once, so the same thing is always said the same way. The sentences are
neutral: no account tag (the record names the account), no emoji and no HTML. Each
medium adds those itself: `messages` for Telegram, the log sink and the CLI as plain
text. The one piece of markup is `code()`, backticks around a command a person can
type, which Telegram shows as code and plain text shows as it is.

Pure: values in, text out, like the engine.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import assert_never

from riskd.breakers.base import MANUAL, NEXT_DAY
from riskd.domain import CommandKind, Remedy, Snapshot, TradingState
from riskd.units import format_duration, format_money, format_percent


def code(text: str) -> str:
    """A command a person can type, marked so each medium can show it as such."""
    return f"`{text}`"


def tagged(account: str, text: str) -> str:
    """An alert's text with its account in front, for media with no header of their own."""
    return f"[{account}] {text}" if account else text


# --- live or dry-run -----------------------------------------------------------------


def mode_name(live: bool) -> str:
    """The mode in one word, for status lines."""
    return "LIVE" if live else "DRY-RUN"


def mode(live: bool) -> str:
    """The one sentence that says whether riskd sends orders."""
    return f"{mode_name(live)}: " + ("orders are sent to the exchange" if live else "no order is sent to the exchange")


def _act(live: bool, activity: str) -> str:
    """What riskd does now, or in dry-run what it would do, as a sentence."""
    return f"riskd is {activity}." if live else f"riskd would be {activity}. {mode(live)}."


# --- breakers: warnings, breaches, clears, releases ---------------------------------


def warning(reason: str, confirm: int | None = None) -> str:
    """A warning's event message; `confirm` when a breach was seen and awaits confirmation."""
    return f"{reason} (breach seen, waiting for {confirm} ticks to confirm)" if confirm else reason


def warning_alert(message: str) -> str:
    return f"Warning: {message}."


def clear_alert(reason: str) -> str:
    return f"Back to normal: {reason}."


def breach(reason: str, repeat: bool) -> str:
    """A breach's event message: a repeat says the breach persists."""
    return f"still breached: {reason}" if repeat else reason


def doing(remedy: Remedy, live: bool, symbol: str | None = None, fraction: float | None = None, orders: int = 0) -> str:
    """What a tripped breaker's remedy does to the account, as a sentence."""
    match remedy:
        case Remedy.ALERT:
            return "No action is configured beyond this alert."
        case Remedy.CANCEL:
            return _act(live, f"cancelling the {orders} order(s) at fault; trading goes on")
        case Remedy.CLOSE:
            return _act(live, f"closing {symbol}")
        case Remedy.REDUCE:
            return _act(live, f"reducing {symbol or 'every position'} by {format_percent(fraction or 0.0)}; new exposure is refused")
        case Remedy.HALT:
            return _act(live, "cancelling open orders (reduce-only ones, such as stops, stay) and halting trading")
        case Remedy.FLATTEN:
            return _act(live, "flattening the account: cancelling every order and closing every position")
        case _:
            assert_never(remedy)


def resume_hint(account: str, state: TradingState, resume: str | timedelta) -> str:
    """What the owner can expect or do next about a latched account."""
    again = code(f"riskd resume {account}")
    if resume == MANUAL:
        return f"It stays {state} until you resume it: {again} or /resume {account}."
    if resume == NEXT_DAY:
        return f"It stays {state} until the next daily reset, or {again}."
    return f"It stays {state} until {format_duration(resume)} after the breach ends, or {again}."


def breach_alert(
    account: str,
    reason: str,
    remedy: Remedy,
    live: bool,
    *,
    symbol: str | None = None,
    fraction: float | None = None,
    latched: TradingState | None = None,
    resume: str | timedelta = MANUAL,
    orders: int = 0,
) -> str:
    """A tripped breaker: the reason, what riskd does, and, when it latched, how it ends."""
    hint = resume_hint(account, latched, resume) if latched is not None else ""
    return " ".join(part for part in (f"BREACH: {reason}.", doing(remedy, live, symbol, fraction, orders), hint) if part)


def released(breaker: str, resume: str) -> str:
    return f"{breaker} released by its resume policy ({resume})"


# --- snapshots -----------------------------------------------------------------------


def credentials_alert(error: str) -> str:
    return f"The exchange refused riskd's credentials: {error}. riskd cannot see or protect this account until the API key is fixed."


def implausible(equity: float, last: float) -> str:
    return f"equity read as {equity:,.2f} after {last:,.2f}; not acted on until it repeats"


def implausible_accepted(equity: float, last: float, ticks: int) -> str:
    return f"equity {equity:,.2f} held for {ticks} ticks after {last:,.2f}; taking it as real"


def figures(snapshot: Snapshot) -> str:
    """One line a person reads: equity, exposure, positions and orders."""
    return (
        f"equity {format_money(snapshot.equity or 0.0, snapshot.quote)}, "
        f"gross {format_money(snapshot.gross_notional, snapshot.quote)}, "
        f"{len(snapshot.positions)} position(s), {len(snapshot.orders)} order(s)"
    )


# --- trading state -------------------------------------------------------------------


def resumed_reason(who: str) -> str:
    """Why an account is active again: a person resumed it, or every latch released."""
    return f"resumed by {who}" if who else "every breaker released"


def state_change(previous: TradingState, new: TradingState, reason: str, who: str = "") -> str:
    by = f" by {who}" if who else ""
    return f"{previous} → {new}{by}: {reason}"


def state_change_alert(previous: TradingState, new: TradingState, reason: str, live: bool, who: str = "") -> str:
    by = f" by {who}" if who else ""
    dry = "" if live else f" ({mode(live)})"
    return f"Trading state {previous} → {new.upper()}{by}: {reason}.{dry}"


# --- enforcement ---------------------------------------------------------------------


def halted_orders(count: int) -> str:
    return f"account is halted: {count} open order(s) that could add exposure"


def halted_growth(key: str, held: float, side: str, growth: float, allowed: float) -> str:
    return (
        f"account is halted: {key} holds {held:g} contracts {side}, "
        f"{growth:g} more than the {allowed:g} allowed since the halt"
    )


def reducing_orders(count: int) -> str:
    return f"account is reducing: {count} order(s) would add exposure"


def enforcement_alert(reason: str, live: bool, closing: bool = False) -> str:
    """An enforcing action: the reason, and that riskd cancels the orders or closes the excess."""
    return f"{reason}; {_act(live, 'closing the excess' if closing else 'cancelling them')}"


# --- a person's commands -------------------------------------------------------------


def command(kind: CommandKind, who: str) -> str:
    """A command's event message."""
    return f"{kind} by {who}"


def command_reason(kind: CommandKind, who: str) -> str:
    """The reason a command's actions and latch carry when the person gave none."""
    return f"{kind} ordered by {who}"


def command_alert(kind: CommandKind, who: str, live: bool, fraction: float | None = None) -> str:
    """What riskd does for a person's freeze, flatten or reduce."""
    match kind:
        case CommandKind.REDUCE:
            activity = f"reducing every position by {format_percent(fraction or 0.0)}"
        case CommandKind.FLATTEN:
            activity = "flattening the account: cancelling every order and closing every position"
        case CommandKind.FREEZE:
            activity = "cancelling open orders and halting trading; positions and their reduce-only orders are kept"
        case CommandKind.RESUME:
            raise ValueError("a resume is announced as a change of trading state")
        case CommandKind.OVERRIDE:
            raise ValueError("an override is announced by override_started and override_ended")
        case _:
            assert_never(kind)
    return f"{kind.capitalize()} ordered by {who}. {_act(live, activity)}"


def command_result(account: str, kind: CommandKind, state: TradingState, live: bool) -> str:
    """A command carried out, as its result: the state it left and, in dry-run, that nothing was sent."""
    dry = "" if live else f" ({mode(live)})"
    return f"{account}: {kind} done, state {state}{dry}"


def command_unread(account: str, kind: CommandKind, state: TradingState, error: str) -> str:
    """A command recorded while the account could not be read."""
    follow = "nothing was reduced" if kind is CommandKind.REDUCE else "its next good read enforces it"
    return f"{account}: {kind} recorded, state {state}, but the account could not be read ({error}); {follow}"


def command_unconfirmed(account: str, kind: CommandKind) -> str:
    return f"{account}: {kind} sent, but not everything could be confirmed; see riskd events"


def override_started(breaker: str, before: str, after: str, until: datetime, who: str, reason: str) -> str:
    """An override's event message and alert: which limit, from what to what, until when, whose and why."""
    why = f": {reason}" if reason else " (no reason given)"
    return (
        f"Override: {breaker}'s limit is {after} instead of {before} until {until:%Y-%m-%d %H:%M} UTC, "
        f"set by {who}{why}. It reverts by itself."
    )


def override_ended(breaker: str, limit: str, who: str) -> str:
    return f"Override ended: {breaker}'s limit is back to {limit} (the override set by {who} has run out)."


def override_out_of_ladder(breaker: str, after: str, other: str, limit: str, later: bool) -> str:
    """An override refused because it would put a ladder's level past the next (or before the previous)."""
    where = "past" if later else "before"
    return (
        f"{breaker} at {after} would come {where} {other}'s {limit}, and a ladder's levels trip in order; "
        f"override {other} too, first"
    )


def override_result(account: str, breaker: str, after: str, until: datetime) -> str:
    return f"{account}: {breaker}'s limit is {after} until {until:%Y-%m-%d %H:%M} UTC"


def already_active(account: str) -> str:
    return f"{account} is already active"


def held_by_portfolio(account: str, state: TradingState) -> str:
    """A resume that leaves the account held, because the portfolio's latch is not the account's to release."""
    return f"{account}: still {state}, held by the portfolio; resume portfolio to release it"


def unconfirmed_alert(kind: str, attempts: int, detail: str) -> str:
    """An action the executor could not confirm: the person must look now."""
    return f"Could not confirm {kind} after {attempts} attempts: {detail}. riskd keeps enforcing; check the account now."


# --- riskd itself --------------------------------------------------------------------


def stranger(who: str, text: str, reason: str) -> str:
    """The event message for a command riskd did not obey."""
    return f"not obeyed: {text!r} from {who}: {reason}"


def stranger_alert(who: str, text: str, reason: str, cooldown: timedelta) -> str:
    return (
        f"riskd ignored a command: {who} sent {text!r}, and {reason}. Nothing was done and no answer "
        f"was given. Further attempts in the next {format_duration(cooldown)} are recorded, not announced."
    )


def http_failed(where: str, problem: str) -> str:
    return f"riskd cannot serve HTTP on {where} ({problem}); it guards on without it"


def config_refused(error: object) -> str:
    return f"riskd refused the new configuration and keeps the previous one:\n{error}"


# --- the mark-price stream -------------------------------------------------------------


def stream_breach(reason: str, more: int) -> str:
    """A breach seen at the stream's mark prices: a suspicion, read from the account before anything is done."""
    text = f"at the stream's mark prices {reason}; reading the account to confirm"
    return f"{text} (and {more} more)" if more else text


def stream_unconfirmed(read_failed: bool, keys: list[str], hold: timedelta) -> str:
    """A breach the stream saw that the account's own read did not show, left to the polls."""
    why = "the read of the account failed" if read_failed else "the account's own figures do not show it"
    return f"not acted on: {why} ({', '.join(keys)}); left to the polls for {format_duration(hold)}"


def stream_down(problem: str) -> str:
    return (
        f"The mark-price stream is down ({problem}). riskd guards the account by polling alone "
        "until it is back, and keeps reconnecting."
    )


def stream_up() -> str:
    return "The mark-price stream is back: crashes are seen between polls again."


def report_as_text() -> str:
    return "daily report sent as text: its chart did not reach Telegram"


# --- the venues' request budgets -------------------------------------------------------


def rate_limited(venue: str, answer: str, banned: bool, seconds: float) -> str:
    """A venue refused a request for its rate limit, or banned riskd's IP (`answer`: how it
    said so, "HTTP 418", "retCode 10006"): routine reads wait, emergencies go on."""
    what = "banned this IP" if banned else "refused a request for exceeding its rate limit"
    return (
        f"{venue}: the exchange {what} ({answer}); riskd holds its routine reads for "
        f"{seconds:.0f} s as asked, and only its emergency orders go out meanwhile"
    )


def rate_budget(venue: str, used: float, limit: float, per_key: bool = False) -> str:
    """Most of a venue's budget used, by riskd and the bots sharing it: the IP's weight a
    minute (Binance), or an endpoint's requests a second for one API key (Bybit)."""
    if per_key:
        return (
            f"{venue}: {used:.0f} of the {limit:.0f} requests a second an endpoint allows one API key were used "
            f"(riskd and every bot on that key); at the limit the exchange refuses requests"
        )
    return (
        f"{venue}: {used:.0f} of {limit:.0f} request weight used this minute on this IP "
        f"(riskd and every bot on it); at the limit the exchange refuses requests, then bans the IP"
    )


def reads_held(seconds: float) -> str:
    """Why a routine read was not made: the venue asked for a pause."""
    return f"rate limited by the exchange: reads paused for another {seconds:.0f} s, as it asked"
