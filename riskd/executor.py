"""Carries out the engine's actions: cancel, reduce, close, flatten. Idempotent and verified.

Every order and cancel is written to the store under its action before it is sent,
and updated with what the exchange answered. Orders are market orders, reduce-only on derivatives, rounded down
to the market's step, with a client order id derived from the action's row id, the
position and the attempt, so a retry after a lost reply cannot send twice unnoticed.
After sending, the executor re-reads the account and sends again for whatever is still
open, a bounded number of times; what remains after that is an emergency alert, and the
engine keeps enforcing it on later ticks.

In dry-run nothing reaches the exchange: each order that would have been sent is
recorded with status `dry_run` and announced.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from riskd import wording
from riskd.domain import Action, ActionKind, ActionStatus, Alert, Event, EventKind, Position, Severity, Snapshot, alert_key
from riskd.exchange import ExchangeAdapter, explain
from riskd.store import OrderKind, Store

log = logging.getLogger("riskd.executor")

ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one action: done, or what is still open and why."""

    action: Action
    done: bool
    detail: str
    snapshot: Snapshot | None = None


def client_order_id(action_id: int, key: str, attempt: int) -> str:
    """Deterministic and within Binance's 36 characters: the same order gets the same id."""
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    return f"riskd-{action_id}-{digest}-{attempt}"


class Executor:
    """Runs actions against one account through its adapter, recording each step."""

    def __init__(self, adapter: ExchangeAdapter, store: Store, live: Callable[[], bool], clock: Callable[[], datetime]):
        """`live` is asked at every action, so a reload that turns dry-run on or off applies at once."""
        self.adapter, self.store, self.live, self.clock = adapter, store, live, clock
        self.last_progress: datetime | None = None
        """When an exchange call of an action last returned: a long flatten is alive, not hung."""

    def _progressed(self) -> None:
        self.last_progress = self.clock()

    async def run(self, actions: tuple[Action, ...], snapshot: Snapshot) -> list[Outcome]:
        """Carry out `actions` in order against the account as `snapshot` saw it."""
        outcomes = []
        for action in actions:
            outcome = await self.execute(action, snapshot)
            outcomes.append(outcome)
            snapshot = outcome.snapshot or snapshot
        return outcomes

    async def execute(self, action: Action, snapshot: Snapshot) -> Outcome:
        action_id = self.store.record_action(action, self.clock(), not self.live())
        try:
            if not self.live():
                return self._dry_run(action_id, action, snapshot)
            outcome = await self._live(action_id, action, snapshot)
        except asyncio.CancelledError:
            self.store.update_action(action_id, self.clock(), ActionStatus.INTERRUPTED)
            raise
        except Exception as error:  # an unexpected failure is still recorded and announced
            log.exception("%s: %s failed", action.account, action.kind)
            outcome = Outcome(action, False, f"riskd failed while acting: {explain(error).text}")
        status = ActionStatus.DONE if outcome.done else ActionStatus.UNCONFIRMED
        self.store.update_action(action_id, self.clock(), status, error=None if outcome.done else outcome.detail)
        if not outcome.done:
            self.store.record_event(
                Event(action.account, EventKind.ACTION_UNCONFIRMED, outcome.detail, severity=Severity.EMERGENCY),
                self.clock(),
                Alert(
                    action.account, Severity.EMERGENCY, alert_key(EventKind.ACTION_UNCONFIRMED, action.kind),
                    wording.unconfirmed_alert(action.kind, ATTEMPTS, outcome.detail),
                ),
            )
        return outcome

    # --- dry run ---------------------------------------------------------------

    def _dry_run(self, action_id: int, action: Action, snapshot: Snapshot) -> Outcome:
        orders = _orders_to_cancel(action, snapshot)
        for order in orders:
            self.store.record_order(
                action_id, action, OrderKind.CANCEL, self.clock(), True, ActionStatus.DRY_RUN,
                symbol=order.symbol, exchange_order_id=order.id,
            )
        for position, amount in self._orders_to_send(action, snapshot, snapshot):
            self.store.record_order(
                action_id, action, OrderKind.ORDER, self.clock(), True, ActionStatus.DRY_RUN,
                symbol=position.key,
                side="sell" if position.side == "long" else "buy",
                amount=amount,
                client_order_id=client_order_id(action_id, position.key, 1),
            )
        self.store.update_action(action_id, self.clock(), ActionStatus.DRY_RUN)
        return Outcome(action, True, "dry-run: recorded, nothing sent")

    # --- live --------------------------------------------------------------------

    async def _live(self, action_id: int, action: Action, snapshot: Snapshot) -> Outcome:
        """Send, re-read, and send again what is left; never send twice without a read between.

        If the re-read fails, nothing is sent on the next attempt until a read succeeds:
        orders whose replies were lost may have been carried out.
        """
        original, problems = snapshot, []
        current: Snapshot | None = snapshot
        for attempt in range(1, ATTEMPTS + 1):
            if current is None:
                current = await self._reread(problems)
                if current is None:
                    continue
            cancels = _orders_to_cancel(action, current)
            if cancels:
                problems += await self._cancel(action, action_id, cancels, current)
            sends = self._orders_to_send(action, original, current)
            if not sends and not cancels:
                return Outcome(action, True, "done", current)
            results = await asyncio.gather(
                *(self._send(action, action_id, position, amount, attempt) for position, amount in sends)
            )
            problems += [problem for problem in results if problem]
            current = await self._reread(problems)
            if current is not None and not _orders_to_cancel(action, current) and not self._orders_to_send(action, original, current):
                return Outcome(action, True, "done", current)
        if current is None:
            return Outcome(action, False, f"could not re-read the account to confirm; last error: {problems[-1]}")
        left = [position.key for position, _ in self._orders_to_send(action, original, current)]
        orders = len(_orders_to_cancel(action, current))
        detail = f"still open: {', '.join(left) or 'no positions'}; {orders} order(s)"
        if problems:
            detail += f"; last error: {problems[-1]}"
        return Outcome(action, False, detail, current)

    async def _reread(self, problems: list[str]) -> Snapshot | None:
        current = await self.adapter.snapshot()
        self._progressed()
        if current.ok:
            return current
        problems.append(f"re-reading the account failed: {current.error}")
        return None

    async def _cancel(self, action: Action, action_id: int, orders: list, snapshot: Snapshot) -> list[str]:
        ids = {order.id for order in orders}
        whole = sorted({o.symbol for o in orders} - {o.symbol for o in snapshot.orders if o.id not in ids})
        row = self.store.record_order(
            action_id, action, OrderKind.CANCEL, self.clock(), False, ActionStatus.SENT,
            symbol=", ".join(sorted({o.symbol for o in orders})), exchange_order_id=", ".join(sorted(ids))[:500],
        )
        try:
            await self.adapter.cancel_orders([o for o in orders if o.symbol not in whole], whole)
            self._progressed()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._progressed()  # an answer, even a refusal, is progress: riskd is not hung
            problem = explain(error).text
            self.store.update_action(row, self.clock(), ActionStatus.FAILED, error=problem)
            return [problem]
        self.store.update_action(row, self.clock(), ActionStatus.DONE)
        return []

    async def _send(self, action: Action, action_id: int, position: Position, amount: float, attempt: int) -> str | None:
        order_id = client_order_id(action_id, position.key, attempt)
        side = "sell" if position.side == "long" else "buy"
        row = self.store.record_order(
            action_id, action, OrderKind.ORDER, self.clock(), False, ActionStatus.SENT,
            symbol=position.key, side=side, amount=amount, client_order_id=order_id,
        )
        try:
            reply = await self.adapter.reduce(position, amount, order_id)
            self._progressed()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._progressed()
            problem = explain(error).text
            self.store.update_action(row, self.clock(), ActionStatus.FAILED, error=problem)
            log.warning("%s: order %s for %s failed: %s", action.account, order_id, position.key, problem)
            return problem
        # Answered: done in riskd's words; whether the position shrank is the re-read's to say.
        self.store.update_action(
            row, self.clock(), ActionStatus.DONE, exchange_order_id=str(reply.get("id")), exchange_status=reply.get("status"),
        )
        return None

    def _orders_to_send(self, action: Action, original: Snapshot, current: Snapshot) -> list[tuple[Position, float]]:
        """The reduce-only orders that would bring `current` to the action's target."""
        targets = _targets(action, original)
        orders = []
        for position in current.positions:
            if position.key not in targets:
                continue
            excess = position.contracts - targets[position.key]
            amount = self.adapter.round_amount(position.symbol, min(excess, position.contracts)) if excess > 0 else 0.0
            if amount > 0 and amount >= self.adapter.minimum(position.symbol) * 0.999:
                orders.append((position, amount))
        return orders


def _targets(action: Action, snapshot: Snapshot) -> dict[str, float]:
    """Contracts each affected position may keep once the action is done."""
    if action.kind is ActionKind.FLATTEN:
        return {position.key: 0.0 for position in snapshot.positions}
    if action.kind is ActionKind.CLOSE:
        return {
            position.key: max(0.0, position.contracts - action.contracts) if action.contracts else 0.0
            for position in snapshot.positions
            if position.key == action.symbol
        }
    if action.kind is ActionKind.REDUCE:
        return {
            position.key: position.contracts * (1 - (action.fraction or 0.0))
            for position in snapshot.positions
            if action.symbol in (None, position.key)
        }
    return {}


def _orders_to_cancel(action: Action, snapshot: Snapshot) -> list:
    if action.kind is ActionKind.FLATTEN:
        return list(snapshot.orders)
    if action.kind is ActionKind.CANCEL_ORDERS:
        wanted = set(action.order_ids)
        return [order for order in snapshot.orders if order.id in wanted]
    return []
