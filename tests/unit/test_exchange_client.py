"""How riskd builds its ccxt client and names the errors it raises: no network."""

from __future__ import annotations

import ccxt.async_support as ccxt
import pytest

from riskd.config import AccountConfig
from riskd.domain import ReadFailure
from riskd.exchange import build_client, explain


@pytest.fixture
async def clients():
    built = []

    def build(**account):
        client = build_client(AccountConfig(api_key="k" * 8, secret="s" * 8, **account))
        built.append(client)
        return client

    yield build
    for client in built:
        await client.close()


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
    client = clients(exchange="binanceusdm", timeout="3s", ccxt={"enableRateLimit": False, "options": {"recvWindow": 7000}})
    assert client.timeout == 3000 and client.enableRateLimit is False
    assert client.options["recvWindow"] == 7000 and client.options["fetchCurrencies"] is False


async def test_a_futures_balance_without_the_quote_currency_is_a_failed_read_not_zero_equity(clients):
    from riskd.domain import Position, Side
    from riskd.exchange import ExchangeAdapter

    adapter = ExchangeAdapter("main", AccountConfig(exchange="binanceusdm"), clients(exchange="binanceusdm"))
    adapter.futures = True
    held = (Position("BTC/USDT:USDT", Side.LONG, 0.1, 6_000.0),)
    with pytest.raises(ccxt.BadResponse, match="no USDT"):
        adapter._equity({"info": {}, "total": {"BNB": 1.0}}, held, {})


async def test_a_spot_holding_whose_price_goes_missing_is_a_failed_read_not_worth_zero(clients):
    from riskd.exchange import ExchangeAdapter

    adapter = ExchangeAdapter("main", AccountConfig(exchange="binance", market="spot"), clients(exchange="binance", market="spot"))
    adapter.futures = False
    balance = {"info": {}, "total": {"USDT": 100.0, "BTC": 1.0}}
    assert adapter._equity(balance, (), {"BTC/USDT": 50_000.0}) == pytest.approx(50_100.0)
    with pytest.raises(ccxt.BadResponse, match="no price for BTC"):
        adapter._equity(balance, (), {})


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

