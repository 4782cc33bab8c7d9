"""Fixtures the unit tests share."""

from __future__ import annotations

import pytest

from riskd.config import AccountConfig
from riskd.exchange import build_client


@pytest.fixture
async def clients():
    """Builds ccxt clients as riskd builds them (`exchange.build_client`) for an account with
    `account` settings and made-up keys; each is closed when the test ends. Nothing is sent."""
    built = []

    def build(**account):
        client = build_client(AccountConfig(api_key="k" * 8, secret="s" * 8, **account))
        built.append(client)
        return client

    yield build
    for client in built:
        await client.close()
