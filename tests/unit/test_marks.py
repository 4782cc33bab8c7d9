"""Revaluing the last snapshot at stream marks, and judging it with the pure breakers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from riskd.domain import AccountState, Side, Status, frozen_mapping
from riskd.marks import PRICE_DRIVEN, price_readings, revalue, unconfirmed_breaches
from tests.factories import NOW, policy, position, snapshot

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


def defaults() -> dict:
    """Every breaker at its defaults, with the opt-in ones a mark can move or not given limits."""
    return dict(
        policy(
            **{name: {} for name in PRICE_DRIVEN if name != "position_size"},
            stale_data={}, position_size={"limit": "20000 USDT"}, open_orders={"limit": 1}, positions={"limit": 1},
        ).breakers
    )


def test_a_long_loses_and_a_short_gains_when_the_mark_falls():
    long = position(BTC, notional=10_000, mark_price=50_000, unrealized_pnl=100, liquidation_price=40_000)
    short = position(ETH, side=Side.SHORT, notional=4_000, mark_price=2_000, unrealized_pnl=-50)
    before = snapshot(equity=20_000, positions=[long, short])

    after = revalue(before, {BTC: 45_000, ETH: 1_800})

    btc, eth = after.positions
    assert btc.mark_price == 45_000 and btc.notional == pytest.approx(9_000)
    assert btc.unrealized_pnl == pytest.approx(100 - 1_000)
    assert eth.mark_price == 1_800 and eth.notional == pytest.approx(3_600) and eth.unrealized_pnl == pytest.approx(-50 + 400)
    assert after.equity == pytest.approx(20_000 - 1_000 + 400)
    assert btc.liquidation_price == 40_000 and btc.contracts == long.contracts  # what the mark cannot change
    assert before.equity == 20_000 and before.positions[0].mark_price == 50_000  # the snapshot is a value


def test_positions_without_a_new_mark_keep_their_figures():
    held = position(BTC, notional=10_000, mark_price=50_000)
    unmarked = position(ETH, notional=1_000, mark_price=None)
    before = snapshot(equity=5_000, positions=[held, unmarked])

    after = revalue(before, {ETH: 1_000, "SOL/USDT:USDT": 10})

    assert after.positions == (held, unmarked) and after.equity == 5_000


def test_a_spot_holding_moves_equity_but_keeps_its_zero_pnl():
    coins = position("BTC/USDT", notional=5_000, mark_price=50_000, kind="spot")
    after = revalue(snapshot(equity=8_000, positions=[coins]), {"BTC/USDT": 40_000})
    assert after.equity == pytest.approx(7_000) and after.positions[0].unrealized_pnl == 0.0


def test_the_price_driven_breakers_judge_the_revalued_snapshot():
    state = AccountState("main", peak_equity=10_000, day_start_equity=10_000)
    long = position(BTC, notional=30_000, mark_price=50_000, liquidation_price=35_000)
    crashed = revalue(snapshot(equity=10_000, positions=[long]), {BTC: 46_000})  # -8 % → -2,400

    readings = {reading.key: reading for reading in price_readings(state, crashed, defaults(), NOW)}

    assert {key.split(":")[0] for key in readings} == set(PRICE_DRIVEN)
    assert readings["drawdown"].status is Status.BREACHED and readings["drawdown"].value == pytest.approx(0.24)
    assert readings["daily_loss"].status is Status.BREACHED
    assert readings[f"position_loss:{BTC}"].status is Status.BREACHED
    assert readings["leverage"].value == pytest.approx(27_600 / 7_600)
    assert readings[f"position_size:{BTC}"].status is Status.BREACHED  # 27,600 USDT past 20,000


def test_a_ladder_is_judged_level_by_level_under_the_names_the_tick_uses():
    state = AccountState(
        "main", peak_equity=10_000, day_start_equity=10_000,
        statuses=frozen_mapping({"drawdown": Status.BREACHED}),  # the account's reads tripped level 1
    )
    ladder = policy(drawdown={"levels": [{"limit": "5%", "action": "reduce"}, {"limit": "10%", "action": "flatten"}]})
    crashed = revalue(snapshot(equity=10_000, positions=[position(BTC, notional=10_000, mark_price=100)]), {BTC: 88})

    readings = {reading.key: reading for reading in price_readings(state, crashed, ladder.breakers, NOW)}

    assert set(readings) == {"drawdown", "drawdown.2"}
    assert readings["drawdown"].limit == pytest.approx(0.05) and readings["drawdown.2"].limit == pytest.approx(0.10)
    assert all(reading.status is Status.BREACHED for reading in readings.values())  # 12 % down
    assert [reading.key for reading in unconfirmed_breaches(state, tuple(readings.values()))] == ["drawdown.2"]


def test_only_breaches_not_already_tripped_call_for_a_read():
    state = AccountState("main", peak_equity=10_000, day_start_equity=10_000)
    crashed = revalue(snapshot(equity=10_000, positions=[position(BTC, notional=5_000, mark_price=100)]), {BTC: 70})
    readings = price_readings(state, crashed, defaults(), NOW)
    fresh = {reading.key for reading in unconfirmed_breaches(state, readings)}
    assert fresh == {"drawdown", "daily_loss", f"position_loss:{BTC}"}  # 1,500 lost: 15 % of 10,000
    # … once the account's own reads have tripped one, only the others still call for a read
    tripped = AccountState(
        "main", peak_equity=10_000, day_start_equity=10_000,
        statuses=frozen_mapping({"daily_loss": Status.BREACHED, "drawdown": Status.WARNING}),
    )
    assert {r.key for r in unconfirmed_breaches(tripped, readings)} == fresh - {"daily_loss"}


def test_a_calm_mark_breaches_nothing():
    state = AccountState("main", peak_equity=10_000, day_start_equity=10_000)
    calm = revalue(snapshot(equity=10_000, positions=[position(BTC, notional=5_000, mark_price=100)]), {BTC: 99.5})
    assert unconfirmed_breaches(state, price_readings(state, calm, defaults(), NOW)) == ()


def test_the_readme_names_every_breaker_the_stream_judges():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    sentence = re.search(r"judges?\s+them with the price-driven breakers:(.*?)\.", readme, re.S).group(1)
    assert set(re.findall(r"`(\w+)`", sentence)) == set(PRICE_DRIVEN)
