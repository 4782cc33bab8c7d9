"""Every alert channel besides Telegram, through Apprise: Slack, Discord, email, ntfy, Pushover, Matrix, webhooks...

Why: a person must be reached wherever they are, and Apprise, a well-kept library,
speaks to some hundred services from one URL each. Telegram stays as it is (it also
takes commands); these channels only carry alerts.

Each channel has its own place in the alert outbox (`channels` table: the last alert it
has had), so a dead channel holds back no other, and none is lost: it is tried again
with exponential backoff from where it stopped, and gets every alert in order once it
answers. A channel's URL holds its secrets, so it is registered for scrubbing (the whole
URL, and each part of it that may be a secret on its own), never written anywhere, and a
channel is named in logs and in the database by its position and scheme (`apprise 2
(slack)`) and an HMAC of its URL under a random salt kept in the database: a plain hash
of a URL whose token is guessable could be brute-forced by whoever reads the database.

Apprise is imported here, and this module only when a channel is configured: the
library costs some 17 MB of the daemon's memory budget.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Callable
from urllib.parse import unquote, urlsplit

import apprise

from riskd.config import AlertSettings, ConfigError
from riskd.domain import AlertStatus, Severity
from riskd.redact import redact, register
from riskd.messages import LATE_AFTER, when
from riskd.store import OutboxAlert, Store
from riskd.units import format_duration

log = logging.getLogger("riskd.channels")

QUIET = (Severity.INFO, Severity.WARNING)
"""Severities that /mute holds back; critical and emergency alerts always pass."""

NOTIFY_TYPES = {
    Severity.INFO: apprise.NotifyType.INFO,
    Severity.WARNING: apprise.NotifyType.WARNING,
    Severity.CRITICAL: apprise.NotifyType.FAILURE,
    Severity.EMERGENCY: apprise.NotifyType.FAILURE,
}


@dataclass(frozen=True, slots=True)
class Channel:
    """One Apprise URL: `key` (an HMAC of it under the database's salt) identifies it in the
    database, `label` in words; `former_key` is the plain hash older riskd keyed it by, so its row carries over."""

    key: str
    label: str
    notifier: apprise.Apprise
    former_key: str


def channels(config: AlertSettings, salt: bytes = b"") -> list[Channel]:
    """The configured channels, their URLs registered as secrets first; keyed under `salt`
    (the database's; `riskd check`, which stores nothing, needs none)."""
    found = []
    for number, secret in enumerate(config.apprise, start=1):
        url = secret.get_secret_value()
        register(*secret_parts(url))
        notifier = apprise.Apprise()
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        label = f"apprise {number} ({scheme})"
        if not notifier.add(url):
            raise ConfigError(f"alerts.apprise: {label} is not a URL Apprise understands (see its list of services)")
        key = "apprise:" + hmac.new(salt, url.encode(), hashlib.sha256).hexdigest()[:32]
        found.append(Channel(key, label, notifier, "apprise:" + hashlib.sha256(url.encode()).hexdigest()[:16]))
    return found


SECRET_PART = 6
"""Path segments and query values this long or longer are registered as secrets: Apprise
puts tokens there (Slack's TokenA/TokenB/TokenC, ntfy's and Pushover's tokens, ?token=...).
A plain lower-case word shorter than WORD is not (`alerts`, `webhook`): scrubbing it would
blank that word out of every line riskd writes, and a token is never one."""
WORD = 12
PLAIN_WORD = re.compile(r"[a-z]+")


def secret_parts(url: str) -> list[str]:
    """The URL and each part of it that may be a secret on its own, as written and decoded:
    the user, the password and the host (in Apprise URLs often the token itself:
    tgram://TOKEN/..., pover://USER@TOKEN) unless it is an address, every path segment and
    query value of SECRET_PART characters or more but plain short words."""
    parts = [url]
    _, found, rest = url.partition("://")
    if not found:
        return parts
    netloc, _, _ = rest.partition("/")
    netloc = netloc.split("?", 1)[0].split("#", 1)[0]
    userinfo, _, host = netloc.rpartition("@")  # the raw text: urlsplit lower-cases the host, tokens are not
    user, _, password = userinfo.partition(":")
    name, colon, port = host.rpartition(":")
    host = name if colon and port.isdigit() else host
    parts += [user, password, "" if _is_address(host) else host]
    try:
        split = urlsplit(url)
    except ValueError:
        return [part for part in parts if part]
    values = [pair.partition("=")[2] for pair in split.query.replace(";", "&").split("&")]
    parts += [part for part in (*split.path.split("/"), *values) if _may_be_secret(part)]
    return list(dict.fromkeys(decoded for part in parts if part for decoded in (part, unquote(part))))


def _may_be_secret(part: str) -> bool:
    return len(part) >= SECRET_PART and (len(part) >= WORD or not PLAIN_WORD.fullmatch(part))


def _is_address(host: str) -> bool:
    """An IP address or localhost: a place, never a token (and scrubbing it would hide where riskd connects)."""
    if host.lower() == "localhost":
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


async def notify(channel: Channel, title: str, body: str, severity: Severity, timeout: float) -> str | None:
    """Send one message; None when delivered, else why not (scrubbed)."""
    try:
        result = await asyncio.wait_for(
            channel.notifier.async_notify(body=body, title=title, notify_type=NOTIFY_TYPES[severity]), timeout
        )
    except asyncio.TimeoutError:
        return f"no answer within {timeout:g}s"
    if result:
        return None
    said = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR")]
    return redact(said[-1] if said else "Apprise could not deliver it")


class AlertChannels:
    """Delivers the alert outbox to every Apprise channel, each at its own pace."""

    def __init__(self, config: AlertSettings, store: Store, clock: Callable[[], datetime]):
        self.config, self.store, self.clock = config, store, clock
        self.channels = channels(config, store.channel_salt())
        for channel in self.channels:  # a new channel's place is taken now: every alert from here on is its
            store.rekey_channel(channel.former_key, channel.key)
            store.channel(channel.key, channel.label)

    async def deliver(self) -> None:
        await asyncio.gather(*(self._drain(channel) for channel in self.channels))

    async def _drain(self, channel: Channel) -> None:
        """The channel's alerts after the last it had, in order; stop at the first failure."""
        now = self.clock()
        position = self.store.channel(channel.key, channel.label)
        if position.next_attempt_at is not None and position.next_attempt_at > now:
            return
        muted = self.store.muted_until()
        for alert in self.store.alerts_after(position.last_alert_id):
            if alert.status is AlertStatus.MUTED or (muted is not None and now < muted and alert.severity in QUIET):
                self.store.channel_passed(channel.key, alert.id, now, sent=False)
                continue
            problem = await notify(channel, title(alert), text(alert, now), alert.severity, self.config.timeout.total_seconds())
            if problem is not None:
                delay = min(self.config.backoff * 2 ** min(position.attempts, 20), self.config.backoff_max)
                self.store.channel_failed(channel.key, problem, now + delay)
                log.warning("%s: alert %d not delivered (%s); next try in %.0fs", channel.label, alert.id, problem, delay.total_seconds())
                return
            self.store.channel_passed(channel.key, alert.id, self.clock(), sent=True)
            position = self.store.channel(channel.key, channel.label)


def title(alert: OutboxAlert) -> str:
    return f"riskd {alert.severity.upper()} · {alert.account or 'riskd'}"


def text(alert: OutboxAlert, now: datetime) -> str:
    """The alert's words, and when it was raised if it arrives more than a minute late."""
    if now - alert.at <= LATE_AFTER:
        return alert.text
    return f"{alert.text}\nDelivered late: this was raised at {when(alert.at)}, {format_duration(now - alert.at)} ago."
