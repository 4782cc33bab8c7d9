"""Counting breakers, shared by the runaway-bot guards (open orders, orders per minute,
positions): a count is judged against "at most N", so 20 is within a limit of 20 and the
21st is the breach."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from riskd.breakers.base import BreakerConfig
from riskd.domain import Reading, Status

Count = Annotated[int, Field(ge=1, le=1_000_000)]
"""A limit that is a number of things: at most this many."""


def count_reading(
    name: str, count: int, config: BreakerConfig, noun: str, order_ids: tuple[str, ...] = (), reaching: bool = False
) -> Reading:
    """A reading for `count` things against "at most `limit`": breached above it, a warning from
    `warn_at` up. With `reaching`, the limit itself is the breach ("three losses in a row and we stop")."""
    limit, warn = config.limit, config.warning_level
    if reaching and count >= limit:
        status, verdict = Status.BREACHED, f"reaches the limit of {limit:g}"
    elif count > limit:
        status, verdict = Status.BREACHED, f"is more than the limit of {limit:g}"
    elif count >= warn:
        status, verdict = Status.WARNING, f"is near the limit of {limit:g}"
    else:
        status, verdict = Status.OK, f"is within the limit of {limit:g}"
    return Reading(name, status, float(count), limit, warn, f"{count} {noun} {verdict}", order_ids=order_ids)


def format_count(value: float) -> str:
    return f"{value:.0f}"
