"""What riskd says to a person: alerts and command answers as Telegram HTML, and as text for the CLI.

Written for a person woken at 3 a.m.: which account, what happened in plain words
with numbers and units, what riskd did, and what they can do next. These are pure
functions from riskd's values to text, so they are tested without a bot. Every piece
of text that comes from elsewhere (alert texts, reasons, symbols, names) is escaped,
so a `<` in a reason cannot break a message or add markup to it. The terminal's
versions (`plain`, `status_table`, `events_table`) share the figures' formatting.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from typing import Callable, Iterable

from riskd import wording
from riskd.breakers import BREAKERS, BreakerConfig, breaker_of
from riskd.commands import AccountStatus, DayReport
from riskd.domain import CommandKind, EventKind, LimitOverride, Reading, Severity, Status, TradingState, alert_kind
from riskd.store import EventRecord, OutboxAlert
from riskd.units import format_duration, format_money, format_percent

LIMIT = 4096
"""Telegram's longest message, in characters."""

LATE_AFTER = timedelta(seconds=60)
"""An alert delivered later than this after it was raised says when it was raised."""

MARKS = {Severity.INFO: "ℹ️", Severity.WARNING: "⚠️", Severity.CRITICAL: "🚨", Severity.EMERGENCY: "🆘"}
KIND_MARKS = {
    EventKind.BREACH: "🚨",
    EventKind.WARNING: "⚠️",
    EventKind.CLEAR: "✅",
    EventKind.CREDENTIALS_REFUSED: "🔑",
    EventKind.ENFORCE: "🛑",
    EventKind.ACTION_UNCONFIRMED: "🆘",
    EventKind.STRANGER: "🚫",
}
"""The mark in front of an alert's words, by what the alert is about."""
STATUS_MARKS = {Status.OK: "✅", Status.WARNING: "⚠️", Status.BREACHED: "🔴", Status.NO_DATA: "❔"}

_CODE = re.compile(r"`([^`\n]+)`")


def escape(text: object) -> str:
    return html.escape(str(text), quote=False)


def plain(text: str) -> str:
    """The same message for a terminal: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def fit(text: str) -> str:
    """Cut a message to Telegram's limit at a line break, saying that it was cut."""
    if len(text) <= LIMIT:
        return text
    cut = text.rfind("\n", 0, LIMIT - 40)
    return text[: cut if cut > 0 else LIMIT - 40] + "\n… (cut: too long for one message)"


def when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


# --- alerts ----------------------------------------------------------------------


def alert(outbox: OutboxAlert, now: datetime) -> str:
    """One alert of the outbox as a message: a header naming the account, the alert's words, late notice, next steps."""
    severity, account, at = outbox.severity, outbox.account, outbox.at
    header = f"{MARKS[severity]} <b>{severity.upper()}</b>" + (f" · <b>{escape(account)}</b>" if account else "")
    lines = [header]
    if now - at > LATE_AFTER:
        lines.append(f"⏱ <i>Delivered late: this was raised at {when(at)}, {format_duration(now - at)} ago.</i>")
    kind = alert_kind(outbox.key)
    mark = f"{KIND_MARKS[kind]} " if kind in KIND_MARKS else ""
    lines.append(mark + _code(escape(outbox.text[:3000])))
    hint = next_steps(kind, account)
    if hint:
        lines.append(f"<i>Next:</i> {hint}")
    return fit("\n".join(lines))


def next_steps(kind: EventKind | None, account: str) -> str:
    """The commands that help with this kind of alert."""
    target = f" {escape(account)}" if account else ""
    steps = {
        EventKind.BREACH: f"/breakers{target} to see every limit · /positions{target} · /flatten{target} to close everything",
        EventKind.WARNING: f"/breakers{target} · /freeze{target} to stop new trading now · /mute 1h to silence warnings",
        EventKind.ENFORCE: f"/positions{target} · /events to see what riskd did",
        EventKind.ACTION_UNCONFIRMED: f"check the exchange now · /positions{target} · /flatten{target} to try again",
        EventKind.STATE_CHANGE: f"/status · /breakers{target}",
        EventKind.STRANGER: "/events · check telegram.chat_ids and telegram.user_ids",
    }
    return steps.get(kind, "") if kind is not None else ""


def _code(text: str) -> str:
    """What `wording.code` marked as a command, shown as Telegram code."""
    return _CODE.sub(r"<code>\1</code>", text)


# --- answers to commands -----------------------------------------------------------


def status(accounts: Iterable[AccountStatus], now: datetime) -> str:
    """Every account: mode, state, equity, day PnL, drawdown, breakers near or over limits."""
    return fit("\n\n".join(_account_status(account, now) for account in accounts) or "No account configured.")


def _account_status(account: AccountStatus, now: datetime) -> str:
    lines = [f"<b>{escape(account.account)}</b> · {escape(account.exchange)} · {wording.mode_name(account.live)}"]
    since = f" since {when(account.since)}" if account.since else ""
    lines.append(f"State: <b>{account.trading_state.upper()}</b>{since}")
    if _why(account):
        lines.append(f"Why: {escape(account.reason)}")
    if account.updated_at is None:
        lines.append("No tick recorded yet: riskd has not read this account.")
        return "\n".join(lines)
    lines.append(f"Equity {_money(account.equity, account.quote)} · day PnL {_day_pnl(account)} · drawdown {_drawdown(account)}")
    watched = [reading for reading in account.readings if reading.status is not Status.OK]
    lines.extend(f"{STATUS_MARKS[reading.status]} {_reading(reading)}" for reading in watched)
    if account.readings and not watched:
        lines.append("✅ every breaker within its limits")
    lines.append(f"Last read {format_duration(max(0.0, (now - account.updated_at).total_seconds()))} ago")
    return "\n".join(lines)


def status_table(accounts: Iterable[AccountStatus], now: datetime) -> str:
    """Every account for a terminal (`riskd status`): state, figures, every breaker, positions."""
    return "\n".join(_account_table(account, now) for account in accounts)


def _account_table(account: AccountStatus, now: datetime) -> str:
    since = f" since {account.since:%Y-%m-%d %H:%M:%S} UTC" if account.since else ""
    lines = [f"{account.account} ({account.exchange}, {wording.mode_name(account.live)}): {account.trading_state.upper()}{since}"]
    if _why(account):
        lines.append(f"  reason: {account.reason}")
    if account.updated_at is None:
        lines.append("  no tick recorded yet: is riskd running?")
        return "\n".join(lines)
    age = format_duration(max(0.0, (now - account.updated_at).total_seconds()))
    equity = format_money(account.equity, account.quote) if account.equity is not None else "unknown"
    lines.append(f"  equity {equity}   drawdown {_drawdown(account)}   day PnL {_day_pnl_text(account)}   last tick {age} ago")
    lines.append(f"  {'breaker':<34} {'value':>10} {'limit':>10}  status")
    for reading in account.readings:
        describe = describer(reading)
        value = describe(reading.value) if reading.value is not None else "-"
        lines.append(f"  {reading.key:<34} {value:>10} {describe(reading.limit):>10}  {reading.status.upper()}")
    for position in account.positions:
        lines.append(
            f"  position {position.key}: {position.side} {position.contracts:g}, "
            f"{format_money(position.notional, account.quote)}, uPnL {position.unrealized_pnl:+,.2f}"
        )
    return "\n".join(lines)


def _why(account: AccountStatus) -> bool:
    """Whether the account's reason is worth showing: it is not active, and there is one."""
    return bool(account.reason) and account.trading_state is not TradingState.ACTIVE


def positions(accounts: Iterable[AccountStatus]) -> str:
    blocks = []
    for account in accounts:
        lines = [f"<b>{escape(account.account)}</b>: {len(account.positions)} position(s)"]
        for position in account.positions:
            liquidation = position.liquidation_price
            lines.append(
                f"{escape(position.key)} {escape(position.side)} {position.contracts:g}"
                f" · {_money(position.notional, account.quote)}"
                f" · uPnL {position.unrealized_pnl or 0:+,.2f} {escape(account.quote)}"
                + (f" · entry {position.entry_price:,.6g}" if position.entry_price else "")
                + (f" · mark {position.mark_price:,.6g}" if position.mark_price else "")
                + (f" · liq. {liquidation:,.6g}" if liquidation else "")
            )
        blocks.append("\n".join(lines))
    return fit("\n\n".join(blocks))


def breakers(accounts: Iterable[AccountStatus]) -> str:
    blocks = []
    for account in accounts:
        lines = [f"<b>{escape(account.account)}</b>: {account.trading_state.upper()}"]
        described = set()
        for reading in account.readings:
            lines.append(f"{STATUS_MARKS[reading.status]} {_reading(reading)}")
            if reading.breaker in BREAKERS and reading.breaker not in described:  # once per breaker
                described.add(reading.breaker)
                lines.append(f"    <i>{_code(escape(BREAKERS[reading.breaker].description))}</i>")
        if not account.readings:
            lines.append("no readings yet: riskd has not read this account")
        blocks.append("\n".join(lines))
    return fit("\n\n".join(blocks))


def events(records: Iterable[EventRecord]) -> str:
    lines = []
    for event in records:
        mark = MARKS.get(event.severity, "")
        breaker = f" [{escape(event.breaker)}]" if event.breaker else ""
        lines.append(
            f"{event.at:%H:%M:%S} {mark} <b>{escape(event.account)}</b> {escape(event.kind)}{breaker}: {escape(event.message)}"
        )
    return fit("\n".join(lines) if lines else "No events recorded yet.")


def events_table(records: Iterable[EventRecord]) -> str:
    """Events for a terminal (`riskd events`), one line each, oldest first."""
    lines = []
    for event in records:
        breaker = f" [{event.breaker}]" if event.breaker else ""
        lines.append(f"{event.at:%Y-%m-%dT%H:%M:%S}  {event.account:<12} {event.severity:<9} {event.kind}{breaker}: {event.message}")
    return "\n".join(lines) if lines else "no events recorded yet"


def report(reports: Iterable[DayReport], now: datetime) -> str:
    blocks = []
    for day in reports:
        account = day.status
        since = f"since {when(day.day_start)}" if day.day_start else "no day started yet"
        lines = [f"<b>{escape(account.account)}</b> · today, {since}"]
        if account.updated_at is None:
            lines.append("No tick recorded yet.")
            blocks.append("\n".join(lines))
            continue
        lines.append(f"Equity {_money(account.equity, account.quote)} (day start {_money(account.day_start_equity, account.quote)})")
        lines.append(f"Day PnL {_day_pnl(account)} · drawdown {_drawdown(account)} from peak {_money(account.peak_equity, account.quote)}")
        lines.append(f"State {account.trading_state.upper()} · {len(account.positions)} position(s)")
        counts = day.counts
        lines.append(
            f"Breaches {counts.get('breach', 0)} · warnings {counts.get('warning', 0)} · "
            f"commands {counts.get('command', 0)} · orders sent {counts.get('orders', 0)}"
            + (f" · orders not sent (dry-run) {counts['dry_run_orders']}" if counts.get("dry_run_orders") else "")
        )
        lines.extend(_risk_lines(day, account.quote))
        lines.extend(_market_lines(day, account.quote))
        blocks.append("\n".join(lines))
    return fit("\n\n".join(blocks) or "No account configured.")


def _risk_lines(day: DayReport, quote: str) -> list[str]:
    """The last 24 hours' risk figures of equity, where there is enough history."""
    lines, figures = [], day.figures
    if figures is not None and figures.samples:
        parts = [f"max drawdown {_percent(figures.max_drawdown)}"]
        if figures.volatility is not None:
            parts.append(f"daily volatility {_percent(figures.volatility)}")
        if figures.var_95 is not None:
            parts.append(f"5-min VaR(95%) {_percent(figures.var_95)}, ES {_percent(figures.expected_shortfall_95)}")
        lines.append(f"Last 24 h ({figures.samples} reads): " + " · ".join(parts))
    return lines


def _market_lines(day: DayReport, quote: str) -> list[str]:
    """The week, the positions' market risk, and the day's breaches and actions."""
    lines, market, equity = [], day.market, day.status.equity
    if day.week_pnl is not None and day.history and day.history[0][1]:
        from riskd.analytics import equity_series, max_drawdown  # loaded with the report already

        deepest = max_drawdown(equity_series(day.history))
        share = day.week_pnl / day.history[0][1]
        lines.append(f"Week PnL {day.week_pnl:+,.2f} {escape(quote)} ({share:+.1%}) · max drawdown {_percent(deepest)}")
    if market is None:
        return lines
    if market.exposures:
        held = " · ".join(f"{escape(symbol)} {value:+,.0f}" for symbol, value in sorted(market.exposures.items(), key=lambda item: -abs(item[1])))
        leverage = f"{market.leverage:.2f}x" if market.leverage is not None else "n/a"
        lines.append(f"Exposure {held} · gross {_money(market.gross, quote)} · leverage {leverage}")
    if market.risk is not None:
        risk, share = market.risk, (lambda value: f" ({value / equity:.1%})" if equity else "")
        days = f"{risk.horizon_days:g}-day"
        lines.append(
            f"{days} VaR {risk.confidence:.0%} ({risk.method.replace('_', ' ')}) {_money(risk.var, quote)}{share(risk.var)}"
            f" · ES {_money(risk.shortfall, quote)}{share(risk.shortfall)}"
        )
    elif market.exposures and market.missing:
        lines.append(f"VaR and correlation: cannot measure, {escape(market.missing)}")
    if market.correlation is not None:
        lines.append(f"Weighted correlation of the positions {market.correlation:.2f}")
    if market.stress:
        parts = [
            f"{escape(result.scenario)} {_money(-result.loss, quote)}" + (f" (worst {escape(result.worst_symbol)})" if result.worst_symbol else "")
            for result in market.stress
        ]
        lines.append("Stress: " + " · ".join(parts))
    for event in day.breaches[-5:]:
        lines.append(f"{event.at:%H:%M} {escape(event.kind)}: {escape(event.message)}")
    if day.actions:
        kinds: dict[str, int] = {}
        for action in day.actions:
            kinds[action.kind] = kinds.get(action.kind, 0) + 1
        lines.append("Actions today: " + " · ".join(f"{escape(kind)} ×{count}" for kind, count in sorted(kinds.items())))
    return lines


def _percent(value: float | None) -> str:
    return f"{value * 100:.2f}%" if value is not None else "n/a"


def target(account: str | None, accounts: Iterable[str]) -> str:
    """Whom a command is for: the named account, or every account, named."""
    return account or f"every account ({', '.join(accounts)})"


def question(
    kind: CommandKind, target: str, live: bool, fraction: float | None = None, override: LimitOverride | None = None
) -> str:
    """The one confirmation question of a destructive command (`plain` makes it a terminal prompt)."""
    mode = f"{wording.mode(live)}."
    if kind is CommandKind.OVERRIDE and override is not None:
        return (
            f"⚠️ Set <b>{escape(override.breaker)}</b>'s limit of <b>{escape(target)}</b> to {escape(override.limit)} "
            f"for {format_duration(override.lasting)}? The change is announced, and reverts by itself when the time is up."
        )
    if kind is CommandKind.REDUCE:
        return (
            f"⚠️ Reduce every position of <b>{escape(target)}</b> by {format_percent(fraction)}? "
            f"riskd sends reduce-only market orders and the account becomes reducing. {mode}"
        )
    return (
        f"🛑 Flatten <b>{escape(target)}</b>? riskd cancels every open order, closes every "
        f"position with reduce-only market orders and halts trading until it is resumed. {mode}"
    )


def command_list(commands: Iterable[tuple[str, str]]) -> str:
    """The command list from (usage, summary) pairs."""
    lines = ["<b>riskd commands</b>"]
    lines.extend(f"{escape(usage)} — {escape(summary)}" for usage, summary in commands)
    lines.append("ACCOUNT may be left out (or written all) to mean every account.")
    return "\n".join(lines)


# --- figures -----------------------------------------------------------------------


def _money(value: float | None, quote: str) -> str:
    return escape(format_money(value, quote)) if value is not None else "unknown"


def _day_pnl(account: AccountStatus) -> str:
    return escape(_day_pnl_text(account))


def _day_pnl_text(account: AccountStatus) -> str:
    if account.day_pnl is None or not account.day_start_equity:
        return "n/a"
    share = account.day_pnl / account.day_start_equity * 100
    return f"{account.day_pnl:+,.2f} {account.quote} ({share:+.1f}%)"


def _drawdown(account: AccountStatus) -> str:
    return format_percent(account.drawdown) if account.drawdown is not None else "n/a"


def limits(configs: dict[str, BreakerConfig]) -> list[str]:
    """The limits in force, one line per breaker (a ladder's levels each on their own), for `riskd check`."""
    lines = []
    for name, config in configs.items():
        breaker = breaker_of(name)
        describe = config.describer(breaker.describe if breaker is not None else str)
        resume = config.resume if isinstance(config.resume, str) else format_duration(config.resume)
        action = f"{config.action} {format_percent(config.reduce_by)}" if config.action == "reduce" else str(config.action)
        warn = f"warns at {describe(config.warning_level)}, " if config.warning_level != config.limit else ""
        lines.append(f"{name}: {describe(config.limit)} → {action} ({warn}confirm {config.confirm}, resume {resume})")
    return lines


def describer(reading: Reading) -> Callable[[float], str]:
    """How the reading's breaker writes its values (a limit of 0.1 is `10.0%` or `0.1x`;
    one written in money, `500.00 USDT`); a ladder's level writes them as its breaker does."""
    if reading.currency is not None:
        currency = reading.currency
        return lambda value: format_money(value, currency)
    breaker = breaker_of(reading.breaker)
    return breaker.describe if breaker is not None else str


def _reading(reading: Reading) -> str:
    describe = describer(reading)
    value = describe(reading.value) if reading.value is not None else "no data"
    return f"{escape(reading.key)} {escape(value)} (limit {escape(describe(reading.limit))}): {reading.status.upper().replace('_', ' ')}"
