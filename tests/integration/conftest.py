"""What the integration tests share: a fake clock, the embedded exchange, a guarded account.

The account is configured as a real account would be (a Binance USDⓈ-M futures account,
`exchange: binanceusdm`; with `configure(market="spot")` a Binance spot account,
`exchange: binance`; with `configure(market="bybit")` a Bybit unified account, `exchange:
bybit`; credentials from the environment), only its URLs pointed at a simulator the
test owns.

Whatever a test starts through these fixtures (daemons, simulator servers, ccxt clients)
is closed when the test ends, passed or failed, so a failing assertion leaves no
database, socket or session open behind it.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from riskd.config import AccountConfig, load_settings
from riskd.exchange import build_client
from riskd.sim import SimServer, Simulator, bybit, ccxt_config
from riskd.supervisor import STOP_GRACE, Daemon

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
"""When every test's clock starts."""

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
    "bybit": {"exchange": "bybit", "stream": False},  # the simulator serves no Bybit websocket
    "spot": {"exchange": "binance", "market": "spot", "keep_assets": ["BNB"]},
}


class Clock:
    """The tests' one time, for the daemon (a datetime) and the simulator and the fake
    Telegram (epoch seconds), starting at START.

    Fixed, it moves only when a test calls `advance`, so ticks are driven by hand and every
    figure is exact. With `real_time=True` real time passes on it too (backoff waits really
    pass), and `advance` still pushes it forward to make time fly.
    """

    def __init__(self, real_time: bool = False) -> None:
        self.real_time, self.origin = real_time, time.monotonic()
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        passed = timedelta(seconds=time.monotonic() - self.origin) if self.real_time else timedelta(0)
        return START + self.offset + passed

    def epoch(self) -> float:
        return self().timestamp()

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


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


def demo(clock: Clock, **settings) -> Simulator:
    """The simulator's demo account on the test's clock, its market still unless `settings` say otherwise."""
    return Simulator.demo(**{"seed": 7, "clock": clock.epoch, "volatility": 0, **settings})


@pytest.fixture
async def serve():
    """Serves a simulator over HTTP: `await serve(simulator)` is a started SimServer,
    stopped when the test ends."""
    servers: list[SimServer] = []

    async def start(simulator: Simulator) -> SimServer:
        server = SimServer(simulator)
        servers.append(server)
        await server.start()
        return server

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def exchange(clock, serve, hedge):
    return await serve(demo(clock, hedge=hedge))


@pytest.fixture
async def clients():
    """Builds ccxt clients for a simulator's URL as riskd builds them (`exchange.build_client`):
    `clients(url)` for Binance USDⓈ-M, `clients(url, "spot")` for Binance spot, `clients(url,
    "bybit")` for Bybit's linear perpetuals; `account` are further account settings
    (`timeout="1s"`). Each is closed when the test ends."""
    built = []

    def build(url: str, market: str = "futures", **account):
        pointed = bybit.ccxt_config(url) if market == "bybit" else ccxt_config(url, market)
        exchange_id = {"futures": "binanceusdm", "spot": "binance", "bybit": "bybit"}[market]
        # riskd's shipped rate limiter stays on; for speed, no 250 ms sleep in close() (it is there for SSL).
        ccxt_settings = {"urls": pointed["urls"], "timeout_on_exit": 0}
        if market == "bybit":
            ccxt_settings["options"] = pointed["options"]  # linear markets only
        config = AccountConfig(
            exchange=exchange_id, market="spot" if market == "spot" else "futures", api_key=pointed["apiKey"], secret=pointed["secret"],
            ccxt=ccxt_settings, **account,
        )
        client = build_client(config)
        built.append(client)
        return client

    yield build
    for client in built:
        await client.close()


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
        ccxt_settings.update(timeout_on_exit=0)  # riskd's shipped rate limiter stays on; no 250 ms sleep in close()
        account = {**ACCOUNTS[market], "timeout": "2s", "ccxt": ccxt_settings}
        document = {"live": live, "database": str(tmp_path / "riskd.db"), "accounts": {"main": account}, **extra}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(document))
        return str(path)

    return write


class Starter:
    """Starts daemons for one test; the `started` fixture shuts each down when the test ends."""

    def __init__(self) -> None:
        self.running: list[Daemon] = []

    async def __call__(self, path: str | Path, clock: Clock, ticks: int = 0) -> Daemon:
        """A daemon started on the config at `path`, then ticked `ticks` times: one tick gives
        it a first snapshot and the peak equity a drawdown is measured from."""
        daemon = Daemon(load_settings(path), clock=clock)
        self.running.append(daemon)  # before startup: what a failed startup opened is closed too
        await daemon.startup()
        for _ in range(ticks):
            await tick(daemon, clock)
        return daemon

    async def stop(self, daemon: Daemon) -> None:
        """Shut `daemon` down now, as a test that restarts riskd on its database does."""
        self.running.remove(daemon)
        await daemon.shutdown()


@pytest.fixture
async def started():
    """`await started(path, clock)`: a started daemon, shut down when the test ends, passed or failed."""
    starter = Starter()
    yield starter
    while starter.running:
        await starter.running.pop().shutdown()


@pytest.fixture
async def run():
    """`run(daemon)` runs it as `riskd run` does, as a task it returns; a daemon still
    running when the test ends is stopped and waited for, passed or failed."""
    runs: list[tuple[Daemon, asyncio.Task]] = []

    def start(daemon: Daemon) -> asyncio.Task:
        task = asyncio.create_task(daemon.run())
        runs.append((daemon, task))
        return task

    yield start
    for daemon, task in runs:
        daemon.stop()
        await asyncio.wait([task], timeout=STOP_GRACE + 5)


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


def write_config(
    folder: Path, timeout: str = "2s", sim: dict | None = None, account: dict | None = None, **settings
) -> Path:
    """A config.yaml in `folder` for one embedded-exchange account, "demo", in a still market
    (`sim` adds simulator settings, `account` further settings of the account such as its
    hooks), its database beside it; `settings` are further top-level ones."""
    demo = {"exchange": "sim", "timeout": timeout, "sim": {"volatility": 0, **(sim or {})}, **(account or {})}
    document = {"database": str(folder / "riskd.db"), "accounts": {"demo": demo}, **settings}
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def workdir(tmp_path, monkeypatch, no_riskd_environment) -> Path:
    """A scratch folder holding a copy of the shipped config.yaml, the test run from there,
    with no RISKD_ variables."""
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path
