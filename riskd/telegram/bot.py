"""The bot: python-telegram-bot's Application on riskd's loop, its handlers and who may use them.

Only allow-listed chats (and users) reach the command handlers; the rest is recorded
and, once per cooldown, raised as a warning to the owners, but never answered.
Destructive commands wait for their giver's Confirm within `confirm_within`. What a
command does is its runner's (`menu`), through a `Session`; this module dispatches,
answers, and records each command once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Callable

from telegram import BotCommand, Update
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes, MessageHandler, filters
from telegram.request import HTTPXRequest

from riskd import commands, messages, tls, wording
from riskd.commands import Refusal
from riskd.config import Settings, TelegramSettings
from riskd.domain import RISKD, Alert, CommandStatus, Event, EventKind, Severity, alert_key
from riskd.messages import escape
from riskd.redact import redact, register
from riskd.store import Store
from riskd.telegram.menu import COMMANDS, SPECS, Spec
from riskd.telegram.sender import Sender
from riskd.telegram.session import SOURCE, Reply, Request, Session, Usage

log = logging.getLogger("riskd.telegram")

KEY = "riskd"
"""Where the handlers find the running TelegramBot: `context.bot_data[KEY]`."""

STOP_LIMIT = 2.0
"""Seconds the last alerts, and telling Telegram which updates were read, may take at
shutdown, so an unreachable Telegram cannot hold up a stop. What is not sent by then
waits in the outbox for the next start."""
CAPTION_LIMIT = 1024
"""The most characters Telegram takes in a photo's caption."""


# --- handlers ------------------------------------------------------------------------


async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A known command from an allowed chat: check the sender, run it, answer, record."""
    bot: TelegramBot = context.bot_data[KEY]
    message = update.effective_message
    name = message.text.split(maxsplit=1)[0][1:].split("@", 1)[0].lower()
    spec = SPECS[name]
    request = Request(tuple(context.args or ()), message.text[:300], describe(update), update.effective_user.id)
    refusal = await bot.sender_refusal(update, context)
    if refusal:
        await bot.ignore(update, refusal)
        return
    reply = await answer(bot.session, spec, request, message.date)
    await message.reply_text(reply.text, parse_mode=ParseMode.HTML, reply_markup=reply.buttons)
    for photo in reply.photos:
        await message.reply_photo(photo)


async def answer(session: Session, spec: Spec, request: Request, sent_at: datetime) -> Reply:
    """Run one command, turn a usage error or a refusal into a short answer, and record it: once, here."""
    if commands.expired(sent_at, session.clock()):
        reason = f"sent at {messages.when(sent_at)} while riskd was not running"
        text = f"⛔ This command was {escape(reason)}; nothing was done. Send it again if you still want it."
        reply = Reply(text, recorded=reason, status=CommandStatus.REFUSED)
    else:
        try:
            reply = await spec.run(session, request)
        except Usage as error:
            detail = f"{escape(error)}\n" if str(error) else ""
            text = f"{detail}Usage: {escape(spec.usage)}, for example {escape(spec.example)}"
            reply = Reply(text, recorded=f"usage: {error or spec.usage}", status=CommandStatus.REFUSED)
        except Refusal as error:
            reply = Reply(f"⛔ {escape(error)}", recorded=str(error), status=CommandStatus.REFUSED)
    session.record(request, reply)
    return reply


async def on_unknown(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command riskd does not have, from an allowed chat."""
    bot: TelegramBot = context.bot_data[KEY]
    message = update.effective_message
    if _for_another_bot(message.text, context.bot.username):
        return
    refusal = await bot.sender_refusal(update, context)
    if refusal:
        await bot.ignore(update, refusal)
        return
    user = update.effective_user
    request = Request((), message.text[:300], describe(update), user.id if user else 0)
    reply = Reply("Unknown command. /help lists what riskd understands.", recorded="unknown command", status=CommandStatus.REFUSED)
    bot.session.record(request, reply)
    await message.reply_text(reply.text)


async def on_stranger(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command from a chat or person not on the allow-list: recorded, never answered."""
    bot: TelegramBot = context.bot_data[KEY]
    if _for_another_bot(update.effective_message.text, context.bot.username):
        return
    chat, user = update.effective_chat, update.effective_user
    if chat.id not in bot.config.chat_ids:
        await bot.ignore(update, f"chat {chat.id} is not in telegram.chat_ids")
    else:
        await bot.ignore(update, f"user {user.id if user else '?'} is not in telegram.user_ids")


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Confirm or Cancel under a destructive command's question. Every press is answered."""
    bot: TelegramBot = context.bot_data[KEY]
    session, query = bot.session, update.callback_query
    choice, _, token = (query.data or "").partition(":")
    confirmation, now, who = session.confirmations.get(token), session.clock(), describe(update)
    if choice not in ("confirm", "cancel") or confirmation is None:
        # Not a button riskd is waiting for: made up, malformed, replayed or from before a
        # restart. Answered so the client stops spinning, and recorded like any stranger.
        await query.answer("This confirmation has expired; nothing was done.")
        await bot.ignore(update, "a button riskd is not waiting for (forged, malformed or expired)", text=f"button {query.data!r}")
        return
    if now > confirmation.expires_at:
        del session.confirmations[token]
        await query.answer("This confirmation has expired; nothing was done.")
        text = f"{confirmation.question}\n\n⌛ Expired: nothing was done. Send the command again if you still want it."
        reply = Reply(text, recorded="confirmation expired; nothing done", account=confirmation.account,
                      status=CommandStatus.EXPIRED)
        session.record(confirmation.request, reply)
        await query.edit_message_text(reply.text, parse_mode=ParseMode.HTML)
        return
    if query.from_user.id != confirmation.request.user_id:
        pressed = Request((), f"{choice} button of {confirmation.request.text}", who, query.from_user.id)
        reply = Reply("Only the person who gave this command can confirm it.",
                      recorded="only the person who asked may confirm", status=CommandStatus.REFUSED)
        session.record(pressed, reply)
        await query.answer(reply.text, show_alert=True)
        return
    del session.confirmations[token]
    if choice != "confirm":
        text = f"{confirmation.question}\n\n✖️ Cancelled: nothing was done."
        reply = Reply(text, recorded="cancelled; nothing done", account=confirmation.account, status=CommandStatus.CANCELLED)
        session.record(confirmation.request, reply)
        await query.answer("Cancelled.")
        await query.edit_message_text(reply.text, parse_mode=ParseMode.HTML)
        return
    await query.answer("Confirmed.")
    await query.edit_message_text(f"{confirmation.question}\n\n⏳ Confirmed; working on it…", parse_mode=ParseMode.HTML)
    reply = await session.carry_out(
        confirmation.request, confirmation.kind, confirmation.account,
        reason=confirmation.reason, fraction=confirmation.fraction, override=confirmation.override,
    )
    await query.edit_message_text(f"{confirmation.question}\n\n{reply.text}", parse_mode=ParseMode.HTML)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The one error handler: a line in the log, and for a person we obey, a short answer."""
    error = context.error
    if isinstance(error, TelegramError):
        log.warning("telegram: answering an update failed: %s", error)
        return
    log.error("telegram: handling an update failed", exc_info=error)
    bot: TelegramBot = context.bot_data[KEY]
    if isinstance(update, Update) and update.effective_message and update.effective_chat.id in bot.config.chat_ids:
        with contextlib.suppress(TelegramError):
            await update.effective_message.reply_text("Something went wrong with that command; riskd's log has the details.")


def describe(update: Update) -> str:
    """Who gave a command, as the commands table records it."""
    user, chat = update.effective_user, update.effective_chat
    if user is None:
        return f"unknown user in chat {chat.id if chat else '?'}"
    name = f"@{user.username}" if user.username else user.full_name
    return f"user {user.id} ({name}) in chat {chat.id if chat else '?'}"


def _for_another_bot(text: str | None, username: str | None) -> bool:
    """`/status@otherbot` in a group is none of riskd's business."""
    first = (text or "").split(maxsplit=1)[0] if text else ""
    _, at, target = first.partition("@")
    return bool(at) and target.lower() != (username or "").lower()


# --- the bot -------------------------------------------------------------------------


class TelegramBot:
    """The Telegram side of a running daemon: the Application, the command session, the sender."""

    def __init__(self, settings: Callable[[], Settings], store: Store, clock: Callable[[], datetime]):
        """`settings` is read at every use: answers say LIVE or DRY-RUN as a reload left it."""
        self._settings, self.config, self.store, self.clock = settings, settings().telegram, store, clock
        register(self.config.token.get_secret_value())
        self.application = build_application(self.config)
        self.application.bot_data[KEY] = self
        self.session = Session(settings, store, clock)
        self.ignored_alerted_at: datetime | None = None
        self.starting: asyncio.Task | None = None
        self.sender = Sender(self.application.bot, self.config, store, clock)

    @property
    def settings(self) -> Settings:
        return self._settings()

    @property
    def bot(self):
        return self.application.bot

    async def deliver(self, final: bool = False) -> None:
        """Send the alerts that are due: the daemon's alert job, and its `final` pass at a stop."""
        if not final:
            await self.sender.deliver()
            return
        try:
            await asyncio.wait_for(self.sender.deliver(), STOP_LIMIT)
        except asyncio.TimeoutError:
            log.warning("telegram: stopping with alerts still in the outbox; they go out at the next start")

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Start in the background: an unreachable Telegram must not hold up riskd's start."""
        self.starting = asyncio.create_task(self._start(), name="telegram-start")

    async def _start(self) -> None:
        if not await self._initialize():
            log.error("telegram: the bot token was rejected; set a valid RISKD_TELEGRAM__TOKEN. Alerts wait in the outbox.")
            return
        try:
            await self.bot.set_my_commands([BotCommand(spec.name, spec.summary) for spec in COMMANDS])
        except TelegramError as error:
            log.warning("telegram: the command menu could not be registered: %s", error)
        await self.application.start()
        await self.application.updater.start_polling(
            bootstrap_retries=-1,
            allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
            error_callback=lambda error: log.warning("telegram: reading commands failed: %s; retrying", error),
        )
        log.info("telegram: bot @%s ready; alerts go to %d chat(s)", self.bot.username, len(self.config.chat_ids))

    async def _initialize(self) -> bool:
        """Reach the Bot API (getMe), retrying with backoff; False if it refuses the token.

        PTB's InvalidToken carries the token in its message, so it is not logged here.
        """
        delay = self.config.backoff.total_seconds()
        while True:
            try:
                await self.application.initialize()
                return True
            except InvalidToken:
                return False
            except TelegramError as error:
                log.warning("telegram: cannot reach the Bot API (%s); trying again in %.1fs", error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.backoff_max.total_seconds())

    async def stop(self) -> None:
        if self.starting is not None and not self.starting.done():
            self.starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.starting
        application = self.application
        if application.updater is not None and application.updater.running:
            with contextlib.suppress(asyncio.TimeoutError):  # commands read but not confirmed are read again, and refused if stale
                await asyncio.wait_for(application.updater.stop(), STOP_LIMIT)
        if application.running:
            await application.stop()
        await application.shutdown()
        await application.bot.shutdown()

    async def send_report(self, text: str, chart: bytes) -> bool:
        """The daily report to every chat: the chart with the text as its caption (the text
        follows as a message when longer than a caption may be). False if a chat missed it."""
        caption, rest = (text, None) if len(text) <= CAPTION_LIMIT else (text.split("\n", 1)[0], text)
        delivered = True
        for chat_id in self.config.chat_ids:
            try:
                await self.bot.send_photo(chat_id, chart, caption=caption, parse_mode=ParseMode.HTML)
                if rest is not None:
                    await self.bot.send_message(chat_id, rest, parse_mode=ParseMode.HTML)
            except TelegramError as error:
                log.warning("telegram: the daily report did not reach chat %s: %s", chat_id, redact(str(error)))
                delivered = False
        return delivered

    # --- who may command -------------------------------------------------------------

    async def sender_refusal(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | None:
        """Why the sender of a command in an allowed chat is not obeyed, or None if they are.

        The handlers' filters already hold the chat (and user) allow-lists. What is
        left: in a group with no `user_ids`, only the group's administrators are obeyed.
        """
        chat, user = update.effective_chat, update.effective_user
        if self.config.user_ids or chat.type == ChatType.PRIVATE:
            return None
        try:
            member = await context.bot.get_chat_member(chat.id, user.id)
        except TelegramError as error:
            return redact(f"could not check that user {user.id} administers chat {chat.id}: {error}")
        if member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER):
            return None
        return f"user {user.id} is not an administrator of chat {chat.id} (and telegram.user_ids is not set)"

    async def ignore(self, update: Update, reason: str, text: str | None = None) -> None:
        """Record a command (or `text`, a button press) riskd will not obey; warn the owners once per cooldown."""
        now, who = self.clock(), describe(update)
        text = (text if text is not None else update.effective_message.text or "")[:200]
        self.store.record_answer(SOURCE, who, text, CommandStatus.REFUSED, f"not obeyed: {reason}", now)
        log.warning("telegram: not obeyed: %r from %s: %s", text, who, reason)
        cooldown = self.settings.alert_cooldown
        if self.ignored_alerted_at is not None and now - self.ignored_alerted_at < cooldown:
            return
        self.ignored_alerted_at = now
        self.store.record_event(
            Event(RISKD, EventKind.STRANGER, wording.stranger(who, text, reason), severity=Severity.WARNING),
            now,
            Alert(RISKD, Severity.WARNING, alert_key(EventKind.STRANGER), wording.stranger_alert(who, text, reason, cooldown)),
        )


def build_application(config: TelegramSettings) -> Application:
    """python-telegram-bot's Application with riskd's handlers and a timeout on every call."""
    timeout = config.timeout.total_seconds()
    timeouts = {"connect_timeout": timeout, "read_timeout": timeout, "write_timeout": timeout, "pool_timeout": timeout}
    verify = {"httpx_kwargs": {"verify": tls.context()}}  # one certificate store for both pools and ccxt
    application = (
        Application.builder()
        .token(config.token.get_secret_value())
        .base_url(config.base_url)
        .request(HTTPXRequest(connection_pool_size=8, **timeouts, **verify))
        .get_updates_request(HTTPXRequest(connection_pool_size=1, **timeouts, **verify))
        .job_queue(None)
        .build()
    )
    allowed = filters.Chat(chat_id=config.chat_ids)
    if config.user_ids:
        allowed = allowed & filters.User(user_id=config.user_ids)
    new_message = filters.UpdateType.MESSAGE  # an edited "/flatten" is not a new command
    for spec in COMMANDS:
        application.add_handler(CommandHandler([spec.name, *spec.aliases], on_command, filters=allowed & new_message))
    application.add_handler(MessageHandler(filters.COMMAND & allowed & new_message, on_unknown))
    application.add_handler(MessageHandler(filters.COMMAND & ~allowed & new_message, on_stranger))
    application.add_handler(CallbackQueryHandler(on_button))  # every button press, forged ones included
    application.add_error_handler(on_error)
    return application
