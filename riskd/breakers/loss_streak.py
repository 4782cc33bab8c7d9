"""Loss streak: how many closed trades in a row lost money, from the venue's realized PnL.
A limit of 3 trips at the third loss in a row.

The trade history is read by its own scheduled job, incrementally and cached (see
`AccountGuard.read_trades`), never during a tick: the breaker only counts what the
last read found. The fills one order closed at the same moment on the same symbol are
one trade. A winning trade ends a streak; so does halting the account for it, or a
person's resume (`AccountState.losses_counted_from`), so one streak is acted on once.
A read that failed once leaves the last one judged; once the last good read is older
than STALE_AFTER (reads keep failing, or the job stopped) the breaker cannot measure,
rather than judging an old cache as if it were today's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from riskd.breakers.base import NEXT_DAY, Breaker, BreakerConfig, Context, Resume, no_data
from riskd.breakers.counts import Count, count_reading, format_count
from riskd.domain import ClosedTrade, Reading, Remedy
from riskd.units import format_duration

STALE_AFTER = timedelta(minutes=5)
"""Five of the trade-history job's one-minute turns without a good read: the cache no longer says what is."""


class LossStreakConfig(BreakerConfig):
    opt_in: ClassVar[bool] = True
    rearms: ClassVar[bool] = True

    limit: Count = 3
    warn_at: Count | None = None
    action: Remedy = Remedy.HALT
    resume: Resume = NEXT_DAY
    confirm: int = 1

    @property
    def warning_level(self) -> float:
        """One loss short of the limit, unless `warn_at` says otherwise: a streak grows a trade at a time."""
        return self.warn_at if self.warn_at is not None else max(1, self.limit - 1)


def evaluate(context: Context, config: BreakerConfig) -> tuple[Reading, ...]:
    history = context.trades
    if history is None or history.read_at is None:
        why = f"the trade history could not be read: {history.error}" if history and history.error else "the trade history has not been read yet"
        return (no_data("loss_streak", config, why),)
    age = context.now - history.read_at
    if age > STALE_AFTER:
        why = f"the trade history was last read {format_duration(age)} ago" + (f"; since then: {history.error}" if history.error else "")
        return (no_data("loss_streak", config, why),)
    since = context.state.losses_counted_from
    counted = [trade for trade in history.trades if since is None or trade.closed_at > since]
    return (count_reading("loss_streak", streak(counted), config, "losing trades in a row", reaching=True),)


def streak(trades: list[ClosedTrade]) -> int:
    """Consecutive losing trades at the end of `trades` (oldest first); one order's fills
    (same symbol, same moment) are one trade, judged by their sum."""
    merged: dict[tuple, float] = {}
    for trade in trades:
        key = (trade.symbol, trade.closed_at)
        merged[key] = merged.get(key, 0.0) + trade.pnl
    count = 0
    for pnl in reversed(list(merged.values())):
        if pnl >= 0:
            break
        count += 1
    return count


BREAKER = Breaker(
    "loss_streak",
    "closed trades in a row that lost money, from the venue's realized PnL",
    LossStreakConfig,
    evaluate,
    format_count,
)
