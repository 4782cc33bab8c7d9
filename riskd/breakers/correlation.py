"""Correlation: positions that all move together are one big position in disguise.

The exposure-weighted average pairwise correlation of the positions' profits (a
long and a short on the same move count as a hedge), judged only while the gross
exposure is large enough to matter.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import Field

from riskd.analytics import book_correlation
from riskd.breakers.base import Breaker, BreakerConfig, Context, Reading, nothing_to_judge
from riskd.breakers.priced import priced_book, worded
from riskd.domain import Remedy, Status
from riskd.units import Duration, Share, format_percent


class CorrelationConfig(BreakerConfig):
    limit: Annotated[float, Field(gt=-1, le=1)] = 0.8
    warn_at: Annotated[float, Field(gt=-1, le=1)] | None = None
    action: Remedy = Remedy.ALERT
    exposure: Share = 1.0
    """Gross notional as a share of equity from which correlation is judged."""
    window: Duration = timedelta(days=1)
    samples: Annotated[int, Field(ge=3)] = 120


def format_correlation(value: float) -> str:
    return f"{value:.2f}"


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    assert isinstance(config, CorrelationConfig)
    held = priced_book("correlation", context, config, config.window, config.samples)
    if isinstance(held, Reading):
        return (held,)
    average = book_correlation(held)
    if average is None:
        why = "fewer than two symbols held, so nothing to correlate"
        return (nothing_to_judge("correlation", config, why),)
    gross = held.gross / context.equity
    if gross < config.exposure:
        why = (
            f"weighted correlation {format_correlation(average)} does not matter at a gross exposure of "
            f"{format_percent(gross)} of equity (judged from {format_percent(config.exposure)})"
        )
        return (Reading("correlation", Status.OK, average, config.limit, config.warning_level, why),)
    subject = "exposure-weighted correlation of the positions"
    return (worded("correlation", subject, average, config, format_correlation),)


BREAKER = Breaker(
    "correlation",
    "exposure-weighted average pairwise correlation of the positions, while gross exposure matters",
    CorrelationConfig,
    evaluate,
    format_correlation,
)
