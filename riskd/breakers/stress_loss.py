"""Stress loss: what the positions held now would lose in the worst stress scenario.

Scenarios: market moves (-10/-20/-30 % by default), a flash crash of the benchmark
followed by each symbol's beta, every correlation at 1, and per-asset shocks from
the configuration. The worst one's loss, as a share of equity (or in money, with a limit
written so), is judged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, ClassVar

from pydantic import BeforeValidator, Field

from riskd.analytics import FLASH_CRASH, MARKET_MOVES, Book, StressResult, days, stress_test, worst
from riskd.breakers.base import Breaker, BreakerConfig, Context, Reading, ShareOrMoney
from riskd.breakers.priced import priced_book, worded
from riskd.domain import Remedy
from riskd.units import Duration, Percent, format_percent, parse_percent


def parse_move(value: object) -> float:
    """A signed price move: `-25%`, `+10%`, `-0.25`."""
    text = value.strip() if isinstance(value, str) else value
    negative = isinstance(text, str) and text.startswith("-")
    if isinstance(text, str):
        text = text.lstrip("+-").strip()
    elif isinstance(text, (int, float)) and not isinstance(text, bool) and text < 0:
        negative, text = True, -text
    size = parse_percent(text)
    if negative and size >= 1:
        raise ValueError("a fall must stay above -100%")
    return -size if negative else size


Move = Annotated[float, BeforeValidator(parse_move)]


class StressLossConfig(BreakerConfig):
    money: ClassVar[bool] = True

    limit: ShareOrMoney = 0.25
    warn_at: ShareOrMoney | None = None
    action: Remedy = Remedy.ALERT
    moves: tuple[Move, ...] = MARKET_MOVES
    flash_crash: Move = FLASH_CRASH
    shocks: dict[str, Move] = Field(default_factory=dict)
    """Per-symbol or per-asset moves, such as `{BTC: -25%, ETH/USDT:USDT: -40%}`."""
    confidence: Annotated[Percent, Field(ge=0.5, lt=1)] = 0.99
    horizon: Duration = timedelta(days=1)
    window: Duration = timedelta(days=1)
    samples: Annotated[int, Field(ge=2)] = 30

    def results(self, held: Book, equity: float) -> tuple[StressResult, ...]:
        """Every scenario on `held` as these settings define them (the breaker and the report alike)."""
        return stress_test(held, equity, self.moves, self.flash_crash, self.shocks, self.confidence, days(self.horizon))


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    assert isinstance(config, StressLossConfig)
    held = priced_book("stress_loss", context, config, config.window, config.samples)
    if isinstance(held, Reading):
        return (held,)
    results = config.results(held, context.equity)
    result = worst(results)
    if config.currency:
        value, scale = max(0.0, result.loss) if result else 0.0, f"in {config.currency}"
    else:
        value, scale = max(0.0, result.share or 0.0) if result else 0.0, "as a share of equity"
    where = f" ({result.scenario}, most from {result.worst_symbol})" if result and result.worst_symbol else ""
    return (worded("stress_loss", f"worst stress loss{where} {scale}", value, config, config.describer(format_percent)),)


BREAKER = Breaker(
    "stress_loss",
    "the worst stress scenario's projected loss on the positions held now, as a share of equity",
    StressLossConfig,
    evaluate,
)
