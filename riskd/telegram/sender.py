"""The alert sender: drains the outbox to every configured chat, in order, never losing one.

Each alert is marked sent only once every chat has it. A failure (network, 5xx, 429,
403, a revoked token) leaves it pending with a later `next_attempt_at`, by exponential
backoff and never sooner than Telegram's retry_after, and ends the pass, so nothing
overtakes it. Telegram's 400 refusal is final for that chat (after one try as plain
text), so one malformed alert cannot hold the queue forever. Late alerts say when
they were raised (see `messages.alert`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Callable

from telegram import Bot
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from riskd import messages
from riskd.config import TelegramSettings
from riskd.domain import AlertStatus, Severity
from riskd.redact import redact
from riskd.store import OutboxAlert, Store

log = logging.getLogger("riskd.telegram")

QUIET = (Severity.INFO, Severity.WARNING)
"""Severities that /mute holds back; critical and emergency alerts always pass."""


class Sender:
    """Delivers the outbox through `bot` to `config.chat_ids`."""

    def __init__(self, bot: Bot, config: TelegramSettings, store: Store, clock: Callable[[], datetime]):
        self.bot, self.config, self.store, self.clock = bot, config, store, clock
        self.delivered: dict[int, set[int]] = {}
        """Chats each alert in progress has reached, so a retry does not send it twice."""

    async def deliver(self) -> None:
        """One pass over the outbox: send what is due, oldest first; stop at the first failure.

        Stopping keeps the order: a failed alert gets a later `next_attempt_at`, and the
        outbox hands out nothing behind an alert that is not due yet.
        """
        now = self.clock()
        muted = self.store.muted_until()
        for alert in self.store.due_alerts(now):
            if muted is not None and now < muted and alert.severity in QUIET:
                self.store.mark_alert(alert.id, now, AlertStatus.MUTED)
                continue
            try:
                rejected = await self._send(alert, now)
            except TelegramError as error:
                self._retry_later(alert, now, error)
                return
            self.delivered.pop(alert.id, None)
            status = AlertStatus.FAILED if len(rejected) == len(self.config.chat_ids) else AlertStatus.SENT
            problem = redact("; ".join(rejected)) if rejected else alert.error  # keep why earlier tries failed
            self.store.mark_alert(alert.id, self.clock(), status, error=problem)
            if rejected:
                log.error("telegram: alert %d refused by Telegram: %s", alert.id, "; ".join(rejected))

    async def _send(self, alert: OutboxAlert, now: datetime) -> list[str]:
        """Send one alert to every chat that has not had it; returns the chats that refused it.

        A refusal (400 Bad Request: a chat that does not exist, text Telegram cannot
        parse) would refuse every retry too, so after one try as plain text it is given
        up for that chat; so is a chat whose person blocked the bot (403), which would
        otherwise hold back every alert for every chat. Anything else (network, 5xx,
        429) raises, to be retried.
        """
        text, silent = messages.alert(alert, now), alert.severity is Severity.INFO
        delivered = self.delivered.setdefault(alert.id, set())
        rejected = []
        for chat_id in self.config.chat_ids:
            if chat_id in delivered:
                continue
            try:
                await self.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML, disable_notification=silent)
            except Forbidden as error:
                rejected.append(f"chat {chat_id}: {error.message}")
                continue
            except BadRequest as error:
                try:
                    plain = f"{alert.severity.upper()} {alert.account}\n{alert.text}"
                    await self.bot.send_message(chat_id, plain, disable_notification=silent)
                except BadRequest:
                    rejected.append(f"chat {chat_id}: {error.message}")
                    continue
            delivered.add(chat_id)
        return rejected

    def _retry_later(self, alert: OutboxAlert, now: datetime, error: TelegramError) -> None:
        """Exponential backoff from the alert's attempts, never sooner than Telegram's retry_after."""
        delay = min(self.config.backoff * 2 ** min(alert.attempts, 20), self.config.backoff_max)
        if isinstance(error, RetryAfter):
            wait = error.retry_after
            delay = max(delay, wait if isinstance(wait, timedelta) else timedelta(seconds=wait))
        problem = redact(f"{type(error).__name__}: {error}")
        self.store.mark_alert(alert.id, now, AlertStatus.PENDING, error=problem, retry_at=now + delay)
        log.warning("telegram: alert %d not delivered (%s); next try in %.1fs", alert.id, problem, delay.total_seconds())
