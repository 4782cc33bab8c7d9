"""The mark-price stream end to end: the running daemon, the real ccxt.pro websocket client,
the embedded exchange's Binance mark-price stream on loopback.

Here time is real (the stream and the scheduler run on the wall clock), the poll is
slow (60 s) unless a test is about polling, and every wait is for a positive signal.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import aiohttp
import pytest
import yaml

from riskd import stream as stream_module
from riskd.account_stream import MarkStream
from riskd.config import AccountConfig, load_settings
from riskd.domain import EventKind, TradingState
from riskd.http import HttpServer
from riskd.sim import SimServer, Simulator, ccxt_config
from riskd.supervisor import Daemon
from tests.factories import position, snapshot
from tests.timing import limit

from .conftest import open_positions, orders_sent, write_config

SLOW_POLL = "60s"


@pytest.fixture
async def exchange(serve):
    """The demo exchange on the wall clock (the daemon's and the stream's), its prices still until a test moves them."""
    return await serve(Simulator.demo(seed=7, volatility=0))


async def control(exchange: SimServer, path: str, body: dict) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{exchange.url}/_sim/{path}", json=body) as reply:
            return await reply.json()


async def until(condition, seconds: float, what: str) -> float:
    """Wait for `condition()` to hold; returns the seconds it took, fails after `seconds`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > limit(seconds):
            raise AssertionError(f"not within {limit(seconds):.1f} s: {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def running(run, path: str) -> Daemon:
    """A daemon running as `riskd run` does (the `run` fixture stops it), once it has read
    the account and its stream is up."""
    daemon = Daemon(load_settings(path))
    run(daemon)
    await until(lambda: "main" in daemon.streams and daemon.streams["main"].up, 10, "the stream is up")
    return daemon


async def metrics(daemon: Daemon) -> dict[str, float]:
    """The stream's samples on /metrics, by name, for the account "main"."""
    from prometheus_client.parser import text_string_to_metric_families

    server = HttpServer(daemon)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/metrics") as reply:
                text = await reply.text()
    finally:
        await server.stop()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("riskd_stream") and sample.labels.get("account") == "main"
    }


def kinds(daemon: Daemon, account: str = "main") -> list[str]:
    return [event.kind for event in daemon.store.events(account, 200)]


def two_accounts(tmp_path, monkeypatch, main: SimServer, other: SimServer, **extra) -> str:
    """A config.yaml for the accounts "main" and "other", each a Binance USDⓈ-M account pointed
    at its simulator (the same one or two), as `configure` writes "main"."""
    accounts = {}
    for name, exchange in (("main", main), ("other", other)):
        monkeypatch.setenv(f"RISKD_ACCOUNTS__{name.upper()}__API_KEY", f"{name}-key-not-secret")
        monkeypatch.setenv(f"RISKD_ACCOUNTS__{name.upper()}__SECRET", f"{name}-secret-not-secret")
        pointed = {key: value for key, value in ccxt_config(exchange.url).items() if key not in ("apiKey", "secret")}
        accounts[name] = {"exchange": "binanceusdm", "timeout": "2s", "ccxt": {**pointed, "timeout_on_exit": 0}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"live": True, "database": str(tmp_path / "riskd.db"), "accounts": accounts, **extra}))
    return str(path)


async def both_up(run, path: str) -> Daemon:
    daemon = Daemon(load_settings(path))
    run(daemon)
    await until(lambda: len(daemon.streams) == 2 and all(s.up for s in daemon.streams.values()), 10, "both streams are up")
    return daemon


async def test_a_crash_is_seen_on_the_stream_and_flattened_long_before_the_next_poll(configure, exchange, run):
    daemon = await running(run, configure(live=True, poll_interval=SLOW_POLL))
    stream = daemon.streams["main"]
    assert stream.reads == 0 and open_positions(exchange.simulator)
    # the stream makes no request of its own: its client has the markets the account's client loaded
    assert [r["path"] for r in exchange.simulator.requests].count("/fapi/v1/exchangeInfo") == 1

    await control(exchange, "price", {"move": -0.20})
    took = await until(lambda: not open_positions(exchange.simulator), 10, "the account is flat")

    assert took < limit(5)  # the next poll is 60 s away
    state = daemon.store.load_state("main")
    assert state.trading_state is TradingState.HALTED and "drawdown" in state.latches
    assert stream.reads >= 2  # confirm: 2, each read one tick
    assert (await metrics(daemon))["riskd_stream_reads_total"] == stream.reads
    first = {}
    for event in daemon.store.events("main", 200):
        first[event.kind] = min(event.id, first.get(event.kind, event.id))
    assert first["stream_breach"] < first["breach"]  # the stream's suspicion, then the account's own breach
    assert all(entry["params"].get("reduceOnly") == "true" for entry in orders_sent(exchange.simulator))


async def test_a_breach_on_the_stream_that_the_account_does_not_show_does_nothing(configure, exchange, run):
    daemon = await running(run, configure(live=True, poll_interval=SLOW_POLL))
    stream = daemon.streams["main"]
    reads = len([r for r in exchange.simulator.requests if r["path"] == "/fapi/v3/account"])

    await control(exchange, "stream", {"glitch": {"symbol": "BTCUSDT", "price": 30_000}})  # a bad print, the stream only
    await until(lambda: "stream_unconfirmed" in kinds(daemon), 10, "the read that does not confirm it")

    assert stream.reads == 1
    assert len([r for r in exchange.simulator.requests if r["path"] == "/fapi/v3/account"]) == reads + 1
    events = kinds(daemon)
    assert "breach" not in events and "stream_breach" in events
    assert orders_sent(exchange.simulator) == [] and daemon.store.actions("main") == []
    assert daemon.store.load_state("main").trading_state is TradingState.ACTIVE
    # the same false mark again is left to the polls: no second read
    await control(exchange, "stream", {"glitch": {"symbol": "BTCUSDT", "price": 30_000}})
    marks = stream.marks_seen
    await until(lambda: stream.marks_seen >= marks + 2, 5, "more marks judged")
    assert stream.reads == 1


async def test_the_stream_reconnects_after_the_exchange_drops_it(configure, exchange, run):
    daemon = await running(run, configure(live=True, poll_interval=SLOW_POLL))
    stream = daemon.streams["main"]

    await control(exchange, "stream", {"drop": True})
    await until(lambda: "stream_up" in kinds(daemon), 10, "the stream is back")

    assert exchange.streams.connections == 2 and stream.up and stream.reconnects == 1
    assert "stream_down" in kinds(daemon)
    alerts = [alert.text for alert in daemon.store.alerts(50)]
    assert any("stream is down" in text for text in alerts) and any("stream is back" in text for text in alerts)
    samples = await metrics(daemon)
    assert samples["riskd_stream_up"] == 1 and samples["riskd_stream_reconnects_total"] == 1
    assert samples["riskd_stream_mark_age_seconds"] < limit(3)
    # and the new connection carries a crash as the first did
    await control(exchange, "price", {"move": -0.20})
    await until(lambda: not open_positions(exchange.simulator), 5, "the account is flat")


async def test_a_silent_stream_counts_as_stalled_and_is_opened_again(configure, exchange, run, monkeypatch):
    monkeypatch.setattr(stream_module, "STALL", 1.0)  # Binance pushes every second; riskd waits 10
    daemon = await running(run, configure(live=True, poll_interval=SLOW_POLL))

    await control(exchange, "stream", {"silent": True})
    await until(lambda: "stream_down" in kinds(daemon), 5, "the stall is reported")
    await control(exchange, "stream", {"silent": False})
    await until(lambda: "stream_up" in kinds(daemon), 10, "the stream is back")

    assert exchange.streams.connections >= 2


async def test_with_the_stream_down_riskd_guards_by_polling_alone(configure, exchange, run):
    daemon = await running(run, configure(live=True, poll_interval="3s"))  # the shortest Binance's budget allows one account
    stream = daemon.streams["main"]

    await control(exchange, "stream", {"down": True})  # dropped, and new connections refused
    await until(lambda: "stream_down" in kinds(daemon), 5, "the outage is reported")
    assert not stream.up and (await metrics(daemon))["riskd_stream_up"] == 0

    await control(exchange, "price", {"move": -0.20})
    await until(lambda: not open_positions(exchange.simulator), 15, "the polls flatten the account")

    assert stream.reads == 0 and not stream.up  # the polls did it, the stream never came back
    assert "stream_breach" not in kinds(daemon)
    assert kinds(daemon).count("stream_down") == 1  # one report per outage, however many attempts
    assert daemon.store.load_state("main").trading_state is TradingState.HALTED


async def test_each_read_the_stream_asks_for_counts_once_towards_confirm(configure, exchange, run):
    price_driven = ("drawdown", "daily_loss", "position_loss", "leverage", "concentration", "liquidation_distance")
    breakers = {name: {"confirm": 3} for name in price_driven}
    daemon = await running(run, configure(live=True, poll_interval=SLOW_POLL, breakers=breakers))
    stream = daemon.streams["main"]

    await control(exchange, "price", {"move": -0.20})
    await until(lambda: not open_positions(exchange.simulator), 10, "the account is flat")

    assert stream.reads == 3  # three reads, one after the other, then the trip
    assert kinds(daemon).count("stream_breach") == 3


async def test_an_embedded_exchange_account_follows_the_embedded_exchanges_stream(tmp_path, run):
    daemon = Daemon(load_settings(write_config(tmp_path, poll_interval=SLOW_POLL)))
    run(daemon)
    await until(lambda: "demo" in daemon.streams and daemon.streams["demo"].up, 10, "the stream is up")

    guard = daemon.guards["demo"]
    assert guard.overrides["urls"]["api"]["ws"]["linear"].startswith(guard.sim.url.replace("http", "ws"))
    assert guard.sim.streams.connections == 1 and daemon.streams["demo"].marks_seen >= 1


async def test_an_embedded_exchange_in_bybits_dialect_is_polled_alone(tmp_path, run):
    # The simulator serves no Bybit websocket: a bybit-dialect account opens no stream by default.
    daemon = Daemon(load_settings(write_config(tmp_path, poll_interval=SLOW_POLL, sim={"venue": "bybit"})))
    run(daemon)
    await asyncio.wait_for(daemon.ready(), limit(10))  # the streams are started before the first tick completes

    guard = daemon.guards["demo"]
    assert guard.adapter.client.id == "bybit" and guard.last_snapshot is not None
    assert daemon.streams == {} and guard.sim.streams.connections == 0
    # Were one built, its websocket URLs would lead to the simulator, never to Bybit.
    client = guard.stream_client(())
    try:
        assert client.id == "bybit"
        assert client.urls["api"]["ws"]["public"]["linear"].startswith(guard.sim.url.replace("http", "ws"))
    finally:
        await client.close()


async def test_two_accounts_on_one_venue_share_one_connection_and_each_judges_its_marks(tmp_path, monkeypatch, exchange, run):
    daemon = await both_up(run, two_accounts(tmp_path, monkeypatch, exchange, exchange, poll_interval=SLOW_POLL))

    assert exchange.streams.connections == 1 and exchange.streams.state()["open"] == 1 and len(daemon.venue_streams) == 1
    await control(exchange, "stream", {"glitch": {"symbol": "BTCUSDT", "price": 30_000}})  # a bad print, the stream only
    for name in ("main", "other"):
        await until(lambda: "stream_unconfirmed" in kinds(daemon, name), 10, f"{name} judged the mark and read its account")
        assert daemon.streams[name].reads == 1
    assert exchange.streams.connections == 1


async def test_a_shared_connection_that_drops_is_reported_to_each_of_its_accounts_and_opened_once_again(
    tmp_path, monkeypatch, exchange, run
):
    daemon = await both_up(run, two_accounts(tmp_path, monkeypatch, exchange, exchange, poll_interval=SLOW_POLL))

    await control(exchange, "stream", {"drop": True})
    for name in ("main", "other"):
        await until(lambda: "stream_up" in kinds(daemon, name), 10, f"{name}'s stream is back")
        assert kinds(daemon, name).count("stream_down") == 1 and daemon.streams[name].reconnects == 1

    assert exchange.streams.connections == 2 and exchange.streams.state()["open"] == 1
    assert {alert.account for alert in daemon.store.alerts(50) if "stream is down" in alert.text} == {"main", "other"}


async def test_accounts_on_two_venues_use_two_connections(tmp_path, monkeypatch, exchange, serve, run):
    elsewhere = await serve(Simulator.demo(seed=7, volatility=0))
    daemon = await both_up(run, two_accounts(tmp_path, monkeypatch, exchange, elsewhere, poll_interval=SLOW_POLL))

    assert exchange.streams.connections == 1 and elsewhere.streams.connections == 1 and len(daemon.venue_streams) == 2
    await control(elsewhere, "stream", {"glitch": {"symbol": "BTCUSDT", "price": 30_000}})
    await until(lambda: "stream_unconfirmed" in kinds(daemon, "other"), 10, "the account on that venue judged it")
    assert daemon.streams["main"].reads == 0 and "stream_breach" not in kinds(daemon, "main")


async def test_a_slow_confirming_read_of_one_account_does_not_delay_another_accounts_breach_detection(
    tmp_path, monkeypatch, exchange, run
):
    daemon = await both_up(run, two_accounts(tmp_path, monkeypatch, exchange, exchange, poll_interval=SLOW_POLL))
    main, other = daemon.streams["main"], daemon.streams["other"]
    assert daemon.venue_streams[0].accounts == (main, other)  # main is handed the marks first

    async with daemon.guards["main"].lock:  # main's reads wait, as behind a long flatten
        await control(exchange, "price", {"move": -0.20})
        await until(lambda: main.reads == 1, 5, "main asked for a read")
        took = await until(lambda: not open_positions(exchange.simulator), 10, "other's reads flatten the (shared) account")
        assert took < limit(5) and other.reads >= 2 and main.reads == 1  # main's first read still waits
    assert daemon.store.load_state("other").trading_state is TradingState.HALTED


async def test_a_reload_leaves_the_streams_as_they_are(tmp_path, monkeypatch, configure, exchange, run):
    daemon = await running(run, configure(live=True, poll_interval=SLOW_POLL))
    venues, stream = list(daemon.venue_streams), daemon.streams["main"]
    # another account on the venue, and main's key changed: both wait for a restart
    (tmp_path / "new").mkdir()
    added = two_accounts(tmp_path / "new", monkeypatch, exchange, exchange, poll_interval=SLOW_POLL)
    daemon.loader = lambda: load_settings(added)
    await daemon.reload()

    assert daemon.streams == {"main": stream} and daemon.venue_streams == venues
    marks = stream.marks_seen
    await until(lambda: stream.marks_seen >= marks + 2, 5, "more marks judged")
    assert exchange.streams.connections == 1 and exchange.streams.state()["open"] == 1


async def test_an_account_whose_symbols_go_quiet_stalls_though_the_shared_connection_carries_others(exchange, monkeypatch):
    # The simulator serves one account to every key, so two accounts holding different
    # symbols are made here from their snapshots; the connection is ccxt.pro's on its websocket.
    monkeypatch.setattr(stream_module, "STALL", 2.5)  # the simulator pushes every second; riskd waits 10
    reports: list[tuple[str, EventKind]] = []

    def follower(name: str, symbol: str) -> MarkStream:
        held = snapshot(10_000, [position(symbol, contracts=1.0, mark_price=100.0)])

        async def no_read():
            return None

        return MarkStream(name, snapshot=lambda: held, basis=lambda: None, read=no_read,
                          report=lambda event, alert: reports.append((name, event.kind)), hold=lambda: timedelta(seconds=60))

    quiet, busy = follower("quiet", "BTC/USDT:USDT"), follower("busy", "ETH/USDT:USDT")
    account = AccountConfig(exchange="binanceusdm", ccxt={"urls": ccxt_config(exchange.url)["urls"]})
    venue = stream_module.VenueStream(lambda symbols: stream_module.build_stream_client(account), (quiet, busy))
    for each in (quiet, busy, venue):
        each.start()
    try:
        await until(lambda: quiet.up and busy.up, 5, "both follow the one connection")
        await control(exchange, "stream", {"quiet": ["BTCUSDT"]})  # BTC's marks stop, ETH's go on
        await until(lambda: ("quiet", EventKind.STREAM_DOWN) in reports, 5, "the quiet account's stall is reported")
        assert not quiet.up and ("busy", EventKind.STREAM_DOWN) not in reports
        judged = busy.marks_seen
        await until(lambda: busy.marks_seen >= judged + 2, 5, "the other account's marks go on")

        await control(exchange, "stream", {"quiet": []})
        await until(lambda: quiet.up, 10, "BTC's marks are back")
        assert ("quiet", EventKind.STREAM_UP) in reports and busy.up
        assert exchange.streams.connections == 1  # one connection throughout: the others never lost theirs
    finally:
        for each in (venue, quiet, busy):
            await each.stop()
