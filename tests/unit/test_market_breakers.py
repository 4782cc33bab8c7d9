"""The market breakers: VaR, volatility spike, flash crash, correlation and stress loss,
judged on candles in the Context, and plainly blind when the candles cannot tell."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from riskd.analytics import book, value_at_risk_of
from riskd.breakers import BREAKERS, Context
from riskd.candles import EMPTY, MarketData, market_data
from riskd.domain import Reading, Status
from riskd.messages import describer

from tests.factories import NOW, configure, context, evaluate, only, position, snapshot

MARKET = ["var", "volatility_spike", "flash_crash", "correlation", "stress_loss"]
MINUTE = 60_000
BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
END = int(NOW.timestamp() * 1000) // MINUTE * MINUTE  # the candle open at NOW





def candles(closes, lows=None, highs=None):
    """One-minute candles whose last one opens at NOW."""
    closes = np.asarray(closes, dtype=float)
    lows = closes if lows is None else lows
    highs = closes if highs is None else highs
    start = END - MINUTE * (len(closes) - 1)
    return [(start + MINUTE * i, closes[i], highs[i], lows[i], closes[i], 1.0) for i in range(len(closes))]


def path(seed, steps=600, spread=0.001, start=100.0, common=None, loading=1.0):
    returns = np.random.default_rng(seed).normal(0, spread, steps)
    if common is not None:
        returns = returns + loading * common
    return start * np.cumprod(1 + returns)


def market(paths: dict, fetched_at=NOW, benchmark=None) -> MarketData:
    return market_data({symbol: candles(closes) for symbol, closes in paths.items()}, MINUTE, benchmark, fetched_at)


def on(market_data_: MarketData, *positions, equity=10_000.0) -> Context:
    return replace(context(snapshot(equity=equity, positions=positions)), market=market_data_)


@pytest.fixture
def calm():
    return market({BTC: path(1, start=60_000), ETH: path(2, start=3_000)})


# What every market breaker promises -------------------------------------------------


@pytest.mark.parametrize("name", MARKET)
def test_every_market_breaker_describes_itself_and_forbids_unknown_keys(name):
    assert BREAKERS[name].description.strip() and "\n" not in BREAKERS[name].description
    with pytest.raises(ValidationError, match="limt"):
        configure(name, limt="10%")


@pytest.mark.parametrize("name", MARKET)
def test_every_market_breaker_is_account_wide(name):
    with pytest.raises(ValidationError, match="close applies to one position"):
        configure(name, action="close")


def blind(reading: Reading, *words: str) -> None:
    assert reading.status is Status.NO_DATA and reading.value is None
    for word in words:
        assert word in reading.reason


@pytest.mark.parametrize("name", MARKET)
def test_no_snapshot_cannot_be_measured(name, calm):
    blind(only(evaluate(name, replace(context(None), market=calm))), "no good snapshot")


@pytest.mark.parametrize("name", MARKET)
def test_no_market_data_yet_cannot_be_measured(name):
    blind(only(evaluate(name, on(EMPTY, position(BTC)))), "no market data")


@pytest.mark.parametrize("name", MARKET)
def test_stale_market_data_cannot_be_measured(name, calm):
    old = replace(calm, fetched_at=NOW - timedelta(hours=1))
    blind(only(evaluate(name, on(old, position(BTC), position(ETH)))), "60 minutes old")


@pytest.mark.parametrize("name", MARKET)
def test_a_held_symbol_without_candles_cannot_be_measured(name, calm):
    readings = evaluate(name, on(calm, position(BTC), position("DOGE/USDT:USDT")))
    doge = [reading for reading in readings if reading.status is Status.NO_DATA]
    assert len(doge) == 1 and "DOGE/USDT:USDT" in doge[0].reason


@pytest.mark.parametrize("name", [name for name in MARKET if name != "flash_crash"])  # it needs minutes only
def test_a_short_history_cannot_be_measured_never_reads_ok(name):
    short = market({BTC: path(1, steps=4, start=60_000), ETH: path(2, steps=4, start=3_000)})
    readings = evaluate(name, on(short, position(BTC), position(ETH)))
    assert readings and all(reading.status is Status.NO_DATA for reading in readings), readings


@pytest.mark.parametrize("name", MARKET)
def test_nothing_held_is_measured_as_no_risk(name, calm):
    reading = only(evaluate(name, on(calm)))
    assert reading.status is Status.OK


@pytest.mark.parametrize("name", ["volatility_spike", "flash_crash"])
def test_a_flat_account_says_what_it_no_longer_watches(name, calm):
    # this reason is the sentence that clears the breaker's breach once the positions are closed
    reading = only(evaluate(name, on(calm)))
    assert reading.reason == f"no open positions to watch for a {name.replace('_', ' ')}"


# var ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["historical", "parametric", "monte_carlo"])
def test_var_is_the_books_value_at_risk_as_a_share_of_equity(calm, method):
    held = (position(BTC, notional=20_000), position(ETH, side="short", notional=5_000))
    expected = value_at_risk_of(book(held, calm, 1440), 0.99, 1.0, method).var / 10_000
    reading = only(evaluate("var", on(calm, *held), method=method))
    assert reading.value == pytest.approx(expected)
    assert "VaR at 99% (" + method.replace("_", " ") + ")" in reading.reason


def test_var_breaches_past_its_limit_and_es_reads_the_shortfall(calm):
    held = (position(BTC, notional=50_000),)
    var = only(evaluate("var", on(calm, *held), limit="5%"))
    shortfall = only(evaluate("var", on(calm, *held), limit="5%", measure="es"))
    assert var.status is Status.BREACHED
    assert shortfall.value > var.value and "expected shortfall" in shortfall.reason


def test_var_with_a_limit_in_money_judges_the_loss_itself(calm):
    held = (position(BTC, notional=50_000),)
    share = only(evaluate("var", on(calm, *held)))
    money = only(evaluate("var", on(calm, *held), limit=f"{share.value * 10_000 + 1:.0f} USDT"))
    assert money.value == pytest.approx(share.value * 10_000)  # the same VaR, in USDT of a 10,000 equity
    assert share.status is Status.BREACHED and money.status is not Status.BREACHED  # just under its money limit
    assert only(evaluate("var", on(calm, *held), limit=f"{money.value - 1:.0f} USDT")).status is Status.BREACHED
    assert "VaR at 99% (historical) in USDT" in money.reason and "USDT" in money.reason.rsplit("in USDT", 1)[1]
    assert money.currency == "USDT"  # so the status, Telegram and the page show money, not a percentage
    assert describer(money)(money.limit) == f"{money.limit:,.2f} USDT"


def test_var_of_constant_prices_is_zero():
    flat = market({BTC: np.full(300, 60_000.0)})
    reading = only(evaluate("var", on(flat, position(BTC, notional=50_000))))
    assert reading.status is Status.OK and reading.value == 0.0


def test_var_refuses_a_confidence_outside_half_to_one():
    with pytest.raises(ValidationError):
        configure("var", confidence="100%")
    with pytest.raises(ValidationError):
        configure("var", confidence="40%")


# volatility_spike -----------------------------------------------------------------------


def spiking(factor: float, minutes: int = 15, steps: int = 400) -> np.ndarray:
    returns = np.random.default_rng(4).normal(0, 0.001, steps)
    returns[-minutes:] *= factor
    return 100 * np.cumprod(1 + returns)


def test_volatility_spike_compares_the_short_window_with_the_long_one_before_it():
    closes = spiking(6.0)
    returns = closes[1:] / closes[:-1] - 1
    expected = returns[-15:].std(ddof=1) / returns[-375:-15].std(ddof=1)
    reading = only(evaluate("volatility_spike", on(market({BTC: closes}), position(BTC))))
    assert reading.value == pytest.approx(expected)
    assert reading.status is Status.BREACHED
    assert reading.reason.startswith(f"volatility of {BTC} over 15m against its 6h baseline 7.00x is past the limit")


def test_calm_volatility_is_ok(calm):
    reading = only(evaluate("volatility_spike", on(calm, position(BTC))))
    assert reading.status is Status.OK and 0.3 < reading.value < 2


def test_volatility_spike_judges_the_account_on_its_worst_symbol():
    spiky = market({BTC: path(3, steps=400), ETH: spiking(6.0)})
    reading = only(evaluate("volatility_spike", on(spiky, position(BTC), position(ETH))))
    assert reading.status is Status.BREACHED and ETH in reading.reason


def test_a_spike_on_a_measured_symbol_trips_even_when_another_cannot_be_measured():
    spiky = market({BTC: spiking(6.0)})
    reading = only(evaluate("volatility_spike", on(spiky, position(BTC), position("DOGE/USDT:USDT"))))
    assert reading.status is Status.BREACHED


def test_a_baseline_that_never_moved_cannot_be_measured():
    closes = np.concatenate([np.full(390, 100.0), spiking(5.0, steps=10)])
    blind(only(evaluate("volatility_spike", on(market({BTC: closes}), position(BTC)))), "did not move")


# flash_crash ----------------------------------------------------------------------------


def test_a_swing_within_the_window_trips_the_flash_crash():
    closes = np.full(60, 100.0)
    lows = closes.copy()
    lows[-3] = 87.0  # a wick 13 % down two minutes ago
    data = market_data({BTC: candles(closes, lows=lows)}, MINUTE, fetched_at=NOW)
    reading = only(evaluate("flash_crash", on(data, position(BTC), position(BTC, side="short", position_side="SHORT"))))
    assert reading.value == pytest.approx(0.13)
    assert reading.status is Status.BREACHED
    assert reading.reason.startswith(f"price swing of {BTC} within 5 minutes 13.0% is past the limit")


def test_a_swing_before_the_window_does_not():
    closes = np.full(60, 100.0)
    lows = closes.copy()
    lows[-20] = 80.0
    data = market_data({BTC: candles(closes, lows=lows)}, MINUTE, fetched_at=NOW)
    assert only(evaluate("flash_crash", on(data, position(BTC)))).status is Status.OK


def test_the_mark_price_read_this_tick_counts_before_the_candles_show_it():
    data = market({BTC: np.full(60, 100.0)})
    reading = only(evaluate("flash_crash", on(data, position(BTC, mark_price=88.0))))
    assert reading.value == pytest.approx(0.12) and reading.status is Status.BREACHED


def test_no_price_within_the_window_cannot_be_measured_even_with_a_mark_price():
    data = market_data({BTC: [(END - 30 * MINUTE, 100.0, 100.0, 100.0, 100.0, 1.0)]}, MINUTE, fetched_at=NOW)
    reading = only(evaluate("flash_crash", on(data, position(BTC, mark_price=99.0))))
    blind(reading, "no prices of BTC/USDT:USDT within the last 5 minutes")


# correlation ----------------------------------------------------------------------------


def together(loading_eth: float, steps: int = 600):
    common = np.random.default_rng(9).normal(0, 0.002, steps)
    return market({BTC: path(1, steps, common=common, start=60_000), ETH: path(2, steps, common=common, loading=loading_eth, start=3_000)})


def test_longs_that_move_together_trip_correlation_when_exposure_matters():
    reading = only(evaluate("correlation", on(together(1.0), position(BTC, notional=8_000), position(ETH, notional=8_000))))
    assert reading.value > 0.8 and reading.status is Status.BREACHED


def test_a_long_and_a_short_on_the_same_move_are_a_hedge():
    reading = only(evaluate("correlation", on(together(1.0), position(BTC, notional=8_000), position(ETH, side="short", notional=8_000))))
    assert reading.value < -0.8 and reading.status is Status.OK


def test_correlation_does_not_matter_while_gross_exposure_is_small():
    reading = only(evaluate("correlation", on(together(1.0), position(BTC, notional=2_000), position(ETH, notional=2_000))))
    assert reading.status is Status.OK and reading.value > 0.8
    assert "does not matter at a gross exposure of 40.0%" in reading.reason


def test_one_symbol_has_nothing_to_correlate(calm):
    reading = only(evaluate("correlation", on(calm, position(BTC, notional=20_000))))
    assert reading.status is Status.OK and reading.value is None


# stress_loss ----------------------------------------------------------------------------


def test_stress_loss_is_the_worst_scenario_as_a_share_of_equity(calm):
    reading = only(evaluate("stress_loss", on(calm, position(BTC, notional=10_000), position(ETH, notional=5_000))))
    assert reading.value == pytest.approx(0.30 * 15_000 / 10_000)
    assert reading.status is Status.BREACHED
    assert "(market -30%, most from BTC/USDT:USDT)" in reading.reason


def test_stress_loss_with_a_limit_in_money_judges_the_worst_loss_itself(calm):
    reading = only(evaluate("stress_loss", on(calm, position(BTC, notional=10_000)), limit="2500 USDT"))
    assert reading.value == pytest.approx(3_000)  # market -30% on 10,000 of BTC
    assert reading.status is Status.BREACHED and "worst stress loss (market -30%, most from BTC/USDT:USDT) in USDT" in reading.reason
    assert reading.currency == "USDT" and describer(reading)(reading.limit) == "2,500.00 USDT"


@pytest.mark.parametrize("name", ["volatility_spike", "flash_crash", "correlation"])
def test_a_market_move_breaker_refuses_a_limit_in_money_in_words(name):
    with pytest.raises(ValidationError, match="is an amount of money, but this breaker's limit is not"):
        configure(name, limit="500 USDT")


def test_a_market_breaker_takes_a_ladder_of_levels():
    ladder = configure("var", levels=[{"limit": "5%"}, {"limit": "10%", "action": "reduce"}]).ladder()
    assert [(level.limit, level.action) for level in ladder] == [(0.05, "alert"), (0.10, "reduce")]
    with pytest.raises(ValidationError, match="level 2's limit must be past level 1's"):
        configure("flash_crash", levels=[{"limit": "10%"}, {"limit": "5%"}])


def test_configured_shocks_can_be_the_worst_scenario(calm):
    reading = only(evaluate("stress_loss", on(calm, position(BTC, notional=1_000), position(ETH, notional=1_000)), shocks={"ETH": "-80%"}))
    assert reading.value == pytest.approx(0.08)
    assert "configured shocks, most from ETH/USDT:USDT" in reading.reason


def test_a_hedged_book_has_a_small_stress_loss(calm):
    reading = only(evaluate("stress_loss", on(calm, position(BTC, notional=5_000), position(BTC, side="short", notional=5_000, position_side="SHORT"))))
    assert reading.value == 0.0 and reading.status is Status.OK


@pytest.mark.parametrize("written, move", [("-25%", -0.25), ("+10%", 0.10), (-0.4, -0.4), ("15%", 0.15)])
def test_shocks_are_signed_percentages(written, move):
    assert configure("stress_loss", shocks={"BTC": written}).shocks == {"BTC": move}


@pytest.mark.parametrize("written", ["-100%", "-150%", "down", "-"])
def test_a_shock_that_is_not_a_move_is_refused(written):
    with pytest.raises(ValidationError):
        configure("stress_loss", shocks={"BTC": written})
