"""Every client riskd opens verifies through the one shared TLS context, unless an account chooses its own."""

from __future__ import annotations

import ssl

import pytest

from riskd import tls
from riskd.config import AccountConfig, TelegramSettings
from riskd.stream import build_stream_client
from riskd.telegram.bot import build_application


def test_the_shared_context_verifies_certificates_and_hostnames():
    shared = tls.context()
    assert shared is tls.context()
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname
    assert shared.cert_store_stats()["x509_ca"] > 100  # certifi's bundle, as ccxt and httpx would load it


async def test_every_accounts_rest_and_stream_clients_share_it(clients):
    first, second = clients(exchange="binanceusdm"), clients(exchange="bybit")
    stream = build_stream_client(AccountConfig(exchange="okx"))
    try:
        first.open()  # where ccxt would otherwise build a context of its own
        assert first.ssl_context is second.ssl_context is stream.ssl_context is tls.context()
    finally:
        await stream.close()


@pytest.mark.parametrize("own", [{"verify": False}, {"cafile": "/etc/ssl/certs/ca-certificates.crt"},
                                 {"options": {"include_OS_certificates": True}}])
async def test_an_account_that_sets_its_own_verification_keeps_it(clients, own):
    client = clients(exchange="binanceusdm", ccxt=own)
    stream = build_stream_client(AccountConfig(exchange="binanceusdm", ccxt=own))
    try:
        client.open()
        assert client.ssl_context is not tls.context() and stream.ssl_context is not tls.context()
        if own == {"verify": False}:
            assert client.ssl_context is False  # ccxt's own meaning of verify: false, untouched
    finally:
        await stream.close()


async def test_both_telegram_pools_verify_with_it():
    application = build_application(TelegramSettings(token="123456:tls-test-token", chat_ids=[1]))
    # httpx keeps the context on its connection pool; there is no public accessor
    updates, others = application.bot._request
    pools = [request._client._transport._pool for request in (updates, others)]
    assert updates is not others and all(pool._ssl_context is tls.context() for pool in pools)
