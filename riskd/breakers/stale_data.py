"""Stale data: how long riskd has gone without a good snapshot of the account.

While the exchange fails to answer, every other breaker is blind; this one is how
the owner learns of it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from riskd.breakers.base import Breaker, BreakerConfig, Context, Resume, judge, no_data
from riskd.domain import Reading, Remedy
from riskd.units import format_duration, parse_duration


class StaleDataConfig(BreakerConfig):
    limit: float = 60.0
    warn_at: float | None = None
    action: Remedy = Remedy.ALERT
    resume: Resume = "1m"
    confirm: Annotated[int, Field(ge=1, le=100)] = 1

    @field_validator("limit", "warn_at", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> float | None:
        return None if value is None else parse_duration(value).total_seconds()


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    since = context.state.last_good_at or context.state.started_at
    if since is None:
        return (no_data("stale_data", config, "riskd has not started watching this account yet"),)
    age = max(0.0, (context.now - since).total_seconds())
    return (judge("stale_data", age, config, format_duration),)


BREAKER = Breaker(
    "stale_data",
    "time since the last good snapshot of the account",
    StaleDataConfig,
    evaluate,
    format_duration,
)
