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
from riskd.config import AccountConfig, ConfigError, load_settings
from riskd.exchange import ExchangeAdapter, build_client


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
    [
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
    found = budget.refusal(exchange_id, status, headers, response, clock())
    assert (found.code, found.answer, found.banned, found.wait.total_seconds()) == expected


@pytest.mark.parametrize(
    ("exchange_id", "status", "response"),
    [
        ("binanceusdm", 403, None),  # Binance's firewall, which no pause cures
        ("binanceusdm", 200, {"retCode": 10006}),  # only Bybit speaks in retCodes
        ("bybit", 200, {"retCode": 0, "retMsg": "OK", "result": {}}),
        ("bybit", 200, {"retCode": 10003, "retMsg": "API key is invalid."}),
    ],
)
def test_other_answers_hold_nothing(exchange_id, status, response):
    headers = {"x-bapi-limit-reset-timestamp": str(BYBIT_SENT)}
    assert budget.refusal(exchange_id, status, headers, response, clock()) is None


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


def configuration(tmp_path, monkeypatch, accounts: dict, poll: str) -> str:
    for name in accounts:
        monkeypatch.setenv(f"RISKD_ACCOUNTS__{name.upper()}__API_KEY", "k" * 8)
        monkeypatch.setenv(f"RISKD_ACCOUNTS__{name.upper()}__SECRET", "s" * 8)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"poll_interval": poll, "accounts": accounts}))
    return str(path)


def test_more_accounts_than_a_venues_budget_holds_are_refused_in_words(tmp_path, monkeypatch):
    # 50 weight a read, every 10 s: 300 a minute each; half of 2,400 holds four
    accounts = {f"a{i}": {"exchange": "binanceusdm"} for i in range(5)}
    path = configuration(tmp_path, monkeypatch, accounts, "10s")
    load_settings(path)  # a well-formed configuration; riskd refuses it as it loads it to run
    with pytest.raises(ConfigError) as refused:
        load(parser().parse_args(["--config", path, "run"]))
    text = str(refused.value)
    assert "5 account(s) on Binance USDⓈ-M" in text and "1500 of its 2400" in text and "4 account(s) fit" in text
    assert "poll every 13s or more" in text


def test_accounts_that_fit_are_accepted_and_another_ip_is_another_budget(tmp_path, monkeypatch):
    accounts = {f"a{i}": {"exchange": "binanceusdm"} for i in range(4)}
    accounts["a4"] = {"exchange": "binanceusdm", "ccxt": {"httpsProxy": "http://10.0.0.2:3128"}}
    settings = load(parser().parse_args(["--config", configuration(tmp_path, monkeypatch, accounts, "10s"), "run"]))
    fits = budget.fits(settings, build_client)
    assert sorted(len(fit.accounts) for fit in fits) == [1, 4] and all(fit.fits for fit in fits)
    assert sorted(fit.most for fit in fits) == [4, 4]


def test_check_says_how_many_accounts_fit_and_what_is_left_for_bots(tmp_path, monkeypatch):
    from riskd import checks

    accounts = {f"a{i}": {"exchange": "binanceusdm"} for i in range(3)}
    accounts["paper"] = {"exchange": "sim"}  # the embedded exchange enforces no budget
    findings = checks.budgets(load_settings(configuration(tmp_path, monkeypatch, accounts, "10s")))
    assert [str(finding) for finding in findings] == [
        "request budget, Binance USDⓈ-M: 3 account(s) on Binance USDⓈ-M (a0, a1, a2) use 900 of its 2400 request "
        "weight per minute per IP at poll_interval 10s (50 a read), leaving 1500 to bots; riskd keeps to 50% of it: "
        "4 account(s) fit"
    ]
