"""Binance's request weight, as the simulator reports it in `X-MBX-USED-WEIGHT-1M`.

Why it exists: riskd reads the weight its IP has used from that header to share the
budget with the bots on the same machine and to warn before it runs out; the header
has to come from the embedded exchange too, so that is tested through the real ccxt
client. Weights are Binance's published ones for the endpoints the simulator serves
(USDⓈ-M futures: 2,400 a minute per IP; spot: 6,000), counted per UTC minute as Binance
does, over every client of the simulator. The simulator reports; it does not refuse
(its http_429/http_418 faults do that on purpose).
"""

from __future__ import annotations

from typing import Callable

HEADER = "X-MBX-USED-WEIGHT-1M"

# (method, path) -> (weight with a symbol, weight without one)
WEIGHTS: dict[tuple[str, str], tuple[int, int]] = {
    ("GET", "/fapi/v1/exchangeInfo"): (1, 1),
    ("GET", "/fapi/v1/ticker/24hr"): (1, 40),
    ("GET", "/fapi/v1/ticker/price"): (1, 2),
    ("GET", "/fapi/v2/ticker/price"): (1, 2),
    ("GET", "/fapi/v1/premiumIndex"): (1, 10),
    ("GET", "/fapi/v1/klines"): (5, 5),
    ("GET", "/fapi/v3/account"): (5, 5),
    ("GET", "/fapi/v3/positionRisk"): (5, 5),
    ("GET", "/fapi/v2/positionRisk"): (5, 5),
    ("GET", "/fapi/v1/leverageBracket"): (1, 1),
    ("GET", "/fapi/v1/positionSide/dual"): (30, 30),
    ("GET", "/fapi/v1/openOrders"): (1, 40),
    ("GET", "/fapi/v1/userTrades"): (5, 5),
    ("GET", "/fapi/v1/income"): (30, 30),
    ("GET", "/api/v3/exchangeInfo"): (20, 20),
    ("GET", "/api/v3/ticker/24hr"): (2, 80),
    ("GET", "/api/v3/ticker/price"): (2, 4),
    ("GET", "/api/v3/account"): (20, 20),
    ("GET", "/api/v3/openOrders"): (6, 80),
    ("GET", "/api/v3/klines"): (2, 2),
    ("DELETE", "/api/v3/openOrders"): (1, 1),
}
"""Every other request of the API weighs 1."""


def weight(method: str, path: str, params: dict) -> int:
    with_symbol, without = WEIGHTS.get((method, path), (1, 1))
    return with_symbol if params.get("symbol") or params.get("symbols") else without


class WeightMeter:
    """The weight used in the current minute (on the simulator's clock), over all clients."""

    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._minute = -1
        self.used = 0

    def add(self, method: str, path: str, params: dict) -> int:
        """Count one request; returns the weight used this minute, itself included."""
        minute = int(self._clock() // 60)
        if minute != self._minute:
            self._minute, self.used = minute, 0
        self.used += weight(method, path, params)
        return self.used
