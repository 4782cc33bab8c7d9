"""What a person can ask of riskd, independent of how they ask.

`CATALOGUE` names each command every transport offers, once: its arguments, its help
text, whether it asks for confirmation and how its result is shown. The CLI's argparse
and Telegram's menu and /help are built from it. The CLI (and any other transport) only
parses and formats; the functions here check the request, record it and return data,
or raise `Refusal` with a sentence to show. Control commands reach a running daemon
through the database's commands table, so they need no open port: the daemon picks
them up within about a second.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Mapping

from riskd import wording
from riskd.breakers import BreakerConfig, breaker_of
from riskd.breakers.base import LEVEL_SEPARATOR, base_name
from riskd.config import PORTFOLIO, Settings
from riskd.domain import Command, CommandKind, CommandStatus, EventKind, LimitOverride, Position, Reading, TradingState, utcnow
from riskd.store import ActionRecord, CommandRecord, EventRecord, Store, StoredState

if TYPE_CHECKING:
    from riskd.analytics import Figures
    from riskd.report import MarketRisk

COMMAND_LIFETIME = timedelta(minutes=5)
"""A queued command older than this is refused rather than carried out late."""

OVERRIDE_LONGEST = timedelta(days=7)
"""An override lasts at most this long: a limit changed for longer belongs in the configuration."""


class Refusal(Exception):
    """The request cannot be carried out; the message says why in words."""


# --- the catalogue ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Argument:
    """Something a command takes: its name in usage lines, what it means, whether it must be given."""

    name: str
    help: str
    required: bool = False

    @property
    def usage(self) -> str:
        return self.name if self.required else f"[{self.name}]"


class Shown(StrEnum):
    """How a command's result is shown."""

    ACCOUNTS = "accounts"  # each account's state, figures and breakers
    EVENTS = "events"  # the most recent events
    REPORT = "report"  # the day report
    OUTCOME = "outcome"  # a control command: per account, done, refused, or still queued


@dataclass(frozen=True, slots=True)
class Verb:
    """One command every transport offers, defined once."""

    name: str
    summary: str
    shown: Shown
    arguments: tuple[Argument, ...] = ()
    destructive: bool = False  # asks for confirmation before anything is done

    @property
    def help(self) -> str:
        return f"{self.summary} (asks to confirm)" if self.destructive else self.summary

    @property
    def usage(self) -> str:
        """The arguments as a usage line writes them: `[ACCOUNT] [reason]`."""
        return " ".join(argument.usage for argument in self.arguments)

    @property
    def kind(self) -> CommandKind | None:
        """The control command the daemon carries out, for a command that changes something."""
        return CommandKind(self.name) if self.shown is Shown.OUTCOME else None


ACCOUNT = Argument("ACCOUNT", "the account; every account when left out")
REASON = Argument("reason", "why, for the record")
COUNT = Argument("N", "how many, at most 200")
PERCENT = Argument("PERCENT", "such as 25%", required=True)
BREAKER = Argument("BREAKER", "the breaker, such as daily_loss (a ladder's level 2: daily_loss.2)", required=True)
LIMIT = Argument("LIMIT", "the limit for the while, written as in config.yaml: 8% or 800USDT", required=True)
LASTING = Argument("DURATION", "how long, such as 2h; at most 7d", required=True)

CATALOGUE = (
    Verb("status", "every account, then the portfolio: state, equity, day PnL, drawdown and breakers", Shown.ACCOUNTS),
    Verb("events", "the most recent events: warnings, breaches, actions, commands", Shown.EVENTS, (COUNT,)),
    Verb("report", "today and this week: equity, PnL, drawdown, exposure, VaR, correlation, stress, breaches", Shown.REPORT),
    Verb("freeze", "halt trading: cancel open orders, refuse new exposure", Shown.OUTCOME, (ACCOUNT, REASON)),
    Verb("resume", "make a halted or reducing account active again", Shown.OUTCOME, (ACCOUNT,)),
    Verb(
        "flatten", "cancel every order, close every position, halt", Shown.OUTCOME, (ACCOUNT, REASON), destructive=True,
    ),
    Verb(
        "reduce", "reduce every position by a percentage", Shown.OUTCOME,
        (Argument("ACCOUNT", "the account", required=True), PERCENT),
        destructive=True,
    ),
    Verb(
        "override", "change one breaker's limit for a while; it reverts by itself, announced", Shown.OUTCOME,
        (Argument("ACCOUNT", "the account", required=True), BREAKER, LIMIT, LASTING, REASON),
        destructive=True,
    ),
)
VERBS = {verb.name: verb for verb in CATALOGUE}


# --- the commands ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """One account as the daemon last saw it."""

    account: str
    exchange: str
    live: bool
    trading_state: TradingState
    reason: str
    since: datetime | None
    updated_at: datetime | None
    equity: float | None
    peak_equity: float | None
    day_start_equity: float | None
    quote: str
    readings: list[Reading] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    day_start: datetime | None = None

    @property
    def drawdown(self) -> float | None:
        if self.equity is None or not self.peak_equity:
            return None
        return max(0.0, (self.peak_equity - self.equity) / self.peak_equity)

    @property
    def day_pnl(self) -> float | None:
        if self.equity is None or self.day_start_equity is None:
            return None
        return self.equity - self.day_start_equity


def resolve_accounts(settings: Settings, account: str | None) -> list[str]:
    """The named account, or every account when none is named."""
    if account is None:
        return list(settings.accounts)
    if account == PORTFOLIO and settings.portfolio is not None:
        raise Refusal(f"{PORTFOLIO} takes only resume; name an account, or none for every account")
    if account not in settings.accounts:
        raise Refusal(f"no account named {account!r}; known: {', '.join(settings.accounts)}")
    return [account]


def status(store: Store, settings: Settings, account_name: str | None = None) -> list[AccountStatus]:
    """Every account as last seen, or only the named one (`positions`, `breakers`)."""
    result = []
    for name in resolve_accounts(settings, account_name):
        account = settings.accounts[name]
        snapshot = store.latest_snapshot(name)
        positions = store.positions_of(snapshot.id) if snapshot else []
        result.append(as_seen(store.stored_state(name), settings, account.exchange, account.quote, positions))
    return result


def overview(store: Store, settings: Settings) -> list[AccountStatus]:
    """Every account as last seen, then the portfolio as last judged when `portfolio:` is
    configured (`status`): its state, summed figures in its currency, and its breakers."""
    accounts = status(store, settings)
    if settings.portfolio is None:
        return accounts
    exchange = f"sum of {', '.join(settings.accounts)}"
    summed = as_seen(store.stored_state(PORTFOLIO), settings, exchange, settings.portfolio.currency)
    return [*accounts, summed]


def as_seen(
    stored: StoredState, settings: Settings, exchange: str, quote: str, positions: list[Position] | None = None
) -> AccountStatus:
    """An account's (or the portfolio's) stored state as `status` shows it."""
    state = stored.state
    return AccountStatus(
        account=state.account,
        exchange=exchange,
        live=settings.live,
        trading_state=state.trading_state,
        reason=state.reason,
        since=state.since,
        updated_at=stored.updated_at,
        equity=state.last_equity,
        peak_equity=state.peak_equity,
        day_start_equity=state.day_start_equity,
        quote=quote,
        readings=list(stored.readings),
        positions=positions or [],
        day_start=state.day_start,
    )


def submit(
    store: Store,
    settings: Settings,
    kind: CommandKind,
    account: str | None,
    source: str,
    who: str,
    now: datetime,
    reason: str = "",
    fraction: float | None = None,
    override: LimitOverride | None = None,
) -> list[int]:
    """Queue a control command for the daemon, one row per account; returns the row ids."""
    if kind is CommandKind.REDUCE and not (fraction and 0 < fraction <= 1):
        raise Refusal("reduce needs a fraction above 0% and at most 100%, such as 25%")
    if kind is CommandKind.RESUME and account == PORTFOLIO and settings.portfolio is not None:
        return [store.submit_command(Command(kind, PORTFOLIO, source, who, reason), now)]  # the portfolio's own latches
    names = resolve_accounts(settings, account)
    if kind is CommandKind.OVERRIDE:
        if override is None:
            raise Refusal("override needs a breaker, a limit and a duration, such as daily_loss 8% 2h")
        for name in names:
            overriding(settings, name, override)
    return [store.submit_command(Command(kind, name, source, who, reason, fraction, override), now) for name in names]


def overriding(settings: Settings, account: str, override: LimitOverride) -> tuple[str, str]:
    """The limit an override replaces and the one it sets, in words; raises Refusal when the
    breaker is not in force for the account, the limit is not one it takes, or the duration is too long."""
    configs = settings.breakers_for(account)
    if override.breaker not in configs:
        raise Refusal(f"{account} has no breaker {override.breaker!r} in force; it has: {', '.join(configs)}")
    if not timedelta(0) < override.lasting <= OVERRIDE_LONGEST:
        raise Refusal("an override lasts more than no time and at most 7d; change config.yaml for longer")
    config = configs[override.breaker]
    try:
        new = config.with_limit(override.limit)
    except ValueError as error:
        raise Refusal(f"{override.breaker}: {error}") from None
    if new.currency is not None and new.currency != settings.accounts[account].quote:
        raise Refusal(f"{account} counts in {settings.accounts[account].quote}, not {new.currency}")
    describe = breaker_of(override.breaker).describe
    _in_ladder_order(configs, override.breaker, new, describe)
    return config.describer(describe)(config.limit), new.describer(describe)(new.limit)


def _in_ladder_order(configs: Mapping[str, BreakerConfig], breaker: str, new: BreakerConfig, describe) -> None:
    """Refuse a level's new limit that would pass a neighbouring level of its ladder written in
    the same unit: the milder level would no longer trip first (the rule `ladder` applies to config.yaml)."""
    def number(name: str) -> int:
        return int(name.rpartition(LEVEL_SEPARATOR)[2]) if LEVEL_SEPARATOR in name else 1

    ladder = sorted((name for name in configs if base_name(name) == base_name(breaker)), key=number)
    same_unit = [name for name in ladder if name == breaker or configs[name].currency == new.currency]
    at = same_unit.index(breaker)

    def worse(value: float, than: float) -> bool:
        return value > than if new.higher_is_worse else value < than

    def refuse(other: str, later: bool) -> None:
        limit = configs[other].describer(describe)(configs[other].limit)
        raise Refusal(wording.override_out_of_ladder(breaker, new.describer(describe)(new.limit), other, limit, later))

    if at > 0 and not worse(new.limit, configs[same_unit[at - 1]].limit):
        refuse(same_unit[at - 1], later=False)
    if at + 1 < len(same_unit) and not worse(configs[same_unit[at + 1]].limit, new.limit):
        refuse(same_unit[at + 1], later=True)


def events(store: Store, settings: Settings, account: str | None = None, limit: int = 20) -> list[EventRecord]:
    """The most recent events, oldest first, of one account (or the portfolio) or all."""
    if not 1 <= limit <= 200:
        raise Refusal("the number of events must be between 1 and 200")
    if account is not None and not (account == PORTFOLIO and settings.portfolio is not None):
        resolve_accounts(settings, account)
    return store.events(account, limit)


@dataclass(frozen=True, slots=True)
class DayReport:
    """One account's trading day so far: its figures, and how many of each event and order."""

    status: AccountStatus
    day_start: datetime | None
    counts: dict[str, int] = field(default_factory=dict)
    figures: Figures | None = None
    market: MarketRisk | None = None
    history: tuple[tuple[datetime, float], ...] = ()
    """The last week's equity, oldest first: the week's PnL, maximum drawdown and the chart."""
    breaches: tuple[EventRecord, ...] = ()
    """The day's breach and state-change events, oldest first."""
    actions: tuple[ActionRecord, ...] = ()
    """The day's actions (orders, cancels), oldest first."""

    @property
    def week_pnl(self) -> float | None:
        if not self.history or self.status.equity is None:
            return None
        return self.status.equity - self.history[0][1]


def report(store: Store, settings: Settings, now: datetime | None = None) -> list[DayReport]:
    """Each account's day so far, with the risk figures of its last 24 hours of equity,
    what its open positions risk on the cached candles (VaR, correlation, stress) and
    what its open positions would be worth after sudden moves of the whole market."""
    from riskd import analytics, report as market  # pandas is loaded only when someone asks for a report

    now = now or utcnow()
    result = []
    for account in status(store, settings):
        since, held = account.day_start, account.positions
        today = [event for event in store.events(account.account, 200) if since and event.at >= since]
        result.append(
            DayReport(
                account,
                since,
                store.tally(account.account, since) if since else {},
                analytics.figures(store.equity_history(account.account, now - timedelta(days=1))),
                market.market_risk(store, settings, account.account, held, account.equity, now),
                tuple(store.equity_history(account.account, now - timedelta(days=7))),
                tuple(event for event in today if event.kind in (EventKind.BREACH, EventKind.STATE_CHANGE)),
                tuple(action for action in store.actions(account.account, 200) if since and action.at >= since),
            )
        )
    return result


async def wait_for(store: Store, ids: list[int], timeout: float = 5.0) -> list[CommandRecord]:
    """Wait until the daemon has handled the commands, or the timeout passes."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        rows = [store.command(command_id) for command_id in ids]
        if all(row.status is not CommandStatus.PENDING for row in rows) or asyncio.get_running_loop().time() >= deadline:
            return rows
        await asyncio.sleep(0.1)


def expired(given_at: datetime, now: datetime) -> bool:
    """Too old to carry out: given while riskd was not running (the daemon's queue, Telegram's backlog)."""
    return now - given_at > COMMAND_LIFETIME
