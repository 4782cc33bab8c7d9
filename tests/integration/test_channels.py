"""Alerts through real Apprise channels (its json:// service) to receivers on loopback.

Two channels, one of them dead: the live one gets every alert at once, the dead one
holds back nothing and, once it answers, gets every alert it missed, in order. The
daemon's clock is fake, so backoff takes no time. `riskd check` tries each channel.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import sqlite_utils

from riskd.cli import HANDLERS, TROUBLE, parser
from riskd.config import load_settings
from riskd.domain import Command, CommandKind
from riskd.supervisor import Daemon
from tests.integration.test_hooks import Receiver, free_port
from tests.integration.conftest import Clock, write_config


class ApprisePayloads(Receiver):
    """What Apprise's json:// service posts: {"version", "title", "message", "type", ...}."""

    async def take(self, request):
        self.received.append(json.loads(await request.read()))
        from aiohttp import web

        return web.Response(text="ok")


def apprise_url(receiver: Receiver) -> str:
    return f"json://127.0.0.1:{receiver.port}/alerts"


async def guarded(tmp_path, clock, monkeypatch, *urls: str) -> Daemon:
    monkeypatch.setenv("RISKD_ALERTS__APPRISE", json.dumps(list(urls)))
    daemon = Daemon(load_settings(write_config(tmp_path, alerts={"timeout": "5s"})), clock=clock)
    await daemon.startup()
    await daemon.tick("demo")
    return daemon


async def freeze_and_resume(daemon: Daemon) -> None:
    guard = daemon.guards["demo"]
    await guard.obey(Command(CommandKind.FREEZE, "demo", "test", "tester", reason="bot gone wild"))
    await guard.obey(Command(CommandKind.RESUME, "demo", "test", "tester"))


async def test_a_dead_channel_holds_back_no_other_and_gets_every_alert_once_it_answers(tmp_path, monkeypatch):
    clock = Clock()
    alive, dead = ApprisePayloads(), ApprisePayloads()
    await alive.start()
    daemon = await guarded(tmp_path, clock, monkeypatch, apprise_url(alive), apprise_url(dead))
    try:
        await freeze_and_resume(daemon)
        raised = [alert.text for alert in daemon.store.alerts()]
        assert len(raised) >= 2
        await daemon.deliver_alerts()
        assert [payload["message"] for payload in alive.received] == raised
        assert alive.received[0]["title"] == "riskd WARNING · demo" and alive.received[0]["type"] == "warning"

        for _ in range(3):  # the dead channel is tried again, later each time, and nothing is lost
            clock.advance(30)
            await daemon.deliver_alerts()
        positions = {channel.label: channel for channel in daemon.store.channels()}
        assert positions["apprise 2 (json)"].attempts == 4  # the first pass and three more
        assert "Connection error" in positions["apprise 2 (json)"].error
        assert str(dead.port) not in str(daemon.store.channels())  # the URL is never stored

        await daemon.guards["demo"].obey(Command(CommandKind.FREEZE, "demo", "test", "tester", reason="again"))
        await daemon.deliver_alerts()
        assert [payload["message"] for payload in alive.received] == [alert.text for alert in daemon.store.alerts()]  # not held back
        assert len(alive.received) > len(raised)

        await dead.start()
        clock.advance(61)
        await daemon.deliver_alerts()
        late = [payload["message"].split("\nDelivered late: ")[0] for payload in dead.received]
        assert late == [payload["message"] for payload in alive.received]  # every one, in order
        assert dead.received[0]["message"].endswith("\nDelivered late: this was raised at 2026-03-02 12:00:00 UTC, 3m ago.")
        assert {channel.attempts for channel in daemon.store.channels()} == {0}
    finally:
        await daemon.shutdown()
        await alive.stop()
        await dead.stop()


async def test_a_channel_added_later_starts_with_the_next_alert_not_the_history(tmp_path, monkeypatch):
    clock = Clock()
    receiver = ApprisePayloads()
    await receiver.start()
    daemon = await guarded(tmp_path, clock, monkeypatch)  # no channel yet
    await daemon.guards["demo"].obey(Command(CommandKind.FREEZE, "demo", "test", "tester", reason="before"))
    earlier = {alert.id for alert in daemon.store.alerts()}
    await daemon.shutdown()
    try:
        daemon = await guarded(tmp_path, clock, monkeypatch, apprise_url(receiver))
        await daemon.guards["demo"].obey(Command(CommandKind.RESUME, "demo", "test", "tester"))
        await daemon.deliver_alerts()
        since = [alert.text for alert in daemon.store.alerts() if alert.id not in earlier]
        assert earlier and since
        assert [payload["message"] for payload in receiver.received] == since
    finally:
        await daemon.shutdown()
        await receiver.stop()


async def test_a_channel_is_keyed_by_a_salted_hmac_and_a_row_under_the_old_plain_hash_carries_over(tmp_path, monkeypatch):
    # a plain hash of a URL whose token is guessable could be brute-forced from the database
    clock = Clock()
    receiver = ApprisePayloads()
    await receiver.start()
    url = apprise_url(receiver)
    daemon = await guarded(tmp_path, clock, monkeypatch)
    await daemon.guards["demo"].obey(Command(CommandKind.FREEZE, "demo", "test", "tester", reason="before"))
    earlier = [alert.text for alert in daemon.store.alerts()]
    await daemon.shutdown()
    plain = "apprise:" + hashlib.sha256(url.encode()).hexdigest()[:16]
    sqlite_utils.Database(tmp_path / "riskd.db").table("channels").insert(
        {"channel": plain, "label": "apprise 1 (json)", "last_alert_id": 0, "attempts": 0}
    )
    try:
        daemon = await guarded(tmp_path, clock, monkeypatch, url)
        [channel] = daemon.store.channels()
        assert channel.channel != plain and hashlib.sha256(url.encode()).hexdigest()[:16] not in channel.channel
        assert channel.last_alert_id == 0  # the old row's place, not a new one after the history
        await daemon.deliver_alerts()
        assert [payload["message"] for payload in receiver.received][: len(earlier)] == earlier
        await daemon.shutdown()
        daemon = await guarded(tmp_path, clock, monkeypatch, url)
        assert [row.channel for row in daemon.store.channels()] == [channel.channel]  # the salt is kept: the same key
    finally:
        await daemon.shutdown()
        await receiver.stop()


class Taker(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the standard library's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_riskd_check_tries_each_channel(tmp_path, monkeypatch, capsys):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Taker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        urls = [f"json://127.0.0.1:{server.server_port}/ok", f"json://127.0.0.1:{free_port()}/dead"]
        monkeypatch.setenv("RISKD_ALERTS__APPRISE", json.dumps(urls))
        monkeypatch.chdir(tmp_path)
        (tmp_path / "config.yaml").write_text("accounts:\n  demo:\n    exchange: sim\n")
        arguments = parser().parse_args(["--config", "config.yaml", "check"])
        assert HANDLERS["check"](load_settings("config.yaml"), arguments) == TROUBLE
        out = capsys.readouterr().out
        assert "apprise 1 (json): a test message was delivered" in out
        assert "apprise 2 (json): FAILURE: a test message could not be delivered: A Connection error occurred" in out
        assert "/dead" not in out
    finally:
        server.shutdown()
