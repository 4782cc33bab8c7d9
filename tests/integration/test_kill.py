"""kill -9 at a random moment of a flatten, then a restart: nothing lost, nothing doubled.

riskd runs as a real process (`riskd run`, live) against the simulator, which this test
owns and serves over HTTP with a delay on every order so that a flatten takes time.
Prices fall 20 %; riskd trips its drawdown breaker and flattens; at a random moment
from before the first order to after the last reply, it is killed with SIGKILL and started
again. Each trial must end with the account flat (no position flipped to the other
side, no order that was not reduce-only), halted, its peak equity kept, and the database
passing SQLite's integrity check.

KILL_TRIALS sets how many trials run (3 by default; RELIABILITY.md has the long runs).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest
import yaml

from riskd.domain import TradingState
from riskd.sim import SimServer, Simulator, ccxt_config
from riskd.store import Store, StoreError
from tests.timing import limit

TRIALS = int(os.environ.get("KILL_TRIALS", "3"))
ORDER_PATH = "/fapi/v1/order"
ORDER_DELAY = 1.0  # seconds each order waits at the exchange before it executes and is answered
POLL = 3.0
"""Seconds between ticks: one Binance USDⓈ-M account's reads fit riskd's share of the IP's budget from 2.5 s."""


def live_config(folder: Path, url: str) -> Path:
    """A live Binance USDⓈ-M account pointed at the simulator at `url`, flattened by a 10 % drawdown."""
    pointed = {key: value for key, value in ccxt_config(url).items() if key in ("urls", "options")}
    document = {
        "live": True,
        "poll_interval": f"{POLL:g}s",
        "database": str(folder / "riskd.db"),
        "accounts": {"main": {"exchange": "binanceusdm", "timeout": "5s", "ccxt": {**pointed, "enableRateLimit": False}}},
        "breakers": {"drawdown": {"limit": "10%", "confirm": 1, "action": "flatten"}},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


async def start(folder: Path, config: Path) -> asyncio.subprocess.Process:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("RISKD_")}
    environment.update(RISKD_ACCOUNTS__MAIN__API_KEY="kill-test-key", RISKD_ACCOUNTS__MAIN__SECRET="kill-test-secret")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "riskd", "--config", str(config), "run", cwd=folder, env=environment,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


def state(database: Path):
    """The account's stored state, or None while riskd has not yet written its database."""
    if not database.exists():
        return None
    try:
        store = Store(database)
    except StoreError:  # mid-creation
        return None
    try:
        return store.load_state("main")
    finally:
        store.close()


async def until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        await asyncio.sleep(0.05)


async def trial(folder: Path, rng: random.Random) -> dict:
    """One kill -9 during a flatten; returns what was observed, for the assertions and the record."""
    sim = Simulator.demo(seed=7, volatility=0)
    server = SimServer(sim)
    url = await server.start()
    database = folder / "riskd.db"
    config = live_config(folder, url)
    held = {position["symbol"]: float(position["amount"]) for position in sim.state()["positions"]}
    first = await start(folder, config)
    second = None
    try:
        await until(lambda: (s := state(database)) is not None and s.peak_equity, limit(30), "a first tick")
        peak = state(database).peak_equity
        sim.add_fault("latency", path=ORDER_PATH, seconds=ORDER_DELAY)
        sim.move(-0.20)
        moment = rng.uniform(0.0, POLL + 1.5)  # before the next tick sees the breach, up to past its orders' replies
        await asyncio.sleep(moment)
        arrived = [entry["time"] / 1000 for entry in sim.requests if entry["path"] == ORDER_PATH]
        first.send_signal(signal.SIGKILL)
        killed = time.time()
        phase = "before the orders" if not arrived else "orders in flight" if killed < max(arrived) + ORDER_DELAY else "after the replies"
        await first.wait()
        second = await start(folder, config)
        await until(lambda: sim.state()["positions"] == [] and (s := state(database)) is not None
                    and s.trading_state is TradingState.HALTED, limit(40), "flat and halted after the restart")
        final = state(database)
        orders = [entry for entry in sim.requests if entry["method"] == "POST" and entry["path"] == ORDER_PATH]
        with sqlite3.connect(database) as connection:
            integrity = connection.execute("pragma integrity_check").fetchone()[0]
        return {
            "moment": moment, "phase": phase, "orders": orders, "held": held,
            "peak": peak, "final": final, "integrity": integrity, "positions": sim.state()["positions"],
        }
    finally:
        for process in (first, second):
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await process.wait()
        await server.stop()


@pytest.mark.parametrize("number", range(TRIALS))
async def test_kill_9_during_a_flatten_then_restart_ends_flat_halted_with_the_peak_and_an_intact_database(tmp_path, number):
    seed = 1000 + number
    seen = await trial(tmp_path, random.Random(seed))
    assert seen["positions"] == [], seed  # flat: no position left, none flipped to the other side
    assert seen["orders"] and all(entry["params"].get("reduceOnly") == "true" for entry in seen["orders"]), seed
    assert len(seen["orders"]) <= 2 * len(seen["held"]), seed  # at most one retry per position, never a loop
    assert seen["final"].trading_state is TradingState.HALTED and "drawdown" in seen["final"].latches, seed
    assert seen["final"].peak_equity == pytest.approx(seen["peak"]), seed
    assert seen["integrity"] == "ok", seed
