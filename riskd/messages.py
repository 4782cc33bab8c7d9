"""What riskd says on Telegram: alerts and command answers as Telegram HTML.

Written for a person woken at 3 a.m.: which account, what happened in plain words
with numbers and units, what riskd did, and what they can do next. These are pure
functions from riskd's values to text, so they are tested without a bot. Every piece
of text that comes from elsewhere (alert texts, reasons, symbols, names) is escaped,
so a `<` in a reason cannot break a message or add markup to it.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from typing import Iterable

from riskd.breakers import BREAKERS
from riskd.commands import AccountStatus, DayReport
from riskd.domain import Reading, Severity, Status
from riskd.units import format_duration, format_money, format_percent

LIMIT = 4096
"""Telegram's longest message, in characters."""

LATE_AFTER = timedelta(seconds=60)
"""An alert delivered later than this after it was raised says when it was raised."""

MARKS = {Severity.INFO: "ℹ️", Severity.WARNING: "⚠️", Severity.CRITICAL: "🚨", Severity.EMERGENCY: "🆘"}
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


def alert(row: dict, now: datetime) -> str:
    """One outbox row as a message: a header, the engine's words, late notice, next steps."""
    severity, account = Severity(row["severity"]), row["account"] or ""
    at = datetime.fromisoformat(row["at"])
    header = f"{MARKS[severity]} <b>{severity.upper()}</b>" + (f" · <b>{escape(account)}</b>" if account else "")
    lines = [header]
    if now - at > LATE_AFTER:
        lines.append(f"⏱ <i>Delivered late: this was raised at {when(at)}, {format_duration(now - at)} ago.</i>")
    text = (row["text"] or "").replace(f"[{account}] ", "", 1)  # the header names the account
    lines.append(_CODE.sub(r"<code>\1</code>", escape(text[:3000])))
    hint = next_steps(row.get("key") or "", account)
    if hint:
        lines.append(f"<i>Next:</i> {hint}")
    return fit("\n".join(lines))


def next_steps(key: str, account: str) -> str:
    """The commands that help with this kind of alert, named by its cooldown key."""
    kind, target = key.split(":", 1)[0], f" {escape(account)}" if account else ""
    steps = {
        "breach": f"/breakers{target} to see every limit · /positions{target} · /flatten{target} to close everything",
        "warning": f"/breakers{target} · /freeze{target} to stop new trading now · /mute 1h to silence warnings",
        "enforce": f"/positions{target} · /events to see what riskd did",
        "unconfirmed": f"check the exchange now · /positions{target} · /flatten{target} to try again",
        "state": f"/status · /breakers{target}",
        "stranger": "/events · check telegram.chat_ids and telegram.user_ids",
    }
    return steps.get(kind, "")


# --- answers to commands -----------------------------------------------------------


def status(accounts: Iterable[AccountStatus], now: datetime) -> str:
    """Every account: mode, state, equity, day PnL, drawdown, breakers near or over limits."""
    return fit("\n\n".join(_account_status(account, now) for account in accounts) or "No account configured.")


def _account_status(account: AccountStatus, now: datetime) -> str:
    mode = "LIVE" if account.live else "DRY-RUN"
    lines = [f"<b>{escape(account.account)}</b> · {escape(account.exchange)} · {mode}"]
    since = f" since {when(account.since)}" if account.since else ""
    lines.append(f"State: <b>{account.trading_state.upper()}</b>{since}")
    if account.reason and account.trading_state != "active":
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


def positions(accounts: Iterable[AccountStatus]) -> str:
    blocks = []
    for account in accounts:
        lines = [f"<b>{escape(account.account)}</b>: {len(account.positions)} position(s)"]
        for position in account.positions:
            liquidation = position.get("liquidation_price")
            lines.append(
                f"{escape(position['symbol'])} {escape(position['side'])} {position['contracts']:g}"
                f" · {_money(position['notional'], account.quote)}"
                f" · uPnL {position['unrealized_pnl'] or 0:+,.2f} {escape(account.quote)}"
                + (f" · entry {position['entry_price']:,.6g}" if position.get("entry_price") else "")
                + (f" · mark {position['mark_price']:,.6g}" if position.get("mark_price") else "")
                + (f" · liq. {liquidation:,.6g}" if liquidation else "")
            )
        blocks.append("\n".join(lines))
    return fit("\n\n".join(blocks))


def breakers(accounts: Iterable[AccountStatus]) -> str:
    blocks = []
    for account in accounts:
        lines = [f"<b>{escape(account.account)}</b>: {account.trading_state.upper()}"]
        lines.extend(f"{STATUS_MARKS[reading.status]} {_reading(reading)}" for reading in account.readings)
        if not account.readings:
            lines.append("no readings yet: riskd has not read this account")
        blocks.append("\n".join(lines))
    return fit("\n\n".join(blocks))


def events(rows: Iterable[dict]) -> str:
    lines = []
    for row in rows:
        mark = MARKS.get(row.get("severity"), "")
        breaker = f" [{escape(row['breaker'])}]" if row.get("breaker") else ""
        lines.append(
            f"{row['at'][11:19]} {mark} <b>{escape(row['account'])}</b> {escape(row['kind'])}{breaker}: {escape(row['message'])}"
        )
    return fit("\n".join(lines) if lines else "No events recorded yet.")


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
        lines.append(f"{event['at'][11:16]} {escape(event['kind'])}: {escape(event['message'])}")
    if day.actions:
        kinds: dict[str, int] = {}
        for action in day.actions:
            kinds[action["kind"]] = kinds.get(action["kind"], 0) + 1
        lines.append("Actions today: " + " · ".join(f"{escape(kind)} ×{count}" for kind, count in sorted(kinds.items())))
    return lines


def _percent(value: float | None) -> str:
    return f"{value * 100:.2f}%" if value is not None else "n/a"


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
    if account.day_pnl is None or not account.day_start_equity:
        return "n/a"
    share = account.day_pnl / account.day_start_equity * 100
    return f"{account.day_pnl:+,.2f} {escape(account.quote)} ({share:+.1f}%)"


def _drawdown(account: AccountStatus) -> str:
    return format_percent(account.drawdown) if account.drawdown is not None else "n/a"


def _reading(reading: Reading) -> str:
    describe = BREAKERS[reading.breaker].describe if reading.breaker in BREAKERS else str
    value = describe(reading.value) if reading.value is not None else "no data"
    return f"{escape(reading.key)} {escape(value)} (limit {escape(describe(reading.limit))}): {reading.status.upper().replace('_', ' ')}"
