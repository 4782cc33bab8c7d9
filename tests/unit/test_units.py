"""The unit parsers: what people may write for percentages, shares, durations, ratios."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from riskd.units import (
    Duration,
    Percent,
    format_duration,
    format_money,
    format_percent,
    Money,
    parse_duration,
    parse_money,
    parse_percent,
    parse_ratio,
    parse_share,
)

# Percentages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "written, expected",
    [
        ("10%", 0.10),
        ("0.10", 0.10),
        (0.10, 0.10),
        (" 10 % ", 0.10),
        ("12.5%", 0.125),
        ("0.5%", 0.005),
        ("100%", 1.0),
        (1, 1.0),
    ],
)
def test_percent_accepts_both_spellings(written, expected):
    assert parse_percent(written) == pytest.approx(expected)


@pytest.mark.parametrize(
    "written, percent_spelling, fraction_spelling",
    [(10, "10%", "0.1"), ("10", "10%", "0.1"), (12.5, "12.5%", "0.125"), ("150", "150%", "1.5")],
)
def test_percent_refuses_a_bare_number_above_one_and_suggests_both_spellings(
    written, percent_spelling, fraction_spelling
):
    with pytest.raises(ValueError, match="ambiguous") as raised:
        parse_percent(written)
    assert percent_spelling in str(raised.value)
    assert fraction_spelling in str(raised.value)


@pytest.mark.parametrize("written", [0, 0.0, "0", "0%", -0.1, "-0.1", "-5%", -10])
def test_percent_refuses_zero_and_negative(written):
    with pytest.raises(ValueError, match="above 0%"):
        parse_percent(written)


def test_percent_refuses_more_than_all_of_it():
    with pytest.raises(ValueError, match="at most 100%"):
        parse_percent("150%")


@pytest.mark.parametrize("written", ["ten percent", "", "%", "10%%", None, True, [10], float("nan")])
def test_percent_refuses_what_is_not_a_percentage(written):
    with pytest.raises(ValueError, match="percentage"):
        parse_percent(written)


def test_percent_error_reaches_pydantic_with_its_sentence():
    with pytest.raises(ValidationError, match="ambiguous: write 10% or 0.1"):
        TypeAdapter(Percent).validate_python(10)


# Shares (percentages that may exceed 100 %) ---------------------------------------


@pytest.mark.parametrize("written, expected", [("150%", 1.5), (1.5, 1.5), ("50%", 0.5), (10, 10.0), (" 250% ", 2.5)])
def test_share_allows_more_than_all_of_equity(written, expected):
    assert parse_share(written) == pytest.approx(expected)


def test_share_accepts_a_number_written_as_text():
    assert parse_share("1.5") == 1.5


def test_share_refuses_an_ambiguous_large_number():
    with pytest.raises(ValueError, match="ambiguous") as raised:
        parse_share(150)
    assert "150%" in str(raised.value) and "1.5" in str(raised.value)


@pytest.mark.parametrize("written", [0, "0%", -1.5, "-5%"])
def test_share_refuses_zero_and_negative(written):
    with pytest.raises(ValueError, match="above 0%"):
        parse_share(written)


@pytest.mark.parametrize("written", ["lots", "x%", None, True])
def test_share_refuses_what_is_not_a_share(written):
    with pytest.raises(ValueError, match="percentage like 150% or 1.5"):
        parse_share(written)


@pytest.mark.parametrize("written", [float("nan"), "nan%"], ids=["float", "percent"])
def test_share_refuses_not_a_number(written):
    with pytest.raises(ValueError):
        parse_share(written)


# Durations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "written, seconds",
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3_600),
        ("2d", 172_800),
        ("250ms", 0.25),
        ("1.5h", 5_400),
        (" 5 m ", 300),
        ("90", 90),
        (45, 45),
        (0.5, 0.5),
        (timedelta(minutes=2), 120),
    ],
)
def test_duration_accepts_units_and_plain_seconds(written, seconds):
    assert parse_duration(written) == timedelta(seconds=seconds)


@pytest.mark.parametrize("written", ["soon", "5 minutes", "1h30m", "-5s", "5x", "", "m", None, True, [30]])
def test_duration_refuses_what_it_cannot_read_with_an_example(written):
    with pytest.raises(ValueError, match="expected a duration like 30s, 5m or 1h"):
        parse_duration(written)


@pytest.mark.parametrize("written", [0, "0s", "0ms", -1, -0.5, timedelta(0)])
def test_duration_refuses_zero_and_negative(written):
    with pytest.raises(ValueError, match="longer than zero"):
        parse_duration(written)


@pytest.mark.parametrize("written", [float("inf"), float("nan"), "1000000000d"])
def test_duration_refuses_values_out_of_range_with_a_clear_message(written):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(written)


def test_duration_error_reaches_pydantic_with_its_sentence():
    with pytest.raises(ValidationError, match="expected a duration like 30s"):
        TypeAdapter(Duration).validate_python("soon")


# Ratios --------------------------------------------------------------------------


@pytest.mark.parametrize("written, expected", [(3, 3.0), ("3", 3.0), ("3x", 3.0), ("3X", 3.0), ("2.5x", 2.5), (2.5, 2.5)])
def test_ratio_accepts_a_multiple_with_or_without_x(written, expected):
    assert parse_ratio(written) == expected


@pytest.mark.parametrize("written", [0, "0x", -1, "-2x", True])
def test_ratio_refuses_zero_and_negative(written):
    with pytest.raises(ValueError, match="above zero"):
        parse_ratio(written)


@pytest.mark.parametrize("written", ["three", "x", "", None, [3]])
def test_ratio_refuses_what_is_not_a_multiple(written):
    with pytest.raises(ValueError, match="expected a multiple like 3 or 3x"):
        parse_ratio(written)


@pytest.mark.parametrize("written", [float("nan"), "nan", "nanx"], ids=["float", "text", "text-with-x"])
def test_ratio_refuses_not_a_number(written):
    with pytest.raises(ValueError):
        parse_ratio(written)


# Formatting ----------------------------------------------------------------------


@pytest.mark.parametrize("value, text", [(0.12, "12.0%"), (0.1234, "12.3%"), (1.5, "150.0%"), (0.0, "0.0%")])
def test_format_percent_shows_one_decimal(value, text):
    assert format_percent(value) == text


@pytest.mark.parametrize(
    "value, text",
    [(30, "30s"), (timedelta(seconds=119), "119s"), (300, "5m"), (3_600, "60m"), (18_000, "5.0h"), (172_800, "2.0d")],
)
def test_format_duration_picks_a_readable_unit(value, text):
    assert format_duration(value) == text


@pytest.mark.parametrize("written", ["30s", "5m", "2d"])
def test_format_duration_reads_back_to_the_same_duration(written):
    assert parse_duration(format_duration(parse_duration(written))) == parse_duration(written)


def test_format_money_groups_thousands_and_names_the_currency():
    assert format_money(1234.5, "USDT") == "1,234.50 USDT"
    assert format_money(-20.0, "USDC") == "-20.00 USDC"



@pytest.mark.parametrize("written", ["500 USDT", "500USDT", " 500usdt ", "500\tUSDT"])
def test_money_is_read_with_or_without_a_space_before_the_currency(written):
    assert parse_money(written) == Money(500.0, "USDT")  # a command's words split at spaces: 500USDT is one word


@pytest.mark.parametrize("written", ["500", "8%", "3x", "2h", "500ms", "USDT 500"])
def test_what_is_not_money_is_refused_as_money(written):
    with pytest.raises(ValueError, match="expected an amount of money"):
        parse_money(written)
