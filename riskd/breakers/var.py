"""Value at Risk: what the positions held now could lose over a horizon, as a share of equity.

VaR (or, with `measure: es`, Expected Shortfall: the mean loss beyond the VaR) is
priced on the cached candles of every held symbol, by one of three methods; a limit
written in money (`limit: 500 USDT`) judges the loss itself. It sees a
dangerous book before the loss, where drawdown sees it after.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from riskd.analytics import Book, Risk, days, value_at_risk_of
from riskd.breakers.base import Breaker, BreakerConfig, Context, Reading, ShareOrMoney
from riskd.breakers.priced import priced_book, worded
from riskd.domain import Remedy
from riskd.units import Duration, Percent, format_duration, format_percent


class VarConfig(BreakerConfig):
    money: ClassVar[bool] = True

    limit: ShareOrMoney = 0.10
    warn_at: ShareOrMoney | None = None
    action: Remedy = Remedy.ALERT
    measure: Literal["var", "es"] = "var"
    method: Literal["historical", "parametric", "monte_carlo"] = "historical"
    confidence: Annotated[Percent, Field(ge=0.5, lt=1)] = 0.99
    horizon: Duration = timedelta(days=1)
    window: Duration = timedelta(days=1)
    """How much candle history prices the book."""
    samples: Annotated[int, Field(ge=2)] = 120
    """Fewer returns than this in the window, and the breaker cannot measure."""
    paths: Annotated[int, Field(ge=100, le=1_000_000)] = 10_000
    distribution: Literal["normal", "student_t"] = "normal"
    degrees_of_freedom: Annotated[float, Field(gt=2)] = 4.0
    seed: int = 0

    def risk(self, held: Book) -> Risk:
        """VaR and ES of `held` as these settings price them (the breaker and the report alike)."""
        return value_at_risk_of(
            held, self.confidence, days(self.horizon), self.method, self.paths, self.distribution, self.degrees_of_freedom, self.seed
        )


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    assert isinstance(config, VarConfig)
    held = priced_book("var", context, config, config.window, config.samples)
    if isinstance(held, Reading):
        return (held,)
    risk = config.risk(held)
    loss = risk.shortfall if config.measure == "es" else risk.var
    figure = "expected shortfall" if config.measure == "es" else "VaR"
    scale = f"in {config.currency}" if config.currency else "as a share of equity"
    subject = f"{format_duration(config.horizon)} {figure} at {config.confidence:.0%} ({config.method.replace('_', ' ')}) {scale}"
    value = loss if config.currency else loss / context.equity
    return (worded("var", subject, value, config, config.describer(format_percent)),)


BREAKER = Breaker(
    "var",
    "Value at Risk (or Expected Shortfall) of the positions held now, as a share of equity",
    VarConfig,
    evaluate,
)
