"""Prices for the simulator: a seeded random walk with scripted scenarios on top.

Why it exists: a guardian is only worth testing against prices that move, quietly
most of the time and violently on cue. Each symbol follows a geometric random walk
in one-second steps, advanced lazily from the injected clock whenever prices are
read, so the path depends only on the seed and the clock, never on how often anyone
looks. A scenario (crash, flash crash, volatility spike, liquidation cascade) is a
function of elapsed time that multiplies the price level and the volatility. Direct
controls set one price or move them all. One-minute candles are kept, with ~500
minutes of back-history generated from the seed at start so charts work at once.
Reading after a long gap costs ~15 µs per simulated second.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

VOLATILITY = 1e-4  # per one-second step, about 60 % a year
HISTORY_MINUTES = 500
KEEP_MINUTES = 2 * 1440
TURNOVER = 20_000.0  # USDT per symbol per second, for plausible candle volumes


def _calm(elapsed: float) -> float:
    return 1.0


def _ramp(elapsed: float, duration: float) -> float:
    return 1.0 if duration <= 0 else min(elapsed / duration, 1.0)


@dataclass(frozen=True)
class Scenario:
    """A market-wide script: price-level and volatility multipliers by seconds elapsed."""

    name: str
    level: Callable[[float], float] = _calm
    volatility: Callable[[float], float] = _calm
    after: float = 0.0  # seconds of calm before the script starts


def crash(depth: float = 0.3, duration: float = 30.0, after: float = 0.0) -> Scenario:
    """Fall by `depth` linearly over `duration` seconds, then stay down."""
    return Scenario("crash", lambda e: 1.0 - depth * _ramp(e, duration), after=after)


def flash_crash(depth: float = 0.2, duration: float = 3.0, recovery: float = 0.8,
                recovery_time: float = 30.0, after: float = 0.0) -> Scenario:
    """Fall by `depth` within `duration` seconds, then win back `recovery` of it."""
    def level(e: float) -> float:
        if e < duration:
            return 1.0 - depth * _ramp(e, duration)
        return 1.0 - depth * (1.0 - recovery * _ramp(e - duration, recovery_time))
    return Scenario("flash_crash", level, after=after)


def volatility_spike(factor: float = 5.0, duration: float = 60.0, after: float = 0.0) -> Scenario:
    """Volatility times `factor` for `duration` seconds; no drift of its own."""
    return Scenario("volatility_spike", volatility=lambda e: factor if e < duration else 1.0, after=after)


def liquidation_cascade(depth: float = 0.3, steps: int = 4, interval: float = 5.0,
                        after: float = 0.0) -> Scenario:
    """Fall by `depth` in `steps` sudden drops, one every `interval` seconds."""
    return Scenario("liquidation_cascade",
                    lambda e: 1.0 - depth * min(int(e // interval) + 1, steps) / steps, after=after)


SCENARIOS: dict[str, Callable[..., Scenario]] = {
    f.__name__: f for f in (crash, flash_crash, volatility_spike, liquidation_cascade)}


def scenario(name: str, **params: float) -> Scenario:
    """Build a named scenario; ValueError for an unknown name or parameter."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    try:
        return SCENARIOS[name](**params)
    except TypeError as error:
        raise ValueError(f"scenario {name!r}: {error}") from None


@dataclass(frozen=True)
class Candle:
    time: int  # open time, epoch ms
    open: float
    high: float
    low: float
    close: float
    volume: float


class Market:
    """Prices of a fixed set of symbols (contract ids), advanced lazily from a clock."""

    def __init__(self, prices: Mapping[str, float], seed: int = 0,
                 clock: Callable[[], float] = time.time, volatility: float = VOLATILITY,
                 history: int = HISTORY_MINUTES):
        self.symbols = list(prices)
        self._index = {s: i for i, s in enumerate(self.symbols)}
        self._clock = clock
        self._volatility = volatility
        self._rng = np.random.default_rng(seed)
        self._base = np.array([float(p) for p in prices.values()])
        self._log = np.zeros(len(self.symbols))
        self._second = int(clock())
        self._price = self._base.copy()
        self.scenario: Scenario | None = None
        self._scenario_start = self._second
        self._noise = np.empty((0, len(self.symbols)))
        self._minutes: deque[list] = deque(maxlen=KEEP_MINUTES)
        self._current = self._backfill(history)

    # --- reading -----------------------------------------------------------------

    def prices(self) -> dict[str, float]:
        self._advance()
        return dict(zip(self.symbols, self._price.tolist()))

    def candles(self, symbol: str, minutes: int = 1, start: int | None = None,
                end: int | None = None, limit: int = 500) -> list[Candle]:
        """Candles of `minutes` minutes like Binance's klines: from `start` if given, else the
        latest `limit` up to `end` (times in epoch ms); the last one still open."""
        self._advance()
        i = self._index[symbol]
        span = minutes * 60_000
        rows: list[list] = []
        for t, o, h, l, c, v in (*self._minutes, self._current):
            opened = t // span * span
            if rows and rows[-1][0] == opened:
                row = rows[-1]
                row[2], row[3], row[4] = max(row[2], h[i]), min(row[3], l[i]), c[i]
                row[5] += v[i]
            else:
                rows.append([opened, o[i], h[i], l[i], c[i], v[i]])
        rows = [r for r in rows if (start is None or r[0] >= start) and (end is None or r[0] <= end)]
        rows = rows[:limit] if start is not None else rows[-limit:]
        return [Candle(int(r[0]), *map(float, r[1:])) for r in rows]

    def day(self, symbol: str) -> Candle:
        """One candle over the last 24 hours of kept history (less when fresh)."""
        self._advance()
        i = self._index[symbol]
        since = (self._second - 86_400) * 1000
        rows = [r for r in (*self._minutes, self._current) if r[0] >= since]
        return Candle(rows[0][0], float(rows[0][1][i]), float(max(r[2][i] for r in rows)),
                      float(min(r[3][i] for r in rows)), float(rows[-1][4][i]),
                      float(sum(r[5][i] for r in rows)))

    # --- controls ----------------------------------------------------------------

    def set_price(self, symbol: str, price: float) -> None:
        if not price > 0:
            raise ValueError("price must be positive")
        self._advance()
        i = self._index[symbol]
        self._base[i] *= price / self._price[i]
        self._refresh()

    def move(self, fraction: float) -> None:
        """Move every price by `fraction` (-0.2 is a 20 % fall) at once."""
        if not fraction > -1:
            raise ValueError("a move must stay above -100 %")
        self._advance()
        self._base *= 1.0 + fraction
        self._refresh()

    def run(self, script: Scenario | None) -> None:
        """Start a scenario now (None ends it); the old one's price level is kept."""
        self._advance()
        self._base *= self._effects(self._second)[0]
        self.scenario, self._scenario_start = script, self._second
        self._refresh()

    # --- the walk ----------------------------------------------------------------

    def _effects(self, second: int) -> tuple[float, float]:
        script = self.scenario
        elapsed = second - self._scenario_start - (script.after if script else 0.0)
        if script is None or elapsed < 0:
            return 1.0, 1.0
        return script.level(elapsed), script.volatility(elapsed)

    def _advance(self) -> None:
        now = int(self._clock())
        while self._second < now:
            self._second += 1
            if not len(self._noise):
                self._noise = self._rng.standard_normal((60, len(self.symbols)))
            z, self._noise = self._noise[0], self._noise[1:]
            level, volatility = self._effects(self._second)
            self._log += self._volatility * volatility * z
            self._price = self._base * np.exp(self._log) * level
            self._record(self._price, TURNOVER * volatility * (0.5 + np.abs(z)) / self._price)

    def _refresh(self) -> None:
        """Re-price the current second after a control changed the base or the scenario."""
        self._price = self._base * np.exp(self._log) * self._effects(self._second)[0]
        self._record(self._price, np.zeros(len(self.symbols)))

    def _record(self, price: np.ndarray, volume: np.ndarray) -> None:
        opened = self._second // 60 * 60_000
        current = self._current
        if current[0] != opened:
            self._minutes.append(current)
            self._current = [opened, price, price, price, price, volume]
        else:
            current[2] = np.maximum(current[2], price)
            current[3] = np.minimum(current[3], price)
            current[4] = price
            current[5] = current[5] + volume

    def _backfill(self, minutes: int) -> list:
        """History ending exactly at the starting prices: `minutes` whole minutes, then the
        current minute so far, which is returned as the open candle."""
        first = (self._second // 60 - minutes) * 60
        z = self._rng.standard_normal((self._second - first + 1, len(self.symbols)))
        walk = np.cumsum(self._volatility * z, axis=0)
        prices = self._base * np.exp(walk - walk[-1])
        volumes = TURNOVER * (0.5 + np.abs(z)) / prices
        for start in range(0, len(prices), 60):
            chunk = prices[start:start + 60]
            self._minutes.append([(first + start) * 1000, chunk[0], chunk.max(axis=0),
                                  chunk.min(axis=0), chunk[-1], volumes[start:start + 60].sum(axis=0)])
        return self._minutes.pop()
