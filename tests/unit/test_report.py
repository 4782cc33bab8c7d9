"""The daily risk report: its market figures from the store, its text, and its chart."""

from __future__ import annotations

import io
import sys
from datetime import timedelta

import numpy as np
import pytest
import yaml
from PIL import Image

from riskd import chart, commands, engine, messages
from riskd.analytics import book, value_at_risk_of
from riskd.candles import market_data
from riskd.config import load_settings
from riskd.market_data import market_venue
from riskd.store import Store

from tests.factories import NOW, position, snapshot

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
MINUTE = 60_000


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("RISKD_ACCOUNTS__MAIN__API_KEY", "key")
    monkeypatch.setenv("RISKD_ACCOUNTS__MAIN__SECRET", "secret")
    document = {
        "database": ":memory:",
        "accounts": {"main": {"exchange": "binanceusdm"}},
        "breakers": {"var": {"method": "parametric", "confidence": "95%"}, "stress_loss": {"shocks": {"ETH": "-50%"}}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return load_settings(path)


HELD = (position(BTC, notional=20_000), position(ETH, side="short", notional=5_000))


def closes(seed, start, steps=1_500):
    return start * np.cumprod(1 + np.random.default_rng(seed).normal(0, 0.001, steps))


def candles(series, end=int(NOW.timestamp() * 1000) // MINUTE * MINUTE):
    first = end - MINUTE * (len(series) - 1)
    return [[first + MINUTE * i, c, c * 1.001, c * 0.999, c, 1.0] for i, c in enumerate(series)]


@pytest.fixture
def store(settings):
    """A week of equity every 5 minutes with a dip, the positions held now, and cached candles."""
    store = Store(":memory:")
    state = store.load_state("main")
    rng = np.random.default_rng(1)
    equity = 10_000 * np.cumprod(1 + rng.normal(0, 0.002, 7 * 288))
    equity[1000:1100] *= 0.9
    policy = engine.Policy(settings.breakers_for("main"))
    moments = [NOW - timedelta(minutes=5 * (len(equity) - 1 - i)) for i in range(len(equity))]
    for at, value in zip(moments, equity):
        store.record_snapshot(snapshot(equity=float(value), positions=HELD, fetched_at=at))
    result = engine.step(state, snapshot(equity=float(equity[-1]), positions=HELD, fetched_at=NOW), policy, NOW)
    store.record_step(result, NOW)
    for symbol, series in ((BTC, closes(2, 60_000)), (ETH, closes(3, 3_000))):
        store.record_candles(market_venue("main", settings.accounts["main"]), symbol, "1m", candles(series))
    return store


def test_the_report_prices_the_positions_as_the_var_breaker_would(store, settings):
    day = commands.report(store, settings, NOW)[0]
    market = day.market
    assert market.exposures == {BTC: 20_000, ETH: -5_000} and market.gross == 25_000
    assert market.leverage == pytest.approx(25_000 / day.status.equity)
    cached = market_data(store.candles(market_venue("main", settings.accounts["main"]), "1m", [BTC, ETH], 0), MINUTE, fetched_at=NOW)
    expected = value_at_risk_of(book(HELD, cached, 1440), 0.95, 1.0, "parametric")
    assert market.risk == expected
    shocked = next(result for result in market.stress if result.scenario == "configured shocks")
    assert shocked.loss == pytest.approx(-2_500) and shocked.worst_symbol is None  # the short gains from ETH's fall
    assert market.missing is None


def test_without_candles_the_report_says_why_and_still_stresses_the_positions(settings):
    store = Store(":memory:")
    result = engine.step(store.load_state("main"), snapshot(positions=HELD), engine.Policy(settings.breakers_for("main")), NOW)
    store.record_snapshot(snapshot(positions=HELD))
    store.record_step(result, NOW)
    day = commands.report(store, settings, NOW)[0]
    assert day.market.risk is None and day.market.missing == f"no cached candles for {BTC}, {ETH}"
    crash = next(result for result in day.market.stress if result.scenario == "market -30%")
    assert crash.loss == pytest.approx(0.30 * 15_000)
    text = messages.plain(messages.report([day], NOW))
    assert f"VaR and correlation: cannot measure, no cached candles for {BTC}, {ETH}" in text


def test_the_report_text_has_the_week_the_exposure_the_var_and_the_stress(store, settings):
    day = commands.report(store, settings, NOW)[0]
    text = messages.plain(messages.report([day], NOW))
    assert f"Week PnL {day.week_pnl:+,.2f} USDT" in text
    assert "max drawdown" in text
    assert f"Exposure {BTC} +20,000 · {ETH} -5,000 · gross 25,000.00 USDT" in text
    assert f"1-day VaR 95% (parametric) {day.market.risk.var:,.2f} USDT" in text
    assert "Weighted correlation of the positions" in text
    assert "Stress: market -10%" in text and "configured shocks" in text


def test_the_chart_is_a_png_of_the_expected_size_and_not_blank(store, settings):
    image = Image.open(io.BytesIO(chart.render(commands.report(store, settings, NOW)[0])))
    assert image.format == "PNG" and image.size == (1000, 900)
    pixels = np.asarray(image.convert("RGB"))
    colours = {tuple(pixel) for pixel in pixels.reshape(-1, 3)[::7]}
    assert len(colours) > 50  # lines, shading, bars and text, not one flat colour
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 150) & (pixels[..., 2] < 150)
    assert red.sum() > 500  # the drawdown shading and the short's bar


def test_a_chart_of_an_account_with_no_history_still_draws(settings):
    store = Store(":memory:")
    image = Image.open(io.BytesIO(chart.render(commands.report(store, settings, NOW)[0])))
    assert image.size == (1000, 900)


def test_pandas_and_matplotlib_are_not_loaded_by_the_daemon_modules():
    import subprocess

    code = "import riskd.supervisor, riskd.chart, sys; print('matplotlib' in sys.modules, 'pandas' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "False False"  # the daemon draws its report in a child process


def test_hedge_mode_positions_are_priced_on_their_market_and_netted(store, settings):
    hedged = (position(BTC, notional=20_000, position_side="LONG"), position(BTC, side="short", notional=5_000, position_side="SHORT"))
    result = engine.step(store.load_state("main"), snapshot(positions=hedged), engine.Policy(settings.breakers_for("main")), NOW)
    store.record_snapshot(snapshot(positions=hedged))
    store.record_step(result, NOW)
    market = commands.report(store, settings, NOW)[0].market
    assert market.exposures == {BTC: 15_000} and market.missing is None and market.risk is not None
