"""Memory and database growth per thousand ticks, over a week of ticks at 10 s.

The shipped config.yaml (one account on the embedded exchange, inside riskd's own
process) runs in a Daemon as `riskd run` builds it, but its clock, and the embedded
exchange's, are virtual: each tick moves both 10 s on, so a week (60,480 ticks) takes
as long as the ticks themselves take to run, not a week. The daily prune runs once per
virtual day, as the scheduler would run it. Reports the process's resident memory after
the first hour of ticks (360), then every 5,000 ticks, and the database's size.
Target: the last reading within 5 % of the first hour's.

Run: python bench/soak.py [--ticks 60480] [--trace]
"""

from __future__ import annotations

import argparse
import logging
import asyncio
import gc
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from riskd.config import load_settings  # noqa: E402
from riskd.sim.simulator import Simulator  # noqa: E402
from riskd.supervisor import Daemon  # noqa: E402

TICK = timedelta(seconds=10)
HOUR = 360


class VirtualClock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def epoch(self) -> float:
        return self.now.timestamp()


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def soak(ticks: int, trace: bool) -> None:
    clock = VirtualClock()
    demo = Simulator.demo
    # The embedded exchange keeps the daemon's virtual time (riskd passes it no clock of its own).
    Simulator.demo = classmethod(lambda cls, **kw: demo(clock=clock.epoch, **kw))  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="riskd-soak-") as folder:
        database = Path(folder) / "riskd.db"
        settings = load_settings(ROOT / "config.yaml", database=str(database))
        daemon = Daemon(settings, clock=clock)
        await daemon.startup()
        name = next(iter(daemon.guards))
        started, first, baseline = time.monotonic(), None, None
        print(f"{'ticks':>7} {'virtual days':>12} {'RSS MB':>8} {'vs 1st hour':>11} {'DB MB':>7} {'wall s':>7}")
        try:
            for tick in range(1, ticks + 1):
                clock.now += TICK
                await daemon.tick(name)
                if tick % 8640 == 0:
                    await daemon.prune()
                if tick == HOUR:
                    gc.collect()
                    first = rss_kb()
                    if trace:
                        tracemalloc.start(10)
                        baseline = tracemalloc.take_snapshot()
                if tick % 5000 == 0 or tick == HOUR or tick == ticks:
                    gc.collect()
                    rss = rss_kb()
                    size = sum(path.stat().st_size for path in Path(folder).glob("riskd.db*")) / 1e6
                    versus = f"{(rss - first) / first * 100:+.1f}%" if first else "-"
                    print(f"{tick:7d} {tick * 10 / 86400:12.2f} {rss / 1024:8.1f} {versus:>11} {size:7.2f} "
                          f"{time.monotonic() - started:7.0f}", flush=True)
        finally:
            await daemon.shutdown()
            Simulator.demo = demo
        if baseline is not None:
            for stat in tracemalloc.take_snapshot().compare_to(baseline, "traceback")[:8]:
                print(stat)
                for line in stat.traceback.format()[-6:]:
                    print("   ", line)
        per_thousand = (rss - first) / (ticks - HOUR) * 1000 if first and ticks > HOUR else 0.0
        print(f"memory: {per_thousand:+.0f} KB per 1000 ticks after the first hour; "
              f"database: {size:.2f} MB after {ticks} ticks ({size / ticks * 1000 * 1000:.0f} KB per 1000 ticks before pruning)")


def main() -> None:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--ticks", type=int, default=60_480)
    arguments.add_argument("--trace", action="store_true", help="list what grew after the first hour (slow)")
    options = arguments.parse_args()
    logging.getLogger("riskd").setLevel(logging.ERROR)  # breaches of the random walk are not the subject here
    asyncio.run(soak(options.ticks, options.trace))


if __name__ == "__main__":
    main()
