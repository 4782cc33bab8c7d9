"""How riskd builds its ccxt client and names the errors it raises: no network."""

from __future__ import annotations

import ccxt.async_support as ccxt
import pytest

from riskd.config import AccountConfig
from riskd.domain import ReadFailure
from riskd.exchange import explain


async def test_futures_clients_raise_binances_futures_errors_wherever_their_urls_point(clients):
    client = clients(exchange="binanceusdm", ccxt={"urls": {"api": {"fapiPrivate": "http://127.0.0.1:9/fapi/v1"}}})
    assert client.exceptions["exact"]["-2022"] is ccxt.InvalidOrder  # reduce-only rejected
    assert client.urls["api"]["fapiPrivate"] == "http://127.0.0.1:9/fapi/v1"  # deep-merged, the rest kept
    assert client.urls["api"]["fapiPublic"].startswith("https://")


async def test_spot_clients_keep_the_spot_error_table_and_load_spot_markets_only(clients):
    client = clients(exchange="binance", market="spot")
    assert "-2022" not in client.exceptions["exact"]
    assert client.options["defaultType"] == "spot" and client.options["fetchMarkets"]["types"] == ["spot"]


async def test_the_account_ccxt_mapping_overrides_riskds_defaults(clients):
    # the user turning ccxt's limiter off is what is tested here
    client = clients(exchange="binanceusdm", timeout="3s", ccxt={"enableRateLimit": False, "options": {"recvWindow": 7000}})
    assert client.timeout == 3000 and client.enableRateLimit is False
    assert client.options["recvWindow"] == 7000 and client.options["fetchCurrencies"] is False


async def test_a_futures_balance_without_the_quote_currency_is_a_failed_read_not_zero_equity(clients):
    from riskd.exchange import ExchangeAdapter

    # A venue riskd has no profile for falls back on ccxt's total of the quote currency.
    adapter = ExchangeAdapter("main", AccountConfig(exchange="kraken", market="futures"), clients(exchange="kraken", market="futures"))
    with pytest.raises(ccxt.BadResponse, match="no USDT"):
        adapter._account({"info": {}, "total": {"BNB": 1.0}})
    # A venue with a profile names the figure its reply lacks.
    adapter = ExchangeAdapter("main", AccountConfig(exchange="binanceusdm"), clients(exchange="binanceusdm"))
    with pytest.raises(ccxt.BadResponse, match="has no totalMarginBalance"):
        adapter._account({"info": {"assets": []}, "total": {"USDT": 1.0}})


async def test_a_spot_holding_without_a_price_is_a_failed_read_on_the_first_read_too(clients):
    from riskd.exchange import ExchangeAdapter

    adapter = ExchangeAdapter("main", AccountConfig(exchange="binance", market="spot"), clients(exchange="binance", market="spot"))
    balance = {"info": {}, "total": {"USDT": 100.0, "BTC": 1.0}}
    with pytest.raises(ccxt.BadResponse, match="no price for BTC"):  # never seen priced: still not worth zero
        adapter._spot_account(balance, {})
    assert adapter._spot_account(balance, {"BTC/USDT": 50_000.0}).equity == pytest.approx(50_100.0)
    with pytest.raises(ccxt.BadResponse, match="no price for BTC"):
        adapter._spot_account(balance, {})


async def test_a_spot_holding_without_a_direct_market_is_valued_through_a_bridge(clients):
    from riskd.exchange import ExchangeAdapter

    adapter = ExchangeAdapter("main", AccountConfig(exchange="binance", market="spot"), clients(exchange="binance", market="spot"))
    balance = {"info": {}, "total": {"USDT": 10.0, "ABC": 100.0, "XYZ": 2.0}}
    prices = {"ABC/USDC": 0.5, "USDC/USDT": 0.999, "XYZ/BTC": 0.001, "BTC/USDT": 60_000.0}
    figures = adapter._spot_account(balance, prices)
    assert figures.equity == pytest.approx(10.0 + 100 * 0.5 * 0.999 + 2 * 0.001 * 60_000)
    held = {p.symbol: p for p in adapter._spot_positions(balance, prices)}
    assert set(held) == {"ABC/USDC", "XYZ/BTC"}  # sold on the market that exists
    assert held["ABC/USDC"].notional == pytest.approx(100 * 0.5 * 0.999)


async def test_what_riskd_understood_names_what_it_does_not_know(clients):
    from datetime import datetime, timezone

    from riskd import checks
    from riskd.domain import Snapshot
    from riskd.exchange import ExchangeAdapter

    adapter = ExchangeAdapter("main", AccountConfig(exchange="kraken", market="futures"), clients(exchange="kraken", market="futures"))
    failed = Snapshot("main", datetime(2026, 1, 1, tzinfo=timezone.utc), error="timeout")
    assert await checks.understanding(adapter, failed) == [
        "market: futures",
        "warning: riskd has no profile for kraken; its figures are ccxt's unified ones",
        "warning: the account was not read, so nothing about it is known",
    ]


@pytest.mark.parametrize(
    "error, kind",
    [
        (ccxt.OperationFailed('binanceusdm {"code":-1001,"msg":"Internal error; unable to process your request."}'),
         ReadFailure.NETWORK),
        (ccxt.OperationFailed('binanceusdm {"code":-1000,"msg":"Unknown error, please check your request."}'),
         ReadFailure.NETWORK),
        (ccxt.CancelPending("binanceusdm cancel pending"), ReadFailure.NETWORK),
        (ccxt.BadResponse("binanceusdm <html>"), ReadFailure.MALFORMED),
        (ccxt.NullResponse("binanceusdm null"), ReadFailure.MALFORMED),
        (ccxt.DDoSProtection('binanceusdm 418 {"code":-1003}'), ReadFailure.RATE_LIMIT),
    ],
    ids=["internal", "unknown", "cancel_pending", "bad_response", "null_response", "banned"],
)
def test_an_exchange_failure_that_may_pass_is_named_network_and_only_an_unreadable_reply_malformed(error, kind):
    # ccxt's OperationFailed is the parent of NetworkError and BadResponse; what is neither
    # (Binance's -1000 and -1001) is the exchange failing for now, not a reply riskd misread.
    assert explain(error).kind is kind

