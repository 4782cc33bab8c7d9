"""The circuit breakers, one pure module each, and the registry keyed by YAML name."""

from riskd.breakers import (
    concentration,
    correlation,
    daily_loss,
    drawdown,
    exchange_exposure,
    flash_crash,
    gross_exposure,
    leverage,
    liquidation_distance,
    loss_streak,
    margin_ratio,
    open_orders,
    order_rate,
    order_size,
    position_count,
    position_loss,
    position_size,
    stale_data,
    stress_loss,
    var,
    volatility_spike,
)
from riskd.breakers.base import Breaker, BreakerConfig, Context, base_name

BREAKERS: dict[str, Breaker] = {
    module.BREAKER.name: module.BREAKER
    for module in (
        drawdown, daily_loss, position_loss, leverage, concentration, liquidation_distance, margin_ratio, stale_data,
        open_orders, order_rate, position_count, position_size, order_size, loss_streak,
        gross_exposure, exchange_exposure,
    )
    + (var, volatility_spike, flash_crash, correlation, stress_loss)  # market risk: read the cached candles
}

PORTFOLIO_BREAKERS = ("drawdown", "daily_loss", "gross_exposure", "exchange_exposure")
"""The breakers a `portfolio:` section may use: they judge the sum of every account."""



def breaker_of(name: str) -> Breaker | None:
    """The registered breaker a name in the policy stands for, ladder levels (`drawdown.2`) included."""
    return BREAKERS.get(base_name(name))


__all__ = ["BREAKERS", "PORTFOLIO_BREAKERS", "Breaker", "BreakerConfig", "Context", "breaker_of"]
