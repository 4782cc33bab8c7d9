"""Which venue's candles an account sees: the key its candles are fetched, cached and shared under."""

from __future__ import annotations

from riskd.config import AccountConfig
from riskd.market_data import market_venue
from riskd.sim import ccxt_config

KEYS = {"api_key": "k" * 8, "secret": "s" * 8}


def account(**settings) -> AccountConfig:
    return AccountConfig(**KEYS, **settings)


def test_accounts_with_other_keys_or_another_proxy_see_the_same_candles():
    plain = market_venue("a", account(exchange="binanceusdm"))
    other_keys = market_venue("b", AccountConfig(exchange="binanceusdm", api_key="x" * 8, secret="y" * 8))
    proxied = market_venue("c", account(exchange="binanceusdm", ccxt={"httpsProxy": "http://10.0.0.2:3128"}))
    assert plain == other_keys == proxied
    assert plain.startswith("binanceusdm:future@") and len(plain) < 40  # short: it is in every cached candle's row


def test_another_market_type_a_testnet_or_another_simulator_is_another_venue():
    futures = market_venue("a", account(exchange="binanceusdm"))
    spot = market_venue("a", account(exchange="binance", market="spot"))
    testnet = market_venue("a", account(exchange="binanceusdm", ccxt={"urls": {"api": {"fapiPublic": "https://testnet.binancefuture.com/fapi/v1"}}}))
    assert len({futures, spot, testnet}) == 3
    first, second = (account(exchange="binanceusdm", ccxt={"urls": ccxt_config(url)["urls"]}) for url in ("http://127.0.0.1:8001", "http://127.0.0.1:8002"))
    assert market_venue("a", first) == "binanceusdm:future@127.0.0.1:8001" == market_venue("b", first)
    assert market_venue("a", second) == "binanceusdm:future@127.0.0.1:8002"


def test_an_embedded_exchange_is_its_accounts_own_venue():
    # started by the daemon on a port of its own: known from the configuration only by the account's name
    assert market_venue("demo", AccountConfig(exchange="sim")) == "sim:demo"
    assert market_venue("other", AccountConfig(exchange="sim")) == "sim:other"


async def test_the_venue_from_the_configuration_is_the_one_the_daemons_client_gives(clients):
    settings = {"exchange": "binanceusdm", "ccxt": {"urls": ccxt_config("http://127.0.0.1:8001")["urls"]}}
    assert market_venue("a", account(**settings)) == market_venue("a", account(**settings), clients(**settings))


def test_a_demo_on_the_live_hosts_is_another_venue():
    # OKX and Bitget run their demos on the live hosts, told apart by a header ccxt adds
    for exchange in ("okx", "bitget"):
        live = market_venue("live", account(exchange=exchange, password="p" * 8))
        demo = market_venue("demo", account(exchange=exchange, password="p" * 8, ccxt={"sandbox": True}))
        assert live != demo and demo.endswith(live.split("@", 1)[1]) and ":demo@" in demo


def test_binance_with_futures_is_binance_usdm_and_its_budget():
    assert market_venue("a", account(exchange="binance", market="futures")) == market_venue("b", account(exchange="binanceusdm"))


def test_a_password_in_an_api_url_never_reaches_the_venue():
    relay = {"urls": ccxt_config("http://riskd:hunter2@relay.example.com:8001")["urls"]}  # every API behind one relay
    assert market_venue("a", account(exchange="binanceusdm", ccxt=relay)) == "binanceusdm:future@relay.example.com:8001"
