"""Parsing and printing of the units people write in configuration and commands.

Percentages are written `10%` or `0.10`, durations `30s`, `5m`, `1h`, `2d`, ratios
`3` or `3x`, amounts of money `500 USDT` or `500USDT`. Each parser raises ValueError with a sentence a person can act on, and
each is used as a pydantic validator so a bad value fails at start, naming its key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
MAX_DURATION = 3650 * 86400
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_MONEY = re.compile(r"^\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*([A-Za-z][A-Za-z0-9]{2,9})\s*$")
"""An amount then a currency (three letters or more, so `500ms` stays a duration), with or
without a space between: a command's words split at spaces."""


def parse_percent(value: object) -> float:
    """`10%` or `0.10` → 0.10. A bare number above 1 is refused as ambiguous."""
    if isinstance(value, bool):
        raise ValueError("expected a percentage like 10% or 0.10")
    if isinstance(value, str):
        text = value.strip()
        try:
            if text.endswith("%"):
                number = float(text[:-1]) / 100
            else:
                number = float(text)
        except ValueError:
            raise ValueError(f"expected a percentage like 10% or 0.10, got {value!r}") from None
        if not text.endswith("%") and number > 1:
            raise ValueError(f"{value!r} is ambiguous: write {text}% or {float(text) / 100:g}")
    elif isinstance(value, (int, float)):
        number = float(value)
        if number > 1:
            raise ValueError(f"{value!r} is ambiguous: write {value}% or {value / 100:g}")
    else:
        raise ValueError(f"expected a percentage like 10% or 0.10, got {value!r}")
    if not math.isfinite(number) or not 0 < number <= 1:
        raise ValueError(f"a percentage must be above 0% and at most 100%, got {value!r}")
    return number


def parse_share(value: object) -> float:
    """Like a percentage, but may exceed 100% (`150%` or `1.5`), for shares of equity."""
    text = value.strip() if isinstance(value, str) else value
    percent = isinstance(text, str) and text.endswith("%")
    try:
        if isinstance(text, bool) or not isinstance(text, (str, int, float)):
            raise ValueError
        number = float(text[:-1]) / 100 if percent else float(text)
    except ValueError:
        raise ValueError(f"expected a percentage like 150% or 1.5, got {value!r}") from None
    if not percent and number > 10:
        raise ValueError(f"{value!r} is ambiguous: write {text}% or {number / 100:g}")
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"a share must be a finite percentage above 0%, got {value!r}")
    return number


def parse_duration(value: object) -> timedelta:
    """`30s`, `5m`, `1h`, `2d` or a number of seconds → timedelta (positive)."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 5m or 1h")
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value.lower())):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected a duration like 30s, 5m or 1h, got {value!r}")
    if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_DURATION:
        raise ValueError(f"a duration must be longer than zero and at most 3650d, got {value!r}")
    return timedelta(seconds=seconds)


def parse_ratio(value: object) -> float:
    """`3`, `3x` or `2.5` → 3.0, 2.5 (a multiple, such as leverage)."""
    text = value.strip().lower().removesuffix("x") if isinstance(value, str) else value
    try:
        number = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"expected a multiple like 3 or 3x, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise ValueError(f"a multiple must be a finite number above zero, got {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in a currency, as written in a limit: `500 USDT`."""

    amount: float
    currency: str


def is_money(value: object) -> bool:
    """Whether `value` is written as an amount of money (`500 USDT`, `500USDT`) rather than a share or count."""
    return isinstance(value, Money) or isinstance(value, str) and _MONEY.match(value) is not None


def parse_money(value: object) -> Money:
    """`500 USDT`, `500USDT` or `1,500.50 usdt` → Money(1500.5, "USDT"); the amount above zero."""
    if isinstance(value, Money):
        return value
    match = _MONEY.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"expected an amount of money like 500 USDT, got {value!r}")
    amount = float(match.group(1).replace(",", "").replace("_", ""))
    if not math.isfinite(amount) or amount <= 0:
        raise ValueError(f"an amount of money must be above zero, got {value!r}")
    return Money(amount, match.group(2).upper())


def format_percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def format_duration(value: timedelta | float) -> str:
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def format_span(value: timedelta) -> str:
    """A duration as written in the configuration, down to milliseconds."""
    return f"{value.total_seconds() * 1000:g}ms" if value < timedelta(seconds=1) else format_duration(value)


def rounded_up(value: timedelta) -> timedelta:
    """`value` rounded up to what `format_duration` prints (a second, a minute, 0.1 h or 0.1 d),
    so that a least value advised is never printed below itself."""
    seconds = value.total_seconds()
    step = 1 if seconds <= 120 else 60 if seconds <= 7200 else 360 if seconds <= 172800 else 8640
    return timedelta(seconds=math.ceil(seconds / step - 1e-9) * step)


def format_money(value: float, currency: str) -> str:
    return f"{value:,.2f} {currency}"


Percent = Annotated[float, BeforeValidator(parse_percent)]
Share = Annotated[float, BeforeValidator(parse_share)]
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
Ratio = Annotated[float, BeforeValidator(parse_ratio)]
