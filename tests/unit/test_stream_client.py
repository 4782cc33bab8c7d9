"""The websocket client a mark-price stream is built with: public, pointed where the account's is."""

from __future__ import annotations

import ccxt
from pydantic import SecretStr

from riskd.config import AccountConfig
from riskd.sim import ccxt_config
from riskd.stream import build_stream_client, venue_key, watch_method

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
MARKET = ccxt.binanceusdm().safe_market_structure({
    "id": "BTCUSDT", "symbol": BTC, "base": "BTC", "quote": "USDT", "settle": "USDT", "type": "swap",
    "spot": False, "swap": True, "contract": True, "linear": True, "contractSize": 1.0,
})


def account(**fields) -> AccountConfig:
    return AccountConfig(exchange="binanceusdm", api_key=SecretStr("key-Hq3"), secret=SecretStr("secret-Vt9"), **fields)


def test_the_stream_client_has_the_accounts_urls_and_never_its_credentials():
    overrides = {key: value for key, value in ccxt_config("http://127.0.0.1:9").items() if key not in ("apiKey", "secret")}
    client = build_stream_client(account(ccxt={"apiKey": "in-ccxt-too", "uid": "uid-Zk4", "privateKey": "key-Wd2"}), overrides)
    assert not client.apiKey and not client.secret and not client.uid and not client.privateKey
    assert client.urls["api"]["ws"]["linear"] == "ws://127.0.0.1:9/ws"
    assert watch_method(client) == "watch_mark_prices"


def test_it_keeps_only_the_markets_of_the_symbols_held_and_loads_its_own_when_one_is_missing():
    markets = {BTC: MARKET, "SOL/USDT:USDT": {**MARKET, "id": "SOLUSDT", "symbol": "SOL/USDT:USDT", "base": "SOL"}}
    assert list(build_stream_client(account(), None, markets, (BTC,)).markets) == [BTC]
    assert not build_stream_client(account(), None, markets, (BTC, ETH)).markets  # ETH unknown: ccxt loads them


def test_bybit_has_its_mark_prices_in_the_tickers_stream():
    assert watch_method(build_stream_client(AccountConfig(exchange="bybit"))) == "watch_tickers"
    assert watch_method(build_stream_client(AccountConfig(exchange="okx"))) == "watch_mark_prices"


def test_accounts_share_a_venue_when_their_stream_clients_would_be_the_same():
    def on(url: str, **fields) -> str:
        pointed = ccxt_config(url)
        return venue_key(AccountConfig(
            exchange="binanceusdm", api_key=pointed["apiKey"], secret=pointed["secret"],
            ccxt={"urls": pointed["urls"], "options": pointed["options"]}, **fields,
        ))

    assert on("http://127.0.0.1:9") == on("http://127.0.0.1:9")
    assert on("http://127.0.0.1:9") != on("http://127.0.0.1:10")  # another simulator, another host
    assert on("http://127.0.0.1:9") != on("http://127.0.0.1:9", timeout="5s")
    # the credentials are not part of it, nor of the key's text
    other = AccountConfig(exchange="binanceusdm", api_key=SecretStr("key-Pw8"), secret=SecretStr("secret-Lm5"),
                          ccxt={"uid": "uid-Zk4"})
    assert venue_key(account()) == venue_key(other) and "Zk4" not in venue_key(other)
    assert venue_key(account()) != venue_key(account(ccxt={"proxies": {"https": "http://proxy:3128"}}))
    assert venue_key(AccountConfig(exchange="bybit")) != venue_key(AccountConfig(exchange="okx"))
