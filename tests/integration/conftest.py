"""What the integration tests share: a fake clock, the embedded exchange, a guarded account.

The account is configured as a real Binance USDⓈ-M account would be
(`exchange: binanceusdm`, credentials from the environment), only its URLs pointed at
a simulator the test owns.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from riskd.config import load_settings
from riskd.sim import SimServer, Simulator, ccxt_config
from riskd.supervisor import Daemon

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
ORDER_PATH = "/fapi/v1/order"


class Clock:
    """One fake time for the daemon (datetime) and the simulator (epoch seconds)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def epoch(self) -> float:
        return self.now.timestamp()

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def exchange(clock):
    server = SimServer(Simulator.demo(seed=7, clock=clock.epoch, volatility=0))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def configure(tmp_path, exchange, monkeypatch):
    """Write a config.yaml for one Binance account pointed at the simulator; returns its path."""
    monkeypatch.setenv("RISKD_ACCOUNTS__MAIN__API_KEY", "test-key-not-secret")
    monkeypatch.setenv("RISKD_ACCOUNTS__MAIN__SECRET", "test-secret-not-secret")
    monkeypatch.chdir(tmp_path)

    def write(live: bool = True, **extra) -> str:
        ccxt_settings = {**ccxt_config(exchange.url), "enableRateLimit": False, "timeout_on_exit": 0}
        for key in ("apiKey", "secret"):
            ccxt_settings.pop(key, None)
        document = {
            "live": live,
            "database": str(tmp_path / "riskd.db"),
            "accounts": {"main": {"exchange": "binanceusdm", "timeout": "2s", "ccxt": ccxt_settings}},
            **extra,
        }
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(document))
        return str(path)

    return write


async def started(path: str, clock: Clock) -> Daemon:
    daemon = Daemon(load_settings(path), clock=clock)
    await daemon.startup()
    return daemon


async def tick(daemon: Daemon, clock: Clock, seconds: float = 10.0):
    clock.advance(seconds)
    return await daemon.tick("main")


def orders_sent(sim: Simulator) -> list[dict]:
    return [entry for entry in sim.requests if entry["method"] == "POST" and entry["path"] == ORDER_PATH]


def open_positions(sim: Simulator) -> dict:
    return {position["symbol"]: position for position in sim.state()["positions"]}
