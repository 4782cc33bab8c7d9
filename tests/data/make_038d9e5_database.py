"""Writes riskd-038d9e5.sqlite3: a database as riskd at commit 038d9e5 left it.

Run it with that commit's code first on the path, for example:

    mkdir -p /tmp/riskd-038d9e5 && git archive 038d9e5 | tar -x -C /tmp/riskd-038d9e5
    PYTHONPATH=/tmp/riskd-038d9e5 python tests/data/make_038d9e5_database.py tests/data/riskd-038d9e5.sqlite3

The daemon of that commit guards the account "main" (live, against the embedded
exchange) through a crash: drawdown trips, the account is flattened (a flatten action,
its cancel and its orders, each with the exchange's order status) and stays halted; a
freeze is queued and carried out; an alert is marked sent. The account "hedge" gets a
snapshot of hedge-mode positions, whose rows held the position key in `symbol`.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from riskd import commands
from riskd.config import load_settings
from riskd.domain import CommandKind, Position, Side, Snapshot
from riskd.sim import SimServer, Simulator, ccxt_config
from riskd.supervisor import Daemon


async def write(database: Path) -> None:
    moments = [datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc) + timedelta(seconds=10 * n) for n in range(5)]

    def clock() -> datetime:  # the daemon's and the simulator's time, moved on by hand
        return moments[0]

    server = SimServer(Simulator.demo(seed=7, clock=lambda: clock().timestamp(), volatility=0))
    await server.start()
    os.environ["RISKD_ACCOUNTS__MAIN__API_KEY"] = "old-database-key"
    os.environ["RISKD_ACCOUNTS__MAIN__SECRET"] = "old-database-secret"
    try:
        with tempfile.TemporaryDirectory() as folder:
            pointed = ccxt_config(server.url, "futures")
            ccxt_settings = {key: value for key, value in pointed.items() if key not in ("apiKey", "secret")}
            ccxt_settings.update(enableRateLimit=False, timeout_on_exit=0)
            account = {"exchange": "binanceusdm", "timeout": "2s", "ccxt": ccxt_settings}
            config = Path(folder) / "config.yaml"
            config.write_text(yaml.safe_dump({"live": True, "database": str(database), "accounts": {"main": account}}))
            daemon = Daemon(load_settings(config), clock=clock)
            await daemon.startup()
            for move in (0.0, -0.20, 0.0):  # a peak, the crash, and the tick that confirms the breach
                if move:
                    server.simulator.move(move)
                moments.pop(0)
                await daemon.tick("main")
            moments.pop(0)
            commands.submit(daemon.store, daemon.settings, CommandKind.FREEZE, "main", "cli", "tester", clock(), reason="checking")
            await daemon.process_commands()
            first = daemon.store.due_alerts(clock())[0]
            daemon.store.mark_alert(first["id"], clock(), "sent")
            daemon.store.record_refusal("telegram", "mallory", "/flatten main", "not obeyed: stranger", clock())
            daemon.store.record_snapshot(
                Snapshot(
                    "hedge", clock(), equity=5_000.0,
                    positions=(
                        Position("BTC/USDT:USDT", Side.LONG, 0.1, 6_000.0, 60_000.0, 60_000.0, 0.0, 40_000.0, 5.0, position_side="LONG"),
                        Position("BTC/USDT:USDT", Side.SHORT, 0.05, 3_000.0, 60_000.0, 60_000.0, 0.0, 90_000.0, 5.0, position_side="SHORT"),
                        Position("ETH/USDT:USDT", Side.LONG, 1.0, 3_000.0, 3_000.0, 3_000.0, 0.0, None, 5.0),
                    ),
                )
            )
            await daemon.shutdown()
    finally:
        await server.stop()
    with sqlite3.connect(database) as connection:
        connection.execute("vacuum")
    connection.close()


if __name__ == "__main__":
    target = Path(sys.argv[1]).absolute()
    target.unlink(missing_ok=True)
    asyncio.run(write(target))
