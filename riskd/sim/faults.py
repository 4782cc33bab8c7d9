"""Injected failures for the simulator's HTTP API.

Why it exists: the guardian matters most when the exchange misbehaves, so tests,
benchmarks and demos must be able to make it misbehave on purpose, in the ways a
real exchange and the network between do: 503s, 429 rate limits and 418 IP bans (each
with the `Retry-After` Binance sends), slow replies,
replies that never come, connections dropped without a reply, 200 OK bodies that are
not JSON, a key the exchange no longer accepts, and a clock it finds out of step. A fault lasts for a
duration (seconds on the simulator's clock), a count of requests, or until cleared,
and may be limited to paths starting with a prefix and to requests for one symbol (a
venue failing one market's candles while serving the others'). This module only decides
which faults apply to a request; the server acts them out, in the dialect of the path:
the codes below are Binance's, and on /v5 paths each fault answers as Bybit does
(`bybit.fault_reply`: retCode 10006 with its reset time for a 429, HTTP 403 for a 418,
10003, 10002, 10016, 10000, a 503 page).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

DEFAULT_SECONDS = {"latency": 0.05, "timeout": 30.0, "http_429": 60.0, "http_418": 120.0}
BODIES = {
    "http_503": ("unavailable", "internal", "unknown"),
    "malformed": ("html", "truncated"),
}
KINDS = ("http_503", "http_429", "http_418", "latency", "timeout", "malformed", "dropped", "revoked", "clock_skew")


@dataclass
class Fault:
    """One injected failure.

    kind: http_503 | http_429 | http_418 (-1003: the IP banned for a while, as Binance
    bans a client that keeps sending after 429s) | latency | timeout | malformed |
    dropped (the connection closes with no reply) | revoked (401, -2015: the API key was
    deleted or lost its permissions) | clock_skew (400, -1021: the request's timestamp is
    outside recvWindow).
    seconds: the delay (latency), the hang (timeout; ends early when the server stops), or
    the `Retry-After` of a 429 (rate limited) or 418 (IP banned).
    body: for http_503, "unavailable" (no error code), "internal" (-1001, refused) or
    "unknown" (-1000, executed but unanswered, Binance's "execution status unknown");
    for malformed, "html" (a proxy's error page) or "truncated" (the real JSON cut short).
    symbol: only requests whose `symbol` parameter is this venue id (`SOLUSDT`); empty: any.
    """

    kind: str
    seconds: float = 0.0
    duration: float | None = None
    count: int | None = None
    path: str = ""
    body: str = ""
    started: float = 0.0
    hits: int = 0
    symbol: str = ""

    def live(self, now: float) -> bool:
        return ((self.duration is None or now < self.started + self.duration)
                and (self.count is None or self.hits < self.count))

    def to_dict(self) -> dict:
        return asdict(self)


class Faults:
    """The faults in force, expired lazily against the injected clock."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._faults: list[Fault] = []

    def add(self, kind: str, duration: float | None = None, count: int | None = None,
            path: str = "", seconds: float | None = None, body: str | None = None, symbol: str = "") -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(KINDS)}")
        bodies = BODIES.get(kind, ("",))
        body = body or bodies[0]
        if body not in bodies:
            raise ValueError(f"fault {kind!r} has no body {body!r}; known: {', '.join(bodies)}")
        fault = Fault(kind, DEFAULT_SECONDS.get(kind, 0.0) if seconds is None else float(seconds),
                      None if duration is None else float(duration),
                      None if count is None else int(count), path, body, self._clock(), symbol=symbol)
        self._faults.append(fault)
        return fault

    def clear(self) -> int:
        cleared = len(self.active())
        self._faults.clear()
        return cleared

    def active(self) -> list[Fault]:
        now = self._clock()
        self._faults = [f for f in self._faults if f.live(now)]
        return list(self._faults)

    def take(self, path: str, symbol: str | None = None) -> list[Fault]:
        """The faults that apply to a request for `path` (about `symbol`), each counting it as one hit."""
        hit = [f for f in self.active() if path.startswith(f.path) and f.symbol in ("", symbol)]
        for fault in hit:
            fault.hits += 1
        return hit
