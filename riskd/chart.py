"""The daily report's chart: equity with its drawdowns shaded, exposure by symbol, VaR over time.

matplotlib is imported by `render` only, on a Figure with the Agg canvas (no display, no
pyplot state). The daemon never draws in its own process: `drawn` builds the reports
and their charts in a fresh child process, so pandas and matplotlib (some 60 MB) never
weigh on the daemon's memory, and the drawing never holds up a tick.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from riskd.analytics import equity_series, rolling_value_at_risk
from riskd.commands import DayReport
from riskd.config import Settings

SIZE = (10.0, 9.0)
DPI = 100
"""1000 × 900 pixels: readable on a phone, small enough for a Telegram photo."""


@dataclass(frozen=True, slots=True)
class Drawn:
    """One account's report: its text (Telegram HTML) and its chart (PNG)."""

    account: str
    text: str
    chart: bytes


async def drawn(settings: Settings, now: datetime) -> list[Drawn]:
    """Every account's report and chart, made in a fresh process from the database."""
    fields = {name: getattr(settings, name) for name in Settings.model_fields}
    fields["accounts"] = {  # the report needs no credentials: they stay in this process
        name: account.model_copy(update={"api_key": None, "secret": None, "password": None})
        for name, account in settings.accounts.items()
    }
    fields["telegram"] = settings.telegram.model_copy(update={"token": None})
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, _draw, fields, now)
    finally:
        pool.shutdown(wait=False)


def _draw(fields: dict, now: datetime) -> list[Drawn]:
    """In the child process: the reports from the database, as text and charts."""
    from riskd import commands, messages
    from riskd.store import Store

    settings = Settings.model_construct(**fields)
    store = Store(settings.database)
    try:
        return [Drawn(day.status.account, messages.report([day], now), render(day)) for day in commands.report(store, settings, now)]
    finally:
        store.close()


def render(day: DayReport) -> bytes:
    """The PNG of one account's report."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    equity_axes, exposure_axes, var_axes = figure.subplots(3, 1, height_ratios=[3, 2, 2])
    quote = day.status.quote
    figure.suptitle(f"riskd · {day.status.account} · {day.status.trading_state}", fontsize=13)
    equity = equity_series(day.history)
    _equity(equity_axes, equity, quote)
    _exposure(exposure_axes, day, quote)
    _var(var_axes, day, equity)
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def _equity(axes, equity, quote: str) -> None:
    axes.set_title("Equity (last 7 days), drawdown from the running peak shaded", fontsize=10)
    if equity.empty:
        _nothing(axes, "no equity recorded yet")
        return
    peaks = equity.cummax()
    axes.plot(equity.index, equity.to_numpy(), color="#1f4e79", linewidth=1.4, label=f"equity ({quote})")
    axes.fill_between(equity.index, equity.to_numpy(), peaks.to_numpy(), color="#c0392b", alpha=0.3, label="drawdown")
    axes.legend(loc="upper left", fontsize=8)
    axes.grid(alpha=0.3)


def _exposure(axes, day: DayReport, quote: str) -> None:
    axes.set_title(f"Exposure by symbol ({quote}, short negative)", fontsize=10)
    exposures = day.market.exposures if day.market is not None else {}
    if not exposures:
        _nothing(axes, "no open positions")
        return
    ordered = sorted(exposures.items(), key=lambda item: abs(item[1]))
    values = [value for _, value in ordered]
    axes.barh([symbol for symbol, _ in ordered], values, color=["#27ae60" if value >= 0 else "#c0392b" for value in values])
    axes.axvline(0, color="black", linewidth=0.8)
    axes.grid(axis="x", alpha=0.3)


def _var(axes, day: DayReport, equity) -> None:
    axes.set_title("1-day VaR 95% of equity, from its 5-minute changes over the trailing 2 hours (% of equity)", fontsize=10)
    rolling = rolling_value_at_risk(equity, horizon="1D") if not equity.empty else None
    if rolling is None or rolling.empty:
        _nothing(axes, "not enough equity history yet")
        return
    axes.plot(rolling.index, rolling.to_numpy() * 100, color="#8e44ad", linewidth=1.2, label="from equity changes")
    risk = day.market.risk if day.market is not None else None
    if risk is not None and day.status.equity:
        share = risk.var / day.status.equity * 100
        label = f"positions now: {risk.horizon_days:g}-day VaR {risk.confidence:.0%} {share:.1f}%"
        axes.axhline(share, color="#e67e22", linestyle="--", linewidth=1, label=label)
    axes.legend(loc="upper left", fontsize=8)
    axes.grid(alpha=0.3)


def _nothing(axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="grey")
    axes.set_xticks([])
    axes.set_yticks([])
