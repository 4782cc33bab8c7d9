"""Risk figures from an equity history, checked against values worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from riskd.analytics import equity_series, figures, max_drawdown, returns, value_at_risk

START = datetime(2026, 3, 2, tzinfo=timezone.utc)


def history(values, every=timedelta(minutes=5)):
    return [(START + every * index, value) for index, value in enumerate(values)]


def test_max_drawdown_runs_from_the_running_peak_not_the_start():
    equity = equity_series(history([100, 120, 90, 110, 60, 130]))
    assert max_drawdown(equity) == pytest.approx(0.5)  # 120 → 60


def test_a_rising_account_has_no_drawdown_and_an_empty_one_none():
    assert max_drawdown(equity_series(history([100, 101, 102]))) == 0.0
    assert max_drawdown(equity_series([])) is None


def test_the_series_is_ordered_and_drops_duplicates_and_non_finite_values():
    points = [(START + timedelta(minutes=10), 3.0), (START, 1.0), (START, 2.0), (START + timedelta(minutes=5), float("nan"))]
    assert equity_series(points).tolist() == [2.0, 3.0]


def test_returns_are_taken_on_regular_steps():
    equity = equity_series(history([100, 110, 99], every=timedelta(minutes=5)))
    assert returns(equity, "5min").tolist() == pytest.approx([0.10, -0.10])


def test_value_at_risk_and_shortfall_are_the_historical_tail_as_losses():
    losses = np.linspace(-0.10, 0.09, 20)  # twenty returns from -10 % to +9 %
    var, shortfall = value_at_risk(pd.Series(losses))
    expected_cut = -np.quantile(losses, 0.05)
    assert var == pytest.approx(expected_cut)
    assert shortfall == pytest.approx(-losses[losses <= -expected_cut].mean())
    assert shortfall >= var


def test_value_at_risk_needs_enough_history():
    assert value_at_risk(returns(equity_series(history([100, 101, 102])), "5min")) == (None, None)


def test_figures_of_a_day_of_history():
    values = [10_000 * (1 + 0.001 * ((-1) ** index)) for index in range(288)]
    result = figures(history(values))
    assert result.samples == 288
    assert result.max_drawdown == pytest.approx(20 / 10_010)
    assert result.volatility == pytest.approx(np.std(returns(equity_series(history(values)), "5min"), ddof=1) * np.sqrt(288))
    assert result.var_95 is not None and result.var_95 > 0


def test_figures_of_nothing_say_nothing():
    result = figures([])
    assert result.samples == 0 and result.max_drawdown is None and result.var_95 is None
