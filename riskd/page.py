"""The status page at `/`: every account on one screen, read-only, refreshing itself.

Why: a person who opens a browser should see at a glance what riskd sees: each
account's state and why, its breakers against their limits, its positions, what
happened lately and how equity moved. The page is rendered here, as a pure function
of values, into one HTML document with inline CSS and an inline SVG chart: no script,
no external asset, nothing to load but the page itself, and no way to change anything
from it. It reloads itself (`<meta http-equiv="refresh">`) every few seconds.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Mapping, Sequence

from riskd.commands import AccountStatus
from riskd.messages import describer
from riskd.domain import Status, TradingState
from riskd.store import EventRecord
from riskd.units import format_duration, format_money, format_percent

CHART_POINTS = 300
"""The most points the equity chart draws: a day of 10 s ticks is thinned to this many."""

WIDTH, HEIGHT = 640, 160

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d1d1f;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .2em}h2{font-size:1.15em;margin:0}h3{font-size:1em;margin:1em 0 .3em}
.muted{color:#6e6e73}.account{background:#fff;border:1px solid #ddd;border-radius:8px;padding:1em;margin:1em 0}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.2em .6em;border-bottom:1px solid #eee}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.state{display:inline-block;padding:.1em .6em;border-radius:1em;color:#fff;font-weight:600}
.active{background:#2e7d32}.reducing{background:#ef6c00}.halted{background:#c62828}
.ok{color:#2e7d32}.warning{color:#ef6c00}.breached{color:#c62828;font-weight:600}.no_data{color:#6e6e73}
svg{background:#fff;border:1px solid #eee}
"""


def render(
    accounts: Sequence[AccountStatus],
    events: Sequence[EventRecord],
    equity: Mapping[str, Sequence[tuple[datetime, float]]],
    now: datetime,
    refresh_seconds: int,
) -> str:
    """The whole page: a header, one section per account, then the latest events."""
    mode = "live" if accounts and accounts[0].live else "dry-run: nothing is sent to the exchange"
    sections = "".join(_account(account, equity.get(account.account, ()), now) for account in accounts)
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="refresh" content="{refresh_seconds}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'  # no favicon request, hence no 404 in the console
        f"<title>riskd · {_count(len(accounts), 'account')}</title><style>{STYLE}</style></head><body>"
        f"<h1>riskd</h1><p class=muted>{escape(mode)} · as of {now:%Y-%m-%d %H:%M:%S} UTC · "
        f"refreshes every {refresh_seconds}s · read-only</p>"
        f"{sections}{_events(events)}</body></html>"
    )


def _account(account: AccountStatus, history: Sequence[tuple[datetime, float]], now: datetime) -> str:
    state = account.trading_state
    why = f" — {escape(account.reason)}" if account.reason and state is not TradingState.ACTIVE else ""
    since = f" since {account.since:%Y-%m-%d %H:%M} UTC" if account.since and state is not TradingState.ACTIVE else ""
    quote = account.quote
    figures = [
        f"equity {_money(account.equity, quote)}",
        f"drawdown {format_percent(account.drawdown) if account.drawdown is not None else '-'}",
        f"day PnL {_money(account.day_pnl, quote)}",
        f"last tick {format_duration(now - account.updated_at)} ago" if account.updated_at else "no tick yet",
    ]
    return (
        f'<section class=account id="account-{escape(account.account)}">'
        f'<h2>{escape(account.account)} <span class="state {state}">{state}</span></h2>'
        f"<p>{escape(account.exchange)}{why}{escape(since)}</p><p class=muted>{' · '.join(map(escape, figures))}</p>"
        f"<h3>Breakers</h3>{_breakers(account)}<h3>Positions</h3>{_positions(account)}"
        f"<h3>Equity</h3>{chart(history, quote)}</section>"
    )


def _breakers(account: AccountStatus) -> str:
    if not account.readings:
        return "<p class=muted>no reading yet</p>"
    rows = []
    for reading in account.readings:
        describe = describer(reading)  # money in its currency, a ladder's level as its breaker
        value = describe(reading.value) if reading.value is not None else "no data"
        rows.append(
            f"<tr><td>{escape(reading.key)}</td><td class=n>{escape(value)}</td><td class=n>{escape(describe(reading.limit))}</td>"
            f"<td class={reading.status}>{_status(reading.status)}</td><td class=muted>{escape(reading.reason)}</td></tr>"
        )
    head = "<tr><th>breaker</th><th class=n>value</th><th class=n>limit</th><th>status</th><th>why</th></tr>"
    return f"<table class=breakers>{head}{''.join(rows)}</table>"


def _status(status: Status) -> str:
    return {Status.NO_DATA: "no data"}.get(status, str(status))


def _positions(account: AccountStatus) -> str:
    if not account.positions:
        return "<p class=muted>no open position</p>"
    quote = account.quote
    rows = "".join(
        f"<tr><td>{escape(position.key)}</td><td>{position.side}</td><td class=n>{position.contracts:g}</td>"
        f"<td class=n>{_money(position.notional, quote)}</td><td class=n>{_money(position.unrealized_pnl, quote)}</td>"
        f"<td class=n>{_price(position.entry_price)}</td><td class=n>{_price(position.mark_price)}</td>"
        f"<td class=n>{_price(position.liquidation_price)}</td></tr>"
        for position in account.positions
    )
    head = (
        "<tr><th>position</th><th>side</th><th class=n>size</th><th class=n>value</th><th class=n>unrealized</th>"
        "<th class=n>entry</th><th class=n>mark</th><th class=n>liquidation</th></tr>"
    )
    return f"<table class=positions>{head}{rows}</table>"


def chart(history: Sequence[tuple[datetime, float]], quote: str) -> str:
    """Equity over time as an inline SVG line, with its lowest and highest values written on it."""
    if len(history) < 2:
        return "<p class=muted>not enough history for a chart yet</p>"
    step = max(1, len(history) // CHART_POINTS)
    points = list(history[::step])
    if points[-1] != history[-1]:
        points.append(history[-1])
    start, end = points[0][0], points[-1][0]
    low, high = min(value for _, value in points), max(value for _, value in points)
    span_time = (end - start).total_seconds() or 1.0
    span_value = (high - low) or 1.0
    margin = 20
    coordinates = " ".join(
        f"{margin + (moment - start).total_seconds() / span_time * (WIDTH - 2 * margin):.1f},"
        f"{HEIGHT - margin - (value - low) / span_value * (HEIGHT - 2 * margin):.1f}"
        for moment, value in points
    )
    return (
        f'<svg class=equity role=img viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" height="{HEIGHT}" '
        f'aria-label="equity from {start:%H:%M} to {end:%H:%M} UTC">'
        f'<polyline fill=none stroke="#1565c0" stroke-width=1.5 points="{coordinates}"/>'
        f'<text x=4 y=14 font-size=11 fill="#6e6e73">{escape(_money(high, quote))}</text>'
        f'<text x=4 y={HEIGHT - 4} font-size=11 fill="#6e6e73">{escape(_money(low, quote))}</text>'
        f'<text x={WIDTH - 4} y={HEIGHT - 4} font-size=11 fill="#6e6e73" text-anchor=end>{start:%H:%M}–{end:%H:%M} UTC</text>'
        "</svg>"
    )


def _events(events: Sequence[EventRecord]) -> str:
    if not events:
        return "<h3>Recent events</h3><p class=muted>none yet</p>"
    rows = "".join(
        f"<tr><td>{event.at:%m-%d %H:%M:%S}</td><td>{escape(event.account or 'riskd')}</td><td>{event.kind}</td>"
        f"<td class={event.severity}>{event.severity}</td><td>{escape(event.message)}</td></tr>"
        for event in reversed(events)
    )
    head = "<tr><th>UTC</th><th>account</th><th>kind</th><th>severity</th><th>what</th></tr>"
    return f"<h3>Recent events</h3><table class=events>{head}{rows}</table>"


def _money(value: float | None, quote: str) -> str:
    return format_money(value, quote) if value is not None else "-"


def _price(value: float | None) -> str:
    return f"{value:,.6g}" if value else "-"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
