"""/healthz, /metrics and /v1/state against the daemon and its embedded exchange, over real HTTP.

The daemon's clock is fake and its ticks are driven by hand, so "30 seconds without a
good read" takes no time; the exchange is the simulator with a still market, so every
figure is exact.
"""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from riskd import commands
from riskd.config import load_settings
from riskd.domain import CommandKind
from riskd.exchange import explain
from riskd.http import ERROR_KINDS, HttpServer
from riskd.supervisor import Daemon
from tests.timing import limit

from .conftest import write_config

EQUITY = 10_185.0  # the demo account at the simulator's starting prices
GROSS = 18_000.0


@pytest.fixture
async def daemon(tmp_path, clock, started):
    return await started(write_config(tmp_path), clock)


@pytest.fixture
async def http(daemon):
    server = HttpServer(daemon)
    await server.start()
    async with aiohttp.ClientSession(base_url=server.url) as session:
        yield session
    await server.stop()


async def get(http, path: str) -> tuple[int, str]:
    async with http.get(path) as response:
        return response.status, await response.text()


async def metrics(http) -> dict[tuple[str, frozenset], float]:
    """Every sample, by name and labels."""
    status, text = await get(http, "/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(**values: str) -> frozenset:
    return frozenset(values.items())


# --- /healthz ---------------------------------------------------------------------------------

async def test_healthz_is_503_until_the_first_tick_then_200(daemon, http):
    assert await get(http, "/healthz") == (503, "unhealthy\ndemo: no tick completed yet\n")
    await daemon.tick("demo")
    status, text = await get(http, "/healthz")
    assert (status, text) == (200, "ok: 1 account: 1 active; last tick 0s ago\n")


async def test_healthz_is_503_with_the_reason_when_the_exchange_is_down(daemon, http, clock):
    await daemon.tick("demo")
    daemon.simulator("demo").add_fault("http_503")
    await daemon.tick("demo")
    assert (await get(http, "/healthz"))[0] == 200  # one failed read is not yet an outage
    clock.advance(31)  # three poll intervals
    await daemon.tick("demo")
    status, text = await get(http, "/healthz")
    assert status == 503
    assert text.startswith("unhealthy\ndemo: no good read of the account for 31s; last error: the exchange is unreachable")

    daemon.simulator("demo").clear_faults()
    await daemon.tick("demo")
    assert (await get(http, "/healthz"))[0] == 200


async def test_healthz_is_503_when_ticks_stop_completing(daemon, http, clock):
    await daemon.tick("demo")
    clock.advance(45)  # no tick since: a hung exchange call or a wedged loop
    assert await get(http, "/healthz") == (503, "unhealthy\ndemo: no tick completed for 45s\n")


# --- /metrics ---------------------------------------------------------------------------------

async def test_metrics_give_the_figures_breakers_state_and_tick(daemon, http, clock):
    await daemon.tick("demo")
    clock.advance(4)
    samples = await metrics(http)
    demo = labels(account="demo")
    assert samples["riskd_equity", labels(account="demo", quote="USDT")] == pytest.approx(EQUITY)
    assert samples["riskd_exposure", labels(account="demo", quote="USDT")] == pytest.approx(GROSS)
    assert samples["riskd_drawdown_ratio", demo] == 0
    assert samples["riskd_day_pnl", labels(account="demo", quote="USDT")] == 0
    assert samples["riskd_trading_state", labels(account="demo", state="active")] == 1
    assert samples["riskd_trading_state", labels(account="demo", state="halted")] == 0
    assert samples["riskd_trading_allowed", demo] == 1
    drawdown = labels(account="demo", breaker="drawdown", symbol="")
    assert (samples["riskd_breaker_value", drawdown], samples["riskd_breaker_limit", drawdown]) == (0, 0.10)
    leverage = labels(account="demo", breaker="leverage", symbol="")
    assert samples["riskd_breaker_value", leverage] == pytest.approx(GROSS / EQUITY)
    assert samples["riskd_breaker_breached", leverage] == 0
    assert 0 < samples["riskd_tick_duration_seconds", demo] < 5
    assert samples["riskd_tick_age_seconds", demo] == 4
    assert samples["riskd_read_age_seconds", demo] == 4
    errors = {dict(label)["kind"]: value for (name, label), value in samples.items() if name == "riskd_exchange_errors_total"}
    assert errors == dict.fromkeys(ERROR_KINDS, 0)
    assert (samples["riskd_healthy", frozenset()], samples["riskd_live", frozenset()]) == (1, 0)


async def test_metrics_count_exchange_errors_by_kind(daemon, http):
    simulator = daemon.simulator("demo")
    await daemon.tick("demo")
    simulator.add_fault("http_503", count=1)
    await daemon.tick("demo")
    simulator.add_fault("malformed", count=1)
    await daemon.tick("demo")
    samples = await metrics(http)
    errors = {dict(label)["kind"]: value for (name, label), value in samples.items() if name == "riskd_exchange_errors_total"}
    assert errors == {**dict.fromkeys(ERROR_KINDS, 0), "network": 1, "malformed": 1}


async def test_metrics_count_actions_by_status_and_the_alert_backlog(daemon, http):
    await daemon.tick("demo")
    commands.submit(daemon.store, daemon.settings, CommandKind.FREEZE, "demo", "test", "tester", daemon.clock())
    await daemon.process_commands()  # a halt cancels the open orders: in dry-run, recorded only
    samples = await metrics(http)
    assert samples["riskd_actions", labels(account="demo", status="dry_run")] >= 1
    assert samples["riskd_alert_backlog", frozenset()] >= 1  # not yet delivered
    assert samples["riskd_trading_state", labels(account="demo", state="halted")] == 1
    await daemon.deliver_alerts()
    assert (await metrics(http))["riskd_alert_backlog", frozenset()] == 0


async def test_metrics_use_the_prometheus_text_format(daemon, http):
    async with http.get("/metrics") as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")


def test_every_error_kind_of_the_adapter_is_counted_from_zero():
    import ccxt

    errors = [ccxt.AuthenticationError("x"), ccxt.RateLimitExceeded("x"), ccxt.RequestTimeout("x"),
              ccxt.NetworkError("x"), ccxt.BadResponse("x"), ccxt.ExchangeError("x"), ValueError("x")]
    assert {explain(error).kind for error in errors} == set(ERROR_KINDS)


# --- /v1/state --------------------------------------------------------------------------------

async def test_state_says_whether_a_bot_may_trade(daemon, http, clock):
    await daemon.tick("demo")
    async with http.get("/v1/state") as response:
        state = await response.json()
    assert state == {
        "live": False,
        "accounts": {"demo": {
            "state": "active", "reason": "", "since": None, "trading_allowed": True, "reduce_only": False,
            "live": False, "last_tick_at": "2026-03-02T12:00:00+00:00", "problem": None,
        }},
    }

    commands.submit(daemon.store, daemon.settings, CommandKind.FREEZE, "demo", "test", "tester", clock(), reason="lunch")
    await daemon.process_commands()
    async with http.get("/v1/state/demo") as response:
        demo = await response.json()
    assert (demo["state"], demo["trading_allowed"], demo["since"]) == ("halted", False, "2026-03-02T12:00:00+00:00")
    assert "lunch" in demo["reason"]
    assert (await get(http, "/v1/state/nobody"))[0] == 404


async def test_state_refuses_trading_while_riskd_cannot_see_the_account(daemon, http, clock):
    await daemon.tick("demo")
    daemon.simulator("demo").add_fault("http_503")
    clock.advance(31)
    await daemon.tick("demo")
    async with http.get("/v1/state/demo") as response:
        demo = await response.json()
    assert (demo["state"], demo["trading_allowed"]) == ("active", False)
    assert demo["problem"].startswith("demo: no good read of the account for 31s")


# --- the server in the running daemon -----------------------------------------------------------

async def test_the_daemon_serves_http_when_enabled(tmp_path, run):
    daemon = Daemon(load_settings(write_config(tmp_path, poll_interval="500ms", http={"enabled": True, "port": 0})))
    run(daemon)
    await asyncio.wait_for(daemon.ready(), limit(5))  # the HTTP server starts before the first tick
    assert daemon.http.url.startswith("http://127.0.0.1:")
    async with aiohttp.ClientSession(base_url=daemon.http.url) as session:
        assert (await get(session, "/healthz"))[0] == 200


async def test_a_port_in_use_is_an_alert_and_riskd_guards_on(tmp_path, run):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Daemon(load_settings(write_config(tmp_path, poll_interval="500ms", http={"enabled": True, "port": port})))
        run(daemon)
        await asyncio.wait_for(daemon.ready(), limit(5))
        assert daemon.http is None and daemon.guards["demo"].last_tick_at is not None
        alert = next(row for row in daemon.store.alerts() if row.key == "http_failed")
        assert f"127.0.0.1:{port}" in alert.text
