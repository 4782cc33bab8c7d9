"""What a Telegram command runner may do, and nothing more: read riskd, ask, carry out.

A runner (`menu.py`) gets a `Session`, not the bot: the settings in force, the store
and the clock to read riskd through the transport-neutral commands; `ask` to hold a
destructive command for its giver's Confirm; `carry_out` to queue a control command
for the daemon and wait for its result. It returns a `Reply`, which says what the
commands table keeps of the command; the dispatcher records it, once, so a runner
never records itself and no refusal path can forget to.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from riskd import commands
from riskd.config import Settings
from riskd.domain import CommandKind, CommandStatus, LimitOverride
from riskd.messages import escape
from riskd.store import Store
from riskd.units import format_duration

SOURCE = "telegram"
"""How the commands table names this transport."""

COMMAND_WAIT = 15.0
"""Seconds a command's answer waits for the daemon to carry it out before saying it is queued."""


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
    """The answer to a command, and what the commands table keeps of it.

    `recorded` is the result to record; None when the command was recorded already
    (a control command is recorded by `commands.submit` when it is queued).
    """

    text: str
    buttons: InlineKeyboardMarkup | None = None
    recorded: str | None = None
    account: str | None = None
    status: CommandStatus = CommandStatus.DONE
    photos: tuple[bytes, ...] = ()
    """PNG images sent after the text, such as the report's charts."""


@dataclass(frozen=True, slots=True)
class Confirmation:
    """A destructive command waiting for the Confirm or Cancel of the person who gave it."""

    request: Request
    question: str
    kind: CommandKind
    account: str | None
    expires_at: datetime
    reason: str = ""
    fraction: float | None = None
    override: LimitOverride | None = None


class Session:
    """riskd as the command runners see it: settings, store, clock, and the confirmations pending."""

    def __init__(self, settings: Callable[[], Settings], store: Store, clock: Callable[[], datetime]):
        self._settings, self.store, self.clock = settings, store, clock
        self.confirmations: dict[str, Confirmation] = {}

    @property
    def settings(self) -> Settings:
        """The settings in force: answers say LIVE or DRY-RUN as the last reload left it."""
        return self._settings()

    def record(self, request: Request, reply: Reply) -> None:
        """Keep what the commands table should know of an answered command (the dispatcher's job)."""
        if reply.recorded is None:
            return
        now = self.clock()
        self.store.record_answer(SOURCE, request.who, request.text, reply.status, reply.recorded, now, reply.account)

    async def carry_out(
        self, request: Request, kind: CommandKind, account: str | None, reason: str = "", fraction: float | None = None,
        override: LimitOverride | None = None,
    ) -> Reply:
        """Queue a control command for the daemon like the CLI does, and wait for its result."""
        ids = commands.submit(
            self.store, self.settings, kind, account, SOURCE, request.who, self.clock(),
            reason=reason, fraction=fraction, override=override,
        )
        lines = []
        for row in await commands.wait_for(self.store, ids, timeout=COMMAND_WAIT):
            if row.status is CommandStatus.PENDING:
                lines.append(f"⏳ {escape(row.account)}: queued; riskd is busy and will carry it out shortly (see /events)")
            else:
                mark = "✅" if row.status is CommandStatus.DONE else "⛔"
                lines.append(f"{mark} {escape(row.result)}")
        return Reply("\n".join(lines))

    def ask(
        self, request: Request, question: str, kind: CommandKind, account: str | None,
        reason: str = "", fraction: float | None = None, override: LimitOverride | None = None,
    ) -> Reply:
        """Hold a destructive command until the person who gave it confirms it, within the time limit."""
        now = self.clock()
        self.confirmations = {token: c for token, c in self.confirmations.items() if c.expires_at >= now}
        token = secrets.token_urlsafe(12)
        within = self.settings.telegram.confirm_within
        self.confirmations[token] = Confirmation(request, question, kind, account, now + within, reason, fraction, override)
        buttons = InlineKeyboardMarkup(
            [[InlineKeyboardButton("Confirm", callback_data=f"confirm:{token}"),
              InlineKeyboardButton("Cancel", callback_data=f"cancel:{token}")]]
        )
        return Reply(
            f"{question}\nOnly you can confirm, within {format_duration(within)}.", buttons,
            recorded="asked for confirmation", account=account, status=CommandStatus.ASKED,
        )
