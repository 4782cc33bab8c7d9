"""The Telegram commands: one table (COMMANDS) and what each command does.

The table drives the handlers, /help, the command menu and the README's list. Each
runner gets a `Session` (never the bot), parses its arguments, calls riskd's
transport-neutral command functions (the same as the CLI's) and returns a `Reply`
that says what to record; `Usage` and `Refusal` become a short line, never a stack
trace. The dispatcher records every command once; control commands are recorded by
`commands.submit` when the daemon is asked to carry them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from riskd import commands, messages
from riskd.config import PORTFOLIO
from riskd.domain import CommandKind, LimitOverride, Status
from riskd.messages import escape
from riskd.telegram.session import Reply, Request, Session, Usage
from riskd.units import is_money, parse_duration, parse_percent


@dataclass(frozen=True, slots=True)
class Spec:
    """One command: its name, how to write it, what it does, an example and its runner.

    The commands every transport offers take their words from `commands.CATALOGUE`
    (see `shared`); the Telegram-only ones are written here."""

    name: str
    arguments: str
    summary: str
    example: str
    run: Callable[[Session, Request], Awaitable[Reply]]
    aliases: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.arguments}".strip()


def shared(name: str, example: str, run: Callable[[Session, Request], Awaitable[Reply]]) -> Spec:
    """A catalogue command on Telegram: its arguments and help as the catalogue has them."""
    verb = commands.VERBS[name]
    return Spec(verb.name, verb.usage, verb.help, example, run)


# --- the commands ------------------------------------------------------------------


async def _status(session: Session, request: Request) -> Reply:
    _at_most(request, 0)
    return Reply(messages.status(commands.overview(session.store, session.settings), session.clock()), recorded="shown")


async def _positions(session: Session, request: Request) -> Reply:
    account = _account(session, _at_most(request, 1))
    accounts = commands.status(session.store, session.settings, account)
    return Reply(messages.positions(accounts), recorded="shown", account=account)


async def _breakers(session: Session, request: Request) -> Reply:
    account = _account(session, _at_most(request, 1))
    accounts = commands.status(session.store, session.settings, account)
    return Reply(messages.breakers(accounts), recorded="shown", account=account)


async def _events(session: Session, request: Request) -> Reply:
    count = _at_most(request, 1) or "10"
    if not count.isdecimal():  # isdigit would let "²" through to int()
        raise Usage(f"{count!r} is not a number of events")
    rows = commands.events(session.store, session.settings, None, int(count))
    return Reply(messages.events(rows), recorded=f"{len(rows)} event(s) shown")


async def _freeze(session: Session, request: Request) -> Reply:
    """A freeze is never refused for a word it does not know: the words become the reason."""
    first = request.arguments[0] if request.arguments else None
    if first is not None and (first.lower() == "all" or first in session.settings.accounts):
        account, reason = _account(session, first), " ".join(request.arguments[1:])
    else:
        account, reason = None, " ".join(request.arguments)
    return await session.carry_out(request, CommandKind.FREEZE, account, reason=reason)


async def _resume(session: Session, request: Request) -> Reply:
    """`/resume portfolio` releases a halted or reducing portfolio, and with it every account it holds."""
    account = _account(session, _at_most(request, 1), portfolio=True)
    if account == PORTFOLIO:
        statuses = [status for status in commands.overview(session.store, session.settings) if status.account == PORTFOLIO]
    else:
        statuses = commands.status(session.store, session.settings, account)
    breached = [
        f"{status.account}: {reading.reason}"
        for status in statuses
        for reading in status.readings
        if reading.status is Status.BREACHED
    ]
    if not breached:
        return await session.carry_out(request, CommandKind.RESUME, account)
    question = (
        f"⚠️ Resume <b>{escape(_target(session, account))}</b>? Still over a limit:\n"
        + "\n".join(f"🔴 {escape(line)}" for line in breached)
        + "\nResuming accepts the losses so far: drawdown and daily loss count again from the current equity. "
        "A breaker still over its limit on its own figures trips again."
    )
    return session.ask(request, question, CommandKind.RESUME, account)


async def _reduce(session: Session, request: Request) -> Reply:
    if len(request.arguments) != 2:
        raise Usage("")
    account = _account(session, request.arguments[0])
    try:
        fraction = parse_percent(request.arguments[1])
    except ValueError as error:
        raise Usage(str(error)) from None
    question = messages.question(CommandKind.REDUCE, _target(session, account), session.settings.live, fraction)
    return session.ask(request, question, CommandKind.REDUCE, account, fraction=fraction)


async def _flatten(session: Session, request: Request) -> Reply:
    account = _account(session, request.arguments[0]) if request.arguments else None
    question = messages.question(CommandKind.FLATTEN, _target(session, account), session.settings.live)
    return session.ask(request, question, CommandKind.FLATTEN, account, reason=" ".join(request.arguments[1:]))


async def _override(session: Session, request: Request) -> Reply:
    """Checked before the question is asked, so a wrong limit is said at once, not after Confirm."""
    if len(request.arguments) < 4:
        raise Usage("")
    words = list(request.arguments)
    if len(words) >= 5 and is_money(f"{words[2]} {words[3]}"):
        words[2:4] = [f"{words[2]} {words[3]}"]  # `500 USDT` is one limit written in two words
    name, breaker, limit, lasting = words[:4]
    account = commands.resolve_accounts(session.settings, name)[0]
    try:
        override = LimitOverride(breaker, limit, parse_duration(lasting))
    except ValueError as error:
        raise Usage(str(error)) from None
    commands.overriding(session.settings, account, override)  # raises Refusal saying what is wrong
    question = messages.question(CommandKind.OVERRIDE, account, session.settings.live, override=override)
    reason = " ".join(words[4:])
    return session.ask(request, question, CommandKind.OVERRIDE, account, reason=reason, override=override)


async def _report(session: Session, request: Request) -> Reply:
    from riskd import chart

    _at_most(request, 0)
    reports = await chart.drawn(session.settings, session.clock())  # in another process: the ticks go on meanwhile
    text = "\n\n".join(report.text for report in reports) or "No account configured."
    return Reply(messages.fit(text), recorded="shown", photos=tuple(report.chart for report in reports))


async def _mute(session: Session, request: Request) -> Reply:
    word, now = _at_most(request, 1), session.clock()
    if word is None:
        until = session.store.muted_until()
        if until is None or until <= now:
            usage = f"Alerts are not muted. Usage: {escape(SPECS['mute'].usage)}, for example /mute 2h"
            return Reply(usage, recorded="mute state shown")
        shown = f"🔕 Info and warning alerts are muted until {messages.when(until)}. /mute off ends it."
        return Reply(shown, recorded="mute state shown")
    if word.lower() == "off":
        session.store.mute_alerts(None)
        return Reply("🔔 Alerts are no longer muted.", recorded="alerts unmuted")
    try:
        until = now + parse_duration(word)
    except ValueError as error:
        raise Usage(str(error)) from None
    session.store.mute_alerts(until)
    return Reply(
        f"🔕 Info and warning alerts are muted until {messages.when(until)}. "
        "Critical and emergency alerts still come through. /mute off ends it.",
        recorded=f"info and warning alerts muted until {messages.when(until)}",
    )


async def _help(session: Session, request: Request) -> Reply:
    return Reply(messages.command_list((spec.usage, spec.summary) for spec in COMMANDS), recorded="shown")


COMMANDS = (
    shared("status", "/status", _status),
    Spec("positions", "[ACCOUNT]", "open positions: size, value, PnL, liquidation price", "/positions main", _positions),
    Spec("breakers", "[ACCOUNT]", "every breaker's value, limit and status", "/breakers main", _breakers),
    shared("events", "/events 20", _events),
    shared("freeze", "/freeze main bot gone wild", _freeze),
    shared("resume", "/resume main", _resume),
    shared("reduce", "/reduce main 50%", _reduce),
    shared("flatten", "/flatten main", _flatten),
    shared("override", "/override main daily_loss 8% 2h news day", _override),
    shared("report", "/report", _report),
    Spec("mute", "DURATION|off", "hold back info and warning alerts for a while", "/mute 2h", _mute),
    Spec("help", "", "what each command does", "/help", _help, aliases=("start",)),
)
SPECS = {name: spec for spec in COMMANDS for name in (spec.name, *spec.aliases)}


def _at_most(request: Request, count: int) -> str | None:
    """The single optional argument (or None); more arguments than `count` is a usage error."""
    if len(request.arguments) > count:
        raise Usage("")
    return request.arguments[0] if request.arguments else None


def _account(session: Session, word: str | None, portfolio: bool = False) -> str | None:
    """A named account, or None for every account (`all` or nothing); the portfolio too
    where the command takes it (`portfolio`) and a portfolio is configured."""
    if word is None or word.lower() == "all":
        return None
    if portfolio and word == PORTFOLIO and session.settings.portfolio is not None:
        return word
    commands.resolve_accounts(session.settings, word)  # raises Refusal naming the known accounts
    return word


def _target(session: Session, account: str | None) -> str:
    return messages.target(account, session.settings.accounts)
