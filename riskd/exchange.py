"""The ccxt adapter: one immutable Snapshot per account per tick, and the orders riskd sends.

It speaks ccxt's unified API so any exchange ccxt supports can be guarded, and reads
the venues riskd knows through their profiles (`venues.py`): equity is what the venue
liquidates against, notional is computed here (contracts × contract size × mark), and
closing orders carry the venue's own hedge-mode parameter. It never lets an exchange's
failure look like an account worth zero: a reply that is not JSON is an error, and any
failed read gives a Snapshot with `error` set instead of figures.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable

import ccxt.async_support as ccxt

from riskd import budget, tls, venues, wording
from riskd.config import INCOME_VENUES, AccountConfig
from riskd.domain import ClosedTrade, Order, Position, ReadFailure, Side, Snapshot, frozen_mapping
from riskd.redact import redact
from riskd.venues import AccountFigures, Unvalued, market_options, venue

BRIDGES = ("USDC", "BTC")
"""Markets a spot holding without a market in the quote currency is priced through."""

FUTURES_TYPES = ("future", "swap", "delivery", "linear", "inverse")

PASSING_FAILURES = {
    "bybit": {"10000": ccxt.OperationFailed, "10016": ccxt.OperationFailed},
}
"""Venue codes for the exchange failing for now, which ccxt leaves a plain ExchangeError (a
refusal): Bybit's 10016 "Server error" and 10000 "Server Timeout"
(https://bybit-exchange.github.io/docs/v5/error). Mapped as ccxt maps Binance's -1001 and
-1000, so the same trouble reads the same on both venues."""


@dataclass(frozen=True, slots=True)
class ExchangeFailure:
    """What riskd makes of a failed exchange call: what kind of failure, and in words.

    `text` names the exception but holds no secret or signature; it is what a person reads.
    """

    kind: ReadFailure
    text: str


def explain(error: BaseException) -> ExchangeFailure:
    """Map a ccxt (or other) exception to riskd's words, without secrets or signatures."""
    text = redact(f"{type(error).__name__}: {error}")[:300]
    if isinstance(error, (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.AccountSuspended)):
        return ExchangeFailure(ReadFailure.AUTH, f"the exchange refused the credentials or permissions ({text}); check the API key")
    if isinstance(error, ccxt.RateLimitExceeded | ccxt.DDoSProtection):
        return ExchangeFailure(ReadFailure.RATE_LIMIT, f"rate limited by the exchange ({text})")
    if isinstance(error, ccxt.RequestTimeout | asyncio.TimeoutError | TimeoutError):
        return ExchangeFailure(ReadFailure.TIMEOUT, f"the exchange did not answer in time ({text})")
    if isinstance(error, ccxt.NetworkError):
        return ExchangeFailure(ReadFailure.NETWORK, f"the exchange is unreachable or unavailable ({text})")
    if isinstance(error, ccxt.BadResponse):
        return ExchangeFailure(ReadFailure.MALFORMED, f"the exchange sent a reply riskd cannot read ({text})")
    if isinstance(error, ccxt.OperationFailed):
        # A failure on the exchange's side that may pass (Binance's -1000 and -1001: an
        # internal error, a request whose outcome is unknown), not a reply riskd misread.
        return ExchangeFailure(ReadFailure.NETWORK, f"the exchange failed to carry out the request ({text})")
    if isinstance(error, ccxt.ExchangeError):
        return ExchangeFailure(ReadFailure.REJECTED, f"the exchange rejected the request ({text})")
    return ExchangeFailure(ReadFailure.MALFORMED, f"unexpected reply from the exchange ({text})")


def deep_merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def build_client(account: AccountConfig, overrides: dict | None = None) -> Any:
    """The ccxt client for `account`: its `ccxt` mapping deep-merged over riskd's defaults."""
    exchange_id = sim_exchange(account) if account.is_sim else account.exchange
    settings: dict[str, Any] = {"enableRateLimit": True, "timeout": int(account.timeout.total_seconds() * 1000)}
    for name, field in (("apiKey", account.api_key), ("secret", account.secret), ("password", account.password)):
        if field is not None:
            settings[name] = field.get_secret_value()
    if exchange_id.startswith("binance"):
        settings["options"] = {"warnOnFetchOpenOrdersWithoutSymbol": False, "fetchCurrencies": False}
    settings = deep_merge(settings, {"options": market_options(exchange_id, account.market)})
    settings = deep_merge(deep_merge(settings, overrides or {}), account.ccxt)
    client = getattr(ccxt, exchange_id)({**settings, **tls.ccxt_settings(account.ccxt)})
    futures = client.options.get("defaultType") in FUTURES_TYPES
    _limit_rate(client, futures, settings)
    linear = client.exceptions.get("linear", {}).get("exact") if isinstance(client.exceptions, dict) else None
    if linear and futures:  # futures error codes, which ccxt only applies to its own hosts
        client.exceptions["exact"].update(linear)
    if client.id in PASSING_FAILURES:
        client.exceptions["exact"].update(PASSING_FAILURES[client.id])
    _refuse_non_json(client)
    return client


def sim_exchange(account: AccountConfig) -> str:
    """The ccxt class that speaks the embedded exchange's dialect."""
    return "bybit" if account.sim.venue == "bybit" else "binanceusdm"


def _limit_rate(client: Any, futures: bool, settings: dict) -> None:
    """ccxt's rolling-window limiter at the venue's published budget (see riskd.budget),
    each setting unless the account's own ccxt mapping gives it."""
    shipped = {
        key: value
        for key, value in budget.limiter_settings(client.id, futures, client.rateLimit).items()
        if key not in settings
    }
    if shipped and "tokenBucket" not in settings:
        for key, value in shipped.items():
            setattr(client, key, value)
        client.tokenBucket = None  # built again from the settings above
        client.init_rest_rate_limiter()


def _refuse_non_json(client: Any) -> None:
    """Make a 200 reply that is not JSON (a proxy's HTML page) an error, not an empty account."""
    original = client.handle_errors

    def handle_errors(code, reason, url, method, headers, body, response, *rest):
        if response is None and body and str(code).startswith("2"):
            raise ccxt.BadResponse(f"{method} {url.split('?')[0]} answered {code} with a body that is not JSON")
        return original(code, reason, url, method, headers, body, response, *rest)

    client.handle_errors = handle_errors


class ExchangeAdapter:
    """Reads one account and sends riskd's orders to it, through its venue's profile."""

    def __init__(self, name: str, account: AccountConfig, client: Any, clock: Callable[[], datetime] | None = None):
        self.name, self.account, self.client = name, account, client
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.quote = account.quote
        self.venue = venue(client.id)
        market = account.market or (self.venue.guess if self.venue else None)
        self.futures: bool | None = None if market is None else market == "futures"
        self.understood: AccountFigures | None = None
        """What the last good read made of the account, for `riskd check`."""
        self.budget = budget.attach(client, self.clock)
        """The venue's budget, shared with every other account riskd guards there."""

    async def close(self) -> None:
        await self.client.close()

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One ccxt call with a hard time limit, in case a library layer ignores its own."""
        limit = self.account.timeout.total_seconds() * 2 + 1
        return await asyncio.wait_for(getattr(self.client, method)(*args, **kwargs), limit)

    async def load(self) -> None:
        if not self.client.markets:
            await self._call("load_markets")
        if self.futures is None:
            self.futures = self.client.options.get("defaultType") in FUTURES_TYPES

    async def candles(self, symbol: str, timeframe: str, since: int, limit: int) -> list[list]:
        """OHLCV rows from `since` (epoch ms), as ccxt gives them; raises what ccxt raises."""
        await self.load()
        return await self._call("fetch_ohlcv", symbol, timeframe, since, limit)

    async def snapshot(self) -> Snapshot:
        """Read the account once, concurrently; any failure gives a Snapshot with `error`."""
        fetched_at, started = self.clock(), time.monotonic()
        held = 0.0 if budget.URGENT.get() else self.budget.holding()
        if held:  # the venue asked for a pause: a routine read now would count toward a ban
            return Snapshot(self.name, fetched_at, 0.0, quote=self.quote, error=wording.reads_held(held),
                            error_kind=ReadFailure.RATE_LIMIT)
        try:
            await self.load()
            if self.futures:
                balance, positions, orders = await asyncio.gather(
                    self._call("fetch_balance"), self._call("fetch_positions"), self._call("fetch_open_orders")
                )
                held = tuple(self._position(p) for p in positions if abs(float(p.get("contracts") or 0)) > 0)
                figures = self._account(balance)
            else:
                balance, orders, tickers = await asyncio.gather(
                    self._call("fetch_balance"), self._call("fetch_open_orders"), self._call("fetch_tickers")
                )
                prices = {symbol: float(t["last"]) for symbol, t in tickers.items() if t.get("last")}
                held = self._spot_positions(balance, prices)
                figures = self._spot_account(balance, prices)
            self.understood = figures
            return Snapshot(
                account=self.name,
                fetched_at=fetched_at,
                latency=time.monotonic() - started,
                equity=figures.equity,
                quote=self.quote,
                balances=frozen_mapping(_totals(balance)),
                positions=held,
                orders=tuple(_order(o, self.venue, (self.client.markets or {}).get(o["symbol"]) or {}) for o in orders),
                margin_ratio=figures.margin_ratio,
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # every failure is a failed read, never a crash
            failure = explain(error)
            return Snapshot(
                self.name, fetched_at, time.monotonic() - started, quote=self.quote, error=failure.text, error_kind=failure.kind
            )

    def _account(self, balance: dict) -> AccountFigures:
        """Equity and margin of a derivatives account, as its venue's profile reads them."""
        if not isinstance(balance.get("info"), (dict, list)):
            raise ccxt.BadResponse("the balance reply holds no account data")
        if self.venue is not None and self.venue.account is not None:
            try:
                return self.venue.account(balance, self.quote)
            except Unvalued as error:
                raise ccxt.BadResponse(f"{error}; the account cannot be valued") from None
        totals = _totals(balance)
        if self.quote not in totals:
            raise ccxt.BadResponse(f"the balance reply has no {self.quote}; its equity cannot be known")
        source = f"ccxt's total of {self.quote} (riskd has no profile for {self.client.id}: unrealized PnL and other collateral may be left out)"
        return AccountFigures(totals[self.quote], source, (self.quote,))

    def _spot_account(self, balance: dict, prices: dict[str, float]) -> AccountFigures:
        """The quote currency plus every holding at its last price, bridged where it has no
        direct market; a holding with no price at all fails the read, first read or not."""
        if not isinstance(balance.get("info"), (dict, list)):
            raise ccxt.BadResponse("the balance reply holds no account data")
        totals = _totals(balance)
        held = {asset: amount for asset, amount in totals.items() if asset != self.quote and amount > 0}
        if self.quote not in totals and not held:
            raise ccxt.BadResponse(f"the balance reply has no {self.quote}; its equity cannot be known")
        valued = {asset: spot_price(asset, self.quote, prices) for asset in held}
        unpriced = sorted(asset for asset, price in valued.items() if price is None)
        if unpriced:  # a holding is never worth zero for want of a ticker
            raise ccxt.BadResponse(
                f"no price for {', '.join(unpriced)} in this read, directly or through {' or '.join(BRIDGES)}"
            )
        equity = totals.get(self.quote, 0.0) + sum(amount * valued[asset] for asset, amount in held.items())
        source = f"{self.quote} plus every holding at its last price"
        return AccountFigures(equity, source, tuple(sorted({self.quote, *held})), None, "spot")

    def _spot_positions(self, balance: dict, prices: dict[str, float]) -> tuple[Position, ...]:
        """Spot holdings as long positions valued at market; kept assets are not positions,
        nor is dust too small to sell (both still count in equity). A holding without a
        market in the quote currency is sold on its bridge market (ASSET/USDC, ASSET/BTC)."""
        positions = []
        for asset, amount in sorted(_totals(balance).items()):
            if asset == self.quote or asset in self.account.keep_assets or amount <= 0:
                continue
            price = spot_price(asset, self.quote, prices)
            symbol = self._spot_symbol(asset, prices)
            if price and symbol and self._sellable(symbol, amount, prices[symbol]):
                positions.append(Position(symbol, Side.LONG, amount, amount * price, None, price, kind="spot"))
        return tuple(positions)

    def _spot_symbol(self, asset: str, prices: dict[str, float]) -> str | None:
        """The market a holding is priced on and sold on: its quote, else a bridge."""
        for quote in (self.quote, *BRIDGES):
            if quote != asset and prices.get(f"{asset}/{quote}"):
                return f"{asset}/{quote}"
        return None

    def _sellable(self, symbol: str, amount: float, price: float) -> bool:
        """Whether a market sell of `amount` passes the market's step, minimum amount and
        minimum notional. What does not is dust: the exchange refuses to sell it."""
        if symbol not in (self.client.markets or {}):
            return True
        rounded = self.round_amount(symbol, amount)
        cost = (self.market(symbol).get("limits", {}).get("cost", {}) or {}).get("min") or 0.0
        return rounded > 0 and rounded >= self.minimum(symbol) * 0.999 and rounded * price >= cost

    def _position(self, raw: dict) -> Position:
        """One derivatives position, its notional computed by riskd: contracts × contract
        size × mark in the quote currency (an inverse contract's size is already in it)."""
        symbol = raw["symbol"]
        market = (self.client.markets or {}).get(symbol) or {}
        contracts = abs(float(raw["contracts"]))
        size = _float(raw.get("contractSize")) or _float(market.get("contractSize")) or 1.0
        mark = _float(raw.get("markPrice"))
        if market.get("inverse"):
            notional = contracts * size
        elif mark:
            notional = contracts * size * mark
        else:
            raise ccxt.BadResponse(f"the position reply has no mark price for {symbol}; its notional cannot be known")
        liquidation = _float(raw.get("liquidationPrice")) or None
        if liquidation is None and self.venue is not None and self.venue.zero_liquidation_is_safe:
            liquidation = 0.0  # the venue's way of saying this position cannot be liquidated
        if self.venue is not None:
            hedge_side = self.venue.hedge_side(raw)
        else:
            hedge_side = str(raw.get("side")).upper() if raw.get("hedged") and raw.get("side") else None
        side = raw.get("side")
        if side not in ("long", "short"):
            side = {"LONG": "long", "SHORT": "short"}.get(hedge_side) or ("short" if float(raw["contracts"]) < 0 else "long")
        return Position(
            symbol=symbol,
            side=Side.SHORT if side == "short" else Side.LONG,
            contracts=contracts,
            notional=notional,
            entry_price=_float(raw.get("entryPrice")),
            mark_price=mark,
            unrealized_pnl=_float(raw.get("unrealizedPnl")) or 0.0,
            liquidation_price=liquidation,
            leverage=_float(raw.get("leverage")),
            kind="derivative",
            position_side=hedge_side,
        )

    async def hedged(self) -> bool | None:
        """Whether the venue says the account is in hedge mode; None where ccxt cannot ask it."""
        if not self.client.has.get("fetchPositionMode"):
            return None
        return bool((await self._call("fetch_position_mode")).get("hedged"))

    # --- orders ----------------------------------------------------------------

    def market(self, symbol: str) -> dict:
        return self.client.market(symbol)

    def round_amount(self, symbol: str, amount: float) -> float:
        """Round down to the market's step so a close can never exceed the position.

        Float noise goes first: 0.05999 - 0.05 is 0.009989999999999999, which must
        truncate to 0.00999, not 0.00998.
        """
        try:
            return float(self.client.amount_to_precision(symbol, round(amount, 10)))
        except ccxt.InvalidOrder:
            return 0.0

    def minimum(self, symbol: str) -> float:
        return float((self.market(symbol).get("limits", {}).get("amount", {}) or {}).get("min") or 0.0)

    async def cancel_orders(self, orders: list[Order], whole_symbols: list[str] = ()) -> None:
        """Cancel `orders` one by one, and every order of `whole_symbols` in one call each.

        Exchanges without a cancel-all call get the orders of those symbols one by one.
        """
        calls = [self._call("cancel_order", order.id, order.symbol) for order in orders]
        if self.client.has.get("cancelAllOrders"):
            calls += [self._call("cancel_all_orders", symbol) for symbol in whole_symbols]
        else:
            open_orders = await self._call("fetch_open_orders")
            calls += [self._call("cancel_order", o["id"], o["symbol"]) for o in open_orders if o["symbol"] in whole_symbols]
        await asyncio.gather(*calls)

    @property
    def dead_man_switch(self) -> str | None:
        """How this venue cancels open orders once riskd stops renewing a countdown: Binance
        USDⓈ-M's `countdownCancelAll` (per symbol), ccxt's `cancelAllOrdersAfter` (account-wide,
        OKX and others), or None where ccxt offers neither. Bybit's (disconnected-cancel-all)
        fires only when a private websocket subscribed to `dcp` drops, and riskd reads over
        REST: it would never fire, so Bybit is offered none."""
        if self.futures and hasattr(self.client, "fapiPrivatePostCountdownCancelAll"):
            return "Binance countdownCancelAll"
        if self.client.has.get("cancelAllOrdersAfter") and self.client.id != "bybit":
            return "cancelAllOrdersAfter"
        return None

    async def arm_dead_man_switch(self, after: timedelta, symbols: Iterable[str]) -> None:
        """Renew the venue's countdown: in `after` it cancels open orders unless renewed again.

        Binance's countdown is per symbol, so it is armed for each of `symbols` (those with
        open orders). Raises what the exchange raised; ValueError where there is no switch.
        """
        milliseconds = int(after.total_seconds() * 1000)
        match self.dead_man_switch:
            case "Binance countdownCancelAll":
                await asyncio.gather(*(
                    self._call("fapiPrivatePostCountdownCancelAll", {"symbol": self.client.market_id(symbol), "countdownTime": milliseconds})
                    for symbol in sorted(set(symbols))
                ))
            case "cancelAllOrdersAfter":
                await self._call("cancel_all_orders_after", milliseconds)
            case None:
                raise ValueError(f"{self.client.id} offers no dead-man switch through ccxt")

    async def reduce(self, position: Position, amount: float, client_order_id: str) -> dict:
        """A market order that can only shrink `position`: reduce-only on derivatives."""
        side = "sell" if position.side is Side.LONG else "buy"
        params: dict[str, Any] = {"clientOrderId": self.venue.client_id(client_order_id) if self.venue else client_order_id}
        if position.kind != "spot":  # the venue's own way to only close: reduce-only, or its hedge-mode side
            close = self.venue.close_params if self.venue is not None else venues.reduce_only
            params.update(close(position.position_side))
        return await self._call("create_order", position.symbol, "market", side, amount, None, params)

    async def closed_trades(self, since: datetime) -> tuple[ClosedTrade, ...]:
        """Realized PnL booked since `since`, oldest first, from the venue's income history
        (ccxt's `fetch_ledger` with Binance's `incomeType=REALIZED_PNL`: one call for every
        symbol, so a round trip opened and closed between two ticks is not missed).
        Raises on failure; the caller keeps what it had."""
        await self.load()
        if self.account.exchange not in INCOME_VENUES or not self.futures:  # Bybit's ledger has no such income type
            raise ccxt.NotSupported(f"{self.account.exchange}: riskd reads realized PnL only from a Binance futures account's income history")
        entries = await self._call(
            "fetch_ledger", None, int(since.timestamp() * 1000), 1000, {"incomeType": "REALIZED_PNL"}
        )
        trades = []
        for entry in entries:
            info = entry.get("info") or {}
            pnl = _float(info.get("income"))
            if info.get("incomeType") != "REALIZED_PNL" or pnl is None or entry.get("timestamp") is None:
                continue
            symbol = self.client.safe_symbol(info.get("symbol"), None, None, "swap") if info.get("symbol") else ""
            closed_at = datetime.fromtimestamp(entry["timestamp"] / 1000, timezone.utc)
            trades.append(ClosedTrade(str(entry.get("id")), symbol, pnl, closed_at))
        return tuple(sorted(trades, key=lambda trade: trade.closed_at))


def spot_price(asset: str, quote: str, prices: dict[str, float]) -> float | None:
    """The last price of `asset` in `quote`: direct, else through a bridge (ASSET/USDC ×
    USDC/USDT, ASSET/BTC × BTC/USDT); None when neither is quoted."""
    direct = prices.get(f"{asset}/{quote}")
    if direct:
        return direct
    for bridge in BRIDGES:
        first, second = prices.get(f"{asset}/{bridge}"), prices.get(f"{bridge}/{quote}")
        if bridge not in (asset, quote) and first and second:
            return first * second
    return None


def _totals(balance: dict) -> dict[str, float]:
    totals = balance.get("total") or {}
    return {asset: float(amount) for asset, amount in totals.items() if amount}


def _float(value: Any) -> float | None:
    return float(value) if value not in (None, "") else None


def _order(raw: dict, profile: venues.Venue | None = None, market: dict | None = None) -> Order:
    """One open order; in hedge mode an order that can only close its side counts as
    reduce-only, as it is one (a take-profit on a long sells on the LONG side). Its
    contract size comes from `market` where the order does not say, as a position's does."""
    closes = bool(raw.get("reduceOnly")) or (profile is not None and profile.order_closes(raw))
    market = market or {}
    return Order(
        id=str(raw["id"]),
        symbol=raw["symbol"],
        side=raw["side"],
        amount=float(raw.get("amount") or 0.0),
        reduce_only=closes,
        remaining=_float(raw.get("remaining")),
        price=_float(raw.get("price")) or _float(raw.get("triggerPrice")) or None,
        opened_at=datetime.fromtimestamp(raw["timestamp"] / 1000, timezone.utc) if raw.get("timestamp") else None,
        contract_size=_float(raw.get("contractSize")) or _float(market.get("contractSize")) or 1.0,
        inverse=bool(market.get("inverse")),
    )
