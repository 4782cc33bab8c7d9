"""`riskd demo`: a scripted crash on the embedded exchange, narrated as it happens.

It runs the real daemon (the same tick, engine, executor and store as `riskd run`)
against the simulator's demo portfolio, starts a crash a few seconds in, and prints
what riskd sees and does: prices falling, the warning, the breach, the halt, orders
cancelled, positions closed; then compares the account with what it would have been
worth had nobody acted.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

import yaml

from riskd.config import load_settings
from riskd.store import OrderKind
from riskd.supervisor import Daemon
from riskd.units import format_money

CRASH = {"depth": 0.35, "duration": 35.0, "after": 8.0}
"""A 35 % fall over 35 seconds, starting 8 seconds in."""

DEMO_CONFIG = {
    "live": True,  # live against the simulator only: no real exchange is involved
    "poll_interval": "2s",
    "alert_cooldown": "1m",
    "accounts": {"demo": {"exchange": "sim", "sim": {"seed": 7, "volatility": 0.0002}}},
    "breakers": {
        "drawdown": {"limit": "10%", "action": "flatten"},
        "daily_loss": {"limit": "6%", "action": "halt"},
        "position_loss": {"limit": "30%"},
        "leverage": {"limit": "10x"},
        "liquidation_distance": {"action": "alert"},
        "concentration": {"limit": "300%"},
        "flash_crash": {"limit": "10%", "window": "5m", "action": "halt"},
        "var": {"limit": "25%"},  # the portfolio's usual one-day VaR (some 15%) is not the demo's story
    },
}

NARRATED = {"warning", "breach", "state_change", "enforce", "action_unconfirmed", "clear"}


async def run_demo(seconds: float = 60.0, out=print, crash: dict = CRASH, poll_interval: str = "2s") -> int:
    """Run the demo for about `seconds`; returns the exit status. Tests speed it up."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL + 1)  # the narration says it all
    try:
        return await _demo(seconds, out, crash, poll_interval)
    finally:
        root.setLevel(level)  # the demo may run inside a longer-lived process (the tests)


async def _demo(seconds: float, out, crash: dict, poll_interval: str) -> int:
    with tempfile.TemporaryDirectory(prefix="riskd-demo-") as folder:
        path = Path(folder) / "config.yaml"
        config = {**DEMO_CONFIG, "poll_interval": poll_interval, "database": str(Path(folder) / "demo.db")}
        path.write_text(yaml.safe_dump(config))
        daemon = Daemon(load_settings(path))
        running = asyncio.create_task(daemon.run())
        ready = asyncio.create_task(daemon.ready())
        await asyncio.wait((running, ready), return_when=asyncio.FIRST_COMPLETED)
        if running.done():  # it stopped before it guarded anything: its error is the demo's
            ready.cancel()
            return running.result() or 1
        try:
            await _narrate(daemon, daemon.simulator("demo"), seconds, out, crash)
        finally:
            daemon.stop()
            await running
    return 0


async def _narrate(daemon: Daemon, simulator, seconds: float, out, crash: dict) -> None:
    start = simulator.state()
    out("riskd demo: a simulated Binance futures account, guarded by riskd (the orders go to the simulator).")
    out(f"  equity {format_money(start['equity'], 'USDT')}; positions: " + ", ".join(
        f"{p['symbol'].split('/')[0]} {'long' if p['amount'] > 0 else 'short'} {abs(p['amount']):g}" for p in start["positions"]
    ) + f"; {len(start['openOrders'])} resting orders.")
    out(
        "  limits: a price swing of 10% within 5 minutes → halt (cancel orders); daily loss 6% → halt;"
        " drawdown 10% → flatten (close everything)."
    )
    out(f"  in {crash['after']:.0f} s the market starts to crash: -{crash['depth']:.0%} over {crash['duration']:.0f} s.\n")
    simulator.run_scenario("crash", **crash)
    pause = min(2.0, daemon.settings.poll_interval.total_seconds())
    loop = asyncio.get_running_loop()
    began, seen_events, seen_actions, flat_since = loop.time(), 0, 0, None
    while (elapsed := loop.time() - began) < seconds:
        await asyncio.sleep(pause)
        now = simulator.state()
        state = daemon.store.load_state("demo")
        peak = state.peak_equity or now["equity"]
        prices = "  ".join(f"{symbol.split('/')[0]} {price:,.2f}" for symbol, price in list(now["prices"].items())[:3])
        out(
            f"t+{elapsed:4.0f}s  {prices}  equity {now['equity']:,.2f} ({(now['equity'] - peak) / peak:+.1%} from peak)"
            f"  {state.trading_state.upper()}"
        )
        events = daemon.store.events("demo", 200)
        for event in events[seen_events:]:
            if event.kind in NARRATED:
                out(f"        {event.severity.upper():<9} {event.kind}: {event.message}")
        seen_events = len(events)
        sent = [a for a in daemon.store.actions("demo", 500) if a.parent_id is not None]  # orders and cancels
        for action in sent[seen_actions:]:
            if action.kind is OrderKind.CANCEL:
                count = len((action.exchange_order_id or "").split(", "))
                out(f"        CANCEL    {count} order(s) on {action.symbol}: {action.status}")
            else:
                out(f"        ORDER     {action.side} {action.amount:g} {action.symbol} reduce-only market: {action.exchange_status or action.status}")
        seen_actions = len(sent)
        if not now["positions"] and not now["openOrders"]:
            flat_since = flat_since or elapsed
            if elapsed - flat_since >= 4 * pause and elapsed >= crash["after"] + crash["duration"]:
                break
    _summary(start, simulator.state(), daemon, out)


def _summary(start: dict, end: dict, daemon: Daemon, out) -> None:
    """Compare the guarded account with the same positions left alone."""
    unguarded = start["equity"] + sum(
        p["amount"] * (end["prices"][p["symbol"]] - p["mark"]) for p in start["positions"]
    )
    state = daemon.store.load_state("demo")
    orders = [a for a in daemon.store.actions("demo", 500) if a.kind is OrderKind.ORDER]
    out("\nsummary")
    out(f"  equity at start      {format_money(start['equity'], 'USDT')}")
    out(f"  equity now (guarded) {format_money(end['equity'], 'USDT')}  ({(end['equity'] - start['equity']) / start['equity']:+.1%})")
    out(f"  left alone it would be {format_money(unguarded, 'USDT')}  ({(unguarded - start['equity']) / start['equity']:+.1%})")
    out(f"  riskd sent {len(orders)} reduce-only order(s); account is {state.trading_state}: {state.reason}")
    out("  to resume after a real halt: riskd resume ACCOUNT (a person decides, not the market)")
