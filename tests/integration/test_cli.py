"""The `riskd` command as a user runs it: a separate process, the shipped config.yaml."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from riskd.cli import HANDLERS, parser
from riskd.commands import CATALOGUE
from riskd.config import AccountConfig
from riskd.demo import run_demo
from riskd.exchange import ExchangeAdapter, build_client
from riskd.sim import bybit, ccxt_config
from tests.timing import limit

from .conftest import ROOT


def riskd(workdir: Path, *arguments: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "riskd", *arguments],
        cwd=workdir, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


POINTED = {"binanceusdm": ccxt_config, "bybit": bybit.ccxt_config}
"""How each dialect's ccxt class is pointed at a URL."""


@pytest.mark.parametrize(("dialect", "client"), [("binance", "binanceusdm"), ("bybit", "bybit")])
def test_run_once_on_the_shipped_config_then_status_and_events(workdir, dialect, client):
    document = yaml.safe_load((workdir / "config.yaml").read_text())
    document["accounts"]["demo"]["sim"]["venue"] = dialect  # the same demo account, read in each dialect
    (workdir / "config.yaml").write_text(yaml.safe_dump(document))
    ran = riskd(workdir, "run", "--once")
    assert ran.returncode == 0, ran.stderr
    assert "DRY-RUN" in ran.stderr  # the banner says which mode is on
    assert f"(read as {client})" in ran.stderr  # and which ccxt class reads the embedded exchange
    status = riskd(workdir, "status")
    assert status.returncode == 0, status.stderr
    assert "demo (sim, DRY-RUN): ACTIVE" in status.stdout
    for breaker in ("drawdown", "daily_loss", "leverage", "stale_data"):
        assert breaker in status.stdout
    assert "equity 10,1" in status.stdout
    assert riskd(workdir, "events").returncode == 0
    report = riskd(workdir, "report")
    assert report.returncode == 0, report.stderr
    assert "Day PnL" in report.stdout
    assert re.search(r"market -30% -[\d,]+\.\d\d USDT \(worst \w+/USDT:USDT\)", report.stdout)  # the stress test of the open positions


def test_status_shows_the_portfolio_after_the_accounts_once_run_has_judged_it(workdir):
    config = workdir / "config.yaml"
    config.write_text(config.read_text() + "portfolio:\n  breakers:\n    drawdown: {limit: 8%}\n")
    ran = riskd(workdir, "run", "--once")
    assert ran.returncode == 0, ran.stderr
    status = riskd(workdir, "status")
    assert status.returncode == 0, status.stderr
    accounts, portfolio = status.stdout.split("portfolio (sum of demo, DRY-RUN): ACTIVE")
    assert "demo (sim, DRY-RUN): ACTIVE" in accounts
    assert re.search(r"equity 10,1[\d,]+\.\d\d USDT", portfolio)  # the one account's equity, summed
    assert re.search(r"drawdown +0\.0% +8\.0% +OK", portfolio)
    assert "no tick recorded yet" not in portfolio



def test_events_of_the_portfolio_are_its_own(workdir):
    config = workdir / "config.yaml"
    config.write_text(config.read_text() + "portfolio:\n  breakers:\n    gross_exposure: {limit: 0.01x, confirm: 1}\n")
    ran = riskd(workdir, "run", "--once")
    assert ran.returncode == 0, ran.stderr
    events = riskd(workdir, "events", "--account", "portfolio")
    assert events.returncode == 0, events.stderr
    lines = events.stdout.splitlines()
    assert any("breach [gross_exposure]" in line for line in lines)
    assert all(re.match(r"\S+  portfolio ", line) for line in lines), lines  # none of demo's


def test_override_says_what_is_wrong_before_it_asks_to_confirm(workdir):
    config = workdir / "config.yaml"
    config.write_text(config.read_text().replace("limit: 10%\n    action: flatten", "levels: [{limit: 10%, action: reduce}, {limit: 20%, action: flatten}]"))
    for arguments, refusal in [
        (("demo", "daily_lost", "8%"), "demo has no breaker 'daily_lost' in force"),
        (("demo", "daily_loss", "8"), "daily_loss: limit: '8' is ambiguous"),
        (("demo", "drawdown", "25%"), "drawdown at 25.0% would come past drawdown.2's 20.0%"),
    ]:
        result = riskd(workdir, "override", *arguments, "--for", "2h")  # no --yes: it would ask, on a terminal
        assert result.returncode == 1
        assert refusal in result.stderr
        assert "not confirmed" not in result.stdout  # refused at once, not after the question
    assert not (workdir / "riskd.db").exists()  # nothing was queued


def test_a_bad_configuration_stops_with_the_key_and_exit_status_2(workdir):
    config = workdir / "config.yaml"
    config.write_text(config.read_text().replace("limit: 10%", "limit: ten"))
    result = riskd(workdir, "run", "--once")
    assert result.returncode == 2
    assert "breakers.drawdown.limit" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_ladder_written_out_of_order_stops_with_words_and_exit_status_2(workdir):
    config = workdir / "config.yaml"
    ladder = "levels: [{limit: 10%, action: reduce}, {limit: 5%, action: flatten}]"
    config.write_text(config.read_text().replace("limit: 10%", ladder))
    result = riskd(workdir, "check")
    assert result.returncode == 2
    assert "breakers.drawdown: levels: level 2's limit must be past level 1's" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_override_is_queued_for_the_daemon_with_who_and_why_and_a_wrong_one_is_refused(workdir):
    refused = riskd(workdir, "override", "demo", "daily_loss", "8", "--for", "2h", "--yes")
    assert refused.returncode == 1
    assert "daily_loss: limit: '8' is ambiguous: write 8% or 0.08" in refused.stderr
    queued = riskd(workdir, "override", "demo", "daily_loss", "8%", "--for", "2h", "--reason", "CPI day", "--yes")
    assert queued.returncode == 0, queued.stderr
    assert "demo: queued" in queued.stdout  # no riskd runs here: it waits for one
    row = sqlite3.connect(workdir / "riskd.db").execute("select command, args, status from commands").fetchone()
    assert row[0] == "override" and row[2] == "pending"
    assert yaml.safe_load(row[1]) == {"reason": "CPI day", "fraction": None, "breaker": "daily_loss", "limit": "8%", "lasting": 7200.0}
    ran = riskd(workdir, "run", "--once")
    assert ran.returncode == 0, ran.stderr
    assert "Override: daily_loss's limit is 8.0% instead of 5.0%" in ran.stderr


@pytest.mark.parametrize("exchange", list(POINTED))
def test_credentials_in_the_environment_never_reach_output_or_database(workdir, exchange):
    # Every URL points at a closed local port: the read fails, and its error is recorded.
    urls = {key: value for key, value in POINTED[exchange]("http://127.0.0.1:9").items() if key in ("urls", "options")}
    document = yaml.safe_load((workdir / "config.yaml").read_text())
    document["accounts"] = {"demo": {"exchange": exchange, "timeout": "2s", "ccxt": urls}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(document))
    environment = {**os.environ, "RISKD_ACCOUNTS__DEMO__API_KEY": "KEY-abcdef123456", "RISKD_ACCOUNTS__DEMO__SECRET": "SECRET-987654zyx"}
    result = subprocess.run(
        [sys.executable, "-m", "riskd", "run", "--once"], cwd=workdir, env=environment,
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "reading the account failed" in output
    dump = "\n".join(sqlite3.connect(workdir / "riskd.db").iterdump())
    for secret in ("KEY-abcdef123456", "SECRET-987654zyx"):
        assert secret not in output and secret not in dump


@pytest.mark.parametrize(("venue", "client", "served"), [
    ("binance", "binanceusdm", "Binance USDⓈ-M futures and spot"), ("bybit", "bybit", "Bybit v5 linear perpetuals"),
])
async def test_riskd_sim_serves_the_dialect_and_mode_asked_for_and_says_how_to_guard_it(tmp_path, venue, client, served):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "riskd", "sim", "--port", str(port), "--venue", venue, "--hedge"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, stdin=subprocess.DEVNULL,
    )
    adapter = None
    try:
        banner = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
        assert f"{served} API at http://127.0.0.1:{port}, futures in hedge mode" in banner
        guide = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 5)
        if venue == "binance":  # Binance's mark-price streams are served; Bybit's dialect has no websocket
            assert guide.strip() == f"riskd sim: mark-price streams at ws://127.0.0.1:{port}/ws"
            guide = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 5)
            assert f"guard it as exchange: {client}, with ccxt: " in guide
        else:
            assert f"guard it as exchange: {client}, stream: false (no websocket in this dialect), with ccxt: " in guide
        pointed = json.loads(guide.split("with ccxt: ", 1)[1])
        account = AccountConfig(exchange=client, api_key="k" * 8, secret="s" * 8, ccxt={**pointed, "enableRateLimit": False})
        adapter = ExchangeAdapter("main", account, build_client(account))
        snapshot = await adapter.snapshot()  # riskd guarding it as the banner says, through the dialect's ccxt class
        assert snapshot.ok, snapshot.error
        assert {(p.symbol, p.position_side) for p in snapshot.positions} == {
            ("BTC/USDT:USDT", "LONG"), ("ETH/USDT:USDT", "SHORT"), ("SOL/USDT:USDT", "LONG"),
        }
    finally:
        if adapter is not None:
            await adapter.close()
        process.terminate()
        process.wait(timeout=10)


def test_freeze_without_a_running_daemon_is_queued_and_recorded(workdir):
    result = riskd(workdir, "freeze", "demo", "--reason", "going to bed")
    assert result.returncode == 0, result.stderr
    assert "queued" in result.stdout
    rows = sqlite3.connect(workdir / "riskd.db").execute("select command, account, source, status, args from commands").fetchall()
    assert [row[:4] for row in rows] == [("freeze", "demo", "cli", "pending")]
    assert "going to bed" in rows[0][4]


def test_flatten_asks_for_confirmation_and_does_nothing_without_it(workdir):
    result = riskd(workdir, "flatten", "demo")
    assert result.returncode == 1
    assert "not confirmed" in result.stdout
    database = workdir / "riskd.db"
    assert not database.exists() or sqlite3.connect(database).execute("select count(*) from commands").fetchone()[0] == 0


def test_an_unknown_account_is_refused_in_words(workdir):
    result = riskd(workdir, "freeze", "nosuch")
    assert result.returncode == 1
    assert "no account named 'nosuch'" in result.stderr and "Traceback" not in result.stderr


def test_every_command_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    commands = parser()._subparsers._group_actions[0].choices
    assert set(HANDLERS) | {"sim", "demo"} == set(commands)
    for name in commands:
        assert f"riskd {name}" in readme, f"README does not document riskd {name}"


def test_the_shared_commands_take_their_help_and_arguments_from_the_catalogue():
    subcommands = parser()._subparsers._group_actions[0]
    listed = {action.dest: action.help for action in subcommands._choices_actions}
    assert {verb.name for verb in CATALOGUE} <= set(HANDLERS)
    for verb in CATALOGUE:
        assert listed[verb.name] == verb.help  # `riskd --help`
        shown = " ".join(subcommands.choices[verb.name].format_help().split())  # `riskd NAME --help`
        assert verb.help in shown
        for argument in verb.arguments:
            assert argument.help in shown, f"riskd {verb.name} --help does not explain {argument.name}"
        assert ("--yes" in shown) is verb.destructive, f"riskd {verb.name}: --yes only where the catalogue asks to confirm"


async def test_the_demo_narrates_warning_breach_halt_and_closing(capsys):
    lines: list[str] = []
    level = logging.getLogger().level
    status = await run_demo(
        seconds=limit(20), out=lines.append, crash={"depth": 0.35, "duration": 4.0, "after": 1.0}, poll_interval="0.5s"
    )
    text = "\n".join(lines)
    assert status == 0
    assert "warning:" in text and "breach: drawdown" in text and "HALTED" in text
    breaches = [line for line in lines if "breach:" in line]
    assert breaches and all(any(words in line for words in ("price swing", "daily loss", "drawdown")) for line in breaches)
    assert text.count("reduce-only market: closed") == 3
    assert "left alone it would be" in text
    assert logging.getLogger().level == level  # the demo silences the log only while it runs


async def test_the_shipped_demo_raises_no_market_breaker_warning_on_a_first_run(workdir):
    # a new user's first `riskd run` must not open on a VaR breach: the simulator's walk is BTC-like by default
    from riskd.config import load_settings
    from riskd.domain import Status
    from riskd.supervisor import Daemon

    daemon = Daemon(load_settings(workdir / "config.yaml"))  # the real clock: the embedded simulator's candles are real-time
    await daemon.startup()
    try:
        await daemon.tick("demo")
        await daemon.refresh_market(daemon.guards["demo"].market.venue)
        for _ in range(3):  # past the 2 ticks a breach waits to be confirmed
            result = await daemon.tick("demo")
        market = {r.breaker: r for r in result.readings if r.breaker in ("var", "volatility_spike", "flash_crash", "correlation", "stress_loss")}
        assert market["var"].value is not None  # measured, on the candles just fetched
        assert {name: reading.status for name, reading in market.items()} == {name: Status.OK for name in market}
        assert daemon.store.events("demo") == []
    finally:
        await daemon.shutdown()
