"""What `riskd check` verifies besides reaching each account (and says of what riskd
understood of it): is riskd safe to start?

A failure means riskd should not be started as configured: the exchange would refuse
its signed requests (clock), it could not keep its records (database) or could not
tell anyone (Telegram). A warning means riskd will run but something deserves a look
now: an API key that can withdraw, an env file other users can read.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from riskd.config import AccountConfig, ConfigError, Settings, budget_plans
from riskd.domain import Severity, Snapshot
from riskd.exchange import ExchangeAdapter, explain
from riskd.redact import redact, register
from riskd.store import write_problem

OK, WARNING, FAILURE = "ok", "warning", "failure"

SKEW_WARNING = 0.5
SKEW_FAILURE = 1.0
"""Seconds. Binance refuses a signed request stamped more than 1 s ahead of its clock."""


@dataclass(frozen=True, slots=True)
class Finding:
    subject: str
    level: str
    text: str

    def __str__(self) -> str:
        mark = "" if self.level == OK else f"{self.level.upper()}: "
        return f"{self.subject}: {mark}{self.text}"


async def account(name: str, config: AccountConfig, client: Any) -> list[Finding]:
    """The account's clock against this machine's, and what its API key may do."""
    limit = config.timeout.total_seconds()
    return [await clock_skew(name, client, limit), await key_permissions(name, config, client, limit)]


async def understanding(adapter: ExchangeAdapter, snapshot: Snapshot) -> list[str]:
    """What riskd made of the account in `snapshot`, in words: the venue profile and
    market, where equity came from and what it counts, the margin and position modes;
    a line starting "warning:" where something is unknown."""
    lines = [f"market: {'futures' if adapter.futures else 'spot'}"
             + ("" if adapter.account.market else " (guessed: `market` is not set)")]
    if adapter.venue is None:
        lines.append(f"warning: riskd has no profile for {adapter.client.id}; its figures are ccxt's unified ones")
    else:
        lines.append(f"venue profile: {adapter.venue.name}")
    if adapter.account.dead_man_switch is not None and adapter.dead_man_switch is None:
        lines.append(f"warning: dead_man_switch is set, but {adapter.client.id} offers riskd none: open orders stay if riskd dies")
    figures = adapter.understood
    if figures is None or not snapshot.ok:
        return lines + ["warning: the account was not read, so nothing about it is known"]
    lines.append(f"equity {snapshot.equity:,.2f} {snapshot.quote} from {figures.source}")
    lines.append(f"collateral counted: {', '.join(figures.collateral) or 'none'}")
    lines.append(f"margin mode: {figures.margin_mode}" if figures.margin_mode else "warning: margin mode unknown")
    if figures.margin_ratio is not None:
        lines.append(f"margin ratio: {figures.margin_ratio:.2%} (maintenance margin / margin balance)")
    elif adapter.futures:
        lines.append("warning: the venue reports no account margin ratio; margin_ratio cannot measure")
    if adapter.futures:
        lines.append(await _position_mode(adapter, snapshot))
        blind = [p.key for p in snapshot.positions if p.kind != "spot" and p.liquidation_price is None]
        if blind:
            lines.append(f"warning: no liquidation price for {', '.join(blind)}; liquidation_distance cannot measure them")
    return lines


async def _position_mode(adapter: ExchangeAdapter, snapshot: Snapshot) -> str:
    if any(p.position_side for p in snapshot.positions):
        return "position mode: hedge (positions keyed by side)"
    try:
        hedged = await adapter.hedged()
    except Exception as error:  # a question riskd can do without
        return f"warning: position mode unknown ({explain(error).text})"
    if hedged is not None:
        return f"position mode: {'hedge' if hedged else 'one-way'}"
    if snapshot.positions:
        return "position mode: one-way (as the open positions show)"
    return "warning: position mode unknown (the venue does not say and no position shows it)"


async def clock_skew(name: str, client: Any, limit: float) -> Finding:
    if not client.has.get("fetchTime"):
        return Finding(name, OK, f"{client.id} does not tell its time; the clock was not compared")
    try:
        before = time.time()
        server = await asyncio.wait_for(client.fetch_time(), limit)
        after = time.time()
    except Exception as error:
        return Finding(name, FAILURE, f"could not read the exchange's clock: {explain(error).text}")
    skew = server / 1000 - (before + after) / 2
    text = f"this machine's clock is {abs(skew):.2f} s {'ahead of' if skew < 0 else 'behind'} the exchange's"
    if abs(skew) >= SKEW_FAILURE:
        advice = "signed requests will be refused; synchronise the clock (timedatectl set-ntp true)"
        return Finding(name, FAILURE, f"{text}: {advice}")
    return Finding(name, WARNING if abs(skew) >= SKEW_WARNING else OK, text)


async def key_permissions(name: str, config: AccountConfig, client: Any, limit: float) -> Finding:
    """What the exchange says the API key may do, where ccxt gives a way to ask."""
    if config.is_sim:
        return Finding(name, OK, "the embedded exchange has no API key to check")
    try:
        if client.id.startswith("binance"):
            return binance_permissions(name, await asyncio.wait_for(client.sapi_get_account_apirestrictions(), limit))
        if client.id == "okx":
            return okx_permissions(name, await asyncio.wait_for(client.private_get_account_config(), limit))
    except Exception as error:
        return Finding(name, WARNING, f"could not read the API key's permissions ({explain(error).text}); {_MAKE_SURE}")
    return Finding(name, OK, f"{client.id} does not report API key permissions; {_MAKE_SURE}")


def binance_permissions(name: str, reply: dict) -> Finding:
    """Binance's GET /sapi/v1/account/apiRestrictions reply, judged."""
    if reply.get("enableWithdrawals"):
        return Finding(name, WARNING, _WITHDRAWALS)
    if reply.get("permitsUniversalTransfer") or reply.get("enableInternalTransfer"):
        return Finding(name, WARNING, "the API key can transfer funds between accounts; riskd never needs that, disable it")
    allowed = [label for key, label in _BINANCE_LABELS.items() if reply.get(key)]
    where = "" if reply.get("ipRestrict") else "; consider restricting it to this machine's IP address"
    return Finding(name, OK, f"API key may: {', '.join(allowed) or 'nothing reported'}; no withdrawals{where}")


def okx_permissions(name: str, reply: dict) -> Finding:
    """OKX's GET /api/v5/account/config reply: `perm` lists read_only, trade, withdraw."""
    data = reply.get("data") or [{}]
    permissions = [part.strip() for part in str(data[0].get("perm", "")).split(",") if part.strip()]
    if "withdraw" in permissions:
        return Finding(name, WARNING, _WITHDRAWALS)
    return Finding(name, OK, f"API key may: {', '.join(permissions) or 'nothing reported'}; no withdrawals")


_WITHDRAWALS = "WITHDRAWALS ARE ENABLED on this API key. riskd never needs them: disable them on the exchange now"
_MAKE_SURE = "make sure on the exchange's website that withdrawals are disabled"
_BINANCE_LABELS = {
    "enableReading": "read",
    "enableSpotAndMarginTrading": "spot and margin trading",
    "enableFutures": "futures trading",
    "enableMargin": "margin loans",
    "enableVanillaOptions": "options trading",
}


def budgets(settings: Settings) -> list[Finding]:
    """What the routine reads use of each venue's request budget at the poll interval (ticks,
    market data, trade history), how many accounts fit, and the bots' headroom; where riskd
    knows no budget, the shortest poll ccxt's rate allows.

    A configuration that does not fit was refused when it was loaded; this says how close it is.
    """
    return [Finding(f"request budget, {plan.where}", OK, plan.describe()) for plan in budget_plans(settings)]


async def local(settings: Settings, env_file: Path | None) -> list[Finding]:
    """This machine: who runs the check, the env file, the database and Telegram."""
    findings = []
    if os.geteuid() == 0:
        advice = "run check as the service user (sudo -u riskd ...) to test its permissions"
        findings.append(Finding("user", WARNING, f"running as root: {advice}"))
    if env_file is not None:
        findings.append(env_file_permissions(env_file))
    problem = write_problem(settings.database)
    if problem:
        findings.append(Finding("database", FAILURE, problem))
    else:
        findings.append(Finding("database", OK, f"{settings.database} is writable"))
    findings.append(await telegram(settings))
    findings += await alert_channels(settings)
    findings += await hooks(settings)
    return findings


async def hooks(settings: Settings) -> list[Finding]:
    """What can be checked of each hook without calling it (a call would be a false event):
    Freqtrade's API with its credentials, a command's program, a lock file's folder."""
    findings = []
    for account_name, account in settings.accounts.items():
        for hook_name, hook in account.hooks.items():
            subject = f"{account_name} hook {hook_name}"
            match hook.type:
                case "freqtrade":
                    findings.append(await _freqtrade(subject, hook))
                case "command":
                    program = shutil.which(hook.run[0])
                    if program is None:
                        findings.append(Finding(subject, FAILURE, f"{hook.run[0]} is not an executable program"))
                    else:
                        findings.append(Finding(subject, OK, f"runs {program}"))
                case "lock_file":
                    findings.append(_lock_file(subject, hook.path))
                case "webhook":
                    findings.append(Finding(subject, OK, "not called by check: a test call would look like a real event"))
    return findings


def _lock_file(subject: str, path: Path) -> Finding:
    """Write and delete a probe file where the lock file goes (in the nearest folder that exists,
    which riskd would create the rest under): permission bits say nothing as root or on /proc."""
    folder = next(parent for parent in path.absolute().parents if parent.is_dir())
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".riskd-check-"):
            pass
    except OSError as error:
        return Finding(subject, FAILURE, f"{path} cannot be made: a file cannot be written in {folder} ({error.strerror or error})")
    return Finding(subject, OK, f"{path} can be written")


async def _freqtrade(subject: str, hook: Any) -> Finding:
    """Ask the bot's REST API for its configuration: proves the URL and the credentials."""
    register(hook.username.get_secret_value(), hook.password.get_secret_value())
    credentials = f"{hook.username.get_secret_value()}:{hook.password.get_secret_value()}"
    auth = "Basic " + base64.b64encode(credentials.encode()).decode()
    try:
        timeout = aiohttp.ClientTimeout(total=hook.timeout.total_seconds())
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(f"{hook.url}/api/v1/show_config", headers={"Authorization": auth}) as response:
                reply = await response.json(content_type=None) if response.status == 200 else {}
                status = response.status
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
        return Finding(subject, FAILURE, redact(f"Freqtrade's API is unreachable: {type(error).__name__}: {error}"))
    if status == 401:
        return Finding(subject, FAILURE, "Freqtrade refused the username and password")
    if status != 200:
        return Finding(subject, FAILURE, f"Freqtrade's API answered HTTP {status}")
    return Finding(subject, OK, f"Freqtrade answers: bot {reply.get('bot_name', '?')}, state {reply.get('state', '?')}")


async def alert_channels(settings: Settings) -> list[Finding]:
    """Send a test message through each Apprise channel: proves its URL, its secrets and the path to it."""
    if not settings.alerts.apprise:
        return []
    from riskd.channels import channels, notify  # Apprise is only loaded when a channel is configured

    try:
        configured = channels(settings.alerts)
    except ConfigError as error:
        return [Finding("alerts", FAILURE, str(error))]
    findings = []
    for channel in configured:
        problem = await notify(channel, "riskd check", CHECK_MESSAGE, Severity.INFO, settings.alerts.timeout.total_seconds())
        if problem is None:
            findings.append(Finding(channel.label, OK, "a test message was delivered"))
        else:
            findings.append(Finding(channel.label, FAILURE, f"a test message could not be delivered: {problem}"))
    return findings


CHECK_MESSAGE = "riskd check: this channel reaches you. riskd's alerts will come here."


def env_file_permissions(path: Path) -> Finding:
    mode = path.stat().st_mode & 0o777
    subject = f"env file {path}"
    if mode & 0o004:
        advice = "chmod 640 it (owner root, group riskd)"
        return Finding(subject, WARNING, f"readable by every user on this machine (mode {mode:04o}); {advice}")
    if mode & 0o022:
        return Finding(subject, WARNING, f"writable by others than its owner (mode {mode:04o}); chmod 640 it")
    return Finding(subject, OK, f"mode {mode:04o}, not readable by other users")


async def telegram(settings: Settings) -> Finding:
    """Ask the Bot API who the bot is: proves the network path and the token."""
    configured = getattr(settings, "telegram", None)
    token = getattr(configured, "token", None)
    if token is None:
        return Finding("telegram", WARNING, "not configured: alerts only reach the log (set RISKD_TELEGRAM__TOKEN)")
    register(token.get_secret_value())
    url = f"{configured.base_url}{token.get_secret_value()}/getMe"  # base_url ends in /bot, as python-telegram-bot has it
    limit = getattr(configured, "timeout", None)
    try:
        timeout = aiohttp.ClientTimeout(total=limit.total_seconds() if limit else 10)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            reply = await response.json(content_type=None) if response.status == 200 else {}
            status = response.status
    except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
        return Finding("telegram", FAILURE, redact(f"the Bot API is unreachable: {type(error).__name__}: {error}"))
    if status in (401, 404):
        return Finding("telegram", FAILURE, "the bot token was refused; check RISKD_TELEGRAM__TOKEN")
    if status != 200 or not reply.get("ok"):
        return Finding("telegram", FAILURE, f"the Bot API answered HTTP {status}")
    return Finding("telegram", OK, f"reachable, bot @{reply.get('result', {}).get('username', '?')}")
