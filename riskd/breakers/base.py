"""What every breaker shares: its configuration, its inputs and how a value is judged.

A breaker is a pure function from a `Context` (the tick's snapshot, the account's
remembered state, the time) and its typed configuration to readings. It never reads a
clock, a database or the exchange, so every edge can be tested with plain values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Annotated, Any, Callable, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from riskd import analytics
from riskd.candles import EMPTY, MarketData
from riskd.domain import AccountState, Reading, Remedy, Snapshot, Status, TradeHistory
from riskd.units import (
    Money,
    Percent,
    format_duration,
    format_money,
    format_percent,
    is_money,
    parse_duration,
    parse_money,
    parse_percent,
    parse_ratio,
    parse_share,
)

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


def or_money(parser: Callable[[object], float]) -> Callable[[object], float]:
    """A limit parser that also takes an amount already read as money (see `BreakerConfig._money`)."""

    def parse(value: object) -> float:
        return value.amount if isinstance(value, Money) else parser(value)

    return parse


def _money_only(value: object) -> float:
    if isinstance(value, Money):
        return value.amount
    raise ValueError(f"expected an amount of money in the account's quote currency, like 5000 USDT, got {value!r}")


PercentOrMoney = Annotated[float, BeforeValidator(or_money(parse_percent))]
"""A loss limit: `5%` of equity, or `500 USDT`."""
ShareOrMoney = Annotated[float, BeforeValidator(or_money(parse_share))]
"""An exposure limit: `150%` of equity, or `15000 USDT`."""
RatioOrMoney = Annotated[float, BeforeValidator(or_money(parse_ratio))]
"""A leverage limit: `5x` equity, or `50000 USDT` of gross notional."""
MoneyOnly = Annotated[float, BeforeValidator(_money_only)]
"""A size limit, in money only: `5000 USDT`."""


LEVEL_SEPARATOR = "."
"""Level 2 of `drawdown` is the breaker `drawdown.2` in the policy, its latches and its events."""


def level_name(name: str, number: int) -> str:
    """The name a ladder's level goes by: the breaker's own for level 1, `drawdown.2` after."""
    return name if number == 1 else f"{name}{LEVEL_SEPARATOR}{number}"


def base_name(name: str) -> str:
    """The breaker a level belongs to: `drawdown` for `drawdown.2`."""
    return name.split(LEVEL_SEPARATOR, 1)[0]


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
    money: ClassVar[bool] = False
    """Whether the limit may be written in money (`500 USDT`): the breakers that limit a loss or an exposure."""
    only_money: ClassVar[bool] = False
    """Whether the limit must be written in money (a position's or an order's size)."""
    names_orders: ClassVar[bool] = False
    """Whether its readings name the orders at fault, so `cancel` can cancel just those."""
    opt_in: ClassVar[bool] = False
    """Whether it runs only where the configuration names it (the runaway-bot guards)."""
    portfolio_only: ClassVar[bool] = False
    """Whether it judges the sum of every account and belongs under `portfolio:` only."""
    rearms: ClassVar[bool] = False
    """Whether halting the account starts its count again (loss_streak: a streak is acted on once)."""

    enabled: bool = True
    limit: float
    warn_at: float | None = None
    action: Remedy = Remedy.ALERT
    reduce_by: Percent = 0.5
    resume: Resume = MANUAL
    confirm: Annotated[int, Field(ge=1, le=100)] = 2
    currency: str | None = None
    """The currency of a limit written in money; None for a share, a multiple or a count."""
    levels: tuple[dict[str, Any], ...] = ()
    """A ladder: each level its own limit and action, mildest first (see `ladder`)."""

    @model_validator(mode="before")
    @classmethod
    def _money(cls, data: Any) -> Any:
        """`limit: 500 USDT` sets `currency`; `warn_at` is then an amount in the same currency."""
        if not isinstance(data, dict) or "limit" not in data:
            return data
        limit, warn = data.get("limit"), data.get("warn_at")
        if not is_money(limit):
            if cls.only_money:
                raise ValueError(f"limit: expected an amount of money in the account's quote currency, like 5000 USDT, got {limit!r}")
            if is_money(warn):
                raise ValueError("warn_at: an amount of money needs the limit in money too")
            return data
        if not cls.money:
            raise ValueError(f"limit: {limit!r} is an amount of money, but this breaker's limit is not (write it as the default is)")
        amount = parse_money(limit)
        data = {**data, "limit": amount, "currency": amount.currency}
        if warn is not None:
            if not is_money(warn) or parse_money(warn).currency != amount.currency:
                raise ValueError(f"warn_at: write it in {amount.currency} like the limit, such as {amount.amount * WARN_FRACTION:g} {amount.currency}")
            data["warn_at"] = parse_money(warn)
        return data

    @field_validator("action")
    @classmethod
    def _close_needs_a_position(cls, value: Remedy) -> Remedy:
        if value is Remedy.CLOSE and not cls.per_position:
            raise ValueError("close applies to one position; this breaker is account-wide")
        if value is Remedy.CANCEL and not cls.names_orders:
            raise ValueError("cancel applies to the orders a breaker names; only open_orders and order_size name them")
        return value

    @field_validator("levels", mode="before")
    @classmethod
    def _levels_are_mappings(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)) and not all(isinstance(level, dict) for level in value):
            raise ValueError("expected a list of levels, each like {limit: 10%, action: halt}")
        return value

    @model_validator(mode="after")
    def _ladder_in_order(self) -> BreakerConfig:
        self.ladder()  # raises with a sentence about the first level that is wrong
        return self

    def ladder(self) -> tuple[BreakerConfig, ...]:
        """The levels as configurations of their own, or the breaker alone when it has none.

        A level takes the breaker's settings (confirm, resume, reduce_by, action) unless it
        writes its own, and must write its limit. Warnings come before the first level
        only: a later level's `warn_at` defaults to its limit. Limits of the same unit
        must grow worse from one level to the next.
        """
        if not self.levels:
            return (self,)
        inherited = self.model_dump(exclude={"levels", "limit", "warn_at", "currency"}, exclude_unset=False)
        ladder = []
        for number, level in enumerate(self.levels, start=1):
            if "limit" not in level:
                raise ValueError(f"levels: level {number} needs a limit")
            try:
                config = type(self).model_validate({**inherited, **level})
            except ValidationError as error:
                problems = "; ".join(_problem(item) for item in error.errors())
                raise ValueError(f"levels: level {number}: {problems}") from None
            if config.levels:
                raise ValueError(f"levels: level {number} cannot have levels of its own")
            if number > 1 and "warn_at" not in level:
                config = config.model_copy(update={"warn_at": config.limit})
            earlier = [previous for previous in ladder if previous.currency == config.currency]
            if earlier and not _worse(config, earlier[-1]):
                raise ValueError(f"levels: level {number}'s limit must be past level {ladder.index(earlier[-1]) + 1}'s")
            ladder.append(config)
        return tuple(ladder)

    def with_limit(self, written: str) -> BreakerConfig:
        """This configuration with its limit as `written` (a share or an amount, as the breaker
        takes it), for a temporary override; raises ValueError saying what is wrong. Its
        warning level follows the new limit as the old one followed the old."""
        fields = self.model_dump(exclude={"levels", "limit", "warn_at", "currency"})
        if self.warn_at is not None and self.warn_at == self.limit:
            fields["warn_at"] = written  # a later level of a ladder: no warning of its own
        try:
            return type(self).model_validate({**fields, "limit": written})
        except ValidationError as error:
            raise ValueError("; ".join(_problem(item) for item in error.errors())) from None

    def describer(self, describe: Callable[[float], str]) -> Callable[[float], str]:
        """How values against this limit are written: in money when the limit is, else by `describe`."""
        if self.currency is None:
            return describe
        currency = self.currency
        return lambda value: format_money(value, currency)

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


def _worse(config: BreakerConfig, than: BreakerConfig) -> bool:
    return config.limit > than.limit if config.higher_is_worse else config.limit < than.limit


def _problem(item: Any) -> str:
    where = ".".join(str(part) for part in item["loc"])
    message = item["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


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
    trades: TradeHistory | None = None
    """The closed trades read by their own job, for loss_streak; None where nothing reads them."""

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
    return Reading(name, status, value, limit, warn, f"{subject} {describe(value)} {verdict}", symbol, config.currency)


def _reaches(value: float, level: float) -> bool:
    """`value >= level`, forgiving the float noise of figures like 0.1 * 0.8."""
    return value >= level or math.isclose(value, level, rel_tol=1e-9)


def no_data(name: str, config: BreakerConfig, why: str, symbol: str | None = None) -> Reading:
    """A reading that says plainly the breaker could not measure, and why."""
    return Reading(name, Status.NO_DATA, None, config.limit, config.warning_level, why, symbol, config.currency)


def nothing_to_judge(name: str, config: BreakerConfig, why: str) -> Reading:
    """A healthy reading without a value: nothing is open that the breaker guards, and why."""
    return Reading(name, Status.OK, None, config.limit, config.warning_level, why)


def as_level(reading: Reading, name: str) -> Reading:
    """A breaker's reading as the reading of its ladder level `name` (itself for level 1)."""
    return reading if reading.breaker == name else replace(reading, breaker=name)
