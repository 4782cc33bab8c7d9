"""The circuit breakers: pure functions from a Context and a config to readings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from riskd.breakers import BREAKERS as REGISTRY
from riskd.breakers import Context
from riskd.domain import Status

from tests.factories import configure, context, evaluate, only, position, seconds_ago, snapshot, state

ACCOUNT_WIDE = ["drawdown", "daily_loss", "leverage", "concentration", "margin_ratio", "stale_data"]
PER_POSITION = ["position_loss", "liquidation_distance"]
RUNAWAY = ["open_orders", "order_rate", "positions", "position_size", "order_size"]
"""The runaway-bot guards count things or limit sizes in money; tests/unit/test_limits.py has theirs."""
MARKET = ["var", "volatility_spike", "flash_crash", "correlation", "stress_loss"]
# The market breakers price positions on candles, which no exact scale fits: they have
# their own tests (test_market_breakers.py). These run on the others.
SCALED = [*ACCOUNT_WIDE, *PER_POSITION]
"""The breakers judged as a share, a multiple or a time, on the scale below."""
BREAKERS = {name: REGISTRY[name] for name in SCALED}
NEEDS_SNAPSHOT = [name for name in SCALED if name != "stale_data"]





# Each breaker measured on a scale where the value is exactly `units / DIVISOR[name]`:
# ten-thousandths of equity (or of the mark price), and seconds for stale_data. Whole
# numbers keep the arithmetic exact, so "exactly at the limit" means exactly.
DIVISOR = {name: 10_000 for name in SCALED} | {"stale_data": 1}

# name: (default limit, default warning level) in the units above
DEFAULT_LEVELS = {
    "drawdown": (1_000, 800),  # 10 %, warns at 8 %
    "daily_loss": (500, 400),  # 5 %, warns at 4 %
    "position_loss": (300, 240),  # 3 %, warns at 2.4 %
    "leverage": (50_000, 40_000),  # 5x, warns at 4x
    "concentration": (15_000, 12_000),  # 150 %, warns at 120 %
    "liquidation_distance": (1_000, 1_250),  # 10 %, warns at 12.5 % (lower is worse)
    "margin_ratio": (5_000, 4_000),  # 50 %, warns at 40 %
    "stale_data": (60, 48),  # 60 s, warns at 48 s
}


def worse(name: str) -> int:
    """+1 where a higher value is worse, -1 for liquidation distance."""
    return -1 if name == "liquidation_distance" else 1


def measuring(name: str, units: int) -> Context:
    """A context in which breaker `name` measures exactly `units / DIVISOR[name]`."""
    if name == "drawdown":
        return context(snapshot(equity=10_000 - units), state(peak_equity=10_000))
    if name == "daily_loss":
        return context(snapshot(equity=10_000 - units), state(day_start_equity=10_000))
    if name == "position_loss":
        return context(snapshot(equity=10_000, positions=[position(unrealized_pnl=-units)]))
    if name == "leverage":
        return context(snapshot(equity=10_000, positions=[position(notional=units)]))
    if name == "concentration":
        positions = [position("BTC/USDT:USDT", notional=units), position("ETH/USDT:USDT", notional=100)]
        return context(snapshot(equity=10_000, positions=positions))
    if name == "liquidation_distance":
        return context(snapshot(positions=[position(mark_price=10_000, liquidation_price=10_000 - units)]))
    if name == "margin_ratio":
        return context(snapshot(positions=[position()], margin_ratio=units / 10_000))
    if name == "stale_data":
        return context(snapshot(), state(last_good_at=seconds_ago(units)))
    raise AssertionError(f"no scale for {name}")


def test_every_breaker_has_a_scale_in_these_tests():
    assert set(DEFAULT_LEVELS) == set(SCALED)


# The registry ----------------------------------------------------------------------


def test_registry_holds_every_breaker_under_its_yaml_name():
    assert set(REGISTRY) == {*ACCOUNT_WIDE, *PER_POSITION, *RUNAWAY, *MARKET, "loss_streak", "gross_exposure", "exchange_exposure"}


@pytest.mark.parametrize("name", SCALED)
def test_every_breaker_names_its_readings_by_its_yaml_name(name):
    # the engine finds a reading's configuration and formatter by this name
    limit, _ = DEFAULT_LEVELS[name]
    assert {reading.breaker for reading in evaluate(name, measuring(name, limit))} == {name}
    assert {reading.breaker for reading in evaluate(name, context())} == {name}  # nothing to measure


@pytest.mark.parametrize("name", BREAKERS)
def test_every_breaker_describes_itself_in_one_line(name):
    description = BREAKERS[name].description
    assert description.strip() and "\n" not in description


@pytest.mark.parametrize("name", SCALED)
def test_every_breaker_config_forbids_unknown_keys(name):
    with pytest.raises(ValidationError) as raised:
        configure(name, limt="10%")
    assert [(error["type"], error["loc"]) for error in raised.value.errors()] == [("extra_forbidden", ("limt",))]


@pytest.mark.parametrize("name", SCALED)
def test_every_breaker_config_is_valid_with_its_defaults_and_reports_its_levels(name):
    config = configure(name)
    limit, warn = DEFAULT_LEVELS[name]
    assert config.limit == pytest.approx(limit / DIVISOR[name])
    assert config.warning_level == pytest.approx(warn / DIVISOR[name])


# Levels: exactly at, just short of, and past the limit and the warning level -------------


@pytest.mark.parametrize("name", SCALED)
def test_exactly_at_the_limit_is_breached(name):
    limit, _ = DEFAULT_LEVELS[name]
    reading = only(evaluate(name, measuring(name, limit)))
    assert reading.status is Status.BREACHED
    assert reading.value == pytest.approx(limit / DIVISOR[name])
    assert reading.limit == configure(name).limit


@pytest.mark.parametrize("name", SCALED)
def test_past_the_limit_is_breached(name):
    limit, _ = DEFAULT_LEVELS[name]
    assert only(evaluate(name, measuring(name, limit + worse(name) * 100))).status is Status.BREACHED


@pytest.mark.parametrize("name", SCALED)
def test_just_short_of_the_limit_is_a_warning(name):
    limit, _ = DEFAULT_LEVELS[name]
    assert only(evaluate(name, measuring(name, limit - worse(name)))).status is Status.WARNING


@pytest.mark.parametrize(
    "name",
    [
        name for name in SCALED
    ],
)
def test_exactly_at_the_default_warning_level_is_a_warning(name):
    _, warn = DEFAULT_LEVELS[name]
    assert only(evaluate(name, measuring(name, warn))).status is Status.WARNING


@pytest.mark.parametrize("name", SCALED)
def test_just_short_of_the_warning_level_is_ok(name):
    _, warn = DEFAULT_LEVELS[name]
    reading = only(evaluate(name, measuring(name, warn - worse(name))))
    assert reading.status is Status.OK
    assert reading.value == pytest.approx((warn - worse(name)) / DIVISOR[name])


# name: (warn_at as written, the same in units)
CUSTOM_WARNINGS = {
    "drawdown": ("5%", 500),
    "daily_loss": ("3%", 300),
    "position_loss": ("1%", 100),
    "leverage": ("3x", 30_000),
    "concentration": ("100%", 10_000),
    "liquidation_distance": ("20%", 2_000),
    "margin_ratio": ("30%", 3_000),
    "stale_data": ("30s", 30),
}


@pytest.mark.parametrize("name", SCALED)
def test_custom_warn_at_moves_the_warning_level(name):
    written, warn = CUSTOM_WARNINGS[name]
    at_level = only(evaluate(name, measuring(name, warn), warn_at=written))
    short_of_it = only(evaluate(name, measuring(name, warn - worse(name)), warn_at=written))
    assert at_level.status is Status.WARNING
    assert at_level.warn_at == pytest.approx(warn / DIVISOR[name])
    assert short_of_it.status is Status.OK


# name: a warn_at on the far side of the default limit
WARNINGS_BEYOND_THE_LIMIT = {
    "drawdown": "12%",
    "daily_loss": "6%",
    "position_loss": "4%",
    "leverage": "6x",
    "concentration": "200%",
    "liquidation_distance": "5%",
    "margin_ratio": "60%",
    "stale_data": "2m",
}


@pytest.mark.parametrize("name", SCALED)
def test_warn_at_beyond_the_limit_is_refused(name):
    with pytest.raises(ValidationError, match="warn_at must come before the limit"):
        configure(name, warn_at=WARNINGS_BEYOND_THE_LIMIT[name])


# Actions ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ACCOUNT_WIDE)
def test_close_is_refused_for_account_wide_breakers(name):
    with pytest.raises(ValidationError, match="close applies to one position"):
        configure(name, action="close")


@pytest.mark.parametrize("name", PER_POSITION)
def test_close_is_accepted_for_per_position_breakers(name):
    assert configure(name, action="close").action == "close"


# Missing data ----------------------------------------------------------------------


@pytest.mark.parametrize("name", NEEDS_SNAPSHOT)
def test_no_snapshot_is_no_data_in_words_never_ok(name):
    remembered = state(peak_equity=10_000, day_start_equity=10_000, last_good_at=seconds_ago(1))
    reading = only(evaluate(name, context(None, remembered)))
    assert reading.status is Status.NO_DATA
    assert reading.value is None
    assert len(reading.reason.split()) >= 3, reading.reason


def test_stale_data_without_any_start_time_is_no_data():
    reading = only(evaluate("stale_data", context(None, state())))
    assert reading.status is Status.NO_DATA
    assert reading.value is None
    assert len(reading.reason.split()) >= 3, reading.reason


def test_stale_data_measures_the_silence_even_without_a_snapshot():
    reading = only(evaluate("stale_data", context(None, state(last_good_at=seconds_ago(90)))))
    assert reading.status is Status.BREACHED
    assert reading.value == 90


# Drawdown --------------------------------------------------------------------------


def test_drawdown_counts_unrealized_pnl_once_because_equity_already_holds_it():
    losing = position(unrealized_pnl=-1_000)
    reading = only(evaluate("drawdown", context(snapshot(equity=9_000, positions=[losing]), state(peak_equity=10_000))))
    assert reading.value == pytest.approx(0.10)
    assert reading.status is Status.BREACHED


def test_drawdown_above_the_peak_is_zero_not_negative():
    reading = only(evaluate("drawdown", context(snapshot(equity=11_000), state(peak_equity=10_000))))
    assert reading.status is Status.OK
    assert reading.value == 0.0


@pytest.mark.parametrize("peak", [None, 0.0, -5.0])
def test_drawdown_without_a_positive_peak_is_no_data(peak):
    reading = only(evaluate("drawdown", context(snapshot(equity=9_000), state(peak_equity=peak))))
    assert reading.status is Status.NO_DATA
    assert "peak" in reading.reason


# Daily loss ------------------------------------------------------------------------


def test_daily_loss_is_measured_from_day_start_equity_not_the_peak():
    inputs = context(snapshot(equity=9_700), state(peak_equity=20_000, day_start_equity=10_000))
    assert only(evaluate("daily_loss", inputs)).value == pytest.approx(0.03)


def test_daily_gain_is_ok_not_a_breach():
    reading = only(evaluate("daily_loss", context(snapshot(equity=10_500), state(day_start_equity=10_000))))
    assert reading.status is Status.OK
    assert reading.value <= 0


@pytest.mark.parametrize("start", [None, 0.0])
def test_daily_loss_without_day_start_equity_is_no_data(start):
    reading = only(evaluate("daily_loss", context(snapshot(equity=9_000), state(day_start_equity=start))))
    assert reading.status is Status.NO_DATA


# Position loss ---------------------------------------------------------------------


def test_position_loss_reads_each_position_as_a_share_of_equity():
    losing = position("BTC/USDT:USDT", unrealized_pnl=-400)
    winning = position("ETH/USDT:USDT", unrealized_pnl=250)
    readings = evaluate("position_loss", context(snapshot(equity=10_000, positions=[losing, winning])))
    by_symbol = {reading.symbol: reading for reading in readings}
    assert set(by_symbol) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert by_symbol["BTC/USDT:USDT"].value == pytest.approx(0.04)
    assert by_symbol["BTC/USDT:USDT"].status is Status.BREACHED
    assert by_symbol["ETH/USDT:USDT"].value == 0.0
    assert by_symbol["ETH/USDT:USDT"].status is Status.OK


def test_position_loss_names_hedge_mode_positions_by_their_key():
    long = position("BTC/USDT:USDT", position_side="long", unrealized_pnl=-100)
    short = position("BTC/USDT:USDT", side="short", position_side="short", unrealized_pnl=-500)
    readings = evaluate("position_loss", context(snapshot(equity=10_000, positions=[long, short])))
    statuses = {reading.symbol: reading.status for reading in readings}
    assert statuses == {"BTC/USDT:USDT:long": Status.OK, "BTC/USDT:USDT:short": Status.BREACHED}
    assert {reading.key for reading in readings} == {
        "position_loss:BTC/USDT:USDT:long",
        "position_loss:BTC/USDT:USDT:short",
    }


def test_position_loss_with_no_positions_is_a_single_ok_reading():
    reading = only(evaluate("position_loss", context(snapshot(equity=10_000, positions=[]))))
    assert reading.status is Status.OK
    assert reading.symbol is None


@pytest.mark.parametrize("equity", [0.0, -1_000.0])
def test_position_loss_on_equity_of_zero_or_less_is_never_ok(equity):
    reading = only(evaluate("position_loss", context(snapshot(equity=equity, positions=[position(unrealized_pnl=-50)]))))
    assert reading.status is not Status.OK


# Leverage and concentration --------------------------------------------------------


def test_leverage_is_gross_notional_over_equity_longs_and_shorts_alike():
    positions = [position("BTC/USDT:USDT", notional=20_000), position("ETH/USDT:USDT", side="short", notional=10_000)]
    reading = only(evaluate("leverage", context(snapshot(equity=10_000, positions=positions))))
    assert reading.value == pytest.approx(3.0)
    assert reading.status is Status.OK


def test_concentration_is_the_largest_notional_over_equity():
    positions = [position("BTC/USDT:USDT", notional=10_000), position("ETH/USDT:USDT", side="short", notional=20_000)]
    reading = only(evaluate("concentration", context(snapshot(equity=10_000, positions=positions))))
    assert reading.value == pytest.approx(2.0)
    assert reading.status is Status.BREACHED


@pytest.mark.parametrize("name", ["leverage", "concentration"])
@pytest.mark.parametrize("equity", [0.0, -2_500.0])
def test_open_positions_on_equity_of_zero_or_less_are_breached_without_a_value(name, equity):
    reading = only(evaluate(name, context(snapshot(equity=equity, positions=[position(notional=1_000)]))))
    assert reading.status is Status.BREACHED
    assert reading.value is None
    assert f"{equity:,.2f} USDT" in reading.reason
    assert "1,000.00 USDT" in reading.reason


@pytest.mark.parametrize("name", ["leverage", "concentration"])
@pytest.mark.parametrize("equity", [0.0, -2_500.0])
def test_a_flat_account_on_equity_of_zero_or_less_is_ok(name, equity):
    reading = only(evaluate(name, context(snapshot(equity=equity, positions=[]))))
    assert reading.status is Status.OK
    assert reading.value == 0.0


# Liquidation distance --------------------------------------------------------------


def test_liquidation_distance_is_measured_either_side_of_the_mark():
    short = position("ETH/USDT:USDT", side="short", mark_price=100.0, liquidation_price=110.0)
    reading = only(evaluate("liquidation_distance", context(snapshot(positions=[short]))))
    assert reading.value == pytest.approx(0.10)
    assert reading.status is Status.BREACHED
    assert reading.symbol == "ETH/USDT:USDT"


def test_liquidation_distance_far_away_is_ok_because_lower_is_worse():
    far = position(mark_price=100.0, liquidation_price=50.0)
    near = position("ETH/USDT:USDT", mark_price=100.0, liquidation_price=95.0)
    readings = evaluate("liquidation_distance", context(snapshot(positions=[far, near])))
    assert {reading.symbol: reading.status for reading in readings} == {
        "BTC/USDT:USDT": Status.OK,
        "ETH/USDT:USDT": Status.BREACHED,
    }


def test_liquidation_distance_skips_what_cannot_be_liquidated():
    spot = position("BTC/USDT", kind="spot", mark_price=100.0, liquidation_price=None)
    safe = position("SOL/USDT:USDT", mark_price=100.0, liquidation_price=0.0)  # the venue says: cannot be
    future = position("ETH/USDT:USDT", mark_price=100.0, liquidation_price=80.0)
    readings = evaluate("liquidation_distance", context(snapshot(positions=[spot, safe, future])))
    assert [reading.symbol for reading in readings] == ["ETH/USDT:USDT"]


def test_liquidation_distance_without_a_liquidation_price_cannot_measure_and_is_never_ok():
    cross = position("LTC/USDT:USDT", mark_price=71.1, liquidation_price=None, position_side="LONG")
    future = position("ETH/USDT:USDT", mark_price=100.0, liquidation_price=80.0)
    readings = evaluate("liquidation_distance", context(snapshot(positions=[cross, future])))
    assert {reading.symbol: reading.status for reading in readings} == {
        "LTC/USDT:USDT:LONG": Status.NO_DATA,
        "ETH/USDT:USDT": Status.OK,
    }
    assert "no liquidation price" in readings[0].reason


@pytest.mark.parametrize("positions", [[], [position("BTC/USDT", kind="spot", mark_price=100.0)]], ids=["flat", "spot"])
def test_liquidation_distance_with_nothing_to_liquidate_is_a_single_ok_reading(positions):
    reading = only(evaluate("liquidation_distance", context(snapshot(positions=positions))))
    assert reading.status is Status.OK
    assert reading.value is None


# Margin ratio ----------------------------------------------------------------------


def test_margin_ratio_with_open_positions_and_no_ratio_cannot_measure():
    reading = only(evaluate("margin_ratio", context(snapshot(positions=[position()], margin_ratio=None))))
    assert reading.status is Status.NO_DATA
    assert "reports no account margin ratio" in reading.reason


@pytest.mark.parametrize("positions", [[], [position("BTC/USDT", kind="spot", mark_price=100.0)]], ids=["flat", "spot"])
def test_margin_ratio_with_no_margin_in_use_is_ok(positions):
    reading = only(evaluate("margin_ratio", context(snapshot(positions=positions))))
    assert reading.status is Status.OK and reading.value is None


def test_margin_ratio_on_a_failed_read_is_no_data():
    reading = only(evaluate("margin_ratio", context(snapshot(equity=None, error="timeout", margin_ratio=0.9))))
    assert reading.status is Status.NO_DATA


# Stale data ------------------------------------------------------------------------


@pytest.mark.parametrize("written, seconds", [("2m", 120), ("90s", 90), (45, 45), ("250ms", 0.25)])
def test_stale_data_limit_is_written_as_a_duration(written, seconds):
    assert configure("stale_data", limit=written).limit == seconds


def test_stale_data_counts_from_the_last_good_snapshot_before_the_start():
    remembered = state(last_good_at=seconds_ago(30), started_at=seconds_ago(3_600))
    reading = only(evaluate("stale_data", context(None, remembered), limit="1m"))
    assert reading.value == 30
    assert reading.status is Status.OK


def test_stale_data_counts_from_the_start_when_nothing_good_was_ever_read():
    reading = only(evaluate("stale_data", context(None, state(started_at=seconds_ago(300))), limit="2m"))
    assert reading.value == 300
    assert reading.status is Status.BREACHED


@pytest.mark.parametrize("written", ["soon", 0, "-5s"])
def test_stale_data_refuses_a_limit_that_is_not_a_duration(written):
    with pytest.raises(ValidationError, match="duration"):
        configure("stale_data", limit=written)


# Reasons ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, units, texts",
    [
        ("drawdown", 1_200, ["12.0%", "10.0%"]),
        ("daily_loss", 520, ["5.2%", "5.0%"]),
        ("position_loss", 350, ["3.5%", "3.0%", "BTC/USDT:USDT"]),
        ("leverage", 60_000, ["6.00x", "5.00x"]),
        ("concentration", 20_000, ["200.0%", "150.0%"]),
        ("liquidation_distance", 500, ["5.0%", "10.0%", "BTC/USDT:USDT"]),
        ("stale_data", 90, ["90s", "60s"]),
    ],
)
def test_a_breach_reason_gives_the_value_and_the_limit_with_their_units(name, units, texts):
    reading = only(evaluate(name, measuring(name, units)))
    assert reading.status is Status.BREACHED
    for text in texts:
        assert text in reading.reason, reading.reason


def test_a_reason_names_the_breaker_in_words():
    reading = only(evaluate("daily_loss", measuring("daily_loss", 520)))
    assert reading.reason.startswith("daily loss ")


# Config models, beyond levels ------------------------------------------------------


@pytest.mark.parametrize("confirm", [0, -1, 101])
def test_stale_data_confirm_keeps_the_bounds_every_breaker_has(confirm):
    with pytest.raises(ValidationError):
        configure("stale_data", confirm=confirm)


@pytest.mark.parametrize("name", NEEDS_SNAPSHOT)
@pytest.mark.parametrize("confirm", [0, 101])
def test_confirm_out_of_bounds_is_refused(name, confirm):
    with pytest.raises(ValidationError):
        configure(name, confirm=confirm)


@pytest.mark.parametrize(
    "written, resume",
    [("manual", "manual"), ("Manual", "manual"), ("next_day", "next_day"), ("30m", timedelta(minutes=30))],
)
def test_resume_accepts_manual_next_day_or_a_duration(written, resume):
    assert configure("drawdown", resume=written).resume == resume


def test_resume_refuses_anything_else_naming_the_choices():
    with pytest.raises(ValidationError, match="resume must be manual, next_day or a duration"):
        configure("drawdown", resume="whenever")
