"""The Freqtrade hook end to end: a real Freqtrade (from PyPI) trading on the embedded exchange,
told by riskd to stop entering on a halt and to exit its trades on a flatten.

Freqtrade is installed by this test's set-up into its own virtual environment, cached
outside the repository in ~/.cache/riskd-tests/freqtrade-VERSION (or under
$RISKD_TEST_CACHE): the first run takes about a minute and 770 MB, later runs none.
`riskd sim` runs in its own process in real time; Freqtrade trades on it for real
(`dry_run: false`, fake keys: Freqtrade's own dry run never reaches an exchange) with a
strategy that always wants a long LINK position; riskd guards the same account in
dry-run, so the only exits are Freqtrade's own, and talks to Freqtrade's REST API.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from riskd.config import load_settings
from riskd.domain import AlertStatus, Command, CommandKind
from riskd.sim import ccxt_config
from riskd.supervisor import Daemon

FREQTRADE = "2026.9"
CACHE = Path(os.environ.get("RISKD_TEST_CACHE") or Path.home() / ".cache" / "riskd-tests")
PAIR = "LINK/USDT:USDT"
USERNAME, PASSWORD = "freqtrader", "freqtrade-test-password"

STRATEGY = '''
from pandas import DataFrame
from freqtrade.strategy import IStrategy


class AlwaysIn(IStrategy):
    """Wants a long position at every candle, and never exits by itself."""

    INTERFACE_VERSION = 3
    timeframe = "1m"
    minimal_roi = {"0": 10}
    stoploss = -0.99
    process_only_new_candles = False
    startup_candle_count = 0

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
'''


def freqtrade_python() -> Path:
    """The Python of a virtual environment holding Freqtrade, made once and cached."""
    venv = CACHE / f"freqtrade-{FREQTRADE}"
    python = venv / "bin" / "python"
    if python.exists():
        return python
    partial = venv.with_name(venv.name + ".partial")  # renamed only once complete
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(partial)], check=True)
    subprocess.run([str(partial / "bin" / "pip"), "install", "-q", f"freqtrade=={FREQTRADE}"], check=True, timeout=1200)
    partial.rename(venv)
    return python


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, auth: bool = False):
    request = urllib.request.Request(url)
    if auth:
        import base64

        request.add_header("Authorization", "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode())
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


def wait_for(condition, seconds: float, what: str, process: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = condition()
        except OSError:
            value = None
        if value:
            return value
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.5)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log is not None and log.exists() else ""
    raise AssertionError(f"not within {seconds:g} s: {what}\n{tail}")


def freqtrade_config(folder: Path, exchange_url: str, api_port: int) -> Path:
    pointed = ccxt_config(exchange_url)
    ccxt_settings = {
        "urls": pointed["urls"],
        "options": {"fetchCurrencies": False, "fetchMarkets": {"types": ["spot", "linear"]}, "fetchMargins": False},
        "enableRateLimit": False,
    }
    config = {
        "max_open_trades": 1,
        "stake_currency": "USDT",
        "stake_amount": 100,
        "tradable_balance_ratio": 0.99,
        "dry_run": False,
        "trading_mode": "futures",
        "margin_mode": "cross",  # the simulated account is cross margin only
        "timeframe": "1m",
        "initial_state": "running",
        "force_entry_enable": True,
        "order_types": {"entry": "market", "exit": "market", "stoploss": "market", "stoploss_on_exchange": False},
        "entry_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1, "price_last_balance": 0.0,
                          "check_depth_of_market": {"enabled": False}},
        "exit_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "unfilledtimeout": {"entry": 10, "exit": 10, "unit": "seconds"},
        "exchange": {
            "name": "binance", "key": "freqtrade-key", "secret": "freqtrade-secret",
            "ccxt_config": ccxt_settings, "ccxt_async_config": ccxt_settings,
            "pair_whitelist": [PAIR], "pair_blacklist": [],
        },
        "pairlists": [{"method": "StaticPairList"}],
        "api_server": {
            "enabled": True, "listen_ip_address": "127.0.0.1", "listen_port": api_port, "verbosity": "error",
            "username": USERNAME, "password": PASSWORD, "jwt_secret_key": "riskd-test-jwt-secret-32-chars!!",
            "ws_token": "riskd-test-ws-token", "CORS_origins": [],
        },
        "bot_name": "riskd-test",
        "internals": {"process_throttle_secs": 1, "heartbeat_interval": 0},
        "db_url": f"sqlite:///{folder / 'trades.sqlite'}",
        "user_data_dir": str(folder / "user_data"),
        "strategy": "AlwaysIn",
        "strategy_path": str(folder / "strategies"),
    }
    (folder / "strategies").mkdir(parents=True)
    (folder / "strategies" / "always_in.py").write_text(STRATEGY)
    path = folder / "freqtrade.json"
    path.write_text(json.dumps(config, indent=2))
    return path


@pytest.fixture
def venue(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "riskd", "sim", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: get(f"{url}/_sim/state"), 30, "the simulator answers")
        yield url
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def freqtrade(tmp_path, venue):
    python = freqtrade_python()
    folder = tmp_path / "freqtrade"
    (folder / "user_data").mkdir(parents=True)
    api_port = free_port()
    config = freqtrade_config(folder, venue, api_port)
    log = folder / "freqtrade.log"  # what it prints, shown when a wait fails
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(python), "-m", "freqtrade", "trade", "--config", str(config)], cwd=folder, stdout=output, stderr=subprocess.STDOUT
        )
    api = f"http://127.0.0.1:{api_port}/api/v1"
    try:
        wait_for(lambda: get(f"{api}/ping").get("status") == "pong", 120, "Freqtrade's API answers", process, log)
        yield api, log, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def open_trades(api: str) -> list[dict]:
    return get(f"{api}/status", auth=True)


async def test_a_halt_stops_freqtrade_entering_and_a_flatten_exits_its_trades(tmp_path, venue, freqtrade, monkeypatch):
    api, log, process = freqtrade
    [trade] = wait_for(lambda: open_trades(api), 120, "Freqtrade opens a trade on the embedded exchange", process, log)
    assert trade["pair"] == PAIR and trade["is_open"]
    assert any(position["symbol"] == PAIR for position in get(f"{venue}/_sim/state")["positions"])

    monkeypatch.setenv("RISKD_ACCOUNTS__MAIN__API_KEY", "riskd-key")
    monkeypatch.setenv("RISKD_ACCOUNTS__MAIN__SECRET", "riskd-secret")
    monkeypatch.setenv("RISKD_ACCOUNTS__MAIN__HOOKS__BOT__USERNAME", USERNAME)
    monkeypatch.setenv("RISKD_ACCOUNTS__MAIN__HOOKS__BOT__PASSWORD", PASSWORD)
    ccxt_settings = {key: value for key, value in ccxt_config(venue).items() if key not in ("apiKey", "secret")}
    document = {
        "live": False,  # riskd sends nothing: the exits below are Freqtrade's own
        "database": str(tmp_path / "riskd.db"),
        "accounts": {"main": {
            "exchange": "binanceusdm", "ccxt": {**ccxt_settings, "enableRateLimit": False},
            "hooks": {"bot": {"type": "freqtrade", "url": api.removesuffix("/api/v1"), "timeout": "20s", "in_dry_run": True}},
        }},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(document))
    daemon = Daemon(load_settings(tmp_path / "config.yaml"))
    await daemon.startup()
    try:
        await daemon.tick("main")
        guard = daemon.guards["main"]

        await guard.obey(Command(CommandKind.FREEZE, "main", "test", "tester", reason="bot gone wild"))
        await daemon.deliver_hooks()
        [halted] = daemon.store.hook_calls("main")
        assert halted.status is AlertStatus.SENT, halted.error
        assert get(f"{api}/show_config", auth=True)["state"] == "paused"  # Freqtrade says it stopped entering

        await guard.obey(Command(CommandKind.FLATTEN, "main", "test", "tester"))
        await daemon.deliver_hooks()
        flatten = daemon.store.hook_calls("main")[-1]
        assert (flatten.trigger, flatten.status) == ("flatten", AlertStatus.SENT), flatten.error
        assert "forceexit: HTTP 200" in flatten.outcome
        wait_for(lambda: open_trades(api) == [], 60, "Freqtrade exits its trade", process, log)
        closed = get(f"{api}/trades", auth=True)["trades"]
        assert [(trade["pair"], trade["is_open"], trade["exit_reason"]) for trade in closed] == [(PAIR, False, "force_exit")]
        assert not any(position["symbol"] == PAIR for position in get(f"{venue}/_sim/state")["positions"])
        assert get(f"{api}/show_config", auth=True)["state"] == "paused"  # and so opens no new trade
    finally:
        await daemon.shutdown()
