"""Binance USDⓈ-M's mark-price websocket streams, served by the simulator.

Why it exists: riskd follows mark prices between its reads of the account through
ccxt's websocket client (`ccxt.pro`), and that path must be tested through the real
client too. ccxt's `binanceusdm.watch_mark_prices` connects to `<ws>/market/ws/<n>`
and sends `{"method": "SUBSCRIBE", "params": ["btcusdt@markPrice@1s"], "id": 1}`;
Binance answers `{"result": null, "id": 1}` and then pushes one `markPriceUpdate` per
symbol (or, for `!markPrice@arr`, one list of them) every second (every 3 s without
`@1s`). The simulator pushes at that pace and at once whenever a price is set or moved,
so a crash reaches subscribers as it happens. Combined streams (`/stream?streams=a/b`)
wrap each event as `{"stream": name, "data": event}`.

Controls for tests: drop every connection, refuse new ones (the stream "down"), keep
connections open but silent (a stall), and push one false mark (a glitch) that the
REST API never shows.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from riskd.sim import wire
from riskd.sim.parameters import Rejection
from riskd.sim.simulator import Simulator

log = logging.getLogger("riskd.sim")

FAST, SLOW = 1.0, 3.0
"""Seconds between pushes: `@markPrice@1s` and `!markPrice@arr@1s`, else the default."""

PATHS = ("/ws", "/ws/{index}", "/market/ws", "/market/ws/{index}", "/stream", "/market/stream")


@dataclass(eq=False)  # each connection is itself, whatever it subscribed to
class Subscriber:
    """One websocket connection and the streams it asked for."""

    socket: web.WebSocketResponse
    combined: bool
    streams: set[str] = field(default_factory=set)

    @property
    def pace(self) -> float:
        return FAST if any(name.endswith("@1s") for name in self.streams) else SLOW


class MarkStreams:
    """The mark-price websocket endpoint of one simulator, with its test controls."""

    def __init__(self, simulator: Simulator):
        self.simulator = simulator
        self.subscribers: set[Subscriber] = set()
        self.connections = 0
        """Connections accepted since start, so a test can see a reconnect."""
        self.down = False
        self.silent = False
        self.quiet: set[str] = set()
        """Symbols (exchange ids, BTCUSDT) whose marks stop while the others' go on."""
        self._moved = asyncio.Event()

    def moved(self) -> None:
        """Prices changed: push to every subscriber now, not at its next beat."""
        self._moved.set()
        self._moved = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.down:
            return web.Response(status=503, text="Service Unavailable")
        socket = web.WebSocketResponse(heartbeat=None)
        await socket.prepare(request)
        combined = request.path.endswith("/stream")
        subscriber = Subscriber(socket, combined, set(filter(None, request.query.get("streams", "").split("/"))))
        self.subscribers.add(subscriber)
        self.connections += 1
        pusher = asyncio.create_task(self._push(subscriber))
        try:
            async for message in socket:
                if message.type == WSMsgType.TEXT:
                    await self._request(subscriber, message.data)
        finally:
            pusher.cancel()
            self.subscribers.discard(subscriber)
        return socket

    async def _request(self, subscriber: Subscriber, text: str) -> None:
        """SUBSCRIBE, UNSUBSCRIBE and LIST_SUBSCRIPTIONS, answered as Binance does."""
        try:
            request = json.loads(text)
            method, params, number = request["method"], request.get("params", []), request["id"]
            if not isinstance(params, list):
                raise TypeError("params must be a list")
        except (ValueError, KeyError, TypeError):
            await subscriber.socket.send_json({"error": {"code": 3, "msg": "Invalid JSON: expected a request object"}})
            return
        if method == "SUBSCRIBE":
            subscriber.streams.update(params)
            await subscriber.socket.send_json({"result": None, "id": number})
            self.moved()  # the first marks at once, as Binance sends them
        elif method == "UNSUBSCRIBE":
            subscriber.streams.difference_update(params)
            await subscriber.socket.send_json({"result": None, "id": number})
        elif method == "LIST_SUBSCRIPTIONS":
            await subscriber.socket.send_json({"result": sorted(subscriber.streams), "id": number})
        else:
            await subscriber.socket.send_json({"error": {"code": 2, "msg": f"Invalid request: unknown method {method}"}, "id": number})

    async def _push(self, subscriber: Subscriber) -> None:
        while not subscriber.socket.closed:
            try:
                await asyncio.wait_for(self._moved.wait(), subscriber.pace)
            except asyncio.TimeoutError:
                pass
            if self.silent or not subscriber.streams:
                continue
            await self._delay()
            for stream, data in self._events(subscriber.streams):
                await self._send(subscriber, stream, data)

    async def _delay(self) -> None:
        """The simulator's injected latency applies to pushes as to REST replies."""
        seconds = sum(f.seconds for f in self.simulator.faults.active() if f.kind == "latency" and not f.path)
        if seconds:
            await asyncio.sleep(seconds)

    def _events(self, streams: set[str]) -> list[tuple[str, object]]:
        simulator = self.simulator
        simulator.sync()
        ledger, now = simulator.ledger, simulator.ledger.now()
        events = []
        for stream in sorted(streams):
            name = stream.removesuffix("@1s")
            if name == "!markPrice@arr":
                events.append((stream, [wire.mark_price_update(c, ledger.mark(c), now) for c in ledger.contracts.values()]))
            elif name.endswith("@markPrice"):
                try:
                    contract = ledger.contract(name.removesuffix("@markPrice").upper())
                except Rejection:
                    continue  # Binance accepts the subscription and never sends anything for it
                if contract.id in self.quiet:
                    continue
                events.append((stream, wire.mark_price_update(contract, ledger.mark(contract), now)))
        return events

    async def _send(self, subscriber: Subscriber, stream: str, data: object) -> None:
        try:
            await subscriber.socket.send_json({"stream": stream, "data": data} if subscriber.combined else data)
        except ConnectionError:
            pass  # the client went away; its handler ends the subscription

    async def close(self) -> None:
        for subscriber in list(self.subscribers):
            await subscriber.socket.close()

    # --- controls ----------------------------------------------------------------

    async def control(self, body: dict) -> dict:
        """{"drop": true}, {"down": true|false}, {"silent": true|false}, {"quiet": ["BTCUSDT"]}
        (those symbols' marks stop, the others' go on; [] to resume),
        {"glitch": {"symbol": "BTCUSDT", "price": 30000}}; answers the stream's state."""
        if "silent" in body:
            self.silent = bool(body["silent"])
        if "quiet" in body:
            self.quiet = {str(symbol).upper() for symbol in body["quiet"]}
        if "down" in body:
            self.down = bool(body["down"])
        if body.get("drop") or self.down:
            await self.close()
        if "glitch" in body:
            await self._glitch(body["glitch"]["symbol"], float(body["glitch"]["price"]))
        return self.state()

    async def _glitch(self, symbol: str, price: float) -> None:
        """One false mark for `symbol` to its subscribers, which the account never sees."""
        ledger = self.simulator.ledger
        contract = ledger.contract(symbol)
        event = wire.mark_price_update(contract, price, ledger.now())
        for subscriber in list(self.subscribers):
            for stream in subscriber.streams:
                name = stream.removesuffix("@1s")
                if name == f"{contract.id.lower()}@markPrice":
                    await self._send(subscriber, stream, event)
                elif name == "!markPrice@arr":
                    await self._send(subscriber, stream, [event])

    def state(self) -> dict:
        return {
            "connections": self.connections,
            "open": len(self.subscribers),
            "subscriptions": sorted({s for subscriber in self.subscribers for s in subscriber.streams}),
            "down": self.down,
            "silent": self.silent,
            "quiet": sorted(self.quiet),
        }
