"""sd_notify: tell systemd that riskd is ready, alive, reloading or stopping.

Why: under `Type=notify` systemd counts riskd as started only once it says READY=1
(riskd says it after every account's first tick), and with `WatchdogSec=` it kills
and restarts riskd when the WATCHDOG=1 pings stop. systemd names a unix datagram
socket in NOTIFY_SOCKET; outside systemd there is none and every call does nothing,
so the daemon calls these unconditionally. Sending never blocks, and a failed send is
logged, never raised: telling systemd must not stop riskd guarding.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Mapping

log = logging.getLogger("riskd.notify")


class Notifier:
    """Sends sd_notify messages to `address` (a path, or `@name` for the abstract namespace)."""

    def __init__(self, address: str | None = None, watchdog: float | None = None):
        self.address = address
        self.watchdog_seconds = watchdog
        """systemd's WatchdogSec in seconds, when it watches this process."""
        self._failed = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        usec, pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
        watched = usec.isdigit() and int(usec) > 0 and pid in ("", str(os.getpid()))
        return cls(environ.get("NOTIFY_SOCKET") or None, int(usec) / 1_000_000 if watched else None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> None:
        if self.address is None:
            return
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            # Non-blocking: were systemd slow to read, riskd's loop would stall on a full queue.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK) as sock:
                sock.sendto("\n".join(fields).encode(), target)
            self._failed = False
        except OSError as error:
            if not self._failed:  # once per outage, not once per ping
                log.warning("cannot notify systemd at %s: %s", self.address, error)
            self._failed = True

    def ready(self, status: str) -> None:
        self.send("READY=1", _status(status))

    def alive(self, status: str) -> None:
        """A watchdog ping: only to be sent while riskd is doing its work."""
        self.send("WATCHDOG=1", _status(status))

    def status(self, status: str) -> None:
        self.send(_status(status))

    def reloading(self) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")


def _status(text: str) -> str:
    return "STATUS=" + " ".join(text.split())
