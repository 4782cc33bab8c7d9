"""Several Binance USDⓈ-M venues in one process, for benchmarks with many accounts.

Binance counts request weight per IP, so riskd refuses more accounts on one venue than
half its budget holds (four at a 10 s poll). A hundred accounts therefore need many
IPs; here each venue is the simulator on its own port, keeping its own weight count,
and all of them serve the same simulated account. One process serves them all so that
the exchange side stays light on a 2-core machine.

Run: python bench/venues.py COUNT LATENCY  (prints the base URLs as one JSON line)
"""

from __future__ import annotations

import asyncio
import json
import sys

from riskd.sim import SimServer, Simulator


async def serve(count: int, latency: float) -> None:
    simulator = Simulator.demo(seed=7)
    if latency > 0:
        simulator.add_fault("latency", seconds=latency)
    servers = [SimServer(simulator) for _ in range(count)]
    urls = [await server.start() for server in servers]
    print(json.dumps(urls), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), float(sys.argv[2])))
