"""Market-risk figures of the positions held now, each checked against an independent
computation on fixed data: scipy's quantiles and normal law, direct loops."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from riskd.analytics import (
    Book,
    average_correlation,
    book,
    correlation_matrix,
    drawdown_series,
    ewma_volatility,
    log_returns,
    realised_volatility,
    simple_returns,
    stress_test,
    value_at_risk_of,
    worst,
)
from riskd.candles import market_data
from tests.factories import position

MINUTE = 60_000
BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"


def candles(closes, start=0, every=MINUTE):
    return [(start + every * index, close, close, close, close, 1.0) for index, close in enumerate(closes)]


def walk(rng, steps, symbols=1, spread=0.001, start=100.0):
    returns = rng.normal(0.0, spread, (steps, symbols))
    return start * np.cumprod(1 + returns, axis=0)


@pytest.fixture
def prices():
    """Three correlated price paths of 600 one-minute candles, fixed by the seed."""
    rng = np.random.default_rng(42)
    common = rng.normal(0, 0.001, 600)
    paths = {}
    for symbol, loading, start in ((BTC, 1.0, 60_000.0), (ETH, 0.8, 3_000.0), (SOL, 0.3, 150.0)):
        own = rng.normal(0, 0.001, 600)
        paths[symbol] = start * np.cumprod(1 + loading * common + own)
    return paths


def market_of(paths, benchmark=None):
    return market_data({symbol: candles(closes) for symbol, closes in paths.items()}, MINUTE, benchmark)


# --- series ---------------------------------------------------------------------------


def test_returns_simple_and_log():
    prices = np.array([100.0, 110.0, 99.0])
    assert simple_returns(prices) == pytest.approx([0.10, -0.10])
    assert log_returns(prices) == pytest.approx([np.log(1.1), np.log(0.9)])


def test_realised_volatility_is_the_sample_deviation():
    values = np.random.default_rng(1).normal(0, 0.02, 500)
    assert realised_volatility(values) == pytest.approx(stats.tstd(values))
    assert realised_volatility(np.array([0.01])) is None


def test_ewma_volatility_against_the_riskmetrics_recursion():
    values = np.random.default_rng(2).normal(0, 0.01, 300)
    numerator = denominator = 0.0
    for value in values:  # the recursion, step by step, oldest first
        numerator = 0.94 * numerator + value * value
        denominator = 0.94 * denominator + 1.0
    assert ewma_volatility(values, 0.94) == pytest.approx(np.sqrt(numerator / denominator))


def test_ewma_weighs_the_latest_returns_more():
    calm_then_wild = np.concatenate([np.full(100, 0.001), np.full(10, 0.05)])
    assert ewma_volatility(calm_then_wild) > realised_volatility(calm_then_wild)


def test_drawdown_series_against_a_direct_loop():
    equity = np.random.default_rng(3).normal(0, 1, 400).cumsum() + 100
    expected, peak = [], -np.inf
    for value in equity:
        peak = max(peak, value)
        expected.append((peak - value) / peak)
    assert drawdown_series(equity) == pytest.approx(expected)
    assert drawdown_series(np.array([])).size == 0


def test_constant_prices_have_no_volatility_and_no_drawdown():
    flat = np.full(50, 100.0)
    assert realised_volatility(simple_returns(flat)) == 0.0
    assert ewma_volatility(simple_returns(flat)) == 0.0
    assert drawdown_series(flat).max() == 0.0


# --- the book -------------------------------------------------------------------------


def test_the_book_nets_positions_and_aligns_returns(prices):
    market = market_of(prices)
    held = book([position(BTC, notional=5_000), position(ETH, side="short", notional=2_000),
                 position(BTC, side="short", notional=1_000, position_side="SHORT")], market)
    assert held.symbols == (BTC, ETH)
    assert held.exposures.tolist() == [4_000.0, -2_000.0]
    assert held.samples == 599  # one return fewer than candles
    assert held.steps_per_day == 1440
    assert held.returns[:, 0] == pytest.approx(simple_returns(prices[BTC]))


def test_missing_candles_drop_the_returns_that_span_them(prices):
    gappy = {BTC: candles(prices[BTC]), ETH: [row for index, row in enumerate(candles(prices[ETH])) if index != 300]}
    held = book([position(BTC), position(ETH)], market_data(gappy, MINUTE))
    # ETH has no candle at 300: the returns into 300 and out of it are unknown, so both rows go.
    assert held.samples == 597
    assert held.returns[:, 1] == pytest.approx(np.delete(simple_returns(prices[ETH]), [299, 300]))


def test_a_symbol_without_market_data_is_reported_unpriced(prices):
    held = book([position(BTC), position("DOGE/USDT:USDT")], market_of(prices))
    assert held.symbols == (BTC,) and held.unpriced == ("DOGE/USDT:USDT",)


# --- VaR and ES -----------------------------------------------------------------------


def test_historical_var_and_es_against_scipy(prices):
    held = book([position(BTC, notional=5_000), position(ETH, side="short", notional=2_000)], market_of(prices))
    profits = (held.returns @ np.array([5_000.0, -2_000.0])) * np.sqrt(1440)
    for confidence in (0.95, 0.99):
        risk = value_at_risk_of(held, confidence, method="historical")
        cutoff = stats.scoreatpercentile(profits, 100 * (1 - confidence))
        assert risk.var == pytest.approx(-cutoff)
        assert risk.shortfall == pytest.approx(-profits[profits <= cutoff].mean())
        assert risk.shortfall >= risk.var


def test_parametric_var_and_es_against_the_normal_law(prices):
    weights = np.array([5_000.0, 2_000.0, 1_000.0])
    held = book([position(BTC, notional=5_000), position(ETH, notional=2_000), position(SOL, notional=1_000)], market_of(prices))
    covariance = np.cov(held.returns.T)
    for confidence, days in ((0.95, 1.0), (0.99, 1.0), (0.99, 10.0)):
        spread = np.sqrt(weights @ covariance @ weights * 1440 * days)
        risk = value_at_risk_of(held, confidence, days, method="parametric")
        assert risk.var == pytest.approx(stats.norm.ppf(confidence) * spread)
        assert risk.shortfall == pytest.approx(spread * stats.norm.pdf(stats.norm.ppf(confidence)) / (1 - confidence))


def test_monte_carlo_var_converges_to_the_parametric_one_for_normal_returns():
    rng = np.random.default_rng(7)
    factor = rng.normal(0, 0.002, 20_000)
    returns = np.column_stack([factor + rng.normal(0, 0.001, 20_000), 0.5 * factor + rng.normal(0, 0.002, 20_000)])
    held = Book((BTC, ETH), np.array([10_000.0, -4_000.0]), returns, 1440.0)
    parametric = value_at_risk_of(held, 0.99, method="parametric")
    simulated = value_at_risk_of(held, 0.99, method="monte_carlo", paths=400_000, seed=3)
    assert simulated.var == pytest.approx(parametric.var, rel=0.01)
    assert simulated.shortfall == pytest.approx(parametric.shortfall, rel=0.015)


def test_monte_carlo_is_seeded_and_defaults_to_ten_thousand_paths(prices):
    held = book([position(BTC), position(ETH)], market_of(prices))
    first = value_at_risk_of(held, method="monte_carlo", seed=11)
    assert first == value_at_risk_of(held, method="monte_carlo", seed=11)
    assert first != value_at_risk_of(held, method="monte_carlo", seed=12)


def test_student_t_keeps_the_spread_and_fattens_the_far_tail():
    rng = np.random.default_rng(8)
    held = Book((BTC,), np.array([10_000.0]), rng.normal(0, 0.001, (5_000, 1)), 1440.0)
    normal = value_at_risk_of(held, 0.999, method="monte_carlo", paths=200_000)
    fat = value_at_risk_of(held, 0.999, method="monte_carlo", paths=200_000, distribution="student_t", degrees_of_freedom=4)
    # Student-t with 4 degrees of freedom, scaled to unit variance, has this 99.9 % quantile:
    scaled = stats.t.ppf(0.999, 4) * np.sqrt(2 / 4)
    assert fat.var / normal.var == pytest.approx(scaled / stats.norm.ppf(0.999), rel=0.05)
    assert fat.var > normal.var


def test_bad_method_or_distribution_is_a_clear_error(prices):
    held = book([position(BTC)], market_of(prices))
    with pytest.raises(ValueError, match="method must be one of"):
        value_at_risk_of(held, method="guess")
    with pytest.raises(ValueError, match="distribution must be one of"):
        value_at_risk_of(held, method="monte_carlo", distribution="cauchy")


def test_one_asset_var_is_its_own_quantile(prices):
    held = book([position(BTC, notional=1_000)], market_of(prices))
    spread = stats.tstd(simple_returns(prices[BTC])) * 1_000 * np.sqrt(1440)
    assert value_at_risk_of(held, 0.95, method="parametric").var == pytest.approx(stats.norm.ppf(0.95) * spread)


@pytest.mark.parametrize("method", ["historical", "parametric", "monte_carlo"])
def test_zero_exposure_and_constant_prices_risk_nothing(prices, method):
    assert value_at_risk_of(book([], market_of(prices)), method=method).var == 0.0
    flat = market_of({BTC: np.full(100, 50_000.0), ETH: np.full(100, 3_000.0)})
    risk = value_at_risk_of(book([position(BTC), position(ETH)], flat), method=method)
    assert risk.var == 0.0 and risk.shortfall == 0.0


@pytest.mark.parametrize("method", ["historical", "parametric", "monte_carlo"])
def test_a_short_history_gives_a_figure_without_failing(method):
    held = book([position(BTC)], market_of({BTC: np.array([100.0, 101.0])}))
    assert held.samples == 1
    assert value_at_risk_of(held, method=method).var >= 0.0


# --- correlation ----------------------------------------------------------------------


def test_correlation_matrix_against_scipy(prices):
    held = book([position(BTC), position(ETH), position(SOL)], market_of(prices))
    matrix = correlation_matrix(held.returns)
    for i in range(3):
        for j in range(3):
            assert matrix[i, j] == pytest.approx(stats.pearsonr(held.returns[:, i], held.returns[:, j])[0])


def test_weighted_average_correlation_against_a_loop_over_pairs(prices):
    held = book([position(BTC, notional=5_000), position(ETH, side="short", notional=2_000),
                 position(SOL, notional=1_000)], market_of(prices))
    matrix = correlation_matrix(held.returns)
    total = weights = 0.0
    for i in range(3):
        for j in range(i + 1, 3):
            weight = abs(held.exposures[i] * held.exposures[j])
            total += weight * matrix[i, j] * np.sign(held.exposures[i] * held.exposures[j])
            weights += weight
    assert average_correlation(matrix, held.exposures) == pytest.approx(total / weights)


def test_a_long_and_a_short_on_the_same_move_is_a_hedge():
    returns = np.random.default_rng(5).normal(0, 0.01, (100, 1)) * np.ones((1, 2))
    assert average_correlation(correlation_matrix(returns), np.array([1_000.0, 1_000.0])) == pytest.approx(1.0)
    assert average_correlation(correlation_matrix(returns), np.array([1_000.0, -1_000.0])) == pytest.approx(-1.0)


def test_correlation_needs_two_exposed_symbols_and_ignores_constant_ones():
    assert average_correlation(np.eye(1), np.array([1_000.0])) is None
    assert average_correlation(np.eye(2), np.array([1_000.0, 0.0])) is None
    returns = np.column_stack([np.random.default_rng(6).normal(0, 0.01, 50), np.zeros(50)])
    assert correlation_matrix(returns).tolist() == [[1.0, 0.0], [0.0, 1.0]]


# --- stress ---------------------------------------------------------------------------


def test_market_moves_hit_longs_and_help_shorts(prices):
    held = book([position(BTC, notional=6_000), position(ETH, side="short", notional=2_000)], market_of(prices))
    results = {result.scenario: result for result in stress_test(held, 10_000.0)}
    for move in (-0.10, -0.20, -0.30):
        result = results[f"market {move:+.0%}"]
        assert result.loss == pytest.approx(-(6_000 - 2_000) * move)
        assert result.share == pytest.approx(result.loss / 10_000)
        assert result.worst_symbol == BTC and result.worst_loss == pytest.approx(-6_000 * move)


def test_flash_crash_moves_each_symbol_by_its_beta(prices):
    held = book([position(ETH, notional=2_000), position(SOL, notional=1_000)], market_of(prices, benchmark=BTC))
    benchmark = simple_returns(prices[BTC])
    betas = [stats.linregress(benchmark, simple_returns(prices[symbol])).slope for symbol in (ETH, SOL)]
    crash = next(result for result in stress_test(held, 10_000.0, flash_crash=-0.15) if result.scenario == "flash crash")
    assert crash.loss == pytest.approx(0.15 * (2_000 * betas[0] + 1_000 * betas[1]))
    assert crash.worst_symbol == ETH


def test_correlation_one_moves_everything_against_the_book(prices):
    held = book([position(BTC, notional=5_000), position(ETH, side="short", notional=1_000)], market_of(prices))
    spreads = [stats.tstd(simple_returns(prices[symbol])) * np.sqrt(1440) for symbol in (BTC, ETH)]
    z = stats.norm.ppf(0.99)
    result = next(r for r in stress_test(held, 10_000.0) if r.scenario == "correlation 1")
    assert result.loss == pytest.approx(z * (5_000 * spreads[0] - 1_000 * spreads[1]))


def test_configured_shocks_by_symbol_or_base_asset(prices):
    held = book([position(BTC, notional=5_000), position(ETH, notional=2_000), position(SOL, notional=1_000)], market_of(prices))
    results = stress_test(held, 10_000.0, shocks={"BTC": -0.25, ETH: -0.40})
    shocked = next(result for result in results if result.scenario == "configured shocks")
    assert shocked.loss == pytest.approx(5_000 * 0.25 + 2_000 * 0.40)
    assert shocked.worst_symbol == BTC
    assert worst(results).loss == max(result.loss for result in results)


def test_stress_of_nothing_loses_nothing_and_a_broke_account_has_no_share(prices):
    results = stress_test(book([], market_of(prices)), 10_000.0)
    assert all(result.loss == 0.0 and result.worst_symbol is None for result in results)
    held = book([position(BTC)], market_of(prices))
    assert all(result.share is None for result in stress_test(held, 0.0))


def test_rolling_value_at_risk_is_the_trailing_quantile_of_equity_returns():
    from datetime import datetime, timedelta, timezone

    from riskd.analytics import equity_series, returns, rolling_value_at_risk

    start = datetime(2026, 3, 2, tzinfo=timezone.utc)
    values = 10_000 * np.cumprod(1 + np.random.default_rng(12).normal(0, 0.002, 100))
    equity = equity_series([(start + timedelta(minutes=5 * i), value) for i, value in enumerate(values)])
    rolling = rolling_value_at_risk(equity, window=24)
    steps = returns(equity, "5min").to_numpy()
    assert len(rolling) == len(steps) - 23
    for row, end in ((0, 24), (40, 64), (-1, len(steps))):
        expected = max(0.0, -stats.scoreatpercentile(steps[end - 24:end], 5))
        assert rolling.iloc[row] == pytest.approx(expected)
    assert rolling_value_at_risk(equity.iloc[:10], window=24).empty
    daily = rolling_value_at_risk(equity, window=24, horizon="1D")
    assert daily.to_numpy() == pytest.approx(rolling.to_numpy() * np.sqrt(288))


def test_the_books_correlation_is_the_weighted_average_of_the_matrix(prices):
    from riskd.analytics import book_correlation

    held = book([position(BTC, notional=5_000), position(ETH, side="short", notional=2_000),
                 position(SOL, notional=1_000)], market_of(prices))
    assert book_correlation(held) == pytest.approx(average_correlation(correlation_matrix(held.returns), held.exposures))
    flat = Book((BTC, ETH, SOL), held.exposures, np.column_stack([held.returns[:, :2], np.zeros(held.samples)]), 1440.0)
    assert book_correlation(flat) == pytest.approx(average_correlation(correlation_matrix(flat.returns), flat.exposures))
    assert book_correlation(book([position(BTC)], market_of(prices))) is None


def test_a_window_of_the_book_keeps_the_latest_steps_of_the_timeline_as_a_view(prices):
    held = (position(BTC), position(ETH))
    rows = {BTC: candles(prices[BTC]), ETH: candles(prices[ETH])}
    del rows[ETH][550]  # a missing candle: no ETH return at steps 550 and 551
    market = market_data(rows, MINUTE)
    whole = book(held, market)
    assert whole.samples == 599 - 2  # every step but the first and the two without an ETH return
    recent = whole.recent(100)
    expected = market.returns[500:, [market.columns[BTC], market.columns[ETH]]]
    expected = expected[~np.isnan(expected).any(axis=1)]
    assert recent.samples == 98  # the latest 100 steps of the timeline, not the latest 100 complete rows
    assert np.array_equal(recent.returns, expected)
    assert np.shares_memory(recent.returns, whole.returns)  # each market breaker windows the one book of its tick
    assert np.array_equal(book(held, market, 100).returns, recent.returns)
    assert whole.recent(10_000) is whole


def test_the_breaker_context_prices_its_own_positions_on_its_own_market_data(prices):
    from dataclasses import replace

    from riskd.breakers import Context
    from tests.factories import context, snapshot

    market = market_of(prices)
    held = (position(BTC, notional=5_000), position(ETH))
    inputs = replace(context(snapshot(positions=held)), market=market)
    assert inputs.book.symbols == (BTC, ETH) and inputs.book.exposures[0] == 5_000
    assert np.array_equal(inputs.book.returns, book(held, market).returns)
    moved = replace(inputs, market=market_of({BTC: prices[BTC] * np.linspace(1, 2, 600), ETH: prices[ETH]}))
    assert not np.array_equal(moved.book.returns[:, 0], inputs.book.returns[:, 0])  # a new value, priced afresh
    assert Context("main", inputs.state, inputs.now).book.symbols == ()  # no snapshot: nothing held
