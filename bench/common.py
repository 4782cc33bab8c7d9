"""What the benchmarks share: an embedded exchange with injected latency and a guarded account."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import yaml

from riskd.config import load_settings
from riskd.sim import SimServer, Simulator, ccxt_config
from riskd.supervisor import Daemon

logging.basicConfig(level=logging.ERROR)  # the figures, not the daemon's narration

LATENCY = 0.050
"""Seconds added to every reply of the exchange: a VPS a few hundred km from it."""


async def exchange_with_positions(count: int) -> SimServer:
    """The demo exchange with `count` long positions (the demo's three included)."""
    simulator = Simulator.demo(seed=7, volatility=0)
    held = {position["symbol"] for position in simulator.state()["positions"]}
    for symbol, price in simulator.state()["prices"].items():
        if len(held) >= count:
            break
        if symbol not in held:
            quantity = max(1, round(60 / price)) if price < 60 else round(60 / price, 3)
            simulator.place_order(symbol, "BUY", str(quantity), "MARKET")
            held.add(symbol)
    simulator.add_fault("latency", seconds=LATENCY)
    server = SimServer(simulator)
    await server.start()
    return server


async def guarded(server: SimServer, folder: str, **settings) -> Daemon:
    """A live daemon guarding the simulator as a Binance USD-M account, started."""
    ccxt_settings = {**ccxt_config(server.url), "enableRateLimit": False, "timeout_on_exit": 0}
    for key in ("apiKey", "secret"):
        ccxt_settings.pop(key)
    os.environ["RISKD_ACCOUNTS__MAIN__API_KEY"] = os.environ["RISKD_ACCOUNTS__MAIN__SECRET"] = "bench-not-a-secret"
    document = {
        "live": True,
        "database": str(Path(folder) / "bench.db"),
        "accounts": {"main": {"exchange": "binanceusdm", "ccxt": ccxt_settings}},
        **settings,
    }
    path = Path(folder) / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    daemon = Daemon(load_settings(path))
    await daemon.startup()
    return daemon


def scratch() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="riskd-bench-")
