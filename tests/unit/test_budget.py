"""The request budget: ccxt's limiter as riskd configures it per venue, shared per venue,
the emergency path's way through it, and configurations that cannot fit refused."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from riskd import budget
from riskd.cli import _load as load
from riskd.cli import parser
from riskd.config import AccountConfig, ConfigError, budget_plans, load_settings
from riskd.exchange import ExchangeAdapter


def window(client) -> tuple[str, float, float]:
    """The limiter ccxt built: algorithm, window in ms, and the cost it lets through per window."""
    config = client.throttler.config
    return config["algorithm"], config["windowSize"], config.get("maxWeight", 0.0)


@pytest.mark.parametrize(
    ("account", "expected"),
    [
        ({"exchange": "binanceusdm"}, ("rollingWindow", 60000, 2400)),  # 2,400 weight a minute; ccxt's fapi cost = weight
        ({"exchange": "sim"}, ("rollingWindow", 60000, 2400)),  # the embedded exchange is Binance USDⓈ-M
        ({"exchange": "binance", "market": "spot"}, ("rollingWindow", 60000, 1200)),  # 6,000 weight; ccxt's spot cost = 0.2 × weight
        ({"exchange": "bybit"}, ("rollingWindow", 1000, 50)),  # ccxt's own rate (20 ms) over one second
        ({"exchange": "kraken"}, ("rollingWindow", 60000, 60)),  # unknown to riskd: ccxt's own rate (1 s) over a minute
    ],
)
async def test_each_venue_gets_ccxts_rolling_window_at_its_published_budget(clients, account, expected):
    client = clients(**account)
    assert client.enableRateLimit is True
    algorithm, size, most = window(client)
    assert (algorithm, size) == expected[:2] and most == pytest.approx(expected[2])


async def test_okx_keeps_ccxts_leaky_bucket_which_ccxt_chose_for_it(clients):
    client = clients(exchange="okx", password="p" * 8)
    assert window(client)[0] == "leakyBucket"


async def test_an_accounts_ccxt_mapping_overrides_the_shipped_limiter(clients):
    client = clients(exchange="binanceusdm", ccxt={"rateLimit": 50})
    assert window(client) == ("rollingWindow", 60000, pytest.approx(1200))
    client = clients(exchange="binanceusdm", ccxt={"rateLimiterAlgorithm": "leakyBucket"})
    assert window(client)[0] == "leakyBucket"


def clock() -> datetime:
    return datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


async def test_accounts_on_one_venue_share_one_budget_and_another_ip_has_its_own(clients):
    first = ExchangeAdapter("a", AccountConfig(exchange="binanceusdm"), clients(exchange="binanceusdm"), clock)
    second = ExchangeAdapter("b", AccountConfig(exchange="binanceusdm"), clients(exchange="binanceusdm"), clock)
    proxied = {"exchange": "binanceusdm", "ccxt": {"httpsProxy": "http://10.0.0.2:3128"}}
    third = ExchangeAdapter("c", AccountConfig(**proxied), clients(**proxied), clock)
    spot = ExchangeAdapter("d", AccountConfig(exchange="binance", market="spot"), clients(exchange="binance", market="spot"), clock)
    assert first.budget is second.budget
    assert first.client.throttler is second.client.throttler is first.budget
    assert third.budget is not first.budget and spot.budget is not first.budget


async def test_the_emergency_path_passes_a_full_window_and_its_cost_still_counts(clients):
    adapter = ExchangeAdapter("a", AccountConfig(exchange="binanceusdm"), clients(exchange="binanceusdm"), clock)
    shared = adapter.budget
    await shared(2400)  # the whole minute's budget, spent
    routine = asyncio.ensure_future(shared(1))
    with budget.urgent():
        await asyncio.wait_for(shared(4), 1)  # an order goes out at once
    assert not routine.done()  # while a read waits for the window to roll
    assert sum(entry["cost"] for entry in shared.throttler.timestamps) == 2404
    routine.cancel()


async def test_a_429_holds_routine_reads_for_its_retry_after_but_not_the_emergency_path(clients):
    moments = [clock()]
    adapter = ExchangeAdapter("a", AccountConfig(exchange="binanceusdm"), clients(exchange="binanceusdm"), lambda: moments[0])
    adapter.budget.observe(429, {"Retry-After": "30", "X-MBX-USED-WEIGHT-1M": "2410"})
    held = await adapter.snapshot()
    assert held.error_kind == "rate_limit" and "30 s" in held.error
    assert adapter.budget.refusals[429] == 1 and adapter.budget.used == 2410
    kinds = dict(adapter.budget.take_notices(timedelta(minutes=15)))
    assert set(kinds) == {"rate_limited", "rate_budget"}
    with budget.urgent():  # the executor's re-read goes to the exchange (here: nowhere, so a network failure)
        tried = await adapter.snapshot()
    assert tried.error_kind != "rate_limit"
    moments[0] += timedelta(seconds=30)
    assert adapter.budget.holding() == 0


BYBIT_SENT = 1772452800000
"""The server time (epoch ms) in the Bybit replies below."""


@pytest.mark.parametrize(
    ("exchange_id", "status", "headers", "response", "expected"),
    [  # (the 403 below says "access too frequent", as Bybit's IP limit does)
        ("binanceusdm", 429, {"retry-after": "30"}, None, (429, "HTTP 429", False, 30)),
        ("binanceusdm", 418, {"retry-after": "0"}, None, (418, "HTTP 418", True, 0)),  # "now" is not "30 s"
        ("binanceusdm", 429, {}, None, (429, "HTTP 429", False, 30)),  # no Retry-After: DEFAULT_HOLD
        # Bybit's API limit, at HTTP 200: until X-Bapi-Limit-Reset-Timestamp, counted from the reply's own time
        ("bybit", 200, {"x-bapi-limit-reset-timestamp": str(BYBIT_SENT + 1500)},
         {"retCode": 10006, "retMsg": "Too many visits!", "time": BYBIT_SENT}, (10006, "retCode 10006", False, 1.5)),
        ("bybit", 200, {}, {"retCode": 10018, "retMsg": "Exceeded the IP Rate Limit."}, (10018, "retCode 10018", False, 30)),
        # Bybit's IP limit: 403 "access too frequent", no time given: the ten minutes Bybit asks for
        ("bybit", 403, {}, None, (403, "HTTP 403", True, 600)),
    ],
    ids=["binance-429", "binance-418-now", "binance-429-unsaid", "bybit-10006", "bybit-10018-unsaid", "bybit-403"],
)
def test_a_rate_limit_answer_is_read_with_the_wait_the_venue_asks_for(exchange_id, status, headers, response, expected):
    found = budget.refusal(exchange_id, status, headers, response, clock(), "403 Forbidden: access too frequent")
    assert (found.code, found.answer, found.banned, found.wait.total_seconds()) == expected


@pytest.mark.parametrize(
    ("exchange_id", "status", "response"),
    [
        ("binanceusdm", 403, None),  # Binance's firewall, which no pause cures
        ("bybit", 403, None),  # Bybit's CDN for a blocked region: no "access too frequent" in it
        ("binanceusdm", 200, {"retCode": 10006}),  # only Bybit speaks in retCodes
        ("bybit", 200, {"retCode": 0, "retMsg": "OK", "result": {}}),
        ("bybit", 200, {"retCode": 10003, "retMsg": "API key is invalid."}),
    ],
)
def test_other_answers_hold_nothing(exchange_id, status, response):
    headers = {"x-bapi-limit-reset-timestamp": str(BYBIT_SENT)}
    blocked = "<html><h1>403 ERROR</h1>The request could not be satisfied. Generated by cloudfront (CloudFront)</html>"
    assert budget.refusal(exchange_id, status, headers, response, clock(), blocked) is None


async def test_a_warning_is_announced_once_per_cooldown(clients):
    moments = [clock()]
    adapter = ExchangeAdapter("a", AccountConfig(exchange="binanceusdm"), clients(exchange="binanceusdm"), lambda: moments[0])
    adapter.budget.observe(200, {"X-MBX-USED-WEIGHT-1M": "1900"})
    assert adapter.budget.take_notices(timedelta(minutes=15)) == []  # under 80 % of 2,400
    adapter.budget.observe(200, {"X-MBX-USED-WEIGHT-1M": "1950"})
    assert [kind for kind, _ in adapter.budget.take_notices(timedelta(minutes=15))] == ["rate_budget"]
    adapter.budget.observe(200, {"X-MBX-USED-WEIGHT-1M": "2000"})
    assert adapter.budget.take_notices(timedelta(minutes=15)) == []
    moments[0] += timedelta(minutes=15)
    adapter.budget.observe(200, {"X-MBX-USED-WEIGHT-1M": "2000"})
    assert [kind for kind, _ in adapter.budget.take_notices(timedelta(minutes=15))] == ["rate_budget"]


def configuration(tmp_path, monkeypatch, accounts: dict, poll: str, **settings) -> str:
    for name in accounts:
        monkeypatch.setenv(f"RISKD_ACCOUNTS__{name.upper()}__API_KEY", "k" * 8)
        monkeypatch.setenv(f"RISKD_ACCOUNTS__{name.upper()}__SECRET", "s" * 8)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"poll_interval": poll, "accounts": accounts, **settings}))
    return str(path)


def refusal(path: str) -> list[str]:
    """The lines of the ConfigError `load_settings` alone raises for the configuration at `path`."""
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    return str(refused.value).splitlines()


LOSS_STREAK = {"loss_streak": {"limit": 3}}


def test_accounts_that_fit_on_their_ticks_alone_are_refused_once_market_data_and_trade_history_count(tmp_path, monkeypatch):
    # four accounts polled every 10 s: 4 × 50 weight × 6 a minute = 1200, exactly riskd's half of 2,400
    accounts = {f"a{i}": {"exchange": "binanceusdm"} for i in range(4)}
    quiet = configuration(tmp_path, monkeypatch, accounts, "10s", market_data={"enabled": False})
    assert [fit.need for fit in budget_plans(load_settings(quiet))] == [1200]

    accounts["a3"]["breakers"] = LOSS_STREAK
    lines = refusal(configuration(tmp_path, monkeypatch, accounts, "10s"))
    assert lines == [
        "poll_interval: 10s is too often for accounts a0, a1, a2 and a3 on Binance USDⓈ-M (one IP): their routine "
        "reads use 1250 of its 2400 request weight a minute per IP: ticks 1200 (50 a read every 10s each), market data "
        "20 (candles of 4 symbols every 60s: the benchmark and 3 held, once for the venue, not per account), trade "
        "history 30 (loss_streak on 1 account(s), 30 a read every 60s); that leaves 1150 to bots, and riskd keeps to "
        "1200 (50%) of it: 3 such account(s) fit; use at least 11s, or spread the accounts over IPs (a `proxy` in "
        "their ccxt settings)"
    ]
    assert not any(secret in lines[0] for secret in ("k" * 8, "s" * 8))
    # 1200 - 20 - 30 leaves 1150 for the ticks: 4 × 50 × 60 / 1150 = 10.4 s, so 11 s fits
    load_settings(configuration(tmp_path, monkeypatch, accounts, "11s"))


def test_the_market_data_alone_is_refused_and_named_as_the_cause(tmp_path, monkeypatch):
    # the candles of 4 symbols every second: 4 × 5 × 60 = 1200, no room for a tick at any poll interval
    accounts = {"main": {"exchange": "binanceusdm"}}
    lines = refusal(configuration(tmp_path, monkeypatch, accounts, "1m", market_data={"refresh": "1s"}))
    assert len(lines) == 1 and lines[0].startswith("accounts: main on Binance USDⓈ-M (one IP): ")
    assert "market data 1200 (candles of 4 symbols every 1s" in lines[0]
    assert lines[0].endswith("no room for a tick at any poll interval: lengthen market_data.refresh")


def test_the_trade_history_counts_only_for_accounts_with_loss_streak_in_force(tmp_path, monkeypatch):
    accounts = {
        "streak": {"exchange": "binanceusdm", "breakers": LOSS_STREAK},
        "off": {"exchange": "binanceusdm", "breakers": {"loss_streak": {"limit": 3, "enabled": False}}},
        "plain": {"exchange": "binanceusdm"},
    }
    [fit] = budget_plans(load_settings(configuration(tmp_path, monkeypatch, accounts, "10s")))
    assert fit.trade_readers == ("streak",) and fit.trades == 30


def test_market_data_counts_once_per_venue_however_many_accounts_read_there(tmp_path, monkeypatch):
    one = budget_plans(load_settings(configuration(tmp_path, monkeypatch, {"a0": {"exchange": "binanceusdm"}}, "10s")))
    accounts = {f"a{i}": {"exchange": "binanceusdm"} for i in range(3)}
    accounts["far"] = {"exchange": "binanceusdm", "ccxt": {"httpsProxy": "http://10.0.0.2:3128"}}
    several = budget_plans(load_settings(configuration(tmp_path, monkeypatch, accounts, "10s")))
    assert [fit.market for fit in one] == [20]  # benchmark and three held symbols, 5 a page of 1,000 candles, each minute
    assert sorted((len(fit.accounts), fit.market, fit.need) for fit in several) == [(1, 20, 320), (3, 20, 920)]
    benchmark_only = configuration(tmp_path, monkeypatch, accounts, "10s", market_data={"benchmark": None, "refresh": "2m"})
    assert {fit.market for fit in budget_plans(load_settings(benchmark_only))} == {7.5}  # 3 × 5 every 2 minutes


def test_an_exchange_whose_budget_riskd_does_not_know_gets_ccxts_rate_as_the_floor(tmp_path, monkeypatch):
    # Kraken: ccxt spaces calls 1000 ms apart, a tick makes 3; Bybit: 20 ms, so the one-second floor
    accounts = {"main": {"exchange": "kraken"}, "other": {"exchange": "bybit"}}
    lines = refusal(configuration(tmp_path, monkeypatch, accounts, "500ms"))
    assert lines == [
        "poll_interval: 500ms is too often for accounts.main on kraken: a tick makes 3 calls, which ccxt spaces 1000ms "
        "apart there, and venues ban keys that poll faster than once a second; use at least 3s",
        "poll_interval: 500ms is too often for accounts.other on bybit: a tick makes 3 calls, which ccxt spaces 20ms "
        "apart there, and venues ban keys that poll faster than once a second; use at least 1s",
    ]
    floors = budget_plans(load_settings(configuration(tmp_path, monkeypatch, accounts, "3s")))
    assert [(floor.account, floor.shortest_poll) for floor in floors] == [("main", 3), ("other", 1)]
    unlimited = {name: {**account, "ccxt": {"enableRateLimit": False}} for name, account in accounts.items()}
    assert budget_plans(load_settings(configuration(tmp_path, monkeypatch, unlimited, "500ms"))) == []


def test_the_least_poll_interval_advised_is_rounded_up_never_down(tmp_path, monkeypatch):
    # 3 calls 400 ms apart need 1.2 s: "use at least 1s" would be refused again
    accounts = {"main": {"exchange": "kraken", "ccxt": {"rateLimit": 400}}}
    [line] = refusal(configuration(tmp_path, monkeypatch, accounts, "1s"))
    assert line.endswith("which ccxt spaces 400ms apart there, and venues ban keys that poll faster than once a second; use at least 2s")
    load_settings(configuration(tmp_path, monkeypatch, accounts, "2s"))


def test_the_plans_weights_are_binances_published_ones_as_the_simulator_counts_them():
    from riskd.market_data import PAGE
    from riskd.sim.weights import weight

    symbol = {"symbol": "BTCUSDT", "limit": PAGE}
    assert budget.BINANCE_USDM.tick == sum(weight("GET", path, {}) for path in ("/fapi/v3/account", "/fapi/v3/positionRisk", "/fapi/v1/openOrders"))
    assert budget.BINANCE_USDM.candles == weight("GET", "/fapi/v1/klines", symbol)
    assert budget.BINANCE_USDM.trades == weight("GET", "/fapi/v1/income", {"incomeType": "REALIZED_PNL"})
    assert budget.BINANCE_SPOT.tick == sum(weight("GET", path, {}) for path in ("/api/v3/account", "/api/v3/openOrders", "/api/v3/ticker/24hr"))
    assert budget.BINANCE_SPOT.candles == weight("GET", "/api/v3/klines", symbol)


SHAPES = {
    "futures": {"exchange": "binanceusdm"},
    "binance_futures": {"exchange": "binance", "market": "futures"},
    "spot": {"exchange": "binance", "market": "spot"},
    "proxied": {"exchange": "binanceusdm", "ccxt": {"httpsProxy": "http://10.0.0.2:3128"}},
    "testnet": {"exchange": "binanceusdm", "ccxt": {"urls": {"api": {"fapiPrivate": "https://testnet.example/fapi/v1"}}}},
    "slower": {"exchange": "kraken", "ccxt": {"rateLimit": 400}},
    "linear": {"exchange": "bybit"},
}


async def test_the_plan_sees_each_account_go_where_the_client_riskd_runs_goes(tmp_path, monkeypatch, clients):
    planned = {}
    for plan in budget_plans(load_settings(configuration(tmp_path, monkeypatch, SHAPES, "1m"))):
        planned.update({name: plan for name in getattr(plan, "accounts", (getattr(plan, "account", None),))})
    running = {name: ExchangeAdapter(name, AccountConfig(**account), clients(**account), clock) for name, account in SHAPES.items()}
    assert set(planned) == set(SHAPES)
    for name, adapter in running.items():
        if adapter.budget.venue is None:  # no known budget: ccxt's rate, as the running client has it
            assert planned[name].spacing == adapter.client.rateLimit
        else:  # planned together exactly when the running clients share one budget
            assert planned[name].venue is adapter.budget.venue
            assert set(planned[name].accounts) == {other for other in running if running[other].budget is adapter.budget}


def test_accounts_that_fit_are_accepted_and_another_ip_is_another_budget(tmp_path, monkeypatch):
    accounts = {f"a{i}": {"exchange": "binanceusdm"} for i in range(3)}
    accounts["a3"] = {"exchange": "binanceusdm", "ccxt": {"httpsProxy": "http://10.0.0.2:3128"}}
    settings = load(parser().parse_args(["--config", configuration(tmp_path, monkeypatch, accounts, "10s"), "run"]))
    fits = budget_plans(settings)
    assert sorted(len(fit.accounts) for fit in fits) == [1, 3] and all(fit.fits for fit in fits)
    assert sorted(fit.most for fit in fits) == [3, 3]


def test_binance_with_futures_and_binanceusdm_draw_on_one_budget(tmp_path, monkeypatch):
    # one API and one IP, whichever ccxt class an account names: four at 10 s do not fit
    accounts = {"a0": {"exchange": "binanceusdm"}, "a1": {"exchange": "binanceusdm"},
                "b0": {"exchange": "binance", "market": "futures"}, "b1": {"exchange": "binance", "market": "futures"}}
    lines = refusal(configuration(tmp_path, monkeypatch, accounts, "10s"))
    assert len(lines) == 1 and "accounts a0, a1, b0 and b1 on Binance USDⓈ-M (one IP)" in lines[0]


def test_check_says_what_uses_the_budget_how_many_accounts_fit_and_what_is_left_for_bots(tmp_path, monkeypatch):
    from riskd import checks

    accounts = {f"a{i}": {"exchange": "binanceusdm"} for i in range(3)}
    accounts["a2"]["breakers"] = LOSS_STREAK
    accounts["paper"] = {"exchange": "sim"}  # the embedded exchange enforces no budget
    accounts["kraken"] = {"exchange": "kraken"}
    findings = checks.budgets(load_settings(configuration(tmp_path, monkeypatch, accounts, "10s")))
    assert [str(finding) for finding in findings] == [
        "request budget, Binance USDⓈ-M: 3 account(s) on Binance USDⓈ-M (a0, a1, a2): their routine reads use 950 of "
        "its 2400 request weight a minute per IP: ticks 900 (50 a read every 10s each), market data 20 (candles of 4 "
        "symbols every 60s: the benchmark and 3 held, once for the venue, not per account), trade history 30 "
        "(loss_streak on 1 account(s), 30 a read every 60s); that leaves 1450 to bots, and riskd keeps to 1200 (50%) "
        "of it: 3 such account(s) fit",
        "request budget, kraken: accounts.kraken on kraken: riskd knows no published budget there; a tick makes 3 "
        "calls, which ccxt spaces 1000ms apart there, and venues ban keys that poll faster than once a second: a tick "
        "every 3s at the most often",
    ]
