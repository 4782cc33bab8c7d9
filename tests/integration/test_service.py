"""riskd as a systemd service: sd_notify, the watchdog, SIGTERM and SIGHUP.

systemd is played by a unix datagram socket named in NOTIFY_SOCKET, as systemd names
its own; the exchange is the embedded simulator, whose faults make a tick hang.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from riskd.config import load_settings
from riskd.supervisor import SIGNALS, STOP_GRACE, Daemon
from tests.timing import limit

from .conftest import write_config


class FakeSystemd:
    """The receiving end of NOTIFY_SOCKET: every message, with when it came, read as it comes
    (the kernel queues only a few datagrams, 10 by default)."""

    def __init__(self, path: Path):
        assert len(str(path)) < 100, "unix socket paths are limited to 108 bytes"
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.setblocking(False)
        self.messages: list[tuple[float, dict[str, str]]] = []
        asyncio.get_running_loop().add_reader(self.socket.fileno(), self.drain)

    def drain(self) -> list[dict[str, str]]:
        while True:
            try:
                data = self.socket.recv(4096)
            except BlockingIOError:
                return [message for _, message in self.messages]
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append((time.monotonic(), fields))

    def since(self, moment: float) -> list[dict[str, str]]:
        self.drain()
        return [message for at, message in self.messages if at >= moment]

    async def wait_for(self, key: str, timeout: float, since: float = 0.0, saying: str = "") -> dict[str, str]:
        """The first message after `since` with `key`, whose value has `saying` in it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [message for message in self.since(since) if saying in message.get(key, "") and key in message]
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {key} within {timeout} s; got {self.since(since)}")

    async def wait_for_count(self, count: int, timeout: float, since: float) -> list[dict[str, str]]:
        """The messages after `since`, once at least `count` have come."""
        deadline = time.monotonic() + timeout
        while len(self.since(since)) < count:
            assert time.monotonic() < deadline, f"fewer than {count} messages within {timeout} s; got {self.since(since)}"
            await asyncio.sleep(0.05)
        return self.since(since)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.socket.fileno())
        self.socket.close()


@pytest.fixture
async def systemd(tmp_path, monkeypatch):
    fake = FakeSystemd(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(fake.path))
    monkeypatch.setenv("WATCHDOG_USEC", "500000")  # pings every 0.25 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield fake
    fake.close()


def service_config(folder: Path, **settings) -> Path:
    """The demo account as a service runs it: a tick every 500 ms, and 20 s for ccxt to give
    up on a call, so a hung exchange hangs the tick."""
    return write_config(folder, **{"timeout": "20s", "poll_interval": "500ms", **settings})


async def eventually(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_ready_watchdog_status_and_stopping_and_no_pings_while_a_tick_hangs(tmp_path, systemd, run):
    daemon = Daemon(load_settings(service_config(tmp_path)))
    running = run(daemon)
    ready = await systemd.wait_for("READY", timeout=10)
    assert ready["STATUS"].startswith("1 account: 1 active; last tick")
    assert daemon.guards["demo"].last_tick_at is not None  # READY means an account was read and judged

    started = time.monotonic()
    await asyncio.sleep(1.0)
    pings = [message for message in systemd.since(started) if "WATCHDOG" in message]
    assert len(pings) >= 3 and all(message["WATCHDOG"] == "1" for message in pings)

    runner = daemon.guards["demo"]
    daemon.simulator("demo").add_fault("timeout", seconds=60)  # the exchange stops answering; ccxt waits 20 s
    # once the last completed tick is older than 3 poll intervals (1.5 s), riskd says so
    await systemd.wait_for("STATUS", timeout=10, since=time.monotonic(), saying="no tick completed for")
    quiet = time.monotonic()
    reports = await systemd.wait_for_count(4, timeout=5, since=quiet)  # about a second of health reports
    assert not [message for message in reports if "WATCHDOG" in message]
    assert all("no tick completed for" in message["STATUS"] for message in reports)  # STATUS goes on, saying why

    await runner.sim.stop()  # the hanging request ends in an error: a failed read completes the tick
    resumed = await systemd.wait_for("WATCHDOG", timeout=5, since=time.monotonic())
    assert "no good read of the account" in resumed["STATUS"]

    daemon.stop()
    await asyncio.wait_for(running, STOP_GRACE + 2)
    assert systemd.drain()[-1] == {"STOPPING": "1", "STATUS": "stopping"}


async def test_sighup_applies_a_good_configuration_and_refuses_a_bad_one_with_an_alert(tmp_path, systemd, run):
    path = service_config(tmp_path)
    daemon = Daemon(load_settings(path), loader=lambda: load_settings(path))
    running = run(daemon)
    await systemd.wait_for("READY", timeout=10)
    runner = daemon.guards["demo"]
    assert runner.policy.breakers["drawdown"].limit == pytest.approx(0.10)

    service_config(tmp_path, live=False, breakers={"drawdown": {"limit": "8%"}}, database=str(tmp_path / "other.db"))
    reloading = time.monotonic()
    os.kill(os.getpid(), signal.SIGHUP)
    await eventually(lambda: runner.policy.breakers["drawdown"].limit == pytest.approx(0.08))
    assert daemon.settings.database == tmp_path / "riskd.db"  # a new database waits for a restart
    assert runner.executor.live() is False  # settings are swapped in one place; the executor reads them there
    kinds = [next(iter(message)) for message in systemd.since(reloading) if "RELOADING" in message or "READY" in message]
    assert kinds[:2] == ["RELOADING", "READY"]

    path.write_text(path.read_text() + "poll_interval: sometime\n")
    os.kill(os.getpid(), signal.SIGHUP)
    await eventually(lambda: any(row.key == "config_refused" for row in daemon.store.alerts()))
    alert = next(row for row in daemon.store.alerts() if row.key == "config_refused")
    assert "poll_interval" in alert.text and alert.severity == "warning"
    assert runner.policy.breakers["drawdown"].limit == pytest.approx(0.08)  # the previous one stays
    assert not running.done()

    daemon.stop()
    await asyncio.wait_for(running, STOP_GRACE + 2)
    loop = asyncio.get_running_loop()
    assert not any([loop.remove_signal_handler(number) for number in SIGNALS])  # riskd gave its handlers back


# --- SIGTERM, in a real process ---------------------------------------------------------------

async def start_riskd(config: Path, notify: Path) -> asyncio.subprocess.Process:
    """`riskd --config X run` in its own process; returns once its first tick has begun."""
    environment = {**os.environ, "NOTIFY_SOCKET": str(notify)}
    environment.pop("JOURNAL_STREAM", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "riskd", "--config", str(config), "run",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=environment,
    )

    async def banner() -> None:
        while b"account demo:" not in (line := await process.stderr.readline()):
            assert line, "riskd stopped before it started"

    await asyncio.wait_for(banner(), 30)
    await asyncio.sleep(0.5)  # the first tick starts as soon as the scheduler does
    return process


async def stop_riskd(process: asyncio.subprocess.Process) -> tuple[int, float, str]:
    """SIGTERM; returns the exit status, the seconds it took and what riskd logged meanwhile."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), limit(15))
    return process.returncode, time.monotonic() - started, stderr.decode()


async def test_sigterm_abandons_a_hung_tick_and_exits_0_within_10_seconds(tmp_path, systemd):
    config = service_config(tmp_path, poll_interval="10s", sim={"latency": "60s"})  # every exchange call hangs
    process = await start_riskd(config, systemd.path)

    status, seconds, log = await stop_riskd(process)
    assert status == 0, log
    assert STOP_GRACE <= seconds < limit(10), log
    assert "tick demo abandoned at shutdown" in log and "riskd stopped" in log
    messages = systemd.drain()
    assert not [message for message in messages if "READY" in message]  # no tick ever completed
    assert messages[-1]["STOPPING"] == "1"


async def test_sigterm_lets_a_slow_tick_finish_and_record_it(tmp_path, systemd):
    config = service_config(tmp_path, poll_interval="10s", sim={"latency": "0.2s"})  # a tick of a few round trips, in flight at the SIGTERM
    process = await start_riskd(config, systemd.path)

    status, seconds, log = await stop_riskd(process)
    assert status == 0, log
    assert "abandoned" not in log and seconds < limit(10), log  # the tick finished, then riskd stopped
    with sqlite3.connect(tmp_path / "riskd.db") as database:
        assert database.execute("select count(*) from snapshots where ok = 1").fetchone() == (1,)
