"""The circuit breakers, one pure module each, and the registry keyed by YAML name."""

from riskd.breakers import (
    concentration,
    correlation,
    daily_loss,
    drawdown,
    flash_crash,
    leverage,
    liquidation_distance,
    margin_ratio,
    position_loss,
    stale_data,
    stress_loss,
    var,
    volatility_spike,
)
from riskd.breakers.base import Breaker, BreakerConfig, Context

BREAKERS: dict[str, Breaker] = {
    module.BREAKER.name: module.BREAKER
    for module in (
        drawdown, daily_loss, position_loss, leverage, concentration, liquidation_distance, margin_ratio, stale_data
    )
    + (var, volatility_spike, flash_crash, correlation, stress_loss)  # market risk: read the cached candles
}

__all__ = ["BREAKERS", "Breaker", "BreakerConfig", "Context"]
