"""The dead-man switch: Binance USDⓈ-M's countdownCancelAll, renewed on every good tick, through
real ccxt to the simulator, which runs Binance's countdown.

The demo account has open orders on BTC, ETH and SOL. In process, with a fake clock, the
countdown is watched tick by tick; then riskd runs as its own process against `riskd sim`
in another, is killed with SIGKILL, and the venue cancels the orders by itself.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from riskd import checks
from riskd.config import ConfigError, load_settings
from tests.integration.conftest import tick

COUNTDOWN_PATH = "/fapi/v1/countdownCancelAll"


def with_switch(path: str, after: str) -> str:
    document = yaml.safe_load(Path(path).read_text())
    document["accounts"]["main"]["dead_man_switch"] = after
    Path(path).write_text(yaml.safe_dump(document))
    return path


def countdowns(sim) -> list[dict]:
    return [entry["params"] for entry in sim.requests if entry["method"] == "POST" and entry["path"] == COUNTDOWN_PATH]


async def test_the_countdown_is_renewed_on_every_good_tick_for_each_symbol_with_orders(configure, exchange, clock, started):
    sim = exchange.simulator
    daemon = await started(with_switch(configure(), "60s"), clock)
    for number in range(1, 4):
        await tick(daemon, clock, seconds=10)
        renewed = countdowns(sim)
        assert len(renewed) == 3 * number
        assert {(params["symbol"], params["countdownTime"]) for params in renewed[-3:]} == {
            ("BTCUSDT", "60000"), ("ETHUSDT", "60000"), ("SOLUSDT", "60000")
        }
        assert daemon.guards["main"].dead_man_armed_at == clock()
    sim.add_fault("http_503")
    await tick(daemon, clock)  # a failed read renews nothing: riskd cannot vouch for the account
    assert len(countdowns(sim)) == 9


async def test_the_venue_cancels_open_orders_once_riskd_stops_renewing_and_keeps_positions(configure, exchange, clock, started):
    sim = exchange.simulator
    daemon = await started(with_switch(configure(), "60s"), clock)
    positions = {position["symbol"] for position in sim.state()["positions"]}
    for _ in range(9):  # 90 s of ticks, longer than the countdown: renewed, nothing cancelled
        await tick(daemon, clock, seconds=10)
    assert len(sim.state()["openOrders"]) == 4
    await started.stop(daemon)
    clock.advance(59)
    assert len(sim.state()["openOrders"]) == 4
    clock.advance(2)  # 61 s after the last renewal
    state = sim.state()
    assert state["openOrders"] == []
    assert {position["symbol"] for position in state["positions"]} == positions  # it cancels; it never closes


async def test_without_the_option_nothing_is_armed(configure, exchange, clock, started):
    await started(configure(), clock, ticks=2)
    assert countdowns(exchange.simulator) == []


async def test_in_dry_run_nothing_is_armed(configure, exchange, clock, started):
    # riskd in dry-run acts on nothing: stopping it must not make the venue cancel the bot's orders
    daemon = await started(with_switch(configure(live=False), "60s"), clock, ticks=2)
    assert daemon.guards["main"].last_tick_at is not None
    assert countdowns(exchange.simulator) == []
    assert daemon.guards["main"].dead_man_armed_at is None


async def test_bybit_is_offered_no_switch_and_check_says_so(configure, exchange, clock, started):
    # Bybit's disconnected-cancel-all fires only when a dcp websocket drops; riskd polls over REST
    daemon = await started(with_switch(configure(market="bybit"), "60s"), clock, ticks=2)
    guard = daemon.guards["main"]
    assert guard.adapter.dead_man_switch is None
    assert guard.dead_man_armed_at is None
    assert not [entry for entry in exchange.simulator.requests if "disconnected-cancel-all" in entry["path"]]
    snapshot = await guard.adapter.snapshot()
    assert "warning: dead_man_switch is set, but bybit offers riskd none: open orders stay if riskd dies" in (
        await checks.understanding(guard.adapter, snapshot)
    )


@pytest.mark.parametrize("after", ["5s", "3m"])
def test_a_countdown_outside_okxs_range_is_refused(tmp_path, monkeypatch, after):
    monkeypatch.setenv("RISKD_ACCOUNTS__MAIN__API_KEY", "key-for-the-test")
    monkeypatch.setenv("RISKD_ACCOUNTS__MAIN__SECRET", "secret-for-the-test")
    path = tmp_path / "config.yaml"
    path.write_text(f"poll_interval: 1s\naccounts:\n  main:\n    exchange: okx\n    dead_man_switch: {after}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert f"accounts.main.dead_man_switch: {after} is outside what OKX allows (10s to 2m)" in str(caught.value)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def sim_state(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/_sim/state", timeout=5) as reply:
        return json.loads(reply.read())


def sim_countdowns(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_sim/requests", timeout=5) as reply:
        return sum(1 for entry in json.loads(reply.read()) if entry["path"] == COUNTDOWN_PATH)


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds:g} s: {what}")


def test_orders_are_cancelled_by_the_venue_after_riskd_is_killed(tmp_path):
    from riskd.sim import ccxt_config

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    venue = subprocess.Popen([sys.executable, "-m", "riskd", "sim", "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    riskd = None
    try:
        wait_for(lambda: _reachable(url), 30, "the simulator answers")
        ccxt_settings = {key: value for key, value in ccxt_config(url).items() if key not in ("apiKey", "secret")}
        document = {
            # one Binance USDⓈ-M account's reads fit riskd's share of the IP's budget at 2.5 s and longer
            "poll_interval": "3s",
            "live": True,
            "database": str(tmp_path / "riskd.db"),
            "accounts": {"main": {"exchange": "binanceusdm", "dead_man_switch": "6s", "ccxt": ccxt_settings}},
        }
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(document))
        environment = {**os.environ, "RISKD_ACCOUNTS__MAIN__API_KEY": "test-key", "RISKD_ACCOUNTS__MAIN__SECRET": "test-secret"}
        riskd = subprocess.Popen(
            [sys.executable, "-m", "riskd", "--config", str(tmp_path / "config.yaml"), "run"],
            cwd=tmp_path, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: sim_countdowns(url) >= 3, 60, "riskd arms the countdown")
        started_at = time.monotonic()
        wait_for(lambda: time.monotonic() - started_at > 7.5 and sim_countdowns(url) >= 12, 40, "riskd renews it past 6 s")
        assert len(sim_state(url)["openOrders"]) == 4  # renewed in time: nothing cancelled while riskd lives

        os.kill(riskd.pid, signal.SIGKILL)
        riskd.wait(timeout=10)
        killed_at = time.monotonic()
        wait_for(lambda: sim_state(url)["openOrders"] == [], 15, "the venue cancels the open orders")
        assert time.monotonic() - killed_at < 7.5
        assert len(sim_state(url)["positions"]) == 3  # positions stay
    finally:
        for process in (riskd, venue):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)


def _reachable(url: str) -> bool:
    try:
        sim_state(url)
        return True
    except OSError:
        return False
