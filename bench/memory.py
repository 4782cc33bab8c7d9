"""Resident memory of the daemon with one account, after start.

Two shapes, each a `riskd run` process with a scratch database, measured over its
first ticks (largest VmRSS), then stopped with SIGTERM:
1. the shipped config.yaml: one account on the embedded exchange, which runs in the
   same process;
2. as on a VPS: one Binance USDⓈ-M account (the simulator in another process stands in
   for Binance), Telegram on (a fake Bot API on loopback) and the HTTP server on;
3. the same, after `/report` has drawn the report's chart once (matplotlib loaded).
Also reports the cost of importing ccxt alone, for scale. Target: ≤ 160 MB. The daemon
runs with a user's install (`bench/runtime.py`: riskd and its runtime dependencies only).

Run: python bench/memory.py
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

import runtime

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:bench-token"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def ticks(database: Path) -> int:
    try:
        with sqlite3.connect(database) as connection:
            return connection.execute("select count(*) from snapshots").fetchone()[0]
    except sqlite3.Error:
        return 0


def measure(config: Path, folder: str, environment: dict, poke=None) -> tuple[float, int, int]:
    """Peak RSS in MB over the first ticks, the sample count, and the exit status.

    `poke`, if given, is called after the first tick and returns once what it asked of
    the daemon is done; the samples are taken after it."""
    database = Path(folder) / "riskd.db"
    # 3 s: the shortest round figure at which riskd lets one Binance account use an IP's budget
    environment = {**os.environ, **environment, "RISKD_DATABASE": str(database), "RISKD_POLL_INTERVAL": "3s"}
    daemon = subprocess.Popen(
        [runtime.python(), "-m", "riskd", "--config", str(config), "run"], env=environment, cwd=folder, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while ticks(database) < 1:
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise SystemExit("riskd did not complete a tick")
            time.sleep(0.2)
        if poke is not None:
            poke()
        samples, counted = [], ticks(database)
        while ticks(database) < counted + 5:
            samples.append(rss_mb(daemon.pid))
            time.sleep(0.5)
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=15)
    return max(samples), len(samples), code


async def serve_peers(folder: str) -> tuple[Path, list]:
    """Start the simulator and a fake Telegram on loopback; write a VPS-shaped config."""
    sys.path.insert(0, str(ROOT))
    from riskd.sim import SimServer, Simulator, ccxt_config
    from tests.fakes.telegram_api import FakeTelegram

    exchange, telegram = SimServer(Simulator.demo(seed=7)), FakeTelegram(TOKEN)
    await exchange.start()
    await telegram.start()
    urls = {key: value for key, value in ccxt_config(exchange.url).items() if key in ("urls", "options")}
    config = Path(folder) / "config.yaml"
    config.write_text(yaml.safe_dump({
        "accounts": {"main": {"exchange": "binanceusdm", "ccxt": urls}},
        "telegram": {"chat_ids": [1], "base_url": telegram.url},
        "http": {"enabled": True, "port": 0},
    }))
    return config, [exchange, telegram]


async def vps_shape(chart: bool = False) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory(prefix="riskd-bench-") as folder:
        config, peers = await serve_peers(folder)
        loop, telegram = asyncio.get_running_loop(), peers[1]

        def report() -> None:
            """Ask for /report in Telegram and wait for its chart to arrive."""
            from tests.fakes.telegram_api import user

            asyncio.run_coroutine_threadsafe(telegram.command("/report", user(1, "bench")), loop).result(10)
            deadline = time.monotonic() + 60
            while not telegram.photos:
                if time.monotonic() > deadline:
                    raise SystemExit("no chart arrived")
                time.sleep(0.2)

        environment = {
            "RISKD_ACCOUNTS__MAIN__API_KEY": "bench-key", "RISKD_ACCOUNTS__MAIN__SECRET": "bench-secret",
            "RISKD_TELEGRAM__TOKEN": TOKEN,
        }
        try:
            return await asyncio.to_thread(measure, config, folder, environment, report if chart else None)
        finally:
            for peer in peers:
                await peer.stop()


def main() -> None:
    ccxt_alone = subprocess.run(
        [runtime.python(), "-c", "import ccxt.async_support, pathlib; "
         "print([l for l in pathlib.Path('/proc/self/status').read_text().splitlines() if l.startswith('VmRSS')][0])"],
        capture_output=True, text=True, check=True,
    ).stdout.split()[1]
    with tempfile.TemporaryDirectory(prefix="riskd-bench-") as folder:
        shipped = measure(ROOT / "config.yaml", folder, {})
    vps = asyncio.run(vps_shape())
    charted = asyncio.run(vps_shape(chart=True))
    print(f"import ccxt.async_support alone: {int(ccxt_alone) / 1024:6.1f} MB")
    shapes = (
        ("shipped config (embedded exchange)", shipped),
        ("VPS shape (Telegram, HTTP)", vps),
        ("VPS shape, after /report drew its chart once", charted),
    )
    for name, (peak, count, code) in shapes:
        print(f"riskd run, {name}: {peak:6.1f} MB peak over {count} samples (target ≤ 160 MB); exit {code} after SIGTERM")


if __name__ == "__main__":
    main()
