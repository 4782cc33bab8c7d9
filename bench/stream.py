"""Mark moves → breach detected: the mark-price stream against polling alone.

With 50 ms added to every reply of the embedded exchange (run as `riskd sim` in its own
process, as a real exchange would be) and `poll_interval: 10s`, the daemon runs as
`riskd run` does. At a random moment after its first read, every price falls 20 % (the
demo account's drawdown goes to 11.8 %, past its 10 % limit; `confirm: 2`, the default).
The figure is the time from the move to the first `breach` event in the database: the
breach confirmed on the account's own reads, as riskd acts on it.

Both ways are measured in the same run, each the median of RUNS runs on a fresh
exchange: polling alone (`stream: false`), where detection waits for the next two polls,
and with the stream, where the move reaches riskd as a mark and the two confirming reads
follow at once. Each is run with the ccxt settings riskd ships, and with ccxt's
rolling-window limiter (`rateLimiterAlgorithm: rollingWindow`): with ccxt's default
leaky bucket, the weight-40 open-orders call of one read holds the next read for 2 s.

Run: python bench/stream.py
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, os.path.dirname(__file__))
from common import Exchange, scratch  # noqa: E402

from riskd.config import load_settings  # noqa: E402
from riskd.sim import ccxt_config  # noqa: E402
from riskd.supervisor import Daemon  # noqa: E402

RUNS = 5
POLL = 10.0
LIMITERS = {
    "shipped": {},
    "rolling window": {"rateLimiterAlgorithm": "rollingWindow", "rollingWindowSize": 60000},
}
TIMEOUT = 60.0
"""Seconds to wait for the breach before a run counts as failed."""


def configuration(exchange: Exchange, folder: str, stream: bool, limiter: dict) -> Path:
    """A live daemon guarding the simulator as a Binance USDⓈ-M account, polling every 10 s."""
    ccxt_settings = {**ccxt_config(exchange.url), **limiter, "timeout_on_exit": 0}
    for key in ("apiKey", "secret"):
        ccxt_settings.pop(key)
    os.environ["RISKD_ACCOUNTS__MAIN__API_KEY"] = os.environ["RISKD_ACCOUNTS__MAIN__SECRET"] = "bench-not-a-secret"
    document = {
        "live": True,
        "poll_interval": f"{POLL:g}s",
        "database": str(Path(folder) / "bench.db"),
        "accounts": {"main": {"exchange": "binanceusdm", "stream": stream, "ccxt": ccxt_settings}},
    }
    path = Path(folder) / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


async def detection(stream: bool, limiter: dict, wait: float) -> tuple[float, int]:
    """Seconds from the move to the breach, and the reads the stream asked for."""
    exchange = Exchange()
    try:
        with scratch() as folder:
            daemon = Daemon(load_settings(configuration(exchange, folder, stream, limiter)))
            running = asyncio.create_task(daemon.run())
            await daemon.ready()  # the first tick has read the account
            while stream and not ("main" in daemon.streams and daemon.streams["main"].up):
                await asyncio.sleep(0.01)
            await asyncio.sleep(wait)
            await asyncio.to_thread(exchange.move, -0.20)
            moved = time.perf_counter()
            while not any(event.kind == "breach" for event in daemon.store.events("main", 50)):
                if time.perf_counter() - moved > TIMEOUT:
                    raise RuntimeError(f"no breach within {TIMEOUT:g} s")
                await asyncio.sleep(0.005)
            elapsed = time.perf_counter() - moved
            reads = daemon.streams["main"].reads if stream else 0
            daemon.stop()
            await running
        return elapsed, reads
    finally:
        exchange.stop()


async def main() -> None:
    chance = random.Random(9)  # the moment of the move within the poll cycle, the same every run of the benchmark
    results: dict[tuple[str, bool], list[float]] = {}
    reads: dict[tuple[str, bool], list[int]] = {}
    for _ in range(RUNS):
        wait = chance.uniform(0, POLL)
        for name, limiter in LIMITERS.items():
            for stream in (True, False):
                elapsed, asked = await detection(stream, limiter, wait)
                results.setdefault((name, stream), []).append(elapsed)
                reads.setdefault((name, stream), []).append(asked)
    print(f"mark moves → breach detected, poll_interval {POLL:g} s, confirm 2, 50 ms injected (medians of {RUNS} runs)")
    for name in LIMITERS:
        streamed, polled = (statistics.median(results[name, stream]) for stream in (True, False))
        print(
            f"  ccxt limiter {name + ':':16} stream {streamed:6.2f} s (max {max(results[name, True]):5.2f}, "
            f"reads asked {statistics.median(reads[name, True]):.0f}) · polling alone {polled:6.2f} s "
            f"(max {max(results[name, False]):5.2f}) · ratio {polled / streamed:5.1f}×"
        )


if __name__ == "__main__":
    asyncio.run(main())
