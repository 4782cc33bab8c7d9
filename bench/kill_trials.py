"""kill -9 during a flatten, many times: the long run of tests/integration/test_kill.py.

Each trial: riskd live against the simulator, a 20 % crash, SIGKILL at a random moment
0–2.5 s after it (before, during or after the flatten's orders, each held 1 s at the
exchange before it executes),
then a restart. Prints one line per trial and the totals: flips, over-closes (orders
not reduce-only, or more than two per position), accounts not halted, peaks lost,
databases failing the integrity check.

Run: python bench/kill_trials.py [--trials 20] [--seed 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from riskd.domain import TradingState  # noqa: E402
from tests.integration.test_kill import trial  # noqa: E402


async def main(trials: int, seed: int) -> None:
    totals = {"flips or leftovers": 0, "over-closes": 0, "not halted": 0, "peaks lost": 0, "databases damaged": 0}
    phases: dict[str, int] = {}
    print(f"{'trial':>5} {'kill at s':>9} {'killed':>18} {'orders in all':>13}  result")
    for number in range(trials):
        with tempfile.TemporaryDirectory(prefix="riskd-kill-") as folder:
            seen = await trial(Path(folder), random.Random(seed + number))
        orders = seen["orders"]
        faults = {
            "flips or leftovers": seen["positions"] != [],
            "over-closes": any(entry["params"].get("reduceOnly") != "true" for entry in orders)
            or len(orders) > 2 * len(seen["held"]),
            "not halted": seen["final"].trading_state is not TradingState.HALTED,
            "peaks lost": abs(seen["final"].peak_equity - seen["peak"]) > 1e-6,
            "databases damaged": seen["integrity"] != "ok",
        }
        for key, bad in faults.items():
            totals[key] += bad
        phases[seen["phase"]] = phases.get(seen["phase"], 0) + 1
        result = ", ".join(key for key, bad in faults.items() if bad) or "held"
        print(f"{number + 1:5d} {seen['moment']:9.2f} {seen['phase']:>18} {len(orders):13d}  {result}", flush=True)
    print(f"{trials} trials, killed " + ", ".join(f"{count} {phase}" for phase, count in phases.items()) + ": "
          + ", ".join(f"{count} {key}" for key, count in totals.items()))


if __name__ == "__main__":
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--trials", type=int, default=20)
    options.add_argument("--seed", type=int, default=1000, help="trial n kills at the moment seed + n draws")
    arguments = options.parse_args()
    asyncio.run(main(arguments.trials, arguments.seed))
