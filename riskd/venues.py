"""Venue profiles: where riskd reads each figure it needs on each exchange.

ccxt's unified fields do not mean the same thing everywhere: on Bybit `total` is the
wallet balance without unrealized PnL and `notional` is at the entry price; Bitget and
Gate default to their spot wallets; a unified or multi-assets account margins with more
than one coin. So each venue riskd knows has a small profile saying which ccxt options
reach its futures market, which figure of its own reply is the equity it liquidates
against (every collateral counted, unrealized PnL included) and its account margin
ratio, and how a closing order names a hedge-mode side. An account riskd cannot value
raises `Unvalued` naming what is missing: a failed read, never a wrong number.

Each reader takes ccxt's balance structure (its `info` is the venue's own reply) and
the account's quote currency. Figures in USD are taken as the quote currency: riskd
accounts are quoted in a USD stablecoin, and the venues value collateral in USD.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from riskd.domain import frozen_mapping


class Unvalued(Exception):
    """The reply does not hold what riskd needs to value the account; the message says what."""


@dataclass(frozen=True, slots=True)
class AccountFigures:
    """What riskd understood of one account from one balance reply."""

    equity: float
    source: str
    """Which figure of the venue's reply the equity is, in words."""
    collateral: tuple[str, ...] = ()
    margin_ratio: float | None = None
    """Maintenance margin as a share of the margin balance: at 1 the venue liquidates."""
    margin_mode: str | None = None


def never(raw: dict) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Venue:
    """One exchange as riskd reads it. See the module docstring."""

    name: str
    futures_options: Mapping[str, Any]
    spot_options: Mapping[str, Any]
    guess: str
    """The market an account of this venue is taken to trade when its `market` is left out."""
    account: Callable[[dict, str], AccountFigures] | None
    """Reads a futures balance; None: ccxt's total of the quote currency, with a warning."""
    hedge_side: Callable[[dict], str | None]
    """`LONG` or `SHORT` for a raw ccxt position held in hedge mode, None in one-way mode."""
    close_params: Callable[[str | None], dict]
    """The parameters that make a market order only close the position on `side` (None: one-way)."""
    client_id: Callable[[str], str] = str
    """riskd's client order id in the characters the venue accepts."""
    order_closes: Callable[[dict], bool] = never
    """Whether a raw ccxt order can only close a hedge-mode position (reduce-only or not)."""
    zero_liquidation_is_safe: bool = False
    """The venue reports 0 (or nothing) for a position that cannot be liquidated (Binance);
    elsewhere a missing liquidation price means riskd cannot measure it."""


def number(reply: Mapping, key: str, where: str) -> float:
    """The figure `key` of `reply`, or `Unvalued` naming it: never a zero for a missing field."""
    value = reply.get(key) if isinstance(reply, Mapping) else None
    if value in (None, ""):
        raise Unvalued(f"the {where} reply has no {key}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Unvalued(f"the {where} reply's {key} is not a number ({value!r})") from None


def optional_number(reply: Mapping, key: str) -> float | None:
    value = reply.get(key) if isinstance(reply, Mapping) else None
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def share(maintenance: float | None, equity: float) -> float | None:
    """Maintenance margin over margin balance; an account with nothing left is at 1."""
    if maintenance is None:
        return None
    if equity <= 0:
        return 1.0 if maintenance > 0 else None
    return maintenance / equity


def _info(balance: dict) -> Any:
    return balance.get("info") if isinstance(balance, dict) else None


# --- Binance USDⓈ-M (binanceusdm, and binance with market: futures) ---------------


def binance_usdm(balance: dict, quote: str) -> AccountFigures:
    """`/fapi/v2/account`: in multi-assets mode `totalMarginBalance` sums every margin asset
    in USD; in single-asset mode the totals cover USDT alone, so another quote reads its
    own asset's `marginBalance`."""
    info = _info(balance)
    if not isinstance(info, dict) or not isinstance(info.get("assets"), list):
        raise Unvalued("the Binance account reply has no assets")
    assets = {asset.get("asset"): asset for asset in info["assets"] if isinstance(asset, dict)}
    multi = info.get("multiAssetsMargin")
    if multi is False or (multi is None and quote != "USDT"):
        if multi is None:
            raise Unvalued(f"the Binance account reply does not say whether multi-assets mode is on, so {quote} cannot be valued")
        asset = assets.get(quote)
        if asset is None:
            raise Unvalued(f"the Binance account reply has no {quote} asset")
        equity = number(asset, "marginBalance", f"Binance {quote} asset")
        return AccountFigures(
            equity,
            f"marginBalance of {quote} (single-asset mode: wallet balance with unrealized PnL)",
            (quote,),
            share(optional_number(asset, "maintMargin"), equity),
            "single-asset",
        )
    equity = number(info, "totalMarginBalance", "Binance account")
    collateral = tuple(sorted(name for name, asset in assets.items() if optional_number(asset, "marginBalance")))
    return AccountFigures(
        equity,
        "totalMarginBalance (every margin asset with unrealized PnL; in USD in multi-assets mode)",
        collateral,
        share(optional_number(info, "totalMaintMargin"), equity),
        "multi-assets" if multi else "multi-assets or single-asset USDT (the reply does not say)",
    )


def binance_side(raw: dict) -> str | None:
    side = (raw.get("info") or {}).get("positionSide")
    return side if side in ("LONG", "SHORT") else None


def against_its_side(hedge_side: Callable[[dict], str | None]) -> Callable[[dict], bool]:
    """An order closes in hedge mode when it runs against the side it names: a sell on
    LONG, a buy on SHORT (Binance positionSide, Bybit positionIdx, OKX posSide)."""
    def closes(raw: dict) -> bool:
        return {"LONG": "sell", "SHORT": "buy"}.get(hedge_side(raw)) == raw.get("side")
    return closes


def binance_close(side: str | None) -> dict:
    # Binance refuses reduceOnly in hedge mode; positionSide alone cannot open the other side.
    return {"positionSide": side} if side else {"reduceOnly": True}


# --- Bybit v5: unified trading account, or the classic contract account ----------


def bybit(balance: dict, quote: str) -> AccountFigures:
    """`/v5/account/wallet-balance`: a unified account's `totalMarginBalance` counts every
    collateral coin at its haircut with unrealized PnL (in USD), and `accountMMRate` is
    the venue's own margin ratio; a classic account's coin `equity` is its wallet balance
    with unrealized PnL."""
    info = _info(balance)
    accounts = ((info or {}).get("result") or {}).get("list") if isinstance(info, dict) else None
    if not accounts or not isinstance(accounts[0], dict):
        raise Unvalued("the Bybit wallet reply has no account")
    account = accounts[0]
    coins = [coin for coin in account.get("coin") or [] if isinstance(coin, dict)]
    if account.get("accountType") == "UNIFIED":
        equity = number(account, "totalMarginBalance", "Bybit unified wallet")
        collateral = tuple(
            sorted(
                coin["coin"]
                for coin in coins
                if coin.get("marginCollateral") and coin.get("collateralSwitch") and optional_number(coin, "equity")
            )
        )
        ratio = optional_number(account, "accountMMRate")
        if ratio is None:
            ratio = share(optional_number(account, "totalMaintenanceMargin"), equity)
        return AccountFigures(
            equity,
            "totalMarginBalance (every collateral coin at its haircut, with unrealized PnL, in USD)",
            collateral,
            ratio,
            "unified",
        )
    coin = next((coin for coin in coins if coin.get("coin") == quote), None)
    if coin is None:
        raise Unvalued(f"the Bybit wallet reply has no {quote}")
    equity = number(coin, "equity", f"Bybit {quote} wallet")
    return AccountFigures(
        equity,
        f"equity of {quote} (classic account: wallet balance with unrealized PnL)",
        (quote,),
        share(optional_number(coin, "totalPositionMM"), equity),
        "classic",
    )


def bybit_side(raw: dict) -> str | None:
    index = str((raw.get("info") or {}).get("positionIdx", "0"))
    return {"1": "LONG", "2": "SHORT"}.get(index)


def bybit_close(side: str | None) -> dict:
    return {"reduceOnly": True, "positionIdx": {"LONG": 1, "SHORT": 2}[side]} if side else {"reduceOnly": True}


# --- OKX ------------------------------------------------------------------------


def okx(balance: dict, quote: str) -> AccountFigures:
    """`/api/v5/account/balance`: in multi-currency and portfolio margin `adjEq` is the
    account's equity at every collateral's discount (USD) and `mmr` its maintenance
    margin; in single-currency margin the quote currency's `eq` and `mmr`."""
    info = _info(balance)
    data = (info or {}).get("data") if isinstance(info, dict) else None
    if not data or not isinstance(data[0], dict):
        raise Unvalued("the OKX balance reply has no account")
    account = data[0]
    details = [detail for detail in account.get("details") or [] if isinstance(detail, dict)]
    adjusted = optional_number(account, "adjEq")
    if adjusted is not None:
        collateral = tuple(
            sorted(d["ccy"] for d in details if d.get("collateralEnabled") and optional_number(d, "eq"))
        )
        return AccountFigures(
            adjusted,
            "adjEq (every collateral currency at its discount, with unrealized PnL, in USD)",
            collateral,
            share(optional_number(account, "mmr"), adjusted),
            "multi-currency or portfolio margin",
        )
    detail = next((d for d in details if d.get("ccy") == quote), None)
    if detail is None:
        raise Unvalued(f"the OKX balance reply has no {quote}")
    equity = number(detail, "eq", f"OKX {quote} balance")
    return AccountFigures(
        equity,
        f"eq of {quote} (single-currency margin: cash balance with unrealized PnL)",
        (quote,),
        share(optional_number(detail, "mmr"), equity),
        "single-currency margin",
    )


def okx_side(raw: dict) -> str | None:
    side = (raw.get("info") or {}).get("posSide")
    return {"long": "LONG", "short": "SHORT"}.get(side)


def okx_client_id(order_id: str) -> str:
    # OKX takes 1 to 32 letters and digits: riskd-7-0123abcd-1 becomes riskd70123abcd1.
    return re.sub(r"[^A-Za-z0-9]", "", order_id)[:32]


def okx_close(side: str | None) -> dict:
    # In long/short mode OKX takes posSide, and reduceOnly only applies in net mode.
    return {"posSide": side.lower()} if side else {"reduceOnly": True}


# --- Bitget (v2 mix accounts) -----------------------------------------------------


def bitget(balance: dict, quote: str) -> AccountFigures:
    """`/api/v2/mix/account/accounts`: in union (multi-assets) mode `unionTotalMagin`
    (sic) margins with every asset in USD, where the quote coin's own `accountEquity` may
    be negative; otherwise the quote coin's `accountEquity`. `crossedRiskRate` is the
    venue's margin ratio."""
    info = _info(balance)
    entries = info if isinstance(info, list) else (info or {}).get("data") if isinstance(info, dict) else None
    entry = next((e for e in entries or [] if isinstance(e, dict) and e.get("marginCoin", "").upper() == quote), None)
    if entry is None:
        raise Unvalued(f"the Bitget account reply has no {quote} margin coin")
    if entry.get("assetMode") == "union":
        equity = number(entry, "unionTotalMagin", "Bitget union account")
        assets = tuple(sorted(a.get("coin", "").upper() for a in entry.get("assetList") or [] if isinstance(a, dict)))
        return AccountFigures(
            equity,
            "unionTotalMagin (union mode: every asset's margin with unrealized PnL, in USD)",
            assets or (quote,),
            optional_number(entry, "crossedRiskRate") or share(optional_number(entry, "unionMm"), equity),
            "union (multi-assets)",
        )
    equity = number(entry, "accountEquity", f"Bitget {quote} account")
    return AccountFigures(
        equity,
        f"accountEquity of {quote} (wallet balance with unrealized PnL)",
        (quote,),
        optional_number(entry, "crossedRiskRate"),
        "single-asset",
    )


def bitget_side(raw: dict) -> str | None:
    info = raw.get("info") or {}
    if info.get("posMode") != "hedge_mode":
        return None
    return {"long": "LONG", "short": "SHORT"}.get(info.get("holdSide"))


def bitget_order_closes(raw: dict) -> bool:
    # Bitget marks a hedge-mode close itself (and, unlike the others, names the position's side).
    return str((raw.get("info") or {}).get("tradeSide", "")).lower() == "close"


def bitget_close(side: str | None) -> dict:
    # ccxt turns hedged + reduceOnly into Bitget's tradeSide "Close" (and its side convention).
    return {"hedged": True, "reduceOnly": True} if side else {"reduceOnly": True}


# --- Gate (USDT-settled futures account) -------------------------------------------


def gate(balance: dict, quote: str) -> AccountFigures:
    """`/futures/usdt/accounts`: `total` is position margin, order margin and available
    balance, without unrealized PnL, so equity is `total` + `unrealised_pnl`."""
    info = _info(balance)
    entries = info if isinstance(info, list) else [info]
    entry = next((e for e in entries if isinstance(e, dict) and str(e.get("currency", "")).upper() == quote), None)
    if entry is None:
        raise Unvalued(f"the Gate futures account reply has no {quote}")
    equity = number(entry, "total", "Gate futures account") + number(entry, "unrealised_pnl", "Gate futures account")
    return AccountFigures(
        equity,
        f"total + unrealised_pnl of the {quote} futures account",
        (quote,),
        share(optional_number(entry, "maintenance_margin"), equity),
        "dual (hedge) mode" if entry.get("in_dual_mode") else "single mode",
    )


def gate_side(raw: dict) -> str | None:
    mode = (raw.get("info") or {}).get("mode")
    return {"dual_long": "LONG", "dual_short": "SHORT"}.get(mode)


def reduce_only(side: str | None) -> dict:
    return {"reduceOnly": True}


SPOT_ONLY = frozen_mapping({"defaultType": "spot"})

BINANCE_USDM = Venue(
    "Binance USDⓈ-M", frozen_mapping({"defaultType": "future"}), frozen_mapping(), "futures",
    binance_usdm, binance_side, binance_close, zero_liquidation_is_safe=True,
    order_closes=against_its_side(binance_side),
)
BINANCE = Venue(
    "Binance",
    frozen_mapping({"defaultType": "future"}),
    # Spot markets only: not also the futures markets and margin pairs.
    frozen_mapping({"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchMargins": False}),
    "spot", binance_usdm, binance_side, binance_close, zero_liquidation_is_safe=True,
    order_closes=against_its_side(binance_side),
)
LINEAR = frozen_mapping({"defaultType": "swap", "defaultSubType": "linear"})
BYBIT = Venue("Bybit", LINEAR, SPOT_ONLY, "futures", bybit, bybit_side, bybit_close,
              order_closes=against_its_side(bybit_side))
OKX = Venue("OKX", frozen_mapping({"defaultType": "swap"}), SPOT_ONLY, "futures", okx, okx_side, okx_close, okx_client_id,
            order_closes=against_its_side(okx_side))
BITGET = Venue("Bitget", LINEAR, SPOT_ONLY, "futures", bitget, bitget_side, bitget_close,
               order_closes=bitget_order_closes)
GATE = Venue("Gate", LINEAR, SPOT_ONLY, "futures", gate, gate_side, reduce_only)

VENUES: dict[str, Venue] = {
    "binanceusdm": BINANCE_USDM,
    "binance": BINANCE,
    "bybit": BYBIT,
    "okx": OKX,
    "bitget": BITGET,
    "gate": GATE,
    "gateio": GATE,
}


def venue(exchange_id: str) -> Venue | None:
    """The profile of a ccxt exchange id, or None for a venue riskd has none for."""
    return VENUES.get(exchange_id)


def market_options(exchange_id: str, market: str | None) -> dict:
    """The ccxt options that make `market` (or the venue's guess) reach the venue."""
    profile = venue(exchange_id)
    if profile is None:
        return {"defaultType": "swap"} if market == "futures" else {"defaultType": "spot"} if market == "spot" else {}
    chosen = market or profile.guess
    return dict(profile.futures_options if chosen == "futures" else profile.spot_options)
