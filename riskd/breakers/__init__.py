"""The circuit breakers, one pure module each, and the registry keyed by YAML name."""

from riskd.breakers import (
    concentration,
    daily_loss,
    drawdown,
    leverage,
    liquidation_distance,
    margin_ratio,
    position_loss,
    stale_data,
)
from riskd.breakers.base import Breaker, BreakerConfig, Context

BREAKERS: dict[str, Breaker] = {
    module.BREAKER.name: module.BREAKER
    for module in (
        drawdown, daily_loss, position_loss, leverage, concentration, liquidation_distance, margin_ratio, stale_data
    )
}

__all__ = ["BREAKERS", "Breaker", "BreakerConfig", "Context"]
