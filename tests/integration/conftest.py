"""What the integration tests share: a fake clock, the embedded exchange, a guarded account.

The account is configured as a real account would be (a Binance USDⓈ-M futures account,
`exchange: binanceusdm`; with `configure(market="spot")` a Binance spot account,
`exchange: binance`; with `configure(market="bybit")` a Bybit unified account, `exchange:
bybit`; credentials from the environment), only its URLs pointed at a simulator the
test owns.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from riskd.config import load_settings
from riskd.sim import SimServer, Simulator, bybit, ccxt_config
from riskd.supervisor import Daemon

BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
DIALECTS = {
    # ccxt class: (its order path on the simulator, the API prefix faults can target,
    # the request field carrying riskd's client order id)
    "binanceusdm": ("/fapi/v1/order", "/fapi", "newClientOrderId"),
    "bybit": ("/v5/order/create", "/v5", "orderLinkId"),
}
MARKETS = {"binanceusdm": "futures", "bybit": "bybit"}
"""The `configure(market=...)` that guards the futures account in each dialect."""
# The account "main" on each market, besides its timeout and ccxt settings. The spot
# account keeps its BNB, as spot traders do to pay fees with it.
ACCOUNTS = {
    "futures": {"exchange": "binanceusdm"},
    "bybit": {"exchange": "bybit"},
    "spot": {"exchange": "binance", "market": "spot", "keep_assets": ["BNB"]},
}


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


@pytest.fixture(params=list(DIALECTS))
def venue(request) -> str:
    """The ccxt class (and the simulator's dialect) the guarded account is read through;
    a test that asks for it runs once per dialect."""
    return request.param


@pytest.fixture
def hedge() -> bool:
    """Whether the simulated futures account is in hedge mode; test modules override it."""
    return False


@pytest.fixture
async def exchange(clock, hedge):
    server = SimServer(Simulator.demo(seed=7, clock=clock.epoch, volatility=0, hedge=hedge))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def configure(tmp_path, exchange, monkeypatch):
    """Write a config.yaml for one Binance account pointed at the simulator; returns its path.

    `market` is "futures" or "spot" (Binance), or "bybit" (a Bybit unified account's
    linear perpetuals, the same simulated account in Bybit's dialect); `extra` are
    further top-level settings.
    """
    monkeypatch.setenv("RISKD_ACCOUNTS__MAIN__API_KEY", "test-key-not-secret")
    monkeypatch.setenv("RISKD_ACCOUNTS__MAIN__SECRET", "test-secret-not-secret")
    monkeypatch.chdir(tmp_path)

    def write(live: bool = True, market: str = "futures", **extra) -> str:
        pointed = bybit.ccxt_config(exchange.url) if market == "bybit" else ccxt_config(exchange.url, market)
        if market == "spot":
            # Only the URLs: riskd itself must tell ccxt to load spot markets only for a spot account.
            pointed = {"urls": pointed["urls"]}
        ccxt_settings = {key: value for key, value in pointed.items() if key not in ("apiKey", "secret")}
        ccxt_settings.update(enableRateLimit=False, timeout_on_exit=0)
        account = {**ACCOUNTS[market], "timeout": "2s", "ccxt": ccxt_settings}
        document = {"live": live, "database": str(tmp_path / "riskd.db"), "accounts": {"main": account}, **extra}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(document))
        return str(path)

    return write


async def started(path: str, clock: Clock, ticks: int = 0) -> Daemon:
    """A daemon started on the config at `path`, then ticked `ticks` times: one tick gives
    it a first snapshot and the peak equity a drawdown is measured from."""
    daemon = Daemon(load_settings(path), clock=clock)
    await daemon.startup()
    for _ in range(ticks):
        await tick(daemon, clock)
    return daemon


async def tick(daemon: Daemon, clock: Clock, seconds: float = 10.0):
    clock.advance(seconds)
    return await daemon.tick("main")


def orders_sent(sim: Simulator, venue: str = "binanceusdm") -> list[dict]:
    path = DIALECTS[venue][0]
    return [entry for entry in sim.requests if entry["method"] == "POST" and entry["path"] == path]


def reduce_only(entry: dict) -> bool:
    """Whether a logged order request can only close: reduce-only in either dialect's
    encoding, or in Binance's hedge mode a position side (which alone cannot open the other)."""
    params = entry["params"]
    return params.get("reduceOnly") in ("true", True) or params.get("positionSide") in ("LONG", "SHORT")


def open_positions(sim: Simulator) -> dict:
    return {position["symbol"]: position for position in sim.state()["positions"]}
