"""An embedded exchange (Binance USDⓈ-M futures and spot, and the futures account in Bybit
v5's dialect) for riskd: the keyless "sim" account, the demo, integration tests and benchmarks.

Why it exists: the guardian has to be exercised end to end (the real ccxt client,
real HTTP, real error mapping) without keys, money or a network, against prices and
failures that can be scripted. `Simulator` is a futures account and a spot account on
one market, `SimServer` serves them to ccxt over HTTP (and the Binance futures mark prices
over a websocket, for `ccxt.pro`), `ccxt_config(url)` points `binanceusdm` at it,
`ccxt_config(url, "spot")` points `binance` (spot) at it and `bybit.ccxt_config(url)`
points `bybit` at it (REST only: the Bybit dialect serves no websocket).
"""

from riskd.sim import bybit
from riskd.sim.server import SimServer, ccxt_config, serve
from riskd.sim.simulator import EMBEDDED_REQUEST_LOG, Simulator

__all__ = ["SimServer", "Simulator", "ccxt_config", "serve", "start_embedded"]


async def start_embedded(settings) -> tuple[SimServer, dict]:
    """Start the demo exchange for an `exchange: sim` account (its `sim:` settings).

    Returns the running server and the ccxt settings that point the dialect's ccxt
    class at it (`binanceusdm`, or `bybit` for `venue: bybit`); the client keeps riskd's
    shipped rate limiter, as it would against the real venue. The embedded exchange
    keeps a short request log: riskd may run for months.
    """
    simulator = Simulator.demo(seed=settings.seed, volatility=settings.volatility, hedge=settings.hedge,
                               request_log=EMBEDDED_REQUEST_LOG)
    if settings.scenario:
        simulator.run_scenario(settings.scenario)
    if settings.latency:
        simulator.add_fault("latency", seconds=settings.latency.total_seconds())
    server = SimServer(simulator)
    url = await server.start()
    settings_for = bybit.ccxt_config if settings.venue == "bybit" else ccxt_config
    return server, settings_for(url)
