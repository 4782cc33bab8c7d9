"""Replaying replies recorded from real venues over loopback HTTP, for the real ccxt classes.

The replies live under tests/data/venues/, each file naming its source. ccxt signs,
sends and parses real requests against this server; only markets are given to ccxt by
hand, since the recordings hold none.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from aiohttp import web

DATA = Path(__file__).parent / "data" / "venues"


def recorded(venue: str) -> dict:
    return json.loads((DATA / f"{venue}.json").read_text())


class Replay:
    """Serves recorded replies by path (or by the path's last segment) and notes each request."""

    def __init__(self, replies: dict):
        self.replies, self.requests = replies, []
        self.sent: list[tuple[str, str, dict, str]] = []
        """Each request in full: method, path, query and body."""
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        self.sent.append((request.method, request.path, dict(request.query), await request.text()))
        reply = self.replies.get(request.path, self.replies.get(request.path.rsplit("/", 1)[-1]))
        if reply is None:
            return web.json_response({"code": -1, "msg": f"no recorded reply for {request.path}"}, status=404)
        return web.json_response(reply)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        await self.runner.cleanup()


def market(client, symbol: str, market_id: str, contract_size: float = 1.0, **extra) -> dict:
    base, rest = symbol.split("/")
    quote, settle = rest.split(":")
    return client.safe_market_structure({
        "id": market_id, "symbol": symbol, "base": base, "quote": quote, "settle": settle,
        "baseId": base, "quoteId": quote, "settleId": settle, "type": "swap", "spot": False, "margin": False,
        "swap": True, "future": False, "option": False, "contract": True, "linear": True, "inverse": False,
        "contractSize": contract_size, "active": True,
        "precision": {"amount": 0.001, "price": 0.01}, "limits": {"amount": {"min": 0.001}},
        "info": {}, **extra,
    })


def pointed(urls, base: str):
    """ccxt's `urls["api"]` (strings, or nested mappings of them) with every host replaced by `base`."""
    if isinstance(urls, dict):
        return {key: pointed(value, base) for key, value in urls.items()}
    return re.sub(r"^https://[^/]+", base, urls) if isinstance(urls, str) else urls
