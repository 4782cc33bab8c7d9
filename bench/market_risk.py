"""CPU of market risk: Monte Carlo VaR, and a whole engine step with every breaker.

1. Monte Carlo VaR of 50 assets with 10,000 paths (normal and Student-t), from a day
   of one-minute returns. Target: ≤ 100 ms.
2. One `engine.step` for an account with 50 positions, every breaker enabled (the seven
   core ones and the five market ones), market data cached: two days of one-minute
   candles for the 50 symbols and the benchmark. Target: engine and breakers ≤ 2 ms.
   Also with `var` on Monte Carlo instead of its default historical method, and with
   the core breakers alone, for scale.

Each figure is the median of many runs, in process CPU time (time.process_time_ns),
after a warm-up.

Run: python bench/market_risk.py
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from riskd import engine  # noqa: E402
from riskd.analytics import Book, value_at_risk_of  # noqa: E402
from riskd.breakers import BREAKERS  # noqa: E402
from riskd.candles import market_data  # noqa: E402
from riskd.domain import AccountState, Position, Side, Snapshot  # noqa: E402

ASSETS = 50
MINUTE = 60_000
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
CORE = ("drawdown", "daily_loss", "position_loss", "leverage", "concentration", "liquidation_distance", "stale_data")


def cpu_ms(job, runs: int) -> float:
    for _ in range(3):
        job()
    times = []
    for _ in range(runs):
        started = time.process_time_ns()
        job()
        times.append((time.process_time_ns() - started) / 1e6)
    return statistics.median(times)


def returns(steps: int, rng: np.random.Generator) -> np.ndarray:
    common = rng.normal(0, 0.001, (steps, 1))
    return common * rng.uniform(0.5, 1.5, ASSETS) + rng.normal(0, 0.001, (steps, ASSETS))


def monte_carlo() -> None:
    rng = np.random.default_rng(1)
    book = Book(tuple(f"A{i}" for i in range(ASSETS)), rng.uniform(-5_000, 5_000, ASSETS), returns(1440, rng), 1440.0)
    for distribution in ("normal", "student_t"):
        median = cpu_ms(lambda: value_at_risk_of(book, 0.99, method="monte_carlo", paths=10_000, distribution=distribution), 30)
        print(f"Monte Carlo VaR, {ASSETS} assets × 10,000 paths, {distribution}: {median:6.2f} ms (target ≤ 100 ms)")


def account() -> tuple[Snapshot, object, AccountState]:
    rng = np.random.default_rng(2)
    symbols = [f"C{i}/USDT:USDT" for i in range(ASSETS)]
    prices = 100 * np.cumprod(1 + returns(2 * 1440, rng), axis=0)
    end = int(NOW.timestamp() * 1000) // MINUTE * MINUTE
    times = end - MINUTE * np.arange(len(prices))[::-1]
    rows = {
        symbol: [(int(t), c, c * 1.001, c * 0.999, c, 1.0) for t, c in zip(times, prices[:, i])]
        for i, symbol in enumerate(symbols)
    }
    rows["BTC/USDT:USDT"] = rows[symbols[0]]
    market = market_data(rows, MINUTE, "BTC/USDT:USDT", NOW)
    positions = tuple(
        Position(symbol, Side.LONG if i % 3 else Side.SHORT, 1.0, 1_000.0, 100.0, float(prices[-1, i]), -5.0, 20.0, 5.0)
        for i, symbol in enumerate(symbols)
    )
    snapshot = Snapshot("bench", NOW, equity=100_000.0, positions=positions)
    state = AccountState("bench", peak_equity=100_000.0, day_start_equity=100_000.0, day_start=NOW.replace(hour=0),
                         last_equity=100_000.0, last_good_at=NOW, started_at=NOW)
    return snapshot, market, state


def tick() -> None:
    snapshot, market, state = account()
    every = {name: breaker.config() for name, breaker in BREAKERS.items()}
    shapes = {
        "core breakers only (7)": {name: every[name] for name in CORE},
        "every breaker (12), var historical": every,
        "every breaker (12), var Monte Carlo": every | {"var": BREAKERS["var"].config(method="monte_carlo")},
    }
    for name, breakers in shapes.items():
        policy = engine.Policy(breakers)
        result = engine.step(state, snapshot, policy, NOW, market)
        blind = [reading.key for reading in result.readings if reading.status == "no_data"]
        assert not blind, blind  # every breaker measured something
        median = cpu_ms(lambda: engine.step(state, snapshot, policy, NOW, market), 200 if "Monte" not in name else 30)
        print(f"engine.step, {ASSETS} positions, {name}: {median:6.3f} ms (target ≤ 2 ms)")


if __name__ == "__main__":
    monte_carlo()
    tick()
