"""Risk figures: returns, volatility, drawdown, VaR and shortfall, correlation, stress.

Pure functions of numbers, vectorised with numpy. Two kinds live here: figures of an
account's equity history (for the report) and figures of the positions held now,
priced on the market data's returns (for the market breakers and the report). They
never act: the breakers decide, these measure. pandas is imported only by the
equity-history functions that resample, so a daemon that never reports does not
pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence

import numpy as np

from riskd.candles import MarketData
from riskd.domain import Position, Side

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, slots=True)
class Figures:
    """What an equity history says, in fractions of equity (0.05 is 5 %)."""

    samples: int
    max_drawdown: float | None
    volatility: float | None
    var_95: float | None
    expected_shortfall_95: float | None


def equity_series(points: Iterable[tuple[datetime, float]]) -> pd.Series:
    """Equity in time order, one value per moment, invalid values dropped."""
    import pandas as pd

    frame = pd.DataFrame(list(points), columns=["at", "equity"])
    if frame.empty:
        return pd.Series(dtype=float)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    frame = frame.dropna().drop_duplicates("at", keep="last").sort_values("at")
    series = frame.set_index("at")["equity"].astype(float)
    return series[np.isfinite(series)]


def max_drawdown(equity: pd.Series) -> float | None:
    """The largest fall from a running peak, as a share of that peak."""
    positive = equity[equity > 0]
    if positive.empty:
        return None
    peaks = positive.cummax()
    return float(((peaks - positive) / peaks).max())


def returns(equity: pd.Series, every: str = "5min") -> pd.Series:
    """Simple returns of equity resampled to regular steps (last value in each step)."""
    regular = equity[equity > 0].resample(every).last().dropna()
    return regular.pct_change().dropna()


def value_at_risk(step_returns: pd.Series, level: float = 0.95) -> tuple[float | None, float | None]:
    """Historical VaR and expected shortfall at `level`, as positive losses per step."""
    values = step_returns.to_numpy(dtype=float)
    if values.size < 20:
        return None, None
    cutoff = float(np.quantile(values, 1 - level))
    tail = values[values <= cutoff]
    return max(0.0, -cutoff), max(0.0, -float(tail.mean()))


def volatility(step_returns: pd.Series, steps_per_day: float) -> float | None:
    """Daily volatility from per-step returns (square-root-of-time scaling)."""
    if len(step_returns) < 2:
        return None
    return float(step_returns.std(ddof=1) * np.sqrt(steps_per_day))


def figures(points: Iterable[tuple[datetime, float]], every: str = "5min") -> Figures:
    """Everything the report says about one account's equity history."""
    import pandas as pd

    equity = equity_series(points)
    if equity.empty:
        return Figures(0, None, None, None, None)
    step_returns = returns(equity, every)
    steps_per_day = pd.Timedelta("1D") / pd.Timedelta(every)
    var, shortfall = value_at_risk(step_returns)
    return Figures(
        samples=len(equity),
        max_drawdown=max_drawdown(equity),
        volatility=volatility(step_returns, steps_per_day),
        var_95=var,
        expected_shortfall_95=shortfall,
    )


# --- Series: returns, volatility, drawdown -------------------------------------------


def simple_returns(prices: np.ndarray) -> np.ndarray:
    """Step-to-step simple returns along the first axis (one row fewer than `prices`)."""
    prices = np.asarray(prices, dtype=float)
    return prices[1:] / prices[:-1] - 1.0


def log_returns(prices: np.ndarray) -> np.ndarray:
    """Step-to-step log returns along the first axis."""
    return np.diff(np.log(np.asarray(prices, dtype=float)), axis=0)


def realised_volatility(step_returns: np.ndarray) -> float | None:
    """The sample standard deviation of per-step returns; None with fewer than two."""
    values = np.asarray(step_returns, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.std(ddof=1)) if values.size >= 2 else None


def ewma_volatility(step_returns: np.ndarray, decay: float = 0.94) -> float | None:
    """RiskMetrics volatility: variance weighted by `decay` per step back, mean taken as zero.

    The weights are normalised to sum to one, so a short history is not biased low.
    """
    values = np.asarray(step_returns, dtype=float)
    values = values[np.isfinite(values)]
    if values.size < 2:
        return None
    weights = decay ** np.arange(values.size - 1, -1, -1, dtype=float)
    return float(np.sqrt(np.dot(weights, values * values) / weights.sum()))


def drawdown_series(equity: np.ndarray) -> np.ndarray:
    """Each point's fall below the running peak, as a share of that peak (0 at a peak)."""
    values = np.asarray(equity, dtype=float)
    if values.size == 0:
        return values
    peaks = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        falls = np.where(peaks > 0, (peaks - values) / peaks, 0.0)
    return np.maximum(falls, 0.0)


# --- The positions held now, priced on market data ------------------------------------


@dataclass(frozen=True, slots=True)
class Book:
    """Net exposure per symbol (quote currency, short negative) and the returns that price it.

    `returns` has one row per step where every held symbol (and the benchmark) has a
    return (rows with a missing candle are dropped), one column per symbol in `symbols`. `steps_per_day`
    scales per-step figures to a day. Symbols without market data are in `unpriced`.
    """

    symbols: tuple[str, ...]
    exposures: np.ndarray
    returns: np.ndarray
    steps_per_day: float
    unpriced: tuple[str, ...] = ()
    benchmark: np.ndarray | None = None
    """The benchmark's returns on the same rows, when the market data has it."""
    rows: np.ndarray | None = None
    """The market data's row of each row of `returns`, ascending; None for a book not
    drawn from market data, which `recent` leaves whole."""
    span: int = 0
    """How many rows the market data's timeline has."""

    def recent(self, steps: int) -> Book:
        """The same book on the latest `steps` steps of the timeline only. The rows are
        ascending, so this is a view of the same arrays, not a copy: the market breakers
        each window the one book their tick priced."""
        if self.rows is None:
            return self
        start = int(np.searchsorted(self.rows, self.span - steps))
        if start == 0:
            return self
        benchmark = self.benchmark[start:] if self.benchmark is not None else None
        return replace(self, returns=self.returns[start:], benchmark=benchmark, rows=self.rows[start:])

    @property
    def gross(self) -> float:
        return float(np.abs(self.exposures).sum())

    @property
    def samples(self) -> int:
        return int(self.returns.shape[0])


def net_exposures(positions: Iterable[Position]) -> dict[str, float]:
    """Signed notional per symbol: longs positive, shorts negative, hedge sides netted."""
    exposures: dict[str, float] = {}
    for position in positions:
        signed = position.notional if position.side is Side.LONG else -position.notional
        exposures[position.symbol] = exposures.get(position.symbol, 0.0) + signed
    return exposures


def book(positions: Iterable[Position], market: MarketData, window: int | None = None) -> Book:
    """The positions' net exposures with the aligned returns of their symbols (and of the
    market's benchmark, when it has candles).

    Rows where a held symbol (or the benchmark) has no return are dropped; `window`
    then keeps only those among the latest that many steps of the timeline (`Book.recent`).
    """
    exposures = {symbol: value for symbol, value in net_exposures(positions).items() if value != 0.0}
    priced = tuple(symbol for symbol in exposures if symbol in market)
    unpriced = tuple(symbol for symbol in exposures if symbol not in market)
    columns = [market.columns[symbol] for symbol in priced]
    benchmark = market.column(market.benchmark) if market.benchmark else None
    if benchmark is not None:
        columns.append(benchmark)
    span = market.returns.shape[0]
    if columns:
        selected = market.returns[:, columns]
        rows = np.flatnonzero(~np.isnan(selected).any(axis=1))
        if rows.size and rows[-1] - rows[0] + 1 == rows.size:  # the usual case, one run of rows: a view, no copy
            selected = selected[rows[0] : rows[-1] + 1]
        else:
            selected = selected[rows]
    else:
        selected, rows = np.empty((0, 0)), np.empty(0, dtype=np.intp)
    held = Book(
        priced,
        np.array([exposures[symbol] for symbol in priced], dtype=float),
        selected[:, : len(priced)],
        86_400_000 / market.interval_ms,
        unpriced,
        selected[:, -1] if benchmark is not None else None,
        rows,
        span,
    )
    return held.recent(window) if window else held


@dataclass(frozen=True, slots=True)
class Risk:
    """Value at Risk and Expected Shortfall of a book, as positive losses in quote currency."""

    method: str
    confidence: float
    horizon_days: float
    var: float
    shortfall: float


METHODS = ("historical", "parametric", "monte_carlo")
DISTRIBUTIONS = ("normal", "student_t")


def days(span: timedelta) -> float:
    """A horizon in days, the unit the figures below scale by."""
    return span.total_seconds() / 86_400


def value_at_risk_of(
    holdings: Book,
    confidence: float = 0.95,
    horizon_days: float = 1.0,
    method: str = "historical",
    paths: int = 10_000,
    distribution: str = "normal",
    degrees_of_freedom: float = 4.0,
    seed: int = 0,
) -> Risk:
    """VaR and ES of `holdings` over `horizon_days` at `confidence`, by `method`.

    Per-step figures are scaled to the horizon by the square root of time, and the mean
    return is taken as zero (over a day it is noise next to the spread). Historical uses
    the book's own past profit and loss; parametric the normal law with the returns'
    covariance matrix; Monte Carlo draws `paths` seeded scenarios from that covariance,
    normal or Student-t (scaled to the same covariance).
    """
    scale = np.sqrt(horizon_days * holdings.steps_per_day)
    weights = holdings.exposures
    if method == "historical":
        profits = holdings.returns @ weights * scale
        return _tail(method, confidence, horizon_days, profits)
    covariance = _covariance(holdings.returns)
    if method == "parametric":
        from statistics import NormalDist

        spread = float(np.sqrt(max(weights @ covariance @ weights, 0.0))) * scale
        z = NormalDist().inv_cdf(confidence)
        shortfall = spread * np.exp(-z * z / 2) / np.sqrt(2 * np.pi) / (1 - confidence)
        return Risk(method, confidence, horizon_days, spread * z, float(shortfall))
    if method == "monte_carlo":
        generator = np.random.default_rng(seed)
        # Only the book's P&L is needed: with L Lᵀ = Σ, the P&L of draws Z is Z (Lᵀ w).
        loading = _cholesky(covariance).T @ weights
        draws = generator.standard_normal((paths, len(weights))) @ loading
        if distribution == "student_t":
            if degrees_of_freedom <= 2:
                raise ValueError("Student-t needs more than 2 degrees of freedom for a finite variance")
            mixing = generator.chisquare(degrees_of_freedom, paths) / degrees_of_freedom
            draws *= np.sqrt((degrees_of_freedom - 2) / degrees_of_freedom) / np.sqrt(mixing)
        elif distribution != "normal":
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}, got {distribution!r}")
        return _tail(method, confidence, horizon_days, draws * scale)
    raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")


def _tail(method: str, confidence: float, horizon_days: float, profits: np.ndarray) -> Risk:
    """VaR as the loss at the (1 - confidence) quantile of profits; ES as the mean beyond it."""
    if profits.size == 0:
        return Risk(method, confidence, horizon_days, 0.0, 0.0)
    cutoff = float(np.quantile(profits, 1 - confidence))
    tail = profits[profits <= cutoff]
    return Risk(method, confidence, horizon_days, max(0.0, -cutoff), max(0.0, -float(tail.mean())))


def _covariance(step_returns: np.ndarray) -> np.ndarray:
    columns = step_returns.shape[1]
    if step_returns.shape[0] < 2:
        return np.zeros((columns, columns))
    return np.atleast_2d(np.cov(step_returns, rowvar=False))


def _cholesky(covariance: np.ndarray) -> np.ndarray:
    """A square root of the covariance that also works when it is singular (constant prices,
    two symbols moving as one): the eigen-decomposition, negative rounding noise clipped."""
    values, vectors = np.linalg.eigh(covariance)
    return vectors * np.sqrt(np.clip(values, 0.0, None))


def correlation_matrix(step_returns: np.ndarray) -> np.ndarray:
    """Pearson correlations between columns; a constant column correlates 0 with the others."""
    values = np.asarray(step_returns, dtype=float)
    columns = values.shape[1] if values.ndim == 2 else 0
    if values.shape[0] < 2 or columns == 0:
        return np.eye(columns)
    centred = values - values.mean(axis=0)
    products = centred.T @ centred
    spread = np.sqrt(np.diag(products))
    with np.errstate(divide="ignore", invalid="ignore"):
        correlations = products / np.outer(spread, spread)
    correlations[~np.isfinite(correlations)] = 0.0
    np.clip(correlations, -1.0, 1.0, out=correlations)
    np.fill_diagonal(correlations, 1.0)
    return correlations


def average_correlation(correlations: np.ndarray, exposures: np.ndarray) -> float | None:
    """The exposure-weighted average correlation of the positions' profits over every pair.

    A pair weighs |eᵢ|·|eⱼ|, and its correlation carries both sides' signs, so a long and a
    short on the same move count as a hedge (−1), not as concentration. None for fewer
    than two exposed symbols.
    """
    exposures = np.asarray(exposures, dtype=float)
    if np.count_nonzero(exposures) < 2:
        return None
    signs, sizes = np.sign(exposures), np.abs(exposures)
    weights = np.triu(np.outer(sizes, sizes), k=1)
    signed = correlations * np.outer(signs, signs)
    return float((weights * signed).sum() / weights.sum())


def book_correlation(holdings: Book) -> float | None:
    """`average_correlation(correlation_matrix(returns), exposures)` without the matrix.

    With unit-length centred columns Z, Σᵢⱼ eᵢeⱼρᵢⱼ = ‖Z e‖², so the pairs' weighted sum is
    that less the diagonal, halved: one pass over the returns instead of N² correlations.
    """
    exposures = holdings.exposures
    if np.count_nonzero(exposures) < 2 or holdings.samples < 2:
        return None if np.count_nonzero(exposures) < 2 else 0.0
    centred = holdings.returns - holdings.returns.mean(axis=0)
    spread = np.sqrt(np.einsum("ij,ij->j", centred, centred))
    moving = spread > 0
    weighted = centred[:, moving] @ (exposures[moving] / spread[moving])
    pairs = (weighted @ weighted - float(exposures[moving] @ exposures[moving])) / 2
    sizes = np.abs(exposures)
    return float(pairs / ((sizes.sum() ** 2 - sizes @ sizes) / 2))


# --- Stress scenarios on the positions held now --------------------------------------


@dataclass(frozen=True, slots=True)
class StressResult:
    """One scenario's projected loss (positive is a loss) and the position that loses most."""

    scenario: str
    loss: float
    share: float | None
    """The loss as a share of equity; None when equity is not positive."""
    worst_symbol: str | None
    worst_loss: float


MARKET_MOVES = (-0.10, -0.20, -0.30)
FLASH_CRASH = -0.15
"""The benchmark's fall in a flash crash; each symbol follows by its beta to it."""


def stress_test(
    holdings: Book,
    equity: float,
    moves: Sequence[float] = MARKET_MOVES,
    flash_crash: float = FLASH_CRASH,
    shocks: Mapping[str, float] | None = None,
    confidence: float = 0.99,
    horizon_days: float = 1.0,
) -> tuple[StressResult, ...]:
    """Every scenario on the book, as projected losses in quote currency.

    - `market -10%` and the like: every price moves by that much at once.
    - `flash crash`: the benchmark falls by `flash_crash` and each symbol by its beta to
      the benchmark's returns; beta 1 without benchmark history.
    - `correlation 1`: every symbol moves by its own `confidence` quantile over the
      horizon, all in the direction that hurts the book, as if every correlation were 1.
    - `shocks`: per-symbol moves from configuration; a symbol not named stays put. A key
      may name the symbol (`BTC/USDT:USDT`) or its base asset (`BTC`).
    """
    results = [_scenario(f"market {move:+.0%}", holdings, equity, np.full(len(holdings.symbols), move)) for move in moves]
    results.append(_scenario("flash crash", holdings, equity, flash_crash * _betas(holdings)))
    results.append(_scenario("correlation 1", holdings, equity, _comonotonic_moves(holdings, confidence, horizon_days)))
    if shocks:
        moves_by_symbol = np.array([_shock(symbol, shocks) for symbol in holdings.symbols], dtype=float)
        results.append(_scenario("configured shocks", holdings, equity, moves_by_symbol))
    return tuple(results)


def worst(results: Iterable[StressResult]) -> StressResult | None:
    return max(results, key=lambda result: result.loss, default=None)


def _scenario(name: str, holdings: Book, equity: float, moves: np.ndarray) -> StressResult:
    losses = -holdings.exposures * moves
    loss = float(losses.sum()) if losses.size else 0.0
    share = loss / equity if equity > 0 else None
    if losses.size == 0 or losses.max() <= 0:
        return StressResult(name, loss, share, None, 0.0)
    index = int(losses.argmax())
    return StressResult(name, loss, share, holdings.symbols[index], float(losses[index]))


def _betas(holdings: Book) -> np.ndarray:
    ones, benchmark = np.ones(len(holdings.symbols)), holdings.benchmark
    if benchmark is None or benchmark.size < 2:
        return ones
    centred = benchmark - benchmark.mean()
    variance = float(centred @ centred)
    if variance <= 0:
        return ones
    return holdings.returns.T @ centred / variance  # the benchmark centred is enough: Σ(bₜ - b̄) = 0


def _comonotonic_moves(holdings: Book, confidence: float, horizon_days: float) -> np.ndarray:
    from statistics import NormalDist

    if holdings.samples < 2:
        return np.zeros(len(holdings.symbols))
    centred = holdings.returns - holdings.returns.mean(axis=0)
    variances = np.einsum("ij,ij->j", centred, centred) / (holdings.samples - 1)
    spreads = np.sqrt(variances) * np.sqrt(horizon_days * holdings.steps_per_day)
    size = NormalDist().inv_cdf(confidence) * spreads
    # Everything moves together; the book loses most when prices go against its net side.
    direction = -1.0 if float(holdings.exposures @ spreads) >= 0 else 1.0
    return direction * size


def _shock(symbol: str, shocks: Mapping[str, float]) -> float:
    if symbol in shocks:
        return shocks[symbol]
    return shocks.get(symbol.split("/")[0], 0.0)


# --- Over time, for the report's chart -----------------------------------------------


def rolling_value_at_risk(
    equity: pd.Series, every: str = "5min", window: int = 24, level: float = 0.95, horizon: str | None = None
) -> pd.Series:
    """Historical VaR of equity's `every` returns over the trailing `window` steps, as a
    share of equity, at each step that has a full window; scaled to `horizon` (such as
    "1D") by the square root of time when given."""
    import pandas as pd

    step_returns = returns(equity, every)
    if len(step_returns) < window:
        return step_returns.iloc[0:0]
    scale = np.sqrt(pd.Timedelta(horizon) / pd.Timedelta(every)) if horizon else 1.0
    return (-step_returns.rolling(window).quantile(1 - level)).clip(lower=0.0).dropna() * scale
