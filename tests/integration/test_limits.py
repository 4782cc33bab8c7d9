"""Limits the way traders write them, through real ccxt against the embedded exchange:
the runaway-bot guards on a bot that keeps placing orders, a losing streak read from the
income history, and temporary overrides across restarts."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from riskd import commands
from riskd.config import ConfigError, load_settings
from riskd.domain import ActionKind, CommandKind, CommandStatus, EventKind, LimitOverride, TradingState
from riskd.sim import ccxt_config

from .conftest import BTC, MARKETS, demo, tick


def place_bids(sim, count: int, start: int = 0) -> list[str]:
    """`count` resting limit bids from another bot, far below the market; their client ids."""
    ids = []
    for number in range(start, start + count):
        sim.place_order(BTC, "BUY", "0.004", "LIMIT", str(30_000 + number), client_order_id=f"bot-{number}")
        ids.append(f"bot-{number}")
    return ids


def open_ids(sim) -> list[str]:
    return [order["clientOrderId"] for order in sim.state()["openOrders"]]


@pytest.mark.parametrize("action", ["cancel", "halt"])
async def test_a_bot_opening_its_21st_order_is_cancelled_or_halted_as_configured(
    configure, exchange, clock, action, started,
):
    sim = exchange.simulator
    config = configure(live=True, breakers={"open_orders": {"limit": 20, "action": action}})
    daemon = await started(config, clock, ticks=1)
    kept = open_ids(sim)  # the demo account's own bid and take-profits
    stops = [order["clientOrderId"] for order in sim.state()["openOrders"] if order["reduceOnly"]]
    assert len(kept) < 20 and stops
    bids = place_bids(sim, 20 - len(kept))
    result = await tick(daemon, clock)
    assert len(open_ids(sim)) == 20 and not result.actions  # twenty is within the limit

    clock.advance(1)
    latest = place_bids(sim, 1, start=100)  # the 21st
    result = await tick(daemon, clock)

    assert [action.kind for action in result.actions] == [ActionKind.CANCEL_ORDERS]
    state = daemon.store.load_state("main")
    if action == "cancel":
        assert open_ids(sim) == kept + bids  # the newest order went, the rest stay
        assert latest[0] not in open_ids(sim)
        assert state.trading_state is TradingState.ACTIVE
    else:
        assert open_ids(sim) == stops  # every order that could add exposure went; the take-profits stay
        assert state.trading_state is TradingState.HALTED


async def test_an_order_over_the_size_limit_is_cancelled_and_the_account_trades_on(configure, exchange, clock, started, venue):
    sim = exchange.simulator
    config = configure(live=True, market=MARKETS[venue], breakers={"order_size": {"limit": "1000 USDT"}})
    daemon = await started(config, clock, ticks=1)
    kept = open_ids(sim)
    sim.place_order(BTC, "BUY", "0.01", "LIMIT", "30000", client_order_id="small")  # 300 USDT
    sim.place_order(BTC, "BUY", "0.1", "LIMIT", "30000", client_order_id="big")  # 3,000 USDT
    result = await tick(daemon, clock)
    assert [action.kind for action in result.actions] == [ActionKind.CANCEL_ORDERS]
    assert open_ids(sim) == [*kept, "small"]
    assert daemon.store.load_state("main").trading_state is TradingState.ACTIVE


async def test_an_override_expires_on_time_across_a_restart(configure, exchange, clock, started):
    config = configure(live=True, breakers={"daily_loss": {"limit": "5%"}})
    daemon = await started(config, clock, ticks=1)
    asked = LimitOverride("daily_loss", "8%", timedelta(hours=2))
    ids = commands.submit(daemon.store, daemon.settings, CommandKind.OVERRIDE, "main", "cli", "tester", clock(),
                          reason="CPI day", override=asked)
    await daemon.process_commands()
    assert daemon.store.command(ids[0]).status is CommandStatus.DONE
    assert "daily_loss's limit is 8.0% until 2026-03-02 14:00 UTC" in daemon.store.command(ids[0]).result
    await tick(daemon, clock)
    assert daily_loss_limit(daemon) == pytest.approx(0.08)
    await started.stop(daemon)

    clock.advance(2 * 3600 - 60)  # riskd is down; a minute before the override runs out it starts again
    daemon = await started(config, clock, ticks=1)
    assert daily_loss_limit(daemon) == pytest.approx(0.08)
    await tick(daemon, clock, seconds=30)  # 14:00:00, ten seconds before it runs out
    assert daily_loss_limit(daemon) == pytest.approx(0.08)
    await started.stop(daemon)

    clock.advance(30)  # down again as it runs out
    daemon = await started(config, clock, ticks=1)
    assert daily_loss_limit(daemon) == pytest.approx(0.05)
    announced = [(event.kind, event.message) for event in daemon.store.events("main", 50)
                 if event.kind in (EventKind.OVERRIDE, EventKind.OVERRIDE_ENDED)]
    assert [kind for kind, _ in announced] == [EventKind.OVERRIDE, EventKind.OVERRIDE_ENDED]
    assert "set by tester via cli: CPI day" in announced[0][1]
    assert "daily_loss's limit is back to 5.0%" in announced[1][1]
    assert {alert.key for alert in daemon.store.alerts(50)} >= {"override:daily_loss", "override_ended:daily_loss"}
    await tick(daemon, clock)
    ended = [event for event in daemon.store.events("main", 50) if event.kind is EventKind.OVERRIDE_ENDED]
    assert len(ended) == 1  # announced once, not at every tick after


async def test_the_mark_stream_judges_against_the_overridden_limits_and_every_ladder_level(
    configure, exchange, clock, started,
):
    ladder = {"levels": [{"limit": "5%", "action": "reduce"}, {"limit": "10%", "action": "flatten"}]}
    config = configure(live=True, breakers={"daily_loss": {"limit": "5%"}, "drawdown": ladder})
    daemon = await started(config, clock, ticks=1)
    guard = daemon.guards["main"]
    assert guard.basis().breakers["daily_loss"].limit == pytest.approx(0.05)
    commands.submit(daemon.store, daemon.settings, CommandKind.OVERRIDE, "main", "cli", "tester", clock(),
                    override=LimitOverride("daily_loss", "8%", timedelta(hours=2)))
    await daemon.process_commands()

    basis = guard.basis()
    assert basis.breakers["daily_loss"].limit == pytest.approx(0.08)  # as the next tick will judge it
    assert [basis.breakers[name].limit for name in ("drawdown", "drawdown.2")] == pytest.approx([0.05, 0.10])
    clock.advance(2 * 3600)
    assert guard.basis().breakers["daily_loss"].limit == pytest.approx(0.05)  # run out: the configured limit again


def daily_loss_limit(daemon) -> float:
    return next(reading.limit for reading in daemon.store.stored_state("main").readings if reading.breaker == "daily_loss")


async def test_an_override_of_a_breaker_the_account_does_not_have_is_refused_in_words(
    configure, exchange, clock, started,
):
    daemon = await started(configure(), clock)
    with pytest.raises(commands.Refusal, match="main has no breaker 'dailyloss' in force; it has: drawdown"):
        commands.submit(daemon.store, daemon.settings, CommandKind.OVERRIDE, "main", "cli", "tester", clock(),
                        override=LimitOverride("dailyloss", "8%", timedelta(hours=2)))
    with pytest.raises(commands.Refusal, match="at most 7d"):
        commands.submit(daemon.store, daemon.settings, CommandKind.OVERRIDE, "main", "cli", "tester", clock(),
                        override=LimitOverride("daily_loss", "8%", timedelta(days=8)))
    with pytest.raises(commands.Refusal, match="main counts in USDT, not USDC"):
        commands.submit(daemon.store, daemon.settings, CommandKind.OVERRIDE, "main", "cli", "tester", clock(),
                        override=LimitOverride("daily_loss", "800 USDC", timedelta(hours=2)))
    assert daemon.store.pending_commands() == []


XRP = "XRP/USDT:USDT"


def round_trip(sim, clock, change: float) -> None:
    """Another bot buys 100 XRP, the price moves by `change`, it sells them again."""
    sim.place_order(XRP, "BUY", "100", "MARKET")
    clock.advance(5)
    sim.set_price(XRP, float(sim.ledger.mark(sim.ledger.contract(XRP))) * (1 + change))
    sim.place_order(XRP, "SELL", "100", "MARKET", reduce_only=True)
    clock.advance(5)


async def test_three_losing_round_trips_trip_loss_streak_and_halt_the_account(configure, exchange, clock, started):
    sim = exchange.simulator
    daemon = await started(configure(live=True, breakers={"loss_streak": {"limit": 3}}), clock, ticks=1)
    await daemon.read_trades("main")
    assert daemon.guards["main"].trades.read_at is not None
    round_trip(sim, clock, +0.01)  # a win first: the streak starts after it
    for number in range(1, 4):
        round_trip(sim, clock, -0.01)
        await daemon.read_trades("main")
        await tick(daemon, clock)
        streak = next(r for r in daemon.store.stored_state("main").readings if r.breaker == "loss_streak")
        assert streak.value == number
        if number < 3:
            assert daemon.store.load_state("main").trading_state is TradingState.ACTIVE
    state = daemon.store.load_state("main")
    assert state.trading_state is TradingState.HALTED
    assert state.reason == "3 losing trades in a row reaches the limit of 3"
    income = [entry for entry in sim.requests if entry["path"] == "/fapi/v1/income"]
    assert len(income) == 4 and all(entry["params"].get("incomeType") == "REALIZED_PNL" for entry in income)
    assert all("startTime" in entry["params"] for entry in income)  # read from the last trade known, not all again


async def test_a_failed_read_of_the_trade_history_keeps_what_was_known_and_never_delays_a_tick(
    configure, exchange, clock, started,
):
    sim = exchange.simulator
    daemon = await started(configure(live=True, breakers={"loss_streak": {"limit": 3}}), clock, ticks=1)
    round_trip(sim, clock, -0.01)
    await daemon.read_trades("main")
    known = daemon.guards["main"].trades
    assert len(known.trades) == 1 and known.error is None
    sim.add_fault("http_503", path="/fapi/v1/income", count=1)
    await daemon.read_trades("main")
    failed = daemon.guards["main"].trades
    assert (failed.trades, failed.read_at) == (known.trades, known.read_at)
    assert "unreachable or unavailable" in failed.error
    asked = income_reads(sim)
    result = await tick(daemon, clock)
    assert next(r for r in result.readings if r.breaker == "loss_streak").value == 1  # judged on what was known
    assert income_reads(sim) == asked  # the tick itself reads no history


def test_on_bybit_loss_streak_is_refused_in_words_at_load(configure):
    # it would read "cannot measure" forever: Bybit's ledger has no realized-PnL income
    with pytest.raises(ConfigError) as caught:
        load_settings(configure(live=True, market="bybit", breakers={"loss_streak": {"limit": 3}}))
    assert "breakers.loss_streak: riskd reads closed trades only from a Binance futures account's income history" in str(caught.value)


def income_reads(sim) -> int:
    return sum(1 for entry in sim.requests if entry["path"] == "/fapi/v1/income")


@pytest.fixture
async def two_exchanges(clock, serve):
    return [await serve(demo(clock, seed=seed)) for seed in (7, 8)]


def two_accounts(tmp_path, monkeypatch, servers, **portfolio) -> str:
    """alpha and beta, each a Binance futures account on its own simulator, under one portfolio;
    their own breakers loose enough that only the portfolio's can trip."""
    accounts = {}
    for name, server in zip(("alpha", "beta"), servers):
        monkeypatch.setenv(f"RISKD_ACCOUNTS__{name.upper()}__API_KEY", f"{name}-key-not-secret")
        monkeypatch.setenv(f"RISKD_ACCOUNTS__{name.upper()}__SECRET", f"{name}-secret-not-secret")
        pointed = {key: value for key, value in ccxt_config(server.url, "futures").items() if key not in ("apiKey", "secret")}
        accounts[name] = {"exchange": "binanceusdm", "timeout": "2s", "ccxt": {**pointed, "enableRateLimit": False}}
    loose = {name: {"enabled": False} for name in ("daily_loss", "position_loss", "leverage", "liquidation_distance")}
    document = {
        "live": True, "database": str(tmp_path / "riskd.db"), "accounts": accounts,
        "breakers": {"drawdown": {"limit": "50%"}, **loose}, "portfolio": portfolio,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


async def test_a_two_account_portfolio_breach_acts_on_both_accounts(
    tmp_path, monkeypatch, two_exchanges, clock, started,
):
    monkeypatch.chdir(tmp_path)
    rules = {"breakers": {"drawdown": {"limit": "2%", "confirm": 1, "action": "flatten"}}}
    daemon = await started(two_accounts(tmp_path, monkeypatch, two_exchanges, **rules), clock)
    for name in ("alpha", "beta"):
        await daemon.tick(name)
    quiet = await daemon.check_portfolio()
    assert quiet.state.trading_state is TradingState.ACTIVE and quiet.state.peak_equity > 0

    for server in two_exchanges:
        server.simulator.move(-0.05)
    clock.advance(10)
    for name in ("alpha", "beta"):
        await daemon.tick(name)
        assert daemon.store.load_state(name).trading_state is TradingState.ACTIVE  # neither account's own limit
    result = await daemon.check_portfolio()

    assert result.state.trading_state is TradingState.HALTED
    assert "drawdown" in result.state.reason
    for name, server in zip(("alpha", "beta"), two_exchanges):
        assert server.simulator.state()["positions"] == [], name  # flattened, each on its own exchange
        state = daemon.store.load_state(name)
        assert state.trading_state is TradingState.HALTED and "portfolio" in state.latches
        assert state.reason.startswith("portfolio: drawdown")
    events = [(event.account, event.kind) for event in daemon.store.events(None, 100)]
    assert ("portfolio", EventKind.BREACH) in events
