"""Hooks on state changes, through the daemon guarding the embedded exchange's demo account.

Receivers are real HTTP servers on loopback: a webhook receiver that checks the signature
as its README tells a user to, and a stand-in for Freqtrade's REST API that checks its
HTTP Basic credentials (the real Freqtrade is driven in test_freqtrade.py). The daemon's
clock is fake, so "down for a minute" and every backoff take no time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import sys

import pytest
import yaml
from aiohttp import web

from riskd.config import load_settings
from riskd.domain import AlertStatus, Command, CommandKind, EventKind, HookTrigger, Severity
from riskd.redact import redact
from riskd.supervisor import Daemon
from tests.integration.conftest import Clock, write_config

SECRET = "webhook-secret-not-a-real-one"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Receiver:
    """A webhook receiver on a port chosen in advance, so it can be down and come up later."""

    def __init__(self, port: int | None = None, status: int = 200):
        self.port, self.status = port or free_port(), status
        self.url = f"http://127.0.0.1:{self.port}/riskd"
        self.received: list[dict] = []
        self.requests: list[tuple[str, str, str | None, bytes]] = []
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{path:.*}", self.take)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def take(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.method, request.path, request.headers.get("Authorization"), body))
        if request.path == "/riskd":
            expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(request.headers.get("X-Riskd-Signature", ""), expected):
                return web.Response(status=401, text="bad signature")
            self.received.append(json.loads(body))
        return web.json_response({"status": "ok"}, status=self.status)


async def start_daemon(tmp_path, clock, monkeypatch, hooks: dict, live: bool = False) -> Daemon:
    for name, hook in hooks.items():
        if hook["type"] == "webhook":
            monkeypatch.setenv(f"RISKD_ACCOUNTS__DEMO__HOOKS__{name.upper()}__SECRET", SECRET)
        if hook["type"] == "freqtrade":
            monkeypatch.setenv(f"RISKD_ACCOUNTS__DEMO__HOOKS__{name.upper()}__USERNAME", "freqtrader")
            monkeypatch.setenv(f"RISKD_ACCOUNTS__DEMO__HOOKS__{name.upper()}__PASSWORD", "freqtrade-password")
    daemon = Daemon(load_settings(write_config(tmp_path, account={"hooks": hooks}, live=live)), clock=clock)
    await daemon.startup()
    await daemon.tick("demo")
    return daemon


async def command(daemon: Daemon, kind: CommandKind) -> None:
    await daemon.guards["demo"].obey(Command(kind, "demo", "test", "tester", reason="bot gone wild" if kind is CommandKind.FREEZE else ""))


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_a_webhook_gets_each_state_change_signed_and_its_outcome_is_recorded(tmp_path, clock, monkeypatch):
    receiver = Receiver()
    await receiver.start()
    daemon = await start_daemon(tmp_path, clock, monkeypatch, {"bot": {"type": "webhook", "url": receiver.url}})
    try:
        await command(daemon, CommandKind.FREEZE)
        assert [call.status for call in daemon.store.hook_calls()] == [AlertStatus.PENDING]  # written with the step
        await daemon.deliver_hooks()
        [event] = receiver.received
        assert (event["account"], event["event"], event["state"], event["reason"]) == ("demo", "halted", "halted", "bot gone wild")
        assert event["live"] is False  # the daemon runs in dry-run: hooks are called all the same
        [call] = daemon.store.hook_calls("demo")
        assert (call.status, call.trigger, call.attempts, call.outcome) == (AlertStatus.SENT, HookTrigger.HALTED, 1, 'HTTP 200 {"status": "ok"}')
        assert event["id"] == call.id
        await command(daemon, CommandKind.RESUME)
        await daemon.deliver_hooks()
        assert [event["event"] for event in receiver.received] == ["halted", "resume"]
    finally:
        await daemon.shutdown()
        await receiver.stop()


async def test_a_receiver_down_for_a_minute_gets_every_event_afterwards_in_order(tmp_path, clock, monkeypatch):
    receiver = Receiver()  # not started: the port refuses connections
    daemon = await start_daemon(tmp_path, clock, monkeypatch, {"bot": {"type": "webhook", "url": receiver.url}})
    try:
        for kind in (CommandKind.FREEZE, CommandKind.RESUME, CommandKind.FLATTEN):
            await command(daemon, kind)
            for _ in range(20):  # a minute of the job running every second... in 3 s steps
                await daemon.deliver_hooks()
                clock.advance(1)
        calls = daemon.store.hook_calls("demo")
        assert [call.trigger for call in calls] == ["halted", "resume", "halted", "flatten"]
        assert all(call.status is AlertStatus.PENDING for call in calls)
        first = calls[0]
        assert first.attempts >= 4 and "Cannot connect" in first.error  # tried, backing off, never given up
        await receiver.start()
        clock.advance(61)  # the longest backoff
        await daemon.deliver_hooks()
        assert [event["event"] for event in receiver.received] == ["halted", "resume", "halted", "flatten"]
        assert [event["id"] for event in receiver.received] == [call.id for call in calls]
        assert {call.status for call in daemon.store.hook_calls("demo")} == {AlertStatus.SENT}
    finally:
        await daemon.shutdown()
        await receiver.stop()


async def test_a_dead_hook_holds_back_no_other_and_a_refusal_is_given_up(tmp_path, clock, monkeypatch):
    alive, refusing = Receiver(), Receiver(status=410)
    await alive.start()
    await refusing.start()
    hooks = {
        "dead": {"type": "webhook", "url": Receiver().url},
        "alive": {"type": "webhook", "url": alive.url},
        "gone": {"type": "webhook", "url": refusing.url},
    }
    daemon = await start_daemon(tmp_path, clock, monkeypatch, hooks)
    try:
        await command(daemon, CommandKind.FREEZE)
        await command(daemon, CommandKind.RESUME)
        await daemon.deliver_hooks()
        assert [event["event"] for event in alive.received] == ["halted", "resume"]
        by_hook = {}
        for call in daemon.store.hook_calls("demo"):
            by_hook.setdefault(call.hook, []).append(call.status)
        assert by_hook == {
            "dead": [AlertStatus.PENDING, AlertStatus.PENDING],
            "alive": [AlertStatus.SENT, AlertStatus.SENT],
            "gone": [AlertStatus.FAILED, AlertStatus.FAILED],  # 410: the receiver will never take it
        }
    finally:
        await daemon.shutdown()
        await alive.stop()
        await refusing.stop()


async def test_a_command_runs_with_the_event_in_its_environment_and_not_riskds_secrets(tmp_path, clock, monkeypatch):
    monkeypatch.setenv("RISKD_ACCOUNTS__DEMO__API_KEY", "a-key-the-command-must-not-see")
    written = tmp_path / "event.json"
    script = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"
    hooks = {"pause": {"type": "command", "run": [sys.executable, "-c", script, str(written)], "events": ["halted"], "in_dry_run": True}}
    daemon = await start_daemon(tmp_path, clock, monkeypatch, hooks)
    try:
        await command(daemon, CommandKind.FREEZE)
        await command(daemon, CommandKind.RESUME)  # not in its events: no call
        await daemon.deliver_hooks()
        environment = json.loads(written.read_text())
        assert (environment["RISKD_EVENT"], environment["RISKD_ACCOUNT"], environment["RISKD_REASON"]) == ("halted", "demo", "bot gone wild")
        assert json.loads(environment["RISKD_EVENT_JSON"])["state"] == "halted"
        assert environment["RISKD_LIVE"] == "false"
        assert "RISKD_ACCOUNTS__DEMO__API_KEY" not in environment
        [call] = daemon.store.hook_calls("demo")
        assert (call.status, call.outcome) == (AlertStatus.SENT, "exit status 0")
    finally:
        await daemon.shutdown()


async def test_a_failing_command_is_tried_its_attempts_then_given_up_with_its_exit_status(tmp_path, clock, monkeypatch):
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('bot API said no\\n'); sys.exit(3)"]
    slow = [sys.executable, "-c", "import time; time.sleep(30)"]
    hooks = {
        "failing": {"type": "command", "run": failing, "attempts": 2},
        "slow": {"type": "command", "run": slow, "timeout": "1s", "attempts": 1},
    }
    daemon = await start_daemon(tmp_path, clock, monkeypatch, hooks, live=True)
    try:
        await command(daemon, CommandKind.FREEZE)
        await daemon.deliver_hooks()
        clock.advance(3)
        await daemon.deliver_hooks()
        calls = {call.hook: call for call in daemon.store.hook_calls("demo")}
        assert (calls["failing"].status, calls["failing"].attempts) == (AlertStatus.FAILED, 2)
        assert calls["failing"].error == "exit status 3: bot API said no"
        assert (calls["slow"].status, calls["slow"].error) == (AlertStatus.FAILED, "no answer within 1s (killed)")
    finally:
        await daemon.shutdown()


async def test_a_lock_file_exists_exactly_while_the_account_is_not_active(tmp_path, clock, monkeypatch):
    lock = tmp_path / "locks" / "demo.lock"
    daemon = await start_daemon(tmp_path, clock, monkeypatch, {"lock": {"type": "lock_file", "path": str(lock)}}, live=True)
    try:
        assert not lock.exists()
        await command(daemon, CommandKind.FREEZE)
        assert lock.read_text().startswith("halted: bot gone wild\nsince 2026-03-02T12:00:00")  # before any delivery job
        lock.unlink()  # removed by hand: put back by the next tick
        await daemon.tick("demo")
        assert lock.exists()
        await command(daemon, CommandKind.RESUME)
        assert not lock.exists()
        assert daemon.store.hook_calls("demo") == []  # state, not calls
    finally:
        await daemon.shutdown()


async def test_a_lock_file_that_cannot_be_written_raises_a_critical_alert_once(tmp_path, clock, monkeypatch):
    # the bot that checks the file would trade on while riskd holds the account
    lock = "/proc/riskd-nowhere/demo.lock"
    daemon = await start_daemon(tmp_path, clock, monkeypatch, {"lock": {"type": "lock_file", "path": lock}}, live=True)
    try:
        await command(daemon, CommandKind.FREEZE)
        await daemon.tick("demo")
        failed = [event for event in daemon.store.events("demo") if event.kind is EventKind.LOCK_FILE_FAILED]
        assert len(failed) == 1 and failed[0].severity is Severity.CRITICAL
        [alert] = [alert for alert in daemon.store.alerts() if alert.text.startswith("Lock file hook lock failed")]
        assert alert.severity is Severity.CRITICAL
        assert alert.text.startswith(f"Lock file hook lock failed: {lock}: ")
        assert "should exist while the account is halted" in alert.text
    finally:
        await daemon.shutdown()


async def test_freqtrade_is_told_to_stop_entering_to_exit_on_a_flatten_and_to_start_on_resume(tmp_path, clock, monkeypatch):
    freqtrade = Receiver()
    await freqtrade.start()
    hooks = {"bot": {"type": "freqtrade", "url": f"http://127.0.0.1:{freqtrade.port}", "on_resume": "start"}}
    daemon = await start_daemon(tmp_path, clock, monkeypatch, hooks, live=True)
    try:
        await command(daemon, CommandKind.FREEZE)
        await command(daemon, CommandKind.RESUME)
        await command(daemon, CommandKind.FLATTEN)
        await daemon.deliver_hooks()
        basic = "Basic ZnJlcXRyYWRlcjpmcmVxdHJhZGUtcGFzc3dvcmQ="  # freqtrader:freqtrade-password
        assert [(method, path, auth) for method, path, auth, _ in freqtrade.requests] == [
            ("POST", "/api/v1/stopentry", basic),
            ("POST", "/api/v1/start", basic),
            ("POST", "/api/v1/stopentry", basic),  # the flatten halts...
            ("POST", "/api/v1/stopentry", basic),  # ...and flattens: the safe stop, stopentry then forceexit
            ("POST", "/api/v1/forceexit", basic),
        ]
        assert json.loads(freqtrade.requests[-1][3]) == {"tradeid": "all"}
        outcomes = [call.outcome for call in daemon.store.hook_calls("demo")]
        assert outcomes[-1] == 'stopentry: HTTP 200 {"status": "ok"}; forceexit: HTTP 200 {"status": "ok"}'
    finally:
        await daemon.shutdown()
        await freqtrade.stop()


async def test_freqtrade_is_not_started_on_resume_unless_configured(tmp_path, clock, monkeypatch):
    freqtrade = Receiver()
    await freqtrade.start()
    daemon = await start_daemon(tmp_path, clock, monkeypatch, {"bot": {"type": "freqtrade", "url": f"http://127.0.0.1:{freqtrade.port}"}}, live=True)
    try:
        await command(daemon, CommandKind.FREEZE)
        await command(daemon, CommandKind.RESUME)
        await daemon.deliver_hooks()
        assert [path for _, path, _, _ in freqtrade.requests] == ["/api/v1/stopentry"]
        assert [call.trigger for call in daemon.store.hook_calls("demo")] == [HookTrigger.HALTED]
    finally:
        await daemon.shutdown()
        await freqtrade.stop()


async def test_the_daemon_scrubs_its_hooks_secrets_from_whatever_it_writes(tmp_path, clock, monkeypatch):
    secrets = {"BOT__USERNAME": "ft-user-only-here-1", "BOT__PASSWORD": "ft-password-only-here-2", "OPS__SECRET": "hmac-secret-only-here-3"}
    for key, value in secrets.items():
        monkeypatch.setenv(f"RISKD_ACCOUNTS__DEMO__HOOKS__{key}", value)
    document = {"database": str(tmp_path / "riskd.db"), "accounts": {"demo": {"exchange": "sim", "hooks": {
        "bot": {"type": "freqtrade", "url": "http://127.0.0.1:9"}, "ops": {"type": "webhook", "url": "http://127.0.0.1:9/riskd"},
    }}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(document))
    said = " ".join(secrets.values())
    assert redact(said) == said  # not known before the daemon starts
    daemon = Daemon(load_settings(tmp_path / "config.yaml"), clock=clock)
    await daemon.startup()
    try:
        assert redact(said) == "*** *** ***"
    finally:
        await daemon.shutdown()


async def test_in_dry_run_hooks_that_act_are_recorded_not_called_and_webhooks_still_fire(tmp_path, clock, monkeypatch):
    # dry-run sends nothing: a flatten must not make Freqtrade exit its trades, nor a script run
    freqtrade, receiver = Receiver(), Receiver()
    await freqtrade.start()
    await receiver.start()
    ran, lock = tmp_path / "ran", tmp_path / "demo.lock"
    hooks = {
        "bot": {"type": "freqtrade", "url": f"http://127.0.0.1:{freqtrade.port}"},
        "pause": {"type": "command", "run": [sys.executable, "-c", f"open({str(ran)!r}, 'w')"], "events": ["halted"]},
        "lock": {"type": "lock_file", "path": str(lock)},
        "ops": {"type": "webhook", "url": receiver.url, "events": ["flatten"]},
    }
    daemon = await start_daemon(tmp_path, clock, monkeypatch, hooks)
    try:
        await command(daemon, CommandKind.FLATTEN)
        await daemon.deliver_hooks()
        assert [(event["event"], event["live"]) for event in receiver.received] == [("flatten", False)]
        assert freqtrade.requests == [] and not ran.exists() and not lock.exists()
        recorded = {(call.hook, call.trigger): (call.status, call.outcome) for call in daemon.store.hook_calls("demo")}
        assert recorded == {
            ("bot", HookTrigger.HALTED): (AlertStatus.LOGGED, "dry-run: not called; would have called Freqtrade's POST /api/v1/stopentry"),
            ("pause", HookTrigger.HALTED): (AlertStatus.LOGGED, f"dry-run: not called; would have run {sys.executable} -c open({str(ran)!r}, 'w')"),
            ("lock", HookTrigger.HALTED): (AlertStatus.LOGGED, f"dry-run: not called; would have written {lock}"),
            ("bot", HookTrigger.FLATTEN): (
                AlertStatus.LOGGED,
                "dry-run: not called; would have called Freqtrade's POST /api/v1/stopentry, "
                'then POST /api/v1/forceexit {"tradeid": "all"}',
            ),
            ("ops", HookTrigger.FLATTEN): (AlertStatus.SENT, 'HTTP 200 {"status": "ok"}'),
        }
    finally:
        await daemon.shutdown()
        await freqtrade.stop()
        await receiver.stop()


async def test_a_lock_file_that_says_in_dry_run_follows_the_state_in_dry_run(tmp_path, clock, monkeypatch):
    lock = tmp_path / "demo.lock"
    daemon = await start_daemon(tmp_path, clock, monkeypatch, {"lock": {"type": "lock_file", "path": str(lock), "in_dry_run": True}})
    try:
        await command(daemon, CommandKind.FREEZE)
        assert lock.read_text().startswith("halted: bot gone wild")
        await command(daemon, CommandKind.RESUME)
        assert not lock.exists()
        assert daemon.store.hook_calls("demo") == []
    finally:
        await daemon.shutdown()


def test_riskd_check_tries_what_it_can_of_each_hook_without_calling_it(tmp_path, monkeypatch, capsys):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from riskd.cli import HANDLERS, TROUBLE, parser

    class Freqtrade(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            known = self.headers.get("Authorization") == "Basic ZnJlcXRyYWRlcjpmcmVxdHJhZGUtcGFzc3dvcmQ="
            self.send_response(200 if known else 401)
            self.end_headers()
            self.wfile.write(json.dumps({"bot_name": "grid", "state": "running"} if known else {}).encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Freqtrade)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("RISKD_ACCOUNTS__DEMO__HOOKS__BOT__USERNAME", "freqtrader")
        monkeypatch.setenv("RISKD_ACCOUNTS__DEMO__HOOKS__BOT__PASSWORD", "freqtrade-password")
        monkeypatch.setenv("RISKD_ACCOUNTS__DEMO__HOOKS__WRONG__USERNAME", "freqtrader")
        monkeypatch.setenv("RISKD_ACCOUNTS__DEMO__HOOKS__WRONG__PASSWORD", "not-it")
        hooks = {
            "bot": {"type": "freqtrade", "url": f"http://127.0.0.1:{server.server_port}"},
            "wrong": {"type": "freqtrade", "url": f"http://127.0.0.1:{server.server_port}"},
            "pause": {"type": "command", "run": ["no-such-program-here"]},
            "lock": {"type": "lock_file", "path": str(tmp_path / "locks" / "demo.lock")},
            "stuck": {"type": "lock_file", "path": "/proc/riskd-nowhere/demo.lock"},  # writable by its mode bits, as root
        }
        document = {"database": str(tmp_path / "riskd.db"), "accounts": {"demo": {"exchange": "sim", "hooks": hooks}}}
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(document))
        monkeypatch.chdir(tmp_path)
        arguments = parser().parse_args(["--config", "config.yaml", "check"])
        assert HANDLERS["check"](load_settings("config.yaml"), arguments) == TROUBLE
        out = capsys.readouterr().out
        assert "demo hook bot: Freqtrade answers: bot grid, state running" in out
        assert "demo hook wrong: FAILURE: Freqtrade refused the username and password" in out
        assert "demo hook pause: FAILURE: no-such-program-here is not an executable program" in out
        assert f"demo hook lock: {tmp_path / 'locks' / 'demo.lock'} can be written" in out
        assert "demo hook stuck: FAILURE: /proc/riskd-nowhere/demo.lock cannot be made: a file cannot be written in /proc (" in out
        assert not list(tmp_path.glob(".riskd-check-*"))  # the probe file written in the nearest folder is gone
        assert "freqtrade-password" not in out
    finally:
        server.shutdown()
