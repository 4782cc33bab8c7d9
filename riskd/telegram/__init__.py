"""Telegram: alerts out, commands in, on riskd's own event loop.

Telegram is how the owner hears riskd and talks to it, and it fails in its own ways:
outages, 429 rate limits, 502 pages, revoked tokens. So nothing here stands between
riskd and a risk action. The bot starts in the background and keeps trying while
Telegram is unreachable (`bot`); alerts wait in the outbox table, and the sender marks
each one sent only once Telegram has it, in order, backing off after failures
(`sender`); commands go through the same transport-neutral functions as the CLI, and
every one, obeyed or not, is recorded once with who gave it (`menu`, whose one table
drives the handlers, /help and the command menu; its runners see only a `session`). Strangers get no answer at all.

python-telegram-bot is imported only when a token is configured (the supervisor
imports this package then), so riskd without Telegram does not carry it.
"""

import os

os.environ.setdefault("PTB_TIMEDELTA", "true")  # PTB 23's timedelta time periods now, without deprecation warnings

from riskd.telegram.bot import TelegramBot  # noqa: E402

__all__ = ["TelegramBot"]
