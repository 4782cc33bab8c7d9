"""Flatten latency on an exchange 50 ms away.

Measures, with 50 ms added to every reply of the embedded exchange (run as `riskd sim`
in its own process, as a real exchange would be):
1. a round trip (one unsigned request), the unit the targets are written in;
2. sending the close orders of 20 positions concurrently, as the executor does,
   against sending the same orders one after another (the baseline), in the same run;
3. the time from a breach becoming visible (the tick whose read first shows it) to the
   account being flat, with `confirm: 1` so the figure is riskd's own reaction time
   (each extra confirm tick adds one poll interval).

Run: python bench/flatten.py
"""

from __future__ import annotations

import asyncio
import statistics
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import exchange_with_positions, guarded, scratch  # noqa: E402

from riskd.executor import client_order_id  # noqa: E402

POSITIONS = 20


async def round_trip(adapter) -> float:
    started = time.perf_counter()
    await adapter.client.fetch_time()
    return time.perf_counter() - started


async def send_orders(daemon, concurrent: bool, tag: int) -> float:
    guard = daemon.guards["main"]
    snapshot = await guard.adapter.snapshot()
    assert len(snapshot.positions) == POSITIONS, f"expected {POSITIONS} positions, got {len(snapshot.positions)}"
    orders = [
        guard.adapter.reduce(p, guard.adapter.round_amount(p.symbol, p.contracts), client_order_id(tag, p.key, 1))
        for p in snapshot.positions
    ]
    started = time.perf_counter()
    if concurrent:
        await asyncio.gather(*orders)
    else:
        for order in orders:
            await order
    return time.perf_counter() - started


async def breach_to_flat() -> tuple[float, int]:
    exchange = exchange_with_positions(POSITIONS)
    with scratch() as folder:
        daemon = await guarded(exchange, folder, breakers={"drawdown": {"limit": "5%", "confirm": 1}})
        await daemon.tick("main")
        exchange.move(-0.30)
        started = time.perf_counter()
        await daemon.tick("main")  # reads the breach, decides, flattens, verifies
        elapsed = time.perf_counter() - started
        left = len(exchange.state()["positions"])
        await daemon.shutdown()
    exchange.stop()
    return elapsed, left


RUNS = 5
"""Each figure is the median of this many runs, each on a new exchange: one run is noisy."""


async def main() -> None:
    samples: dict[str, list[float]] = {"round trip": [], "concurrent": [], "sequential": [], "flat": []}
    left = 0
    for _ in range(RUNS):
        for concurrent in (True, False):
            exchange = exchange_with_positions(POSITIONS)
            with scratch() as folder:
                daemon = await guarded(exchange, folder)
                samples["round trip"].append(min([await round_trip(daemon.guards["main"].adapter) for _ in range(5)]))
                samples["concurrent" if concurrent else "sequential"].append(await send_orders(daemon, concurrent, 1))
                assert exchange.state()["positions"] == [], "every position should be closed"
                await daemon.shutdown()
            exchange.stop()
        flat, remaining = await breach_to_flat()
        samples["flat"].append(flat)
        left = max(left, remaining)
    results = {name: statistics.median(values) for name, values in samples.items()}
    flat = results["flat"]
    trip = results["round trip"]
    print(f"round trip (50 ms injected):            {trip * 1000:7.1f} ms")
    print(f"close {POSITIONS} positions, concurrent:        {results['concurrent'] * 1000:7.1f} ms = {results['concurrent'] / trip:4.2f} round trips")
    print(f"close {POSITIONS} positions, sequential:        {results['sequential'] * 1000:7.1f} ms = {results['sequential'] / trip:4.2f} round trips")
    print(f"breach visible → flat ({POSITIONS} positions):  {flat * 1000:7.1f} ms = {flat / trip:4.2f} round trips; positions left: {left}")
    print(f"(medians of {RUNS} runs; concurrent close, slowest run: {max(samples['concurrent']) * 1000:.1f} ms)")


if __name__ == "__main__":
    asyncio.run(main())
