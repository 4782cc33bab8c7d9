"""The portfolio: every account summed in one currency, judged like one account, its
decisions imposed on every account. Pure: values in, values out, like the engine.

`combine` makes one snapshot of the accounts' latest reads, each converted at its rate
(a position keeps its venue and account in front of its symbol, for exchange_exposure);
one account without a good read leaves the sum unknown, never smaller. The engine steps
that snapshot under the `portfolio:` breakers like any account's, and `imposed` turns the
portfolio's trading state into the latch every account then carries (see `engine.impose`),
so a halted portfolio halts each account, enforced by each account's own ticks.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Mapping

from riskd.domain import AccountState, Action, ActionKind, Latch, Snapshot, TradingState

PORTFOLIO = "portfolio"
"""The portfolio's name in the database, its events and its commands (config.PORTFOLIO)."""

PORTFOLIO_LATCH = "portfolio"
"""The key of the latch a halted or reducing portfolio sets on every account."""


def combine(
    reads: Mapping[str, Snapshot | None], venues: Mapping[str, str], rates: Mapping[str, float], currency: str, now: datetime
) -> Snapshot:
    """One snapshot of every account's latest read, in `currency`; `rates` by quote currency."""
    unread = [name for name, read in reads.items() if read is None or not read.ok]
    if unread:
        return Snapshot(PORTFOLIO, now, quote=currency, error=f"no good read of {', '.join(sorted(unread))} to sum")
    equity, positions = 0.0, []
    for name, read in reads.items():
        rate = rates[read.quote]
        equity += read.equity * rate
        positions += [
            replace(
                position, symbol=f"{venues[name]} {name} {position.symbol}",
                notional=position.notional * rate, unrealized_pnl=position.unrealized_pnl * rate,
            )
            for position in read.positions
        ]
    return Snapshot(PORTFOLIO, now, equity=equity, quote=currency, positions=tuple(positions))


def imposed(portfolio: AccountState) -> Latch | None:
    """The latch every account carries while the portfolio is halted or reducing."""
    if portfolio.trading_state is TradingState.ACTIVE:
        return None
    reason = f"portfolio: {portfolio.reason}"
    since = portfolio.since or datetime.min.replace(tzinfo=timezone.utc)
    return Latch(PORTFOLIO_LATCH, portfolio.trading_state, since, reason, PORTFOLIO)


def acts_on_accounts(action: Action) -> bool:
    """Whether a portfolio action is carried out on every account: a flatten or a reduce.
    Cancelling orders is left to each account's enforcement of the portfolio's latch."""
    return action.kind in (ActionKind.FLATTEN, ActionKind.REDUCE)


def for_account(action: Action, account: str) -> Action:
    """A portfolio action as the same action on one account, on every position it holds."""
    return replace(action, account=account, symbol=None)
