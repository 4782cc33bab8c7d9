"""One verified TLS context for every HTTPS and websocket client riskd opens.

Why it exists: ccxt builds a context of its own for every client, and httpx for every
Telegram request pool, each loading certifi's whole certificate bundle into OpenSSL
(about 0.8 MB of memory apiece, outside Python's heap). An account has a REST client
and a stream client, and the bot two pools, so a hundred accounts held two hundred
copies of the same certificates. A context is made to be shared: it only holds the
trusted certificates and the verification settings, the same for every client.
"""

from __future__ import annotations

import ssl
from functools import cache

import certifi

OWN_VERIFICATION = ("verify", "cafile", "ssl_context")
"""ccxt settings with which an account chooses its own verification; riskd then leaves it alone."""


@cache
def context() -> ssl.SSLContext:
    """The shared context: certifi's certificates, hostnames checked (what ccxt and httpx build by default)."""
    return ssl.create_default_context(cafile=certifi.where())


def ccxt_settings(own: dict) -> dict:
    """The shared context as a ccxt setting, unless the account's `ccxt` mapping verifies its own way."""
    chooses = any(key in own for key in OWN_VERIFICATION) or "include_OS_certificates" in own.get("options", {})
    return {} if chooses else {"ssl_context": context()}
