"""The status page's breaker table, rendered from plain values: each value in its breaker's own unit."""

from __future__ import annotations

import re
from datetime import timedelta

from riskd import page
from riskd.commands import AccountStatus
from riskd.domain import Reading, Status, TradingState
from tests.factories import NOW


def breaker_rows(*readings: Reading) -> dict[str, tuple[str, str]]:
    """The page's breaker table for an account with `readings`: name → (value, limit) as shown."""
    account = AccountStatus(
        "main", "binanceusdm", True, TradingState.ACTIVE, "", None, NOW - timedelta(seconds=5),
        10_000.0, 10_000.0, 10_000.0, "USDT", readings=list(readings),
    )
    html = page.render([account], [], {}, NOW, 10)
    table = re.search(r"<table class=breakers>(.*?)</table>", html).group(1)
    cells = re.findall(r"<tr><td>([^<]*)</td><td class=n>([^<]*)</td><td class=n>([^<]*)</td>", table)
    return {name: (value, limit) for name, value, limit in cells}


def test_a_limit_written_in_money_is_shown_in_its_currency():
    var = Reading("var", Status.OK, 42_000.0, 50_000.0, 40_000.0, "VaR in USDT", currency="USDT")
    assert breaker_rows(var)["var"] == ("42,000.00 USDT", "50,000.00 USDT")


def test_a_ladder_level_is_shown_in_its_breakers_unit():
    level = Reading("drawdown.2", Status.OK, 0.12, 0.15, 0.135, "drawdown 12.0% is within the limit of 15.0%")
    plain = Reading("leverage", Status.OK, 1.77, 5.0, 4.0, "leverage 1.77x is within the limit of 5.00x")
    rows = breaker_rows(level, plain)
    assert rows["drawdown.2"] == ("12.0%", "15.0%")
    assert rows["leverage"] == ("1.77x", "5.00x")
