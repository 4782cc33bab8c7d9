"""Configuration: YAML for structure, the environment and `.env` for secrets and overrides.

Every test runs in its own empty working directory with no `RISKD_` variables set, so
neither the developer's shell nor a stray `.env` file leaks in.
"""

from __future__ import annotations

import textwrap
from datetime import time, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from riskd.breakers import BREAKERS
from riskd.config import ConfigError, load_settings

CORPUS = Path(__file__).resolve().parents[1] / "configs"
ENV_KEY = "env-key-Zr81vQ"
ENV_SECRET = "env-secret-Lp40sW"
YAML_SECRET = "yaml-secret-7Qm2xK"  # the value the corpus writes where secrets do not belong
SECRETS = (ENV_KEY, ENV_SECRET, YAML_SECRET)

GOOD = """\
poll_interval: 10s
database: guard.db
day_reset: "06:00"
accounts:
  main:
    exchange: binance
    quote: usdt
  paper:
    exchange: sim
breakers:
  drawdown:
    limit: 8%
    action: alert
"""


@pytest.fixture(autouse=True)
def isolated(no_riskd_environment, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)


def write(directory: Path, text: str, name: str = "config.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def give_credentials(monkeypatch, account: str = "main") -> None:
    monkeypatch.setenv(f"RISKD_ACCOUNTS__{account.upper()}__API_KEY", ENV_KEY)
    monkeypatch.setenv(f"RISKD_ACCOUNTS__{account.upper()}__SECRET", ENV_SECRET)


def refusal(path: Path | None = None, **overrides) -> str:
    with pytest.raises(ConfigError) as raised:
        load_settings(path, **overrides)
    return str(raised.value)


# A good file, and where values come from -------------------------------------------------


def test_a_good_file_loads_with_environment_overrides(monkeypatch, tmp_path):
    give_credentials(monkeypatch)
    monkeypatch.setenv("RISKD_POLL_INTERVAL", "5s")
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.poll_interval == timedelta(seconds=5)
    assert settings.database == Path("guard.db")
    assert settings.day_reset == time(6, 0)
    assert settings.accounts["main"].quote == "USDT"
    assert settings.accounts["paper"].is_sim


def test_credentials_from_the_environment_are_secret_strings_that_never_print(monkeypatch, tmp_path):
    give_credentials(monkeypatch)
    settings = load_settings(write(tmp_path, GOOD))
    account = settings.accounts["main"]
    assert isinstance(account.api_key, SecretStr) and isinstance(account.secret, SecretStr)
    assert account.api_key.get_secret_value() == ENV_KEY
    assert account.secret.get_secret_value() == ENV_SECRET
    for text in (str(account.api_key), repr(account.api_key), str(account), repr(account), repr(settings)):
        assert ENV_KEY not in text and ENV_SECRET not in text


def test_riskd_config_chooses_the_file(monkeypatch, tmp_path):
    give_credentials(monkeypatch)
    chosen = write(tmp_path, GOOD.replace("10s", "42s"), name="chosen.yaml")
    write(tmp_path, GOOD)  # ./config.yaml, which RISKD_CONFIG overrules
    monkeypatch.setenv("RISKD_CONFIG", str(chosen))
    assert load_settings().poll_interval == timedelta(seconds=42)


def test_an_explicit_path_beats_riskd_config(monkeypatch, tmp_path):
    give_credentials(monkeypatch)
    monkeypatch.setenv("RISKD_CONFIG", str(write(tmp_path, GOOD.replace("10s", "42s"), name="chosen.yaml")))
    assert load_settings(write(tmp_path, GOOD, name="explicit.yaml")).poll_interval == timedelta(seconds=10)


def test_without_a_choice_config_yaml_in_the_working_directory_is_read(monkeypatch, tmp_path):
    give_credentials(monkeypatch)
    write(tmp_path, GOOD)
    assert load_settings().poll_interval == timedelta(seconds=10)


def test_a_dotenv_file_is_read_and_may_hold_other_programs_variables(tmp_path):
    write(
        tmp_path,
        f"""\
        # shared with the dashboard
        DATABASE_URL=postgres://dash@localhost/dash
        TELEGRAM_CHAT=12345
        RISKD_POLL_INTERVAL=7s
        RISKD_ACCOUNTS__MAIN__API_KEY={ENV_KEY}
        RISKD_ACCOUNTS__MAIN__SECRET={ENV_SECRET}
        """,
        name=".env",
    )
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.poll_interval == timedelta(seconds=7)
    assert settings.accounts["main"].api_key.get_secret_value() == ENV_KEY


def test_the_environment_beats_the_dotenv_file(monkeypatch, tmp_path):
    give_credentials(monkeypatch)
    write(tmp_path, "RISKD_POLL_INTERVAL=7s\n", name=".env")
    monkeypatch.setenv("RISKD_POLL_INTERVAL", "5s")
    assert load_settings(write(tmp_path, GOOD)).poll_interval == timedelta(seconds=5)


def test_an_environment_override_of_one_breaker_field_keeps_the_others_from_yaml(monkeypatch, tmp_path):
    give_credentials(monkeypatch)
    monkeypatch.setenv("RISKD_BREAKERS__DRAWDOWN__LIMIT", "5%")
    drawdown = load_settings(write(tmp_path, GOOD)).breakers_for("main")["drawdown"]
    assert drawdown.limit == pytest.approx(0.05)
    assert drawdown.action == "alert"


def test_live_is_off_unless_asked_for(monkeypatch, tmp_path):
    give_credentials(monkeypatch)
    path = write(tmp_path, GOOD)
    assert load_settings(path).live is False
    monkeypatch.setenv("RISKD_LIVE", "true")
    assert load_settings(path).live is True


def test_keyword_overrides_beat_everything(monkeypatch, tmp_path):
    give_credentials(monkeypatch)
    monkeypatch.setenv("RISKD_POLL_INTERVAL", "3s")
    settings = load_settings(write(tmp_path, GOOD), live=True, poll_interval="1m")
    assert settings.live is True
    assert settings.poll_interval == timedelta(minutes=1)


# Breaker configuration per account -------------------------------------------------------

MERGING = """\
accounts:
  main:
    exchange: sim
    breakers:
      drawdown:
        limit: 5%
      position_loss:
        enabled: false
  other:
    exchange: sim
    breakers:
      leverage:
        enabled: true
        limit: 2x
breakers:
  drawdown:
    limit: 10%
    action: alert
    resume: 4h
  leverage:
    enabled: false
"""


def test_account_overrides_merge_field_by_field_over_the_defaults(tmp_path):
    settings = load_settings(write(tmp_path, MERGING))
    main, other = settings.breakers_for("main")["drawdown"], settings.breakers_for("other")["drawdown"]
    assert (main.limit, main.action, main.resume) == (pytest.approx(0.05), "alert", timedelta(hours=4))
    assert (other.limit, other.action, other.resume) == (pytest.approx(0.10), "alert", timedelta(hours=4))


def test_enabled_false_drops_a_breaker_and_an_account_may_turn_it_back_on(tmp_path):
    settings = load_settings(write(tmp_path, MERGING))
    main, other = settings.breakers_for("main"), settings.breakers_for("other")
    assert "leverage" not in main and "position_loss" not in main
    assert other["leverage"].limit == 2.0
    assert "position_loss" in other


def test_breakers_not_mentioned_keep_their_own_defaults(tmp_path):
    settings = load_settings(write(tmp_path, MERGING))
    configs = settings.breakers_for("main")
    assert configs["daily_loss"] == BREAKERS["daily_loss"].config()
    opt_in = {name for name, breaker in BREAKERS.items() if breaker.config.opt_in or breaker.config.portfolio_only}
    assert set(configs) == set(BREAKERS) - {"leverage", "position_loss"} - opt_in


PRESETS_AND_LADDERS = """\
preset: conservative
accounts:
  main:
    exchange: binance
  bold:
    exchange: binance
    preset: aggressive
    breakers:
      daily_loss:
        limit: 400 USDT
      open_orders:
        limit: 20
breakers:
  leverage:
    limit: 3x
  drawdown:
    levels:
      - {limit: 5%, action: reduce}
      - {limit: 10%, action: flatten}
"""


def test_a_preset_fills_the_limits_and_explicit_values_override_it(monkeypatch, tmp_path):
    give_credentials(monkeypatch)
    give_credentials(monkeypatch, "bold")
    settings = load_settings(write(tmp_path, PRESETS_AND_LADDERS))
    main, bold = settings.breakers_for("main"), settings.breakers_for("bold")
    assert main["daily_loss"].limit == pytest.approx(0.02)  # the top-level preset: conservative
    assert main["concentration"].limit == pytest.approx(0.5)
    assert bold["concentration"].limit == pytest.approx(3.0)  # the account's own preset: aggressive
    assert (bold["daily_loss"].limit, bold["daily_loss"].currency) == (400.0, "USDT")  # written beats the preset
    assert main["leverage"].limit == bold["leverage"].limit == 3.0  # so does a top-level breaker setting
    assert main["daily_loss"].action == "halt"  # what a preset does not name keeps the breaker's default


def test_a_ladder_becomes_one_breaker_per_level_and_opt_in_guards_run_only_where_named(monkeypatch, tmp_path):
    give_credentials(monkeypatch)
    give_credentials(monkeypatch, "bold")
    settings = load_settings(write(tmp_path, PRESETS_AND_LADDERS))
    main, bold = settings.breakers_for("main"), settings.breakers_for("bold")
    assert (main["drawdown"].limit, main["drawdown"].action) == (pytest.approx(0.05), "reduce")
    assert (main["drawdown.2"].limit, main["drawdown.2"].action) == (pytest.approx(0.10), "flatten")
    assert "open_orders" not in main and bold["open_orders"].limit == 20


def test_the_moderate_preset_is_the_shipped_defaults():
    from riskd.breakers.presets import PRESETS

    for name, fields in PRESETS["moderate"].items():
        assert BREAKERS[name].config.model_validate(fields) == BREAKERS[name].config(), name


def test_a_preset_that_says_nothing_of_a_breaker_leaves_its_defaults(monkeypatch, tmp_path):
    from riskd.breakers.presets import PRESETS

    give_credentials(monkeypatch)
    give_credentials(monkeypatch, "bold")
    settings = load_settings(write(tmp_path, PRESETS_AND_LADDERS))
    sections = settings.breaker_sections("main")
    assert "flash_crash" not in PRESETS["conservative"]
    assert BREAKERS["flash_crash"].config.model_validate(sections["flash_crash"]) == BREAKERS["flash_crash"].config()
    in_force = settings.breakers_for("main")
    assert in_force["margin_ratio"].limit == pytest.approx(0.3) and in_force["var"].limit == pytest.approx(0.05)
    assert in_force["stress_loss"].limit == pytest.approx(0.15)


def test_every_preset_is_valid_and_the_three_climb_in_risk():
    from riskd.breakers.presets import PRESETS

    limits = {
        preset: {name: BREAKERS[name].config.model_validate(fields).limit for name, fields in table.items()}
        for preset, table in PRESETS.items()
    }
    for name, conservative in limits["conservative"].items():
        direction = -1 if name == "liquidation_distance" else 1
        assert direction * conservative < direction * limits["moderate"][name] < direction * limits["aggressive"][name], name


# Refusals ----------------------------------------------------------------------------


def test_a_missing_file_is_named_with_how_to_choose_another(tmp_path):
    message = refusal(tmp_path / "nowhere.yaml")
    assert str(tmp_path / "nowhere.yaml") in message
    assert "not found" in message and "RISKD_CONFIG" in message


def test_each_problem_gets_its_own_line_naming_its_key(monkeypatch, tmp_path):
    give_credentials(monkeypatch)
    path = write(tmp_path, GOOD.replace("10s", "sometime") + "log_level: loud\n")
    lines = refusal(path).splitlines()
    assert len(lines) == 2
    assert {line.split(":", 1)[0] for line in lines} == {"poll_interval", "log_level"}


def corpus_cases():
    """Each file of tests/configs with the directives of its leading comment lines:
    `expect` (once per line the refusal must have: all of them, in order, and no other;
    `<file>` stands for the file's path), `credentials` (the account given credentials
    in the environment, `main` unless said; `none`), `xfail` (why a case fails for now)."""
    for path in sorted(CORPUS.glob("*.yaml")):
        directives = {"expect": []}
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            key, _, value = line.lstrip("# ").partition(":")
            if key.strip() == "expect":
                directives["expect"].append(value.strip())
            else:
                directives[key.strip()] = value.strip()
        marks = [pytest.mark.xfail(strict=True, reason=directives["xfail"])] if "xfail" in directives else []
        yield pytest.param(path, directives, id=path.stem, marks=marks)


def test_the_corpus_covers_every_case():
    assert len(list(corpus_cases())) >= 19


@pytest.mark.parametrize("path, directives", list(corpus_cases()))
def test_a_bad_configuration_is_refused_naming_its_key(monkeypatch, path, directives):
    if directives.get("credentials", "main") != "none":
        give_credentials(monkeypatch, directives.get("credentials", "main"))
    expected = [line.replace("<file>", str(path)) for line in directives["expect"]]
    message = refusal(path)
    assert message.splitlines() == expected
    for secret in SECRETS:
        assert secret not in message


# Bugs found while writing these tests ---------------------------------------------------


def test_an_unquoted_day_reset_is_refused_rather_than_misread(tmp_path):
    # YAML reads 23:30 unquoted as the base-60 number 1410, which would mean 00:23:30.
    with pytest.raises(ConfigError) as refused:
        load_settings(write(tmp_path, "day_reset: 23:30\naccounts:\n  main:\n    exchange: sim\n"))
    assert str(refused.value).startswith("day_reset: write the time quoted")


def test_a_quoted_day_reset_is_the_time_written(tmp_path):
    settings = load_settings(write(tmp_path, "day_reset: '23:30'\naccounts:\n  main:\n    exchange: sim\n"))
    assert settings.day_reset.replace(tzinfo=None) == time(23, 30)


def test_a_bad_default_is_named_where_it_is_written_even_when_an_account_overrides_another_field(tmp_path):
    path = write(
        tmp_path,
        """\
        accounts:
          main:
            exchange: sim
            breakers:
              drawdown:
                action: alert
        breakers:
          drawdown:
            limit: lots
        """,
    )
    assert refusal(path).splitlines() == ["breakers.drawdown.limit: expected a percentage like 10% or 0.10, got 'lots'"]


def test_every_unknown_top_level_key_is_named(tmp_path):
    path = write(tmp_path, "pol_interval: 5s\nlog_levl: INFO\naccounts:\n  main:\n    exchange: sim\n")
    message = refusal(path)
    assert "pol_interval" in message and "log_levl" in message


@pytest.mark.parametrize(
    "section, expected",
    [
        ("drawdown:\n    action: close\n", "breakers.drawdown.action: "),
        ("leverage:\n    limit: 3x\n    warn_at: 4x\n", "breakers.leverage.warn_at: "),
    ],
    ids=["action", "warn_at"],
)
def test_a_rule_between_fields_names_the_field_to_change(tmp_path, section, expected):
    path = write(tmp_path, f"accounts:\n  main:\n    exchange: sim\nbreakers:\n  {section}")
    assert refusal(path).startswith(expected)


def test_problems_of_every_kind_are_reported_together(tmp_path):
    path = write(tmp_path, "pol_interval: 5s\nlive: maybe\naccounts:\n  main:\n    exchange: sim\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    lines = str(refused.value).splitlines()
    assert any(line.startswith("pol_interval:") for line in lines)
    assert any(line.startswith("live:") for line in lines)


def test_the_stream_follows_its_setting_and_is_on_by_default_where_ccxt_has_it(monkeypatch, tmp_path):
    from riskd.stream import wanted

    give_credentials(monkeypatch)
    give_credentials(monkeypatch, "quiet")
    give_credentials(monkeypatch, "coins")
    settings = load_settings(write(tmp_path, """\
        accounts:
          main: {exchange: binanceusdm}
          quiet: {exchange: bybit, stream: false}
          coins: {exchange: binance, market: spot}
          paper: {exchange: sim}
          paper_bybit: {exchange: sim, sim: {venue: bybit}}
        """))
    assert settings.accounts["main"].stream is None
    assert {name: wanted(account) for name, account in settings.accounts.items()} == {
        "main": True, "quiet": False, "coins": False, "paper": True, "paper_bybit": False,
    }
