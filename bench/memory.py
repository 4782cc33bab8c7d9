"""Resident memory of the daemon with one account, after start.

Starts `riskd run` on the shipped config.yaml (one account on the embedded exchange,
which runs in the same process) with a scratch database, waits for its first tick to
be recorded, samples VmRSS for a few ticks and reports the largest, then stops it with
SIGTERM. Also reports the cost of importing ccxt alone, for scale. Target: ≤ 160 MB.

Run: python bench/memory.py
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def ticks(database: Path) -> int:
    try:
        with sqlite3.connect(database) as connection:
            return connection.execute("select count(*) from snapshots").fetchone()[0]
    except sqlite3.Error:
        return 0


def main() -> None:
    ccxt_alone = subprocess.run(
        [sys.executable, "-c", "import ccxt.async_support, pathlib; "
         "print([l for l in pathlib.Path('/proc/self/status').read_text().splitlines() if l.startswith('VmRSS')][0])"],
        capture_output=True, text=True, check=True,
    ).stdout.split()[1]
    with tempfile.TemporaryDirectory(prefix="riskd-bench-") as folder:
        database = Path(folder) / "riskd.db"
        environment = {**os.environ, "RISKD_DATABASE": str(database), "RISKD_POLL_INTERVAL": "2s"}
        daemon = subprocess.Popen(
            [sys.executable, "-m", "riskd", "--config", str(ROOT / "config.yaml"), "run"],
            env=environment, cwd=folder, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while ticks(database) < 1:
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise SystemExit("riskd did not complete a tick")
                time.sleep(0.2)
            samples = []
            while ticks(database) < 6:
                samples.append(rss_mb(daemon.pid))
                time.sleep(0.5)
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=15)
    print(f"import ccxt.async_support alone: {int(ccxt_alone) / 1024:6.1f} MB")
    print(f"riskd run, one account, after start: {max(samples):6.1f} MB peak over {len(samples)} samples (target ≤ 160 MB)")
    print(f"exit status after SIGTERM: {code}")


if __name__ == "__main__":
    main()
