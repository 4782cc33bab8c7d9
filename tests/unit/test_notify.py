"""sd_notify: what riskd tells systemd (READY, WATCHDOG, STOPPING), one datagram each,
only when systemd asked, and never at the cost of blocking or raising."""

from __future__ import annotations

import os
import socket
import time
import uuid

import pytest

from riskd.notify import Notifier


def test_the_watchdog_interval_comes_from_systemd_and_only_for_this_process():
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "60000000"})
    assert (notifier.enabled, notifier.watchdog_seconds) == (True, 60.0)
    watched = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "60000000"}
    assert Notifier.from_environment({**watched, "WATCHDOG_PID": "1"}).watchdog_seconds is None  # meant for another
    assert Notifier.from_environment({**watched, "WATCHDOG_PID": str(os.getpid())}).watchdog_seconds == 60
    outside = Notifier.from_environment({})
    assert (outside.enabled, outside.watchdog_seconds) == (False, None)
    outside.ready("nothing happens")


@pytest.fixture
def abstract_socket():
    name = f"riskd-test-{uuid.uuid4().hex[:12]}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        receiver.settimeout(1)
        yield "@" + name, receiver


def test_messages_reach_an_abstract_socket_one_datagram_each(abstract_socket):
    address, receiver = abstract_socket
    notifier = Notifier(address)
    notifier.ready("1 account:\n1 active")
    notifier.alive("ok")
    notifier.stopping()
    assert receiver.recv(4096) == b"READY=1\nSTATUS=1 account: 1 active"
    assert receiver.recv(4096) == b"WATCHDOG=1\nSTATUS=ok"
    assert receiver.recv(4096) == b"STOPPING=1\nSTATUS=stopping"


def test_sending_never_blocks_or_raises_when_systemd_does_not_read(abstract_socket, tmp_path):
    address, _ = abstract_socket
    started = time.monotonic()
    for _ in range(200):  # far past the kernel's queue of unread datagrams
        Notifier(address).alive("ok")
    Notifier(str(tmp_path / "nobody-listens")).ready("ok")
    assert time.monotonic() - started < 1
