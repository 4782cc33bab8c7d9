"""What every breaker shares: its configuration, its inputs and how a value is judged.

A breaker is a pure function from a `Context` (the tick's snapshot, the account's
remembered state, the time) and its typed configuration to readings. It never reads a
clock, a database or the exchange, so every edge can be tested with plain values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Callable, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationInfo, field_validator

from riskd import analytics
from riskd.candles import EMPTY, MarketData
from riskd.domain import AccountState, Reading, Remedy, Snapshot, Status
from riskd.units import Percent, format_duration, format_percent, parse_duration

WARN_FRACTION = 0.8
"""Warnings start at 80 % of the way to the limit unless `warn_at` says otherwise."""

MANUAL = "manual"
"""The resume policy under which only a person's resume releases a tripped breaker."""

NEXT_DAY = "next_day"
"""The resume policy that releases a tripped breaker at the next daily reset."""


def parse_resume(value: object) -> str | timedelta:
    """`manual`, `next_day`, or a duration after which the breaker may release."""
    if isinstance(value, str) and value.strip().lower() in (MANUAL, NEXT_DAY):
        return value.strip().lower()
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(f"resume must be manual, next_day or a duration like 1h, got {value!r}") from None


Resume = Annotated[
    str | timedelta,
    BeforeValidator(parse_resume),
    PlainSerializer(lambda value: value if isinstance(value, str) else format_duration(value)),
]


class BreakerConfig(BaseModel):
    """Settings every breaker takes. Subclasses type `limit` and set the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    higher_is_worse: ClassVar[bool] = True
    per_position: ClassVar[bool] = False

    enabled: bool = True
    limit: float
    warn_at: float | None = None
    action: Remedy = Remedy.ALERT
    reduce_by: Percent = 0.5
    resume: Resume = MANUAL
    confirm: Annotated[int, Field(ge=1, le=100)] = 2

    @field_validator("action")
    @classmethod
    def _close_needs_a_position(cls, value: Remedy) -> Remedy:
        if value is Remedy.CLOSE and not cls.per_position:
            raise ValueError("close applies to one position; this breaker is account-wide")
        return value

    @field_validator("warn_at")
    @classmethod
    def _warn_before_limit(cls, value: float | None, info: ValidationInfo) -> float | None:
        limit = info.data.get("limit")
        if value is not None and limit is not None:
            if (value > limit) if cls.higher_is_worse else (value < limit):
                raise ValueError("warn_at must come before the limit")
        return value

    @property
    def warning_level(self) -> float:
        if self.warn_at is not None:
            return self.warn_at
        return self.limit * WARN_FRACTION if self.higher_is_worse else self.limit / WARN_FRACTION


@dataclass(frozen=True, slots=True)
class Context:
    """The inputs of one evaluation. `snapshot` is None when the tick has no usable read."""

    account: str
    state: AccountState
    now: datetime
    snapshot: Snapshot | None = None
    market: MarketData = EMPTY
    """The latest cached candles, for the market breakers; empty until first fetched."""
    book: analytics.Book = field(init=False, repr=False, compare=False)
    """The snapshot's positions priced on the whole of `market`, derived once per Context
    (the engine builds one per tick) for every market breaker to window as it needs."""

    def __post_init__(self) -> None:
        positions = self.snapshot.positions if self.snapshot is not None else ()
        object.__setattr__(self, "book", analytics.book(positions, self.market))

    @property
    def equity(self) -> float | None:
        return self.snapshot.equity if self.snapshot is not None else None


@dataclass(frozen=True, slots=True)
class Breaker:
    """A registered breaker: its YAML key, a one-line description, its model and function."""

    name: str
    description: str
    config: type[BreakerConfig]
    evaluate: Callable[[Context, BreakerConfig], tuple[Reading, ...]]
    describe: Callable[[float], str] = format_percent
    """Turns a value or limit of this breaker into words with its unit."""


def judge(
    name: str, value: float, config: BreakerConfig, describe: Callable[[float], str], symbol: str | None = None
) -> Reading:
    """A reading for `value`: breached at or past the limit, warning at or past warn level.

    `describe` turns a value or limit into words with its unit, so the reason reads
    "drawdown 12.3% is past the limit of 10.0%" in the breaker's own terms.
    """
    limit, warn = config.limit, config.warning_level
    sign = 1 if config.higher_is_worse else -1
    breached, warning = _reaches(sign * value, sign * limit), _reaches(sign * value, sign * warn)
    if breached:
        status, verdict = Status.BREACHED, f"is past the limit of {describe(limit)}"
    elif warning:
        status, verdict = Status.WARNING, f"is near the limit of {describe(limit)}"
    else:
        status, verdict = Status.OK, f"is within the limit of {describe(limit)}"
    subject = f"{name.replace('_', ' ')} of {symbol}" if symbol else name.replace("_", " ")
    return Reading(name, status, value, limit, warn, f"{subject} {describe(value)} {verdict}", symbol)


def _reaches(value: float, level: float) -> bool:
    """`value >= level`, forgiving the float noise of figures like 0.1 * 0.8."""
    return value >= level or math.isclose(value, level, rel_tol=1e-9)


def no_data(name: str, config: BreakerConfig, why: str, symbol: str | None = None) -> Reading:
    """A reading that says plainly the breaker could not measure, and why."""
    return Reading(name, Status.NO_DATA, None, config.limit, config.warning_level, why, symbol)
