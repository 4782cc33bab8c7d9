"""Flatten latency on an exchange 50 ms away.

Measures, with 50 ms added to every reply of the embedded exchange (run as `riskd sim`
in its own process, as a real exchange would be):
1. a round trip (one unsigned request), the unit the targets are written in;
2. sending the close orders of 20 positions concurrently, as the executor does,
   against sending the same orders one after another (the baseline), in the same run;
3. the time from a breach becoming visible (the tick whose read first shows it) to the
   account being flat, with `confirm: 1` so the figure is riskd's own reaction time
   (each extra confirm tick adds one poll interval): with the rate limiter riskd ships
   (ccxt's rolling window at Binance's 2,400 weight a minute), and, in the same run, with
   ccxt's default limiter for binanceusdm (a leaky bucket at 50 ms per unit of cost, the
   client's own, with no way through for orders), which is what users ran before.

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


CCXT_DEFAULT_LIMITER = {"rateLimiterAlgorithm": "leakyBucket", "rateLimit": 50}
"""ccxt's own limiter settings for binanceusdm, given as an account's `ccxt` mapping would."""


async def breach_to_flat(limiter: dict | None = None) -> tuple[float, int]:
    exchange = exchange_with_positions(POSITIONS)
    with scratch() as folder:
        daemon = await guarded(exchange, folder, limiter, breakers={"drawdown": {"limit": "5%", "confirm": 1}})
        if limiter:  # the client's own ccxt limiter, as before riskd shared one per venue with a way through for orders
            daemon.guards["main"].adapter.client.init_throttler()
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
    samples: dict[str, list[float]] = {"round trip": [], "concurrent": [], "sequential": [], "flat": [], "flat, ccxt default": []}
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
        slow, remaining_slow = await breach_to_flat(CCXT_DEFAULT_LIMITER)
        samples["flat, ccxt default"].append(slow)
        left = max(left, remaining, remaining_slow)
    results = {name: statistics.median(values) for name, values in samples.items()}
    flat = results["flat"]
    trip = results["round trip"]
    print(f"round trip (50 ms injected):            {trip * 1000:7.1f} ms")
    print(f"close {POSITIONS} positions, concurrent:        {results['concurrent'] * 1000:7.1f} ms = {results['concurrent'] / trip:4.2f} round trips")
    print(f"close {POSITIONS} positions, sequential:        {results['sequential'] * 1000:7.1f} ms = {results['sequential'] / trip:4.2f} round trips")
    print(f"breach visible → flat ({POSITIONS} positions):  {flat * 1000:7.1f} ms = {flat / trip:4.2f} round trips; positions left: {left}")
    slow = results["flat, ccxt default"]
    print(f"  the same with ccxt's default limiter:   {slow * 1000:7.1f} ms = {slow / trip:4.2f} round trips; "
          f"shipped / default = {flat / slow:.3f} ({slow / flat:.1f}x faster)")
    print(f"(medians of {RUNS} runs; concurrent close, slowest run: {max(samples['concurrent']) * 1000:.1f} ms)")


if __name__ == "__main__":
    asyncio.run(main())
