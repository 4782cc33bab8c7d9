"""Candles fetched, cached and held once per venue, through real ccxt from the embedded
exchange: the accounts on one venue share one feed (one set of candle requests per
refresh, one cached copy, one value in memory), accounts on two venues have two feeds,
and an account whose own held symbol failed to fetch still reads "cannot measure"."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from riskd import commands
from riskd.config import load_settings
from riskd.domain import Status
from riskd.market_data import Member
from riskd.sim import ccxt_config

from .conftest import BTC, ETH, SOL, demo

KLINES = "/fapi/v1/klines"
MARKET_BREAKERS = ("var", "volatility_spike", "flash_crash", "correlation", "stress_loss")


@pytest.fixture
async def exchange(clock, serve):
    """The demo exchange with prices that move (the shared one keeps them still)."""
    return await serve(demo(clock, volatility=1e-4))


@pytest.fixture
async def second(clock, serve):
    """Another venue: the same simulated account served on another port."""
    return await serve(demo(clock, volatility=1e-4))


@pytest.fixture
def configure(tmp_path, monkeypatch):
    """`configure(a=url, b=url)`: a config.yaml guarding Binance USDⓈ-M accounts, each on the simulator at its URL."""
    monkeypatch.chdir(tmp_path)

    def write(**accounts: str) -> Path:
        guarded = {}
        for name, url in accounts.items():
            monkeypatch.setenv(f"RISKD_ACCOUNTS__{name.upper()}__API_KEY", f"{name}-key-not-secret")
            monkeypatch.setenv(f"RISKD_ACCOUNTS__{name.upper()}__SECRET", f"{name}-secret-not-secret")
            pointed = {key: value for key, value in ccxt_config(url).items() if key not in ("apiKey", "secret")}
            guarded[name] = {"exchange": "binanceusdm", "timeout": "2s", "ccxt": {**pointed, "timeout_on_exit": 0}}
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump({"live": False, "database": str(tmp_path / "riskd.db"), "accounts": guarded}))
        return path

    return write


async def first_ticks(daemon, clock) -> None:
    """A tick of every account, then the refreshes those ticks started, run to their end."""
    for name in daemon.guards:
        clock.advance(1)
        await daemon.tick(name)
    await asyncio.sleep(0)
    await asyncio.gather(*daemon.tasks)


def klines(server) -> list[str]:
    """The symbols of the candle requests the simulator has had since its log was cleared."""
    return sorted(entry["params"]["symbol"] for entry in server.simulator.requests if entry["path"] == KLINES)


def market_readings(result) -> dict:
    return {reading.breaker: reading for reading in result.readings if reading.breaker in MARKET_BREAKERS}


async def test_accounts_on_one_venue_share_one_feed_one_fetch_and_one_cached_copy(configure, exchange, clock, started):
    daemon = await started(configure(a=exchange.url, b=exchange.url), clock)
    await first_ticks(daemon, clock)
    feed = daemon.guards["a"].market
    assert daemon.guards["b"].market is feed and list(daemon.feeds) == [feed.venue]

    exchange.simulator.requests.clear()
    clock.advance(180)
    await daemon.refresh_market(feed.venue)
    assert klines(exchange) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]  # once per symbol, not once per account

    cached = daemon.store.db.execute("select venue, symbol, count(*) from candles group by venue, symbol").fetchall()
    assert {(venue, symbol) for venue, symbol, _ in cached} == {(feed.venue, symbol) for symbol in (BTC, ETH, SOL)}
    a, b = feed.current("a"), feed.current("b")
    assert a.closes is b.closes and a.fetched_at == b.fetched_at == clock()  # one value in memory, read by both
    for name in ("a", "b"):
        clock.advance(1)
        readings = market_readings(await daemon.tick(name))
        assert readings["var"].status is not Status.NO_DATA and readings["var"].value is not None
        assert readings["stress_loss"].status is not Status.NO_DATA


async def test_accounts_on_two_venues_have_a_feed_each(configure, exchange, second, clock, started):
    daemon = await started(configure(a=exchange.url, b=exchange.url, c=second.url), clock)
    await first_ticks(daemon, clock)
    assert len(daemon.feeds) == 2
    assert daemon.guards["a"].market is daemon.guards["b"].market is not daemon.guards["c"].market

    for server in (exchange, second):
        server.simulator.requests.clear()
    clock.advance(180)
    await asyncio.gather(*(daemon.refresh_market(venue) for venue in daemon.feeds))
    assert klines(exchange) == klines(second) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    venues = {row[0] for row in daemon.store.db.execute("select distinct venue from candles")}
    assert venues == set(daemon.feeds)
    assert daemon.guards["c"].market.current("c").closes is not daemon.guards["a"].market.current("a").closes

    daemon._schedule()
    jobs = [job for job in daemon.scheduler.get_jobs() if job.id.startswith("market:")]
    assert sorted(job.args[1:] for job in jobs) == [(venue,) for venue in sorted(daemon.feeds)]  # one per venue, not per account
    # spread over the refresh interval, not all at once (a hundred at once held ticks back)
    first, second = sorted(job.next_run_time for job in jobs)
    assert (second - first).total_seconds() == pytest.approx(daemon.settings.market_data.refresh.total_seconds() / 2, abs=1)


async def test_an_account_whose_held_symbol_fails_to_fetch_cannot_measure(configure, exchange, clock, started):
    daemon = await started(configure(a=exchange.url, b=exchange.url), clock)
    await first_ticks(daemon, clock)
    feed = daemon.guards["a"].market
    await daemon.refresh_market(feed.venue)
    clock.advance(1)
    assert market_readings(await daemon.tick("a"))["stress_loss"].status is not Status.NO_DATA

    exchange.simulator.add_fault("http_503", path=KLINES, symbol="SOLUSDT")  # the venue serves every market but one
    last = {symbol: daemon.store.last_candle_time(feed.venue, symbol, "1m") for symbol in (BTC, SOL)}
    clock.advance(20 * 60)
    await daemon.refresh_market(feed.venue)
    assert daemon.store.last_candle_time(feed.venue, BTC, "1m") > last[BTC]  # the others were fetched
    assert daemon.store.last_candle_time(feed.venue, SOL, "1m") == last[SOL]
    for name in ("a", "b"):
        readings = market_readings(await daemon.tick(name))
        assert {reading.status for reading in readings.values()} == {Status.NO_DATA}, readings
        assert "market data is 20 minutes old" in readings["stress_loss"].reason


async def test_a_symbol_failing_blinds_only_the_accounts_that_hold_it(configure, exchange, clock, started):
    daemon = await started(configure(a=exchange.url, b=exchange.url), clock)
    await first_ticks(daemon, clock)
    feed = daemon.guards["a"].market
    adapters = {name: guard.adapter for name, guard in daemon.guards.items()}
    members = {"a": Member(adapters["a"], frozenset({BTC, SOL})), "b": Member(adapters["b"], frozenset({BTC, ETH}))}
    await feed.refresh(members)
    before = clock()

    exchange.simulator.add_fault("http_503", path=KLINES, symbol="SOLUSDT")
    clock.advance(120)
    await feed.refresh(members)
    assert feed.current("a").fetched_at == before  # its SOL is not fresh: it ages into "cannot measure"
    assert feed.current("b").fetched_at == clock()  # it holds no SOL
    assert feed.current("a").closes is feed.current("b").closes  # still one value, two views of it


async def test_the_feed_follows_the_accounts_and_fetches_through_one_still_there(configure, exchange, clock, started):
    daemon = await started(configure(a=exchange.url, b=exchange.url), clock)
    await first_ticks(daemon, clock)
    feed = daemon.guards["a"].market
    held = daemon.guards["a"].held()
    await feed.refresh({name: Member(guard.adapter, held) for name, guard in daemon.guards.items()})

    gone, staying = daemon.guards["a"].adapter.client, daemon.guards["b"].adapter.client
    assert KLINES in gone.last_request_url  # a comes first by name: its client fetched so far
    await gone.close()  # account a is gone (a reload would drop it), its client closed
    gone.last_request_url = staying.last_request_url = None
    exchange.simulator.requests.clear()
    clock.advance(120)
    await feed.refresh({"b": Member(daemon.guards["b"].adapter, held)})
    assert klines(exchange) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert gone.last_request_url is None and KLINES in staying.last_request_url  # through b's client
    assert feed.current("b").fetched_at == clock()
    assert feed.current("a") is feed.empty and set(feed.requested) == {"b"}


async def test_a_new_symbol_of_one_account_asks_for_its_venue_refresh(configure, exchange, clock, started):
    daemon = await started(configure(a=exchange.url, b=exchange.url), clock)
    await first_ticks(daemon, clock)
    a, b = daemon.guards["a"], daemon.guards["b"]
    assert not a.wants_market() and not b.wants_market()
    await a.market.refresh({"a": Member(a.adapter, frozenset({BTC})), "b": Member(b.adapter, b.held())})
    assert a.wants_market()  # it holds ETH and SOL too, which the last refresh asked for only on b's behalf
    assert not b.wants_market()


async def test_the_report_finds_the_candles_cached_for_its_accounts_venue_from_the_configuration(configure, exchange, clock, started):
    path = configure(a=exchange.url, b=exchange.url)
    daemon = await started(path, clock)
    await first_ticks(daemon, clock)
    await daemon.refresh_market(daemon.guards["a"].market.venue)

    # as `riskd report` does in a process of its own: the settings from the file, no daemon, no request
    exchange.simulator.requests.clear()
    days = commands.report(daemon.store, load_settings(path), clock())
    assert [day.status.account for day in days] == ["a", "b"]
    for day in days:
        assert day.market.missing is None and day.market.risk is not None and day.market.risk.var > 0
    assert list(exchange.simulator.requests) == []
