"""What the benchmarks share: an exchange in its own process, 50 ms away, and a guarded account.

The embedded simulator runs as `riskd sim` in a separate process, as a real exchange
would: its own work then does not share riskd's event loop, and the figures are riskd's
and the network's.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from riskd.config import load_settings
from riskd.sim import ccxt_config
from riskd.supervisor import Daemon

logging.basicConfig(level=logging.ERROR)  # the figures, not the daemon's narration

LATENCY = 0.050
"""Seconds added to every reply of the exchange: a VPS a few hundred km from it."""


class Exchange:
    """`riskd sim` in a subprocess, driven through its /_sim/ control interface."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "riskd", "sim", "--port", str(port), "--latency", str(LATENCY)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.state()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def control(self, method: str, path: str, body: dict | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}/_sim/{path}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())

    def state(self) -> dict:
        return self.control("GET", "state")

    def move(self, fraction: float) -> None:
        self.control("POST", "price", {"move": fraction})

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def exchange_with_positions(count: int) -> Exchange:
    """The demo exchange with `count` long positions (the demo's three included)."""
    exchange = Exchange()
    state = exchange.state()
    held = {position["symbol"] for position in state["positions"]}
    for symbol, price in state["prices"].items():
        if len(held) >= count:
            break
        if symbol not in held:
            quantity = max(1, round(60 / price)) if price < 60 else round(60 / price, 3)
            exchange.control("POST", "order", {"symbol": symbol, "side": "BUY", "quantity": str(quantity)})
            held.add(symbol)
    return exchange


async def guarded(exchange: Exchange, folder: str, ccxt: dict | None = None, **settings) -> Daemon:
    """A live daemon guarding the simulator as a Binance USD-M account, started.

    `ccxt`: further client settings for the account; without them, riskd's shipped ones.
    """
    ccxt_settings = {**ccxt_config(exchange.url), "timeout_on_exit": 0, **(ccxt or {})}
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
