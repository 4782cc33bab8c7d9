"""The daily report's chart: equity with its drawdowns shaded, exposure by symbol, VaR over time.

matplotlib is imported by this module only, and this module only when a chart is drawn,
so the daemon's memory budget holds until someone asks for one. It draws on a Figure
with the Agg canvas (no display, no pyplot state), so a daemon that draws every day
keeps nothing from one chart to the next.
"""

from __future__ import annotations

import io

from riskd.analytics import equity_series, rolling_value_at_risk
from riskd.commands import DayReport

SIZE = (10.0, 9.0)
DPI = 100
"""1000 × 900 pixels: readable on a phone, small enough for a Telegram photo."""


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
