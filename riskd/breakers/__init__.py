"""The circuit breakers, one pure module each, and the registry keyed by YAML name."""

from riskd.breakers import (
    concentration,
    daily_loss,
    drawdown,
    leverage,
    liquidation_distance,
    loss_streak,
    open_orders,
    order_rate,
    order_size,
    position_count,
    position_loss,
    position_size,
    stale_data,
)
from riskd.breakers.base import Breaker, BreakerConfig, Context, base_name

BREAKERS: dict[str, Breaker] = {
    module.BREAKER.name: module.BREAKER
    for module in (
        drawdown, daily_loss, position_loss, leverage, concentration, liquidation_distance, stale_data,
        open_orders, order_rate, position_count, position_size, order_size, loss_streak,
    )
}



def breaker_of(name: str) -> Breaker | None:
    """The registered breaker a name in the policy stands for, ladder levels (`drawdown.2`) included."""
    return BREAKERS.get(base_name(name))


__all__ = ["BREAKERS", "Breaker", "BreakerConfig", "Context", "breaker_of"]
