"""Many accounts on two cores: ticks kept, CPU per account-tick, memory, and SIGTERM time.

Each shape is a `riskd run` process guarding COUNT Binance USDⓈ-M accounts, live, at
`poll_interval: 10s` (or --poll), with riskd's shipped client settings (its rate limiter
on), against the simulator with 50 ms added to every reply in another process
(bench/venues.py: as many accounts per venue as Binance's per-IP budget holds at that
interval with half left to bots, the market data counted, three at 10 s). After each account's first two ticks
(the first also loads its client's markets), riskd runs for WINDOW seconds while its CPU
time and resident memory are sampled; then it gets SIGTERM and the time to exit is
measured. The daemon runs with a user's install (`bench/runtime.py`).

Reported per shape: ticks completed against ticks due, ticks missed (a gap of more than
1.5 intervals between two reads of one account in the measured window), the longest
gap, action rows written (0: the figures are of guarding, not acting), CPU per
account-tick, peak RSS, and the SIGTERM-to-exit time.

Run: python bench/accounts.py [--poll SECONDS] [COUNT ...]   (default: 10 s; 1 10 100)
"""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

import runtime
from riskd import budget

ROOT = Path(__file__).resolve().parent.parent
LATENCY = 0.050
POLL = float(sys.argv[2]) if sys.argv[1:2] == ["--poll"] else 10.0
WINDOW = max(60.0, 6 * POLL)
PER_VENUE = max(1, budget.Fit(budget.BINANCE_USDM, ("a000",), POLL, market_symbols=budget.HELD_SYMBOLS + 1).most)
"""As many accounts as riskd lets share one IP at POLL (riskd.budget): Binance USDⓈ-M's 2,400
weight a minute, riskd keeps to half, 50 a read, the venue's market data beside them."""
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def reads(database: Path) -> dict[str, list[datetime]]:
    """The moments of each account's good reads."""
    try:
        with sqlite3.connect(database) as connection:
            rows = connection.execute("select account, at from snapshots where ok order by at").fetchall()
    except sqlite3.Error:
        return {}
    seen: dict[str, list[datetime]] = {}
    for account, moment in rows:
        seen.setdefault(account, []).append(datetime.fromisoformat(moment))
    return seen


def venues(count: int) -> tuple[subprocess.Popen, list[str]]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "venues.py"), str(count), str(LATENCY)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    return process, json.loads(process.stdout.readline())


def shape(count: int) -> dict:
    exchange, urls = venues(math.ceil(count / PER_VENUE))
    from riskd.sim import ccxt_config

    with tempfile.TemporaryDirectory(prefix="riskd-bench-") as folder:
        database = Path(folder) / "riskd.db"
        environment = dict(os.environ)
        accounts = {}
        for index in range(count):
            name = f"a{index:03d}"
            pointed = ccxt_config(urls[index // PER_VENUE])
            accounts[name] = {"exchange": "binanceusdm", "ccxt": {"urls": pointed["urls"], "options": pointed["options"]}}
            environment[f"RISKD_ACCOUNTS__{name.upper()}__API_KEY"] = "bench-key"
            environment[f"RISKD_ACCOUNTS__{name.upper()}__SECRET"] = "bench-secret"
        config = Path(folder) / "config.yaml"
        config.write_text(yaml.safe_dump({
            "live": True, "database": str(database), "poll_interval": f"{POLL:g}s", "accounts": accounts,
        }))
        daemon = subprocess.Popen(
            [runtime.python(), "-m", "riskd", "--config", str(config), "run"],
            env=environment, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            # every account has read twice: the first tick also loads the client's markets
            while len(reads(database)) < count or min(len(m) for m in reads(database).values()) < 2:
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise SystemExit(f"riskd did not start {count} accounts")
                time.sleep(0.2)
            started, cpu_before = time.monotonic(), cpu_seconds(daemon.pid)
            seen_before = reads(database)
            before = sum(len(moments) for moments in seen_before.values())
            peak = 0.0
            while time.monotonic() - started < WINDOW:
                peak = max(peak, rss_mb(daemon.pid))
                time.sleep(0.5)
            cpu = cpu_seconds(daemon.pid) - cpu_before
            seen = reads(database)
            done = sum(len(moments) for moments in seen.values()) - before
            elapsed = time.monotonic() - started
            measured = {account: moments[len(seen_before.get(account, [])) - 1:] for account, moments in seen.items()}
            gap = max(
                (b - a).total_seconds() for moments in measured.values() for a, b in zip(moments, moments[1:])
            ) if any(len(m) > 1 for m in measured.values()) else float("nan")
            missed = sum(
                round((b - a).total_seconds() / POLL) - 1
                for moments in measured.values() for a, b in zip(moments, moments[1:])
                if (b - a).total_seconds() > 1.5 * POLL
            )
            with sqlite3.connect(database) as connection:
                acted = connection.execute("select count(*) from actions").fetchone()[0]
            stop = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=60)
            stopped = time.monotonic() - stop
        finally:
            if daemon.poll() is None:
                daemon.kill()
            exchange.terminate()
            exchange.wait(timeout=10)
    return {
        "accounts": count, "due": count * elapsed / POLL, "done": done, "gap": gap, "missed": missed, "acted": acted,
        "cpu_per_tick_ms": cpu / max(done, 1) * 1000, "cpu_share": cpu / elapsed, "rss": peak,
        "sigterm": stopped, "exit": code,
    }


def main() -> None:
    arguments = sys.argv[3:] if sys.argv[1:2] == ["--poll"] else sys.argv[1:]
    counts = [int(argument) for argument in arguments] or [1, 10, 100]
    results = [shape(count) for count in counts]
    print(f"poll_interval {POLL:g}s, {PER_VENUE} account(s) per venue, {LATENCY * 1000:.0f} ms added to every reply, "
          f"{WINDOW:g} s measured per shape")
    for r in results:
        print(
            f"{r['accounts']:4d} account(s): {r['done']} of {r['due']:.0f} ticks due, {r['missed']} missed, "
            f"longest gap {r['gap']:.1f} s, {r['acted']} action rows; "
            f"CPU {r['cpu_per_tick_ms']:.1f} ms per account-tick ({r['cpu_share']:.1%} of one core); "
            f"peak RSS {r['rss']:.1f} MB; SIGTERM to exit {r['sigterm']:.2f} s (status {r['exit']})"
        )
    by_count = {r["accounts"]: r for r in results}
    if 1 in by_count and len(by_count) > 1:
        most = max(by_count)
        extra = (by_count[most]["rss"] - by_count[1]["rss"]) / (most - 1)
        print(f"memory per extra account: {extra:.2f} MB (1 → {most} accounts)")


if __name__ == "__main__":
    main()
