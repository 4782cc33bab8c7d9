"""The Telegram commands: one table (COMMANDS) and what each command does.

The table drives the handlers, /help, the command menu and the README's list. Each
runner parses its arguments, calls riskd's transport-neutral command functions (the
same as the CLI's) and returns the answer; `Usage` and `Refusal` become a short line,
never a stack trace. Runners record what they did; control commands are recorded by
`commands.submit` when the daemon is asked to carry them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable

from telegram import InlineKeyboardMarkup

from riskd import commands, messages
from riskd.domain import CommandKind, Status
from riskd.messages import escape
from riskd.units import format_percent, parse_duration, parse_percent

if TYPE_CHECKING:
    from riskd.telegram.bot import TelegramBot

SOURCE = "telegram"
"""How the commands table names this transport."""


class Usage(Exception):
    """The arguments do not fit the command; the answer is its usage line."""


@dataclass(frozen=True, slots=True)
class Request:
    """One command as a person gave it."""

    arguments: tuple[str, ...]
    text: str
    who: str
    user_id: int


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    buttons: InlineKeyboardMarkup | None = None
    photos: tuple[bytes, ...] = ()
    """PNG images sent after the text, such as the report's charts."""


@dataclass(frozen=True, slots=True)
class Spec:
    """One command: its name, how to write it, what it does, an example and its runner."""

    name: str
    arguments: str
    summary: str
    example: str
    run: Callable[["TelegramBot", Request], Awaitable[Reply]]
    aliases: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.arguments}".strip()


# --- the commands ------------------------------------------------------------------


async def _status(bot: TelegramBot, request: Request) -> Reply:
    _at_most(request, 0)
    bot.record(request, "shown")
    return Reply(messages.status(commands.status(bot.store, bot.settings), bot.clock()))


async def _positions(bot: TelegramBot, request: Request) -> Reply:
    account = _account(bot, _at_most(request, 1))
    accounts = commands.status(bot.store, bot.settings, account)
    bot.record(request, "shown", account)
    return Reply(messages.positions(accounts))


async def _breakers(bot: TelegramBot, request: Request) -> Reply:
    account = _account(bot, _at_most(request, 1))
    accounts = commands.status(bot.store, bot.settings, account)
    bot.record(request, "shown", account)
    return Reply(messages.breakers(accounts))


async def _events(bot: TelegramBot, request: Request) -> Reply:
    count = _at_most(request, 1) or "10"
    if not count.isdigit():
        raise Usage(f"{count!r} is not a number of events")
    rows = commands.events(bot.store, bot.settings, None, int(count))
    bot.record(request, f"{len(rows)} event(s) shown")
    return Reply(messages.events(rows))


async def _freeze(bot: TelegramBot, request: Request) -> Reply:
    """A freeze is never refused for a word it does not know: the words become the reason."""
    first = request.arguments[0] if request.arguments else None
    if first is not None and (first.lower() == "all" or first in bot.settings.accounts):
        account, reason = _account(bot, first), " ".join(request.arguments[1:])
    else:
        account, reason = None, " ".join(request.arguments)
    return await bot.carry_out(request, CommandKind.FREEZE, account, reason=reason)


async def _resume(bot: TelegramBot, request: Request) -> Reply:
    account = _account(bot, _at_most(request, 1))
    breached = [
        f"{status.account}: {reading.reason}"
        for status in commands.status(bot.store, bot.settings, account)
        for reading in status.readings
        if reading.status is Status.BREACHED
    ]
    if not breached:
        return await bot.carry_out(request, CommandKind.RESUME, account)
    question = (
        f"⚠️ Resume <b>{escape(_target(bot, account))}</b>? Still over a limit:\n"
        + "\n".join(f"🔴 {escape(line)}" for line in breached)
        + "\nResuming accepts the losses so far: drawdown and daily loss count again from the current equity. "
        "A breaker still over its limit on its own figures trips again."
    )
    return bot.ask(request, question, CommandKind.RESUME, account)


async def _reduce(bot: TelegramBot, request: Request) -> Reply:
    if len(request.arguments) != 2:
        raise Usage("")
    account = _account(bot, request.arguments[0])
    try:
        fraction = parse_percent(request.arguments[1])
    except ValueError as error:
        raise Usage(str(error)) from None
    question = (
        f"⚠️ Reduce every position of <b>{escape(_target(bot, account))}</b> by {format_percent(fraction)}? "
        f"riskd sends reduce-only market orders and the account becomes reducing. {_mode(bot)}"
    )
    return bot.ask(request, question, CommandKind.REDUCE, account, fraction=fraction)


async def _flatten(bot: TelegramBot, request: Request) -> Reply:
    account = _account(bot, request.arguments[0]) if request.arguments else None
    question = (
        f"🛑 Flatten <b>{escape(_target(bot, account))}</b>? riskd cancels every open order, closes every "
        f"position with reduce-only market orders and halts trading until /resume. {_mode(bot)}"
    )
    return bot.ask(request, question, CommandKind.FLATTEN, account, reason=" ".join(request.arguments[1:]))


async def _report(bot: TelegramBot, request: Request) -> Reply:
    from riskd import chart

    _at_most(request, 0)
    reports = await chart.drawn(bot.settings, bot.clock())  # in another process: the ticks go on meanwhile
    bot.record(request, "shown")
    text = "\n\n".join(report.text for report in reports) or "No account configured."
    return Reply(messages.fit(text), photos=tuple(report.chart for report in reports))


async def _mute(bot: TelegramBot, request: Request) -> Reply:
    word, now = _at_most(request, 1), bot.clock()
    if word is None:
        until = bot.store.muted_until()
        bot.record(request, "mute state shown")
        if until is None or until <= now:
            return Reply(f"Alerts are not muted. Usage: {escape(SPECS['mute'].usage)}, for example /mute 2h")
        return Reply(f"🔕 Info and warning alerts are muted until {messages.when(until)}. /mute off ends it.")
    if word.lower() == "off":
        bot.store.mute_alerts(None)
        bot.record(request, "alerts unmuted")
        return Reply("🔔 Alerts are no longer muted.")
    try:
        until = now + parse_duration(word)
    except ValueError as error:
        raise Usage(str(error)) from None
    bot.store.mute_alerts(until)
    bot.record(request, f"info and warning alerts muted until {messages.when(until)}")
    return Reply(
        f"🔕 Info and warning alerts are muted until {messages.when(until)}. "
        "Critical and emergency alerts still come through. /mute off ends it."
    )


async def _help(bot: TelegramBot, request: Request) -> Reply:
    bot.record(request, "shown")
    return Reply(messages.command_list((spec.usage, spec.summary) for spec in COMMANDS))


COMMANDS = (
    Spec("status", "", "every account: state, equity, day PnL, drawdown, breakers near limits", "/status", _status),
    Spec("positions", "[ACCOUNT]", "open positions: size, value, PnL, liquidation price", "/positions main", _positions),
    Spec("breakers", "[ACCOUNT]", "every breaker's value, limit and status", "/breakers main", _breakers),
    Spec("events", "[N]", "the last N events (default 10)", "/events 20", _events),
    Spec("freeze", "[ACCOUNT] [reason]", "halt trading: cancel open orders, refuse new exposure", "/freeze main bot gone wild", _freeze),
    Spec("resume", "[ACCOUNT]", "make a halted or reducing account active again", "/resume main", _resume),
    Spec("reduce", "ACCOUNT PERCENT", "reduce every position by a percentage (asks to confirm)", "/reduce main 50%", _reduce),
    Spec("flatten", "[ACCOUNT] [reason]", "cancel all orders, close all positions, halt (asks to confirm)", "/flatten main", _flatten),
    Spec("report", "", "today and this week: equity, PnL, drawdown, exposure, VaR, stress, with a chart", "/report", _report),
    Spec("mute", "DURATION|off", "hold back info and warning alerts for a while", "/mute 2h", _mute),
    Spec("help", "", "what each command does", "/help", _help, aliases=("start",)),
)
SPECS = {name: spec for spec in COMMANDS for name in (spec.name, *spec.aliases)}


def _at_most(request: Request, count: int) -> str | None:
    """The single optional argument (or None); more arguments than `count` is a usage error."""
    if len(request.arguments) > count:
        raise Usage("")
    return request.arguments[0] if request.arguments else None


def _account(bot: TelegramBot, word: str | None) -> str | None:
    """A named account, or None for every account (`all` or nothing)."""
    if word is None or word.lower() == "all":
        return None
    commands.resolve_accounts(bot.settings, word)  # raises Refusal naming the known accounts
    return word


def _target(bot: TelegramBot, account: str | None) -> str:
    return account or f"every account ({', '.join(bot.settings.accounts)})"


def _mode(bot: TelegramBot) -> str:
    if bot.settings.live:
        return "LIVE: real orders will be sent."
    return "DRY-RUN: nothing is sent to the exchange; riskd records what it would do."
