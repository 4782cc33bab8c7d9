"""Latency of the pre-trade check, POST /v1/check, at 1,000 requests a second.

`riskd run` runs in its own process on the shipped demo account (the embedded exchange,
in riskd's process) with the HTTP server on; this process is the bot: it sends 1,000
requests a second, each at its scheduled moment whether or not the previous answer is
in (an open loop, so a slow answer cannot hide by slowing the load), over 16 keep-alive
connections on 127.0.0.1, and times each from the moment it was due to its answer. What it measures
is riskd's time plus loopback, this client's own work and any wait for a core: an upper
bound on riskd's. riskd's CPU time per request (from /proc, its ticks included) and its
own histogram of the time from a request's body to its answer (`riskd_check_seconds` on
/metrics) are riskd's side. Also the pure check alone (`riskd.pretrade.check`), in this process. Target: p99 ≤ 1 ms.

Run: python bench/pretrade.py [--seconds 20] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BODY = {"account": "demo", "symbol": "BTC/USDT:USDT", "side": "buy", "amount": 0.01}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_riskd(folder: Path, port: int) -> subprocess.Popen:
    document = yaml.safe_load((ROOT / "config.yaml").read_text())
    document.update(database=str(folder / "bench.db"), http={"enabled": True, "port": port}, log_level="ERROR")
    (folder / "config.yaml").write_text(yaml.safe_dump(document))
    process = subprocess.Popen(
        [sys.executable, "-m", "riskd", "--config", str(folder / "config.yaml"), "run"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as reply:
                if reply.status == 200:
                    return process
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError("riskd did not become healthy within 60 s")
        time.sleep(0.2)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def judging_times(port: int) -> dict[float, float]:
    """From riskd's /metrics: the share of checks judged within each bucket's bound (seconds)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        lines = reply.read().decode().splitlines()
    buckets = {}
    for line in lines:
        if line.startswith("riskd_check_seconds_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(bound)] = float(line.rsplit(" ", 1)[1])
    total = buckets[float("inf")]
    return {bound: count / total for bound, count in sorted(buckets.items())}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough HTTP for this request.

    A full client library spends more time per request than riskd does; this one
    writes prepared bytes and reads the reply's length, so the figures stay riskd's.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def ask(self, request: bytes) -> tuple[int, bytes]:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        return status, await self.reader.readexactly(length)


async def load(port: int, rate: int, seconds: float, connections: int = 16) -> tuple[list[float], int]:
    """Send `rate` requests a second for `seconds`; the latency of each (seconds), and how many were not allowed."""
    body = json.dumps(BODY).encode()
    request = (
        f"POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(Connection(*await asyncio.open_connection("127.0.0.1", port)))
    latencies: list[float] = []
    wrong = 0

    async def one(scheduled: float) -> None:
        nonlocal wrong
        connection = await idle.get()
        status, answer = await connection.ask(request)
        latencies.append(time.perf_counter() - scheduled)  # from when it was due: waiting for a connection counts
        idle.put_nowait(connection)
        wrong += status != 200 or b'"allowed": true' not in answer

    for _ in range(500):  # warm up the connections and riskd's code paths
        await one(time.perf_counter())
    latencies.clear()
    tasks = []
    begin = time.perf_counter()
    for number in range(int(rate * seconds)):
        due = begin + number / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - begin
    while not idle.empty():
        idle.get_nowait().writer.close()
    print(f"sent {len(latencies):,} requests in {elapsed:.1f} s ({len(latencies) / elapsed:,.0f}/s)")
    return latencies, wrong


def pure_check() -> float:
    """Microseconds per call of the pure check on the demo account's shape."""
    from datetime import UTC, datetime

    from riskd.domain import Position, Side, Snapshot, TradingState
    from riskd.pretrade import Intent, check

    positions = (
        Position("BTC/USDT:USDT", Side.LONG, 0.15, 9_000, mark_price=60_000),
        Position("ETH/USDT:USDT", Side.SHORT, 2, 6_000, mark_price=3_000),
        Position("SOL/USDT:USDT", Side.LONG, 20, 3_000, mark_price=150),
    )
    snapshot = Snapshot("demo", datetime.now(UTC), equity=10_185, positions=positions)
    limits = {"leverage": 5.0, "concentration": 1.5}
    intent = Intent("BTC/USDT:USDT", "buy", 0.01)
    count = 20_000
    started = time.perf_counter()
    for _ in range(count):
        check(intent, TradingState.ACTIVE, "", snapshot, limits)
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=int, default=1000)
    arguments = parser.parse_args()
    print(f"pure check: {pure_check():.1f} µs per call")
    with tempfile.TemporaryDirectory(prefix="riskd-bench-") as folder:
        port = free_port()
        process = start_riskd(Path(folder), port)
        try:
            before = cpu_seconds(process.pid)
            latencies, wrong = asyncio.run(load(port, arguments.rate, arguments.seconds))
            busy = cpu_seconds(process.pid) - before
            judged = judging_times(port)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    milliseconds = [latency * 1000 for latency in latencies]
    print(f"answers not 200/allowed: {wrong}")
    print(f"riskd's CPU per request: {busy / (len(latencies) + 500) * 1e6:.0f} µs (its ticks included)")
    within = ", ".join(f"≤ {bound * 1000:g} ms: {share:.2%}" for bound, share in judged.items() if bound != float("inf"))
    print(f"riskd's own judging time (riskd_check_seconds), share of requests {within}")
    print(
        f"latency ms: median {statistics.median(milliseconds):.3f}, p90 {percentile(milliseconds, 0.90):.3f}, "
        f"p99 {percentile(milliseconds, 0.99):.3f}, p99.9 {percentile(milliseconds, 0.999):.3f}, max {max(milliseconds):.3f}"
    )
    print(f"target p99 <= 1 ms: {'met' if percentile(milliseconds, 0.99) <= 1.0 else 'MISSED'} (load: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
