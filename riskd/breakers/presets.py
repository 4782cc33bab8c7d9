"""Presets: whole sets of breaker limits by appetite for risk, so a new account starts from
one word (`preset: moderate`) instead of a page of numbers.

`moderate` is riskd's own defaults written out. Explicit values override a preset field by
field (see `config.Settings.breaker_sections`). README's table is this one.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "conservative": {
        "drawdown": {"limit": "5%"},
        "daily_loss": {"limit": "2%"},
        "position_loss": {"limit": "1%"},
        "leverage": {"limit": "2x"},
        "concentration": {"limit": "50%"},
        "liquidation_distance": {"limit": "25%"},
        "margin_ratio": {"limit": "30%"},
        "var": {"limit": "5%"},
        "stress_loss": {"limit": "15%"},
    },
    "moderate": {
        "drawdown": {"limit": "10%"},
        "daily_loss": {"limit": "5%"},
        "position_loss": {"limit": "3%"},
        "leverage": {"limit": "5x"},
        "concentration": {"limit": "150%"},
        "liquidation_distance": {"limit": "10%"},
        "margin_ratio": {"limit": "50%"},
        "var": {"limit": "10%"},
        "stress_loss": {"limit": "25%"},
    },
    "aggressive": {
        "drawdown": {"limit": "20%"},
        "daily_loss": {"limit": "10%"},
        "position_loss": {"limit": "5%"},
        "leverage": {"limit": "10x"},
        "concentration": {"limit": "300%"},
        "liquidation_distance": {"limit": "5%"},
        "margin_ratio": {"limit": "70%"},
        "var": {"limit": "20%"},
        "stress_loss": {"limit": "40%"},
    },
}
"""Each preset's limits, by breaker; every other setting keeps the breaker's default. The
market-condition breakers (flash_crash, volatility_spike, correlation) say how the market
moves, not how much loss an account accepts, so no preset changes them."""
