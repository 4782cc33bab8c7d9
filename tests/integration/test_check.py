"""`riskd check`: is riskd safe to start? Against the embedded exchange, a fake Telegram Bot
API and real files; its exit status is the answer."""

from __future__ import annotations

import re
import time

import pytest
import yaml

from riskd import checks
from riskd.cli import HANDLERS, TROUBLE, parser
from riskd.cli import _load as load
from riskd.config import Settings
from riskd.sim import Simulator
from tests.fakes.telegram_api import FakeTelegram


def check(*arguments: str) -> int:
    """`riskd [ARGUMENTS] check`, in this process: its exit status."""
    parsed = parser().parse_args([*arguments, "check"])
    return HANDLERS["check"](load(parsed), parsed)


def test_the_shipped_configuration_is_safe_to_start(workdir, capsys):
    assert check("--config", "config.yaml") == 0
    out = capsys.readouterr().out
    assert "demo: ok, sim, equity 10,1" in out
    assert "demo: this machine's clock is 0.0" in out
    assert "database: riskd.db is writable" in out
    assert "telegram: WARNING: not configured" in out
    assert out.endswith("safe to start\n")


def test_check_prints_the_limits_in_force_after_the_preset_and_overrides(workdir, capsys):
    config = workdir / "config.yaml"
    text = config.read_text().replace("    sim:\n      seed: 7", "    preset: conservative\n    sim:\n      seed: 7")
    config.write_text(text.replace("  drawdown:              # fall from peak equity, unrealized PnL included\n    limit: 10%",
                                   "  drawdown:\n    levels: [{limit: 5%, action: reduce}, {limit: 500 USDT, action: flatten}]"))
    assert check("--config", "config.yaml") == 0
    out = capsys.readouterr().out
    assert "  limits (preset conservative):" in out
    assert "    drawdown: 5.0% → reduce 50.0% (warns at 4.0%, confirm 2, resume manual)" in out
    assert "    drawdown.2: 500.00 USDT → flatten (confirm 2, resume manual)" in out
    assert "    leverage: 5.00x → reduce 50.0%" in out  # written in config.yaml, so it beats the preset's 2x


def test_check_prints_the_venue_understood_then_the_preset_limits_of_the_market_breakers(workdir, capsys):
    config = workdir / "config.yaml"
    document = yaml.safe_load(config.read_text())
    document["accounts"]["demo"]["preset"] = "conservative"
    for name in ("margin_ratio", "var", "stress_loss"):  # left to the preset
        del document["breakers"][name]
    config.write_text(yaml.safe_dump(document))
    assert check("--config", "config.yaml") == 0
    out = capsys.readouterr().out
    assert out.index("  venue profile: Binance USDⓈ-M") < out.index("  limits (preset conservative):")
    assert "    margin_ratio: 30.0% → reduce 50.0% (warns at 24.0%, confirm 2, resume 60m)" in out
    assert "    var: 5.0% → alert (warns at 4.0%" in out
    assert "    stress_loss: 15.0% → alert (warns at 12.0%" in out
    assert "    flash_crash: 10.0% → halt (warns at 8.0%, confirm 2, resume 30m)" in out  # no preset names it


def test_check_prints_the_portfolio_limits(workdir, capsys):
    config = workdir / "config.yaml"
    config.write_text(config.read_text() + "portfolio:\n  breakers:\n    daily_loss: {limit: 1500 USDT}\n    gross_exposure: {}\n")
    assert check("--config", "config.yaml") == 0
    out = capsys.readouterr().out
    assert "portfolio: every account summed in USDT; limits:" in out
    assert "    daily_loss: 1,500.00 USDT → halt (warns at 1,200.00 USDT, confirm 2, resume next_day)" in out
    assert "    gross_exposure: 3.00x → reduce 50.0%" in out


def test_check_says_what_riskd_understood_of_each_account(workdir, capsys):
    assert check("--config", "config.yaml") == 0
    out = capsys.readouterr().out
    assert "  market: futures (guessed: `market` is not set)" in out
    assert "  venue profile: Binance USDⓈ-M" in out
    assert re.search(r"  equity 10,\d{3}\.\d\d USDT from totalMarginBalance \(every margin asset", out)
    assert "  collateral counted: USDT" in out
    assert re.search(r"  margin ratio: \d+\.\d\d% \(maintenance margin / margin balance\)", out)
    assert "  position mode: one-way" in out


def test_check_on_the_bybit_dialect_warns_in_words_where_it_cannot_measure(workdir, capsys):
    config = workdir / "config.yaml"
    config.write_text(config.read_text().replace("      seed: 7\n", "      seed: 7\n      venue: bybit\n"))
    assert check("--config", "config.yaml") == 0
    out = capsys.readouterr().out
    assert "  venue profile: Bybit" in out and "  margin mode: unified" in out
    assert re.search(r"  equity 10,\d{3}\.\d\d USDT from totalMarginBalance \(every collateral coin at its haircut", out)
    assert "  position mode: one-way (as the open positions show)" in out
    assert "  warning: no liquidation price for BTC/USDT:USDT, SOL/USDT:USDT; liquidation_distance cannot measure them" in out


def test_an_env_file_others_can_read_is_a_warning(workdir, capsys):
    secrets = workdir / "riskd.env"
    secrets.write_text("RISKD_LIVE=false\n")
    secrets.chmod(0o644)
    assert check("--config", "config.yaml", "--env-file", str(secrets)) == 0
    assert f"env file {secrets}: WARNING: readable by every user on this machine (mode 0644)" in capsys.readouterr().out
    secrets.chmod(0o640)
    assert check("--config", "config.yaml", "--env-file", str(secrets)) == 0
    assert f"env file {secrets}: mode 0640, not readable by other users" in capsys.readouterr().out


def test_a_database_riskd_cannot_write_is_not_safe(workdir, capsys):
    (workdir / "riskd.db").write_text("not a database\n")
    assert check("--config", "config.yaml") == TROUBLE
    out = capsys.readouterr().out
    assert "database: FAILURE: riskd.db: file is not a database" in out
    assert out.endswith("NOT safe to start: 1 problem(s) above\n")


async def test_a_clock_out_of_step_with_the_exchange_is_not_safe(serve, clients):
    server = await serve(Simulator.demo(clock=lambda: time.time() + 3, volatility=0))
    finding = await checks.clock_skew("main", clients(server.url), limit=5)
    assert finding.level == checks.FAILURE
    assert finding.text.startswith("this machine's clock is 3.0")
    assert "behind the exchange's: signed requests will be refused" in finding.text


@pytest.fixture
async def telegram_api():
    api = FakeTelegram("123:good-token")
    await api.start()
    yield api
    await api.stop()


def telegram_settings(token: str, base_url: str) -> Settings:
    telegram = {"token": token, "chat_ids": [1], "base_url": base_url, "timeout": "2s"}
    return Settings(accounts={"demo": {"exchange": "sim"}}, telegram=telegram)


async def test_telegram_reachable_with_its_token(telegram_api):
    finding = await checks.telegram(telegram_settings("123:good-token", telegram_api.url))
    assert (finding.level, finding.text) == (checks.OK, "reachable, bot @riskd_test_bot")


async def test_telegram_refusing_the_token_is_not_safe(telegram_api):
    finding = await checks.telegram(telegram_settings("123:bad-token", telegram_api.url))
    assert (finding.level, finding.text) == (checks.FAILURE, "the bot token was refused; check RISKD_TELEGRAM__TOKEN")


async def test_telegram_unreachable_is_not_safe_and_the_token_stays_secret():
    finding = await checks.telegram(telegram_settings("123:secret-token", "http://127.0.0.1:9/bot"))
    assert finding.level == checks.FAILURE and finding.text.startswith("the Bot API is unreachable")
    assert "secret-token" not in finding.text


def test_check_prints_what_each_kind_of_read_uses_of_the_venues_request_budget(configure, capsys):
    path = configure(live=False, breakers={"loss_streak": {"limit": 3}})  # a Binance USDⓈ-M account, polled every 10 s
    check("--config", path)
    out = capsys.readouterr().out
    assert (
        "request budget, Binance USDⓈ-M: 1 account(s) on Binance USDⓈ-M (main): their routine reads use 350 of its "
        "2400 request weight a minute per IP: ticks 300 (50 a read every 10s each), market data 20 (candles of 4 "
        "symbols every 60s: the benchmark and 3 held, once for the venue, not per account), trade history 30 "
        "(loss_streak on 1 account(s), 30 a read every 60s); that leaves 2050 to bots, and riskd keeps to 1200 (50%) "
        "of it: 3 such account(s) fit\n"
    ) in out
