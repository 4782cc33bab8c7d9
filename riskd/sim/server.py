"""The simulator over HTTP: Binance USDⓈ-M futures and spot REST for ccxt, the futures
mark-price websocket streams for ccxt.pro (see stream.py), the same futures account in
Bybit v5's dialect (`bybit.py`, REST only), plus /_sim controls.

Why it exists: the guardian talks to exchanges only through the real, unmodified
ccxt client, so the simulator must be reachable the same way: on 127.0.0.1, at the
paths `binanceusdm` (futures, /fapi) and `binance` (spot, /api/v3) request, answering
with Binance's JSON and error codes. Signed
endpoints need an `X-MBX-APIKEY` header but no valid signature. Every API request is
logged and passes through the injected faults, each answered in the dialect of the path
asked (Binance's codes, or Bybit's on /v5). The /_sim/ routes (unsigned JSON,
never faulted or logged) expose the simulator's controls to other processes.
"""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import Any, Awaitable, Callable

from aiohttp import web

from riskd.sim import bybit, spot, wire
from riskd.sim.faults import Fault
from riskd.sim.parameters import Rejection, decimal, mandatory
from riskd.sim.simulator import Simulator
from riskd.sim.stream import PATHS as STREAM_PATHS
from riskd.sim.stream import MarkStreams
from riskd.sim.weights import HEADER, WeightMeter

# ccxt's urls['api'] keys for Binance, each to its path on the simulator.
API_PATHS = {
    "sapi": "/sapi/v1", "sapiV2": "/sapi/v2", "sapiV3": "/sapi/v3", "sapiV4": "/sapi/v4",
    "dapiPublic": "/dapi/v1", "dapiPrivate": "/dapi/v1", "dapiPrivateV2": "/dapi/v2",
    "dapiData": "/futures/data", "eapiPublic": "/eapi/v1", "eapiPrivate": "/eapi/v1",
    "fapiPublic": "/fapi/v1", "fapiPublicV2": "/fapi/v2", "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1", "fapiPrivateV2": "/fapi/v2", "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data", "public": "/api/v3", "private": "/api/v3", "v1": "/api/v1",
    "papi": "/papi/v1", "papiV2": "/papi/v2",
}
INTERVALS = {"1m": 1, "3m": 3, "5m": 5, "15m": 15, "30m": 30, "1h": 60, "2h": 120, "4h": 240,
             "6h": 360, "8h": 480, "12h": 720, "1d": 1440}
RATE_LIMITED = Rejection(-1003, "Too many requests; current limit is 2400 request weight per 1 MINUTE.", 429)
REVOKED = Rejection(-2015, "Invalid API-key, IP, or permissions for action.", 401)
CLOCK_SKEW = Rejection(-1021, "Timestamp for this request is outside of the recvWindow.", 400)
UNAVAILABLE = {
    "unavailable": {"msg": "Service Unavailable."},
    "internal": {"code": -1001, "msg": "Internal error; unable to process your request. Please try again."},
    "unknown": {"code": -1000, "msg": "Unknown error, please check your request or try again later."},
}
# ccxt's urls['api']['ws'] keys for Binance, each to its path on the simulator. Only the
# futures market streams are served; the others point here so nothing reaches Binance.
WS_PATHS = {
    "spot": "/ws", "margin": "/ws", "linear": "/ws", "inverse": "/ws", "stock": "/ws",
    "option": "/public/ws", "optionMarket": "/market/ws", "optionPrivate": "/private/ws", "papi": "/pm/ws",
}
WS_API_PATHS = {"spot": "/ws-api/v3", "linear": "/ws-fapi/v1", "inverse": "/ws-dapi/v1"}
PROXY_PAGE = ("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
              "</h1></center><hr><center>CloudFront</center></body></html>")

Params = dict[str, str]
Endpoint = Callable[[Simulator, Params], Any]
_dumps = partial(json.dumps, separators=(",", ":"))


def ccxt_config(base_url: str, market: str = "futures") -> dict:
    """Constructor settings that point ccxt at a simulator, every API family included so
    nothing can reach the real Binance by accident.

    market "futures": for `binanceusdm`. market "spot": for `binance`, with spot as the
    default type and its markets only (by default ccxt's `binance` also loads the
    futures markets, and with keys the margin pairs from /sapi).
    """
    base = base_url.rstrip("/")
    socket = "ws" + base.removeprefix("http")
    options: dict[str, Any] = {"fetchCurrencies": False, "warnOnFetchOpenOrdersWithoutSymbol": False}
    if market == "spot":
        options.update({"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchMargins": False})
    elif market != "futures":
        raise ValueError(f"market must be 'futures' or 'spot', not {market!r}")
    return {
        "apiKey": "sim",
        "secret": "sim",
        "urls": {"api": {
            **{key: base + path for key, path in API_PATHS.items()},
            "ws": {
                **{key: socket + path for key, path in WS_PATHS.items()},
                "ws-api": {key: socket + path for key, path in WS_API_PATHS.items()},
            },
        }},
        "options": options,
    }


def _json(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def _error(rejection: Rejection, headers: dict | None = None) -> web.Response:
    return _json({"code": rejection.code, "msg": rejection.msg}, rejection.status, headers)


async def _params(request: web.Request) -> Params:
    params = dict(request.query)
    if request.method in ("POST", "PUT") and request.content_type == "application/x-www-form-urlencoded":
        params.update(await request.post())
    elif request.method == "POST" and request.content_type == "application/json":
        raw = await request.read()  # cached by aiohttp: the log and the endpoint both ask
        try:
            body = json.loads(raw) if raw else {}  # Bybit's orders: a JSON object, its booleans kept
        except ValueError:
            body = {}  # the endpoint then names the parameter it misses
        params.update(body if isinstance(body, dict) else {})
    return params


def _flag(params: Params, name: str) -> bool:
    value = str(params.get(name, "false")).lower()
    if value not in ("true", "false"):
        raise Rejection(-1130, f"Data sent for parameter '{name}' is not valid.")
    return value == "true"


def _integer(params: Params, name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    return default if value in (None, "") else int(decimal(value, name))


def _each(simulator: Simulator, params: Params, shape: Callable) -> Any:
    """One object for `symbol`, else a list over every symbol, as Binance's market data does."""
    ledger = simulator.ledger
    if params.get("symbol"):
        return shape(ledger.contract(params["symbol"]))
    return [shape(c) for c in ledger.contracts.values()]


# --- API endpoints: (simulator, params) -> JSON ---------------------------------------

def _position_risk(simulator: Simulator, params: Params, rows: Callable) -> list:
    wanted = simulator.ledger.contract(params["symbol"]).id if params.get("symbol") else None
    return [r for r in rows(simulator.ledger) if wanted in (None, r["symbol"])]


def _leverage_bracket(simulator: Simulator, params: Params) -> Any:
    return _each(simulator, params, wire.leverage_bracket)


def _new_order(simulator: Simulator, params: Params) -> dict:
    order = simulator.ledger.place(
        params.get("symbol"), params.get("side"), params.get("type"), params.get("quantity"),
        params.get("price"), params.get("timeInForce"), _flag(params, "reduceOnly"),
        params.get("newClientOrderId"), params.get("positionSide"))
    return wire.order(order)


def _find_order(simulator: Simulator, params: Params) -> dict:
    order = simulator.ledger.order(params.get("symbol"), params.get("orderId"), params.get("origClientOrderId"))
    return wire.order(order, query=True)


def _cancel_order(simulator: Simulator, params: Params) -> dict:
    order = simulator.ledger.cancel(params.get("symbol"), params.get("orderId"), params.get("origClientOrderId"))
    return wire.order(order)


def _cancel_all(simulator: Simulator, params: Params) -> dict:
    simulator.ledger.cancel_all(params.get("symbol"))
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def _ticker(simulator: Simulator, params: Params) -> Any:
    ledger, market = simulator.ledger, simulator.market
    return _each(simulator, params, lambda c: wire.ticker(c, market.day(c.id), ledger.mark(c), ledger.now()))


def _klines(spot: bool, simulator: Simulator, params: Params) -> list:
    """Candles from the same price path on both dialects: futures caps `limit` at 1500,
    spot at 1000, as Binance does."""
    listing = (simulator.spot.pair if spot else simulator.ledger.contract)(params.get("symbol"))
    interval = params.get("interval")
    if not interval:
        raise mandatory("interval")
    if interval not in INTERVALS:
        raise Rejection(-1120, "Invalid interval.")
    minutes = INTERVALS[interval]
    limit = min(max(_integer(params, "limit", 500), 1), 1000 if spot else 1500)
    candles = simulator.market.candles(listing.id, minutes, _integer(params, "startTime"),
                                       _integer(params, "endTime"), limit)
    return [wire.kline(listing, c, minutes) for c in candles]


def _user_trades(simulator: Simulator, params: Params) -> list:
    contract = simulator.ledger.contract(params.get("symbol"))
    start, end = _integer(params, "startTime", 0), _integer(params, "endTime", 2**63)
    fills = [f for f in simulator.ledger.fills
             if f.order.contract == contract and start <= f.time <= end]
    return [wire.trade(f) for f in fills[-min(_integer(params, "limit", 500), 1000):]]


def _income(simulator: Simulator, params: Params) -> list:
    """The income history, of which the simulator keeps realized PnL: oldest first, the
    last seven days unless `startTime` says otherwise, at most `limit` (100, up to 1000)."""
    kind = params.get("incomeType")
    if kind not in (None, "REALIZED_PNL"):
        return []
    now = simulator.ledger.now()
    start, end = _integer(params, "startTime", now - 7 * 86_400_000), _integer(params, "endTime", now)
    symbol = params.get("symbol")
    fills = [f for f in simulator.ledger.fills
             if f.realized and start <= f.time <= end and (symbol is None or f.order.contract.id == symbol)]
    return [wire.income(f) for f in fills[:min(_integer(params, "limit", 100), 1000)]]


def _countdown(simulator: Simulator, params: Params) -> dict:
    contract = simulator.ledger.contract(params.get("symbol"))
    milliseconds = _integer(params, "countdownTime")
    if milliseconds is None:
        raise mandatory("countdownTime")
    simulator.countdown(contract.id, milliseconds)
    return {"symbol": contract.id, "countdownTime": str(milliseconds)}


def _margin_type(simulator: Simulator, params: Params) -> dict:
    """The account is cross margin only: CROSSED is what it has (Binance's answer when nothing
    needs changing), ISOLATED is refused rather than pretended."""
    simulator.ledger.contract(params.get("symbol"))
    margin_type = params.get("marginType")
    if margin_type is None:
        raise mandatory("marginType")
    if margin_type.upper() == "CROSSED":
        raise Rejection(-4046, "No need to change margin type.")
    raise Rejection(-1000, "The simulated account is cross margin only.")


def _leverage(simulator: Simulator, params: Params) -> dict:
    position = simulator.ledger.set_leverage(params.get("symbol"), params.get("leverage"))
    return {"leverage": position.leverage, "maxNotionalValue": "1000000000", "symbol": position.contract.id}


ROUTES: tuple[tuple[str, str, bool, Endpoint], ...] = (
    ("GET", "/fapi/v1/ping", False, lambda s, p: {}),
    ("GET", "/fapi/v1/time", False, lambda s, p: {"serverTime": s.ledger.now()}),
    ("GET", "/fapi/v1/exchangeInfo", False, lambda s, p: wire.exchange_info(s.ledger)),
    ("GET", "/fapi/v1/ticker/24hr", False, _ticker),
    ("GET", "/fapi/v1/ticker/price", False,
     lambda s, p: _each(s, p, lambda c: wire.ticker_price(c, s.ledger.mark(c), s.ledger.now()))),
    ("GET", "/fapi/v2/ticker/price", False,
     lambda s, p: _each(s, p, lambda c: wire.ticker_price(c, s.ledger.mark(c), s.ledger.now()))),
    ("GET", "/fapi/v1/premiumIndex", False,
     lambda s, p: _each(s, p, lambda c: wire.premium_index(c, s.ledger.mark(c), s.ledger.now()))),
    ("GET", "/fapi/v1/klines", False, partial(_klines, False)),
    ("GET", "/api/v3/klines", False, partial(_klines, True)),
    ("GET", "/fapi/v1/depth", False,
     lambda s, p: wire.depth(s.ledger.contract(p.get("symbol")), s.ledger.mark(s.ledger.contract(p.get("symbol"))), s.ledger.now())),
    ("GET", "/fapi/v3/account", True, lambda s, p: wire.account(s.ledger)),
    ("GET", "/fapi/v3/positionRisk", True, lambda s, p: _position_risk(s, p, wire.position_risk)),
    ("GET", "/fapi/v2/positionRisk", True, lambda s, p: _position_risk(s, p, wire.position_risk_v2)),
    ("GET", "/fapi/v1/leverageBracket", True, _leverage_bracket),
    ("GET", "/fapi/v1/positionSide/dual", True, lambda s, p: {"dualSidePosition": s.ledger.hedge}),
    ("GET", "/fapi/v1/multiAssetsMargin", True, lambda s, p: {"multiAssetsMargin": False}),
    ("GET", "/fapi/v1/openOrders", True,
     lambda s, p: [wire.order(o, query=True) for o in s.ledger.open_orders(p.get("symbol"))]),
    ("POST", "/fapi/v1/order", True, _new_order),
    ("GET", "/fapi/v1/order", True, _find_order),
    ("DELETE", "/fapi/v1/order", True, _cancel_order),
    ("DELETE", "/fapi/v1/allOpenOrders", True, _cancel_all),
    ("GET", "/fapi/v1/userTrades", True, _user_trades),
    ("GET", "/fapi/v1/income", True, _income),
    ("POST", "/fapi/v1/countdownCancelAll", True, _countdown),
    ("POST", "/fapi/v1/leverage", True, _leverage),
    ("POST", "/fapi/v1/marginType", True, _margin_type),
)


class SimServer:
    """Serves one Simulator on `host:port` (port 0: any free port) until stopped."""

    def __init__(self, simulator: Simulator | None = None, host: str = "127.0.0.1", port: int = 0):
        self.simulator = simulator or Simulator.demo()
        self.host = host
        self.port = port
        self.url: str | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.streams = MarkStreams(self.simulator)
        self.weights = WeightMeter(self.simulator.clock)
        self.bybit_limits = bybit.EndpointLimits()

    async def start(self) -> str:
        """Start serving; returns the base URL, e.g. http://127.0.0.1:41234."""
        app = web.Application(middlewares=[self._middleware])
        for method, path, private, endpoint in (*ROUTES, *spot.ROUTES):
            app.router.add_route(method, path, self._endpoint(endpoint, private))
        for method, path, private, endpoint in bybit.ROUTES:
            app.router.add_route(method, path, self._bybit_endpoint(endpoint, private))
        for path in STREAM_PATHS:
            app.router.add_get(path, self.streams.handle)
        app.router.add_route("GET", "/_sim/stream", self._stream)
        app.router.add_route("POST", "/_sim/stream", self._stream)
        for method, path, control in (
            ("GET", "/_sim/state", self._state), ("POST", "/_sim/price", self._price),
            ("POST", "/_sim/scenario", self._scenario), ("POST", "/_sim/fault", self._fault),
            ("DELETE", "/_sim/fault", self._clear_faults), ("POST", "/_sim/order", self._order),
            ("POST", "/_sim/spot/order", self._spot_order),
            ("GET", "/_sim/requests", self._requests), ("DELETE", "/_sim/requests", self._clear_requests),
        ):
            app.router.add_route(method, path, self._control(control))
        self._stopping.clear()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self.url = f"http://{self.host}:{self.port}"
        return self.url

    async def stop(self) -> None:
        """Stop serving; requests hanging in a timeout fault end at once."""
        self._stopping.set()
        await self.streams.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- API ---------------------------------------------------------------------

    def _endpoint(self, endpoint: Endpoint, private: bool) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            try:
                if private and not request.headers.get("X-MBX-APIKEY"):
                    raise Rejection(-2015, "Invalid API-key, IP, or permissions for action.", 401)
                self.simulator.sync()
                return _json(endpoint(self.simulator, await _params(request)))
            except Rejection as rejection:
                return _error(rejection)
        return handle

    def _bybit_endpoint(self, endpoint: bybit.Endpoint, private: bool) -> Callable[[web.Request], Awaitable[web.Response]]:
        """A /v5 route: Bybit's envelope, and its refusals as HTTP 200 with a retCode."""
        async def handle(request: web.Request) -> web.Response:
            now = self.simulator.ledger.now()
            key = request.headers.get(bybit.API_KEY_HEADER)
            # Bybit reports each private endpoint's per-second limit on every reply to it
            limits = self.bybit_limits.take(key, request.path, now) if private and key else None
            try:
                if private and not key:
                    raise Rejection(10003, "API key is invalid.")
                self.simulator.sync()
                return _json(bybit.envelope(endpoint(self.simulator.ledger, await _params(request)), now), headers=limits)
            except Rejection as rejection:
                return _json(bybit.rejected(rejection, now), headers=limits)
        return handle

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        control = request.path.startswith("/_sim/")
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await handler(request)  # the REST faults are for REST; the stream has its own controls
        try:
            return await (handler(request) if control else self._faulted(request, handler))
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
            if control:
                return _json({"error": f"no control {request.method} {request.path}"}, 404)
            return _error(Rejection(-5000, f"Path {request.path}, Method {request.method} is invalid", 404))

    async def _faulted(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        """Log and weigh the request, act out the faults that apply to it, say the weight used,
        and log the status it got once it has been answered (so a test can wait for a reply
        that comes late)."""
        params = await _params(request)
        used = self.weights.add(request.method, request.path, params)
        entry = self.simulator.log_request(request.method, request.path, params)
        faults = self.simulator.faults.take(request.path, params.get("symbol"))
        entry["faults"] = [f.kind for f in faults]
        response = await self._act_out(request, handler, faults)
        entry["status"] = response.status
        response.headers[HEADER] = str(used)
        return response

    async def _act_out(self, request: web.Request, handler: Callable, faults: list[Fault]) -> web.StreamResponse:
        delay = sum(f.seconds for f in faults if f.kind == "latency")
        if delay:
            await asyncio.sleep(delay)
        failure: Fault | None = next((f for f in faults if f.kind != "latency"), None)
        if failure is None:
            return await handler(request)
        # a refusal in the dialect of the path asked: Bybit's on /v5, Binance's elsewhere
        refuse = partial(self._bybit_fault, request) if request.path.startswith("/v5/") else self._binance_fault
        if failure.kind in ("http_429", "http_418", "revoked", "clock_skew"):
            return refuse(failure.kind, failure)
        if failure.kind == "dropped":
            request.transport.abort()  # the connection goes before any reply
            return web.Response(status=502)
        if failure.kind == "http_503" and failure.body != "unknown":
            return refuse(failure.body, failure)
        response = await handler(request)  # takes effect; the reply is lost or spoiled
        if failure.kind == "timeout":
            try:
                await asyncio.wait_for(self._stopping.wait(), failure.seconds)
            except asyncio.TimeoutError:
                pass
            return web.Response(status=504, text="Gateway Timeout")
        if failure.kind == "http_503":
            return refuse("unknown", failure)
        if failure.body == "truncated":
            text = response.text or ""
            return web.Response(text=text[:len(text) // 2], content_type="application/json")
        return web.Response(text=PROXY_PAGE, content_type="text/html")

    def _binance_fault(self, kind: str, failure: Fault) -> web.Response:
        """Binance's reply to a fault: its kind, or an http_503 fault's body."""
        if kind == "http_429":
            return _error(RATE_LIMITED, {"Retry-After": f"{failure.seconds:g}"})
        if kind == "http_418":
            until = self.simulator.ledger.now() + int(failure.seconds * 1000)
            banned = Rejection(-1003, f"Way too much request weight used; IP banned until {until}. "
                               "Please use the websocket for live updates to avoid bans.", 418)
            return _error(banned, {"Retry-After": f"{failure.seconds:g}"})
        if kind == "revoked":
            return _error(REVOKED)
        if kind == "clock_skew":
            return _error(CLOCK_SKEW)
        return _json(UNAVAILABLE[kind], 503)

    def _bybit_fault(self, request: web.Request, kind: str, failure: Fault) -> web.Response:
        """Bybit's reply to a fault (see bybit.fault_reply)."""
        reply = bybit.fault_reply(kind, failure.seconds, self.simulator.ledger.now(), request.headers)
        if isinstance(reply.body, dict):
            return _json(reply.body, reply.status, dict(reply.headers))
        return web.Response(status=reply.status, text=reply.body, headers=reply.headers)

    # --- controls ----------------------------------------------------------------

    def _control(self, control: Callable[[dict], Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            try:
                body = await request.json() if request.can_read_body else {}
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                return _json(control(body))
            except Rejection as rejection:
                return _error(rejection)
            except (ValueError, TypeError, KeyError) as error:
                return _json({"error": str(error)}, 400)
        return handle

    async def _stream(self, request: web.Request) -> web.Response:
        """The mark-price stream's state, or its controls (see MarkStreams.control)."""
        try:
            body = await request.json() if request.can_read_body else {}
            return _json(await self.streams.control(body if isinstance(body, dict) else {}))
        except Rejection as rejection:
            return _error(rejection)
        except (ValueError, TypeError, KeyError) as error:
            return _json({"error": str(error)}, 400)

    def _state(self, body: dict) -> dict:
        return self.simulator.state()

    def _price(self, body: dict) -> dict:
        """{"symbol": "BTC/USDT:USDT" or "BTCUSDT", "price": 50000} or {"move": -0.2}."""
        if "move" in body:
            self.simulator.move(float(body["move"]))
        else:
            self.simulator.set_price(body.get("symbol"), float(body["price"]))
        self.streams.moved()
        return self.simulator.state()["prices"]

    def _scenario(self, body: dict) -> dict:
        """{"name": "crash", "depth": 0.3, "duration": 30}; name "none" ends it."""
        name = body.pop("name", None)
        self.simulator.run_scenario(name, **{k: float(v) for k, v in body.items()})
        self.streams.moved()
        return {"scenario": name, "params": body}

    def _fault(self, body: dict) -> dict:
        """{"kind": "http_503", "duration": 60, "count": 3, "path": "/fapi", "seconds": 0.05, "body": ..., "symbol": "SOLUSDT"}"""
        return self.simulator.add_fault(**body).to_dict()

    def _clear_faults(self, body: dict) -> dict:
        return {"cleared": self.simulator.clear_faults()}

    def _order(self, body: dict) -> dict:
        """An order from another bot on the same account: the API's order fields, unsigned."""
        reduce_only = str(body.get("reduceOnly", "false")).lower() == "true"
        order = self.simulator.place_order(
            body.get("symbol"), body.get("side"), body.get("quantity"), body.get("type", "MARKET"),
            body.get("price"), reduce_only=reduce_only, client_order_id=body.get("newClientOrderId"),
            time_in_force=body.get("timeInForce"))
        return wire.order(order)

    def _spot_order(self, body: dict) -> dict:
        """A spot order from someone else on the spot account: the API's order fields, unsigned."""
        order = self.simulator.place_spot_order(
            body.get("symbol"), body.get("side"), body.get("quantity"), body.get("type", "MARKET"),
            body.get("price"), client_order_id=body.get("newClientOrderId"),
            time_in_force=body.get("timeInForce"), quote_quantity=body.get("quoteOrderQty"))
        return spot.order_reply(order, "new")

    def _requests(self, body: dict) -> list:
        return list(self.simulator.requests)

    def _clear_requests(self, body: dict) -> dict:
        return {"cleared": self.simulator.clear_requests()}


async def serve(host: str, port: int, seed: int, scenario: str | None, latency: float,
                venue: str = "binance", hedge: bool = False) -> None:
    """Serve the demo account until cancelled. `scenario` is a name from
    market.SCENARIOS, optionally with parameters: "crash:depth=0.4,duration=20,after=10".
    Both dialects are always served; `venue` ("binance" or "bybit") says which one the
    banner tells how to point ccxt at, and `hedge` puts the futures account in hedge mode."""
    simulator = Simulator.demo(seed=seed, hedge=hedge)
    if scenario:
        name, _, args = scenario.partition(":")
        params = dict(item.split("=", 1) for item in args.split(",") if item)
        simulator.run_scenario(name, **{k.strip(): float(v) for k, v in params.items()})
    if latency > 0:
        simulator.add_fault("latency", seconds=latency)
    server = SimServer(simulator, host, port)
    url = await server.start()
    mode = ", futures in hedge mode" if hedge else ""
    if venue == "bybit":
        what, client, pointed = "Bybit v5 linear perpetuals", "bybit", bybit.ccxt_config(url)
    else:
        what, client, pointed = "Binance USDⓈ-M futures and spot", "binanceusdm", ccxt_config(url)
    print(f"riskd sim: {what} API at {url}{mode} (state: {url}/_sim/state)", flush=True)
    if venue != "bybit":
        print(f"riskd sim: mark-price streams at {url.replace('http', 'ws', 1)}/ws", flush=True)
    settings = {key: value for key, value in pointed.items() if key in ("urls", "options")}
    stream = ", stream: false (no websocket in this dialect)" if venue == "bybit" else ""
    print(f"riskd sim: guard it as exchange: {client}{stream}, with ccxt: {json.dumps(settings)}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
