"""What a reload (SIGHUP) may change at once, and what waits for a restart."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from riskd.config import load_settings, reloadable


def settings(tmp_path, name: str = "config.yaml", **document):
    base = {"accounts": {"demo": {"exchange": "sim"}}, "database": "riskd.db"}
    path = tmp_path / name
    path.write_text(yaml.safe_dump({**base, **document}))
    return load_settings(path)


def test_breakers_live_and_poll_interval_apply_at_once(tmp_path):
    old = settings(tmp_path)
    new = settings(tmp_path, "new.yaml", live=True, poll_interval="5s", breakers={"drawdown": {"limit": "8%"}},
                   accounts={"demo": {"exchange": "sim", "breakers": {"leverage": {"limit": "3x"}}}})
    effective, restart = reloadable(old, new)
    assert restart == []
    assert (effective.live, effective.poll_interval) == (True, timedelta(seconds=5))
    assert effective.breakers_for("demo")["drawdown"].limit == pytest.approx(0.08)
    assert effective.breakers_for("demo")["leverage"].limit == 3


def test_presets_and_the_portfolio_apply_at_once(tmp_path):
    old = settings(tmp_path)
    new = settings(tmp_path, "new.yaml", preset="aggressive", portfolio={"breakers": {"drawdown": {"limit": "8%"}}},
                   accounts={"demo": {"exchange": "sim", "preset": "conservative"}})
    effective, restart = reloadable(old, new)
    assert restart == []
    assert effective.breakers_for("demo")["daily_loss"].limit == pytest.approx(0.02)  # the account's preset
    assert effective.portfolio.breakers_in_force()["drawdown"].limit == pytest.approx(0.08)


def test_connections_accounts_and_the_database_wait_for_a_restart(tmp_path):
    old = settings(tmp_path, accounts={"demo": {"exchange": "sim"}, "gone": {"exchange": "sim"}})
    new = settings(
        tmp_path, "new.yaml", database="elsewhere.db", http={"enabled": True},
        accounts={"demo": {"exchange": "sim", "sim": {"seed": 8}, "breakers": {"leverage": {"limit": "3x"}}},
                  "added": {"exchange": "sim"}},
    )
    effective, restart = reloadable(old, new)
    assert restart == ["database", "http", "accounts.demo", "accounts.gone (removed)", "accounts.added (added)"]
    assert (effective.database, effective.http.enabled) == (old.database, False)
    assert set(effective.accounts) == {"demo", "gone"}
    assert effective.accounts["demo"].sim.seed == 7  # the running connection stays ...
    assert effective.breakers_for("demo")["leverage"].limit == 3  # ... its limits change
