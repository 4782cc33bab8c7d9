"""The status page at `/`, loaded in a real headless Chromium (Debian's package) through the
DevTools protocol: it must render the account and its breakers and log no console error.
The set-up installs Chromium with apt-get when it is missing (as .ci/run does).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest

from riskd.config import load_settings
from riskd.domain import Command, CommandKind
from riskd.http import HttpServer
from riskd.supervisor import Daemon
from tests.integration.conftest import Clock, write_config

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
)


def chromium_binary() -> str:
    """Debian's Chromium, installed with apt-get if it is not there yet."""
    found = shutil.which("chromium")
    if found is None:
        subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True, capture_output=True,
                       env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        found = shutil.which("chromium")
    assert found, "chromium could not be installed with apt-get"
    return found


class Browser:
    """One headless Chromium, driven over the DevTools protocol's WebSocket."""

    def __init__(self, profile: Path):
        self.profile = profile
        self.process: subprocess.Popen | None = None
        self.session: aiohttp.ClientSession | None = None
        self.socket = None
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        self.answers: dict[int, asyncio.Future] = {}

    async def start(self) -> None:
        self.process = subprocess.Popen(
            [chromium_binary(), *FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        active = self.profile / "DevToolsActivePort"
        for _ in range(300):
            if active.is_file() and active.read_text().strip():
                break
            await asyncio.sleep(0.1)
        port = active.read_text().split()[0]
        self.session = aiohttp.ClientSession()
        async with self.session.get(f"http://127.0.0.1:{port}/json/list") as reply:
            target = next(item for item in await reply.json() if item["type"] == "page")
        self.socket = await self.session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        self.reader = asyncio.ensure_future(self._read())
        for domain in ("Page", "Runtime", "Log"):
            await self.send(f"{domain}.enable")

    async def _read(self) -> None:
        async for message in self.socket:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.answers:
                self.answers.pop(data["id"]).set_result(data)
            else:
                self.events.append(data)

    async def send(self, method: str, **params) -> dict:
        number = next(self.ids)
        self.answers[number] = asyncio.get_running_loop().create_future()
        await self.socket.send_str(json.dumps({"id": number, "method": method, "params": params}))
        answer = await asyncio.wait_for(self.answers[number], 30)
        assert "error" not in answer, answer
        return answer.get("result", {})

    async def load(self, url: str) -> None:
        self.events.clear()
        await self.send("Page.navigate", url=url)
        for _ in range(300):
            if any(event.get("method") == "Page.loadEventFired" for event in self.events):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{url} did not load within 30 s")

    async def evaluate(self, expression: str):
        return (await self.send("Runtime.evaluate", expression=expression, returnByValue=True))["result"].get("value")

    def console_errors(self) -> list[str]:
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(json.dumps(params.get("args")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(params["entry"].get("text", ""))
        return errors

    async def stop(self) -> None:
        if self.socket is not None:
            await self.socket.close()
            await self.reader
        if self.session is not None:
            await self.session.close()
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
async def riskd(tmp_path):
    clock = Clock()
    daemon = Daemon(load_settings(write_config(tmp_path)), clock=clock)
    await daemon.startup()
    for _ in range(5):
        await daemon.tick("demo")
        clock.advance(10)
    await daemon.guards["demo"].obey(Command(CommandKind.FREEZE, "demo", "test", "tester", reason="bot gone wild"))
    await daemon.tick("demo")
    server = HttpServer(daemon)
    await server.start()
    yield daemon, server
    await server.stop()
    await daemon.shutdown()


async def test_the_status_page_renders_the_account_and_its_breakers_in_chromium_without_console_errors(riskd, tmp_path):
    daemon, server = riskd
    browser = Browser(tmp_path / "chromium-profile")
    await browser.start()
    try:
        await browser.load(server.url + "/")
        text = await browser.evaluate("document.body.innerText")
        assert "demo" in text and "halted" in text and "bot gone wild" in text
        breakers = await browser.evaluate(
            "[...document.querySelectorAll('#account-demo table.breakers tr')].map(row => row.innerText)"
        )
        drawdown = next(row for row in breakers if row.startswith("drawdown"))
        assert "0.0%" in drawdown and "10.0%" in drawdown and "ok" in drawdown  # value, limit, status
        assert await browser.evaluate("document.querySelectorAll('#account-demo table.positions tr').length") == 4
        assert await browser.evaluate("document.querySelector('#account-demo svg.equity polyline') !== null")
        assert await browser.evaluate("document.querySelector('meta[http-equiv=refresh]').content") == "10"
        assert browser.console_errors() == []
        await browser.load(server.url + "/missing")  # the harness does see errors: a 404 is one
        assert any("404" in error for error in browser.console_errors())
    finally:
        await browser.stop()


async def test_with_a_token_the_page_and_v1_need_it_and_health_stays_open(tmp_path, monkeypatch):
    monkeypatch.setenv("RISKD_HTTP__TOKEN", "a-long-token-for-the-page")
    daemon = Daemon(load_settings(write_config(tmp_path)), clock=Clock())
    await daemon.startup()
    await daemon.tick("demo")
    server = HttpServer(daemon)
    await server.start()
    try:
        async with aiohttp.ClientSession(base_url=server.url) as http:
            async with http.get("/") as response:
                assert (response.status, response.headers["WWW-Authenticate"]) == (401, 'Basic realm="riskd"')
            async with http.get("/v1/state") as response:
                assert response.status == 401
                assert await response.json() == {"error": "a valid token is needed: Authorization: Bearer TOKEN"}
            async with http.get("/v1/state", headers={"Authorization": "Bearer wrong"}) as response:
                assert response.status == 401
            async with http.get("/v1/state", headers={"Authorization": "Bearer a-long-token-for-the-page"}) as response:
                assert response.status == 200
            basic = base64.b64encode(b"anyone:a-long-token-for-the-page").decode()
            async with http.get("/", headers={"Authorization": f"Basic {basic}"}) as response:
                assert response.status == 200 and "<h1>riskd</h1>" in await response.text()
            async with http.get("/healthz") as response:
                assert response.status == 200
    finally:
        await server.stop()
        await daemon.shutdown()


def test_a_token_in_yaml_is_refused(tmp_path):
    from riskd.config import ConfigError

    path = Path(write_config(tmp_path, http={"enabled": True, "token": "in-the-file"}))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert str(caught.value) == f"http.token: secrets do not belong in {path}; set RISKD_HTTP__TOKEN instead"
