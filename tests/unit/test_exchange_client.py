"""How riskd builds its ccxt client: configuration only, no network."""

from __future__ import annotations

import ccxt.async_support as ccxt
import pytest

from riskd.config import AccountConfig
from riskd.exchange import build_client


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
