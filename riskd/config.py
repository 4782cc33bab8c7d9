"""Configuration: `config.yaml` for structure, environment variables for secrets.

Settings are read once at start by pydantic-settings from, in order of precedence,
the environment (`RISKD_` prefix, `__` for nesting), a `.env` file, and the YAML
file; `sources` reads the two files first, so that a file riskd cannot use is named
with its line. Every problem becomes a `ConfigError` whose lines each name where it is
(a key, a file and line, or a variable) and what is wrong, so `riskd` can stop with a
clear message and exit status 2.
"""

from __future__ import annotations

import os
import re
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from riskd import budget
from riskd.breakers import BREAKERS, PORTFOLIO_BREAKERS, BreakerConfig
from riskd.breakers.base import level_name
from riskd.breakers.presets import PRESETS
from riskd.domain import HookTrigger
from riskd.redact import redact
from riskd.sources import UnusableSource, read_dotenv, read_yaml, set_by, shown, unparsed_environment
from riskd.units import Duration, format_duration, format_span
from riskd.venues import market_options

DEFAULT_CONFIG = Path("config.yaml")
SECRET_KEYS = ("api_key", "secret", "password")
CCXT_SECRET_KEYS = {"apikey", "secret", "password", "uid", "privatekey", "walletaddress", "token", "headers"}
"""Keys refused at any depth of an account's `ccxt` mapping, compared without case, `_` or `-`:
ccxt's own credential fields, and `headers`, which would carry a key past riskd's redaction."""
ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9_]*")
MIN_POLL_INTERVAL = timedelta(milliseconds=100)
"""Below this, no machine reads and judges an account before the next tick is due."""
MIN_RETENTION = timedelta(days=1)
"""Anything shorter prunes the audit trail of a breach before anyone has read it."""


class ConfigError(Exception):
    """The configuration cannot be used; each line of the message names a key."""


class SimSettings(BaseModel):
    """How the embedded exchange starts when an account says `exchange: sim`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    venue: Literal["binance", "bybit"] = "binance"
    """The dialect it speaks: Binance USDⓈ-M (ccxt's binanceusdm) or Bybit v5 (ccxt's bybit)."""
    hedge: bool = False
    """The futures account in hedge mode: a long and a short position per symbol."""
    seed: int = 7
    scenario: Literal["crash", "flash_crash", "volatility_spike", "liquidation_cascade"] | None = None
    latency: Duration | None = None
    volatility: float = Field(default=1e-4, ge=0, le=0.1)
    """The random walk's standard deviation per one-second step: 1e-4 is about 3 % a day,
    60 % a year, like BTC's (riskd.sim.market.VOLATILITY), so a demo is calm until a scenario."""


class HookBase(BaseModel):
    """What every hook shares: its secrets are scrubbed from whatever riskd writes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def secrets(self) -> list[str]:
        return [value.get_secret_value() for value in vars(self).values() if isinstance(value, SecretStr)]


class ActingHook(BaseModel):
    """A hook that makes a bot or a script act (freqtrade, command, lock_file): in dry-run riskd
    acts on nothing, so it only records what the hook would have done, unless `in_dry_run`."""

    in_dry_run: bool = False


class CalledHook(HookBase):
    """A hook called through the outbox: at which moments (all unless told), and for how long at most.
    (`events`, not `on`: YAML reads a bare `on` as true.)"""

    events: tuple[HookTrigger, ...] = tuple(HookTrigger)
    timeout: Duration = timedelta(seconds=5)


def _web_address(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value.rstrip("/")


class WebhookHook(CalledHook):
    """A JSON POST of the event, signed with HMAC-SHA256 of the body under `secret` (from the environment)."""

    type: Literal["webhook"]
    url: str
    secret: SecretStr | None = None

    _url = field_validator("url")(_web_address)


class CommandHook(CalledHook, ActingHook):
    """A program run with the event in environment variables, within `timeout`, up to `attempts` times."""

    type: Literal["command"]
    run: tuple[str, ...] = Field(min_length=1)
    timeout: Duration = timedelta(seconds=10)
    attempts: Annotated[int, Field(ge=1, le=100)] = 3


class LockFileHook(HookBase, ActingHook):
    """A file that exists exactly while the account is not active, with the reason inside."""

    type: Literal["lock_file"]
    path: Path


class FreqtradeHook(CalledHook, ActingHook):
    """A Freqtrade bot's REST API: stopentry when reducing or halted, forceexit of every trade on
    a flatten, and on resume `on_resume` (start or reload_config) when configured."""

    type: Literal["freqtrade"]
    url: str
    username: SecretStr | None = None
    password: SecretStr | None = None
    on_resume: Literal["start", "reload_config"] | None = None

    _url = field_validator("url")(_web_address)


Hook = Annotated[WebhookHook | CommandHook | LockFileHook | FreqtradeHook, Field(discriminator="type")]
INCOME_VENUES = ("binance", "binanceusdm")
"""The venues whose income history riskd reads closed trades from (`incomeType=REALIZED_PNL`),
on a futures account: loss_streak is refused anywhere else, where it could never measure."""

OKX_DEAD_MAN = (timedelta(seconds=10), timedelta(seconds=120))
"""The countdown OKX's cancel-all-after accepts (its timeOut: 10 to 120 s)."""
HOOK_SECRETS = {"webhook": ("secret",), "freqtrade": ("username", "password")}
"""Per hook type, the settings that come only from the environment."""


class AccountConfig(BaseModel):
    """One exchange account that riskd guards."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exchange: str
    quote: str = "USDT"
    market: Literal["spot", "futures"] | None = None
    keep_assets: tuple[str, ...] = ()
    ccxt: dict[str, Any] = Field(default_factory=dict)
    timeout: Duration = timedelta(seconds=10)
    breakers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    preset: Literal["conservative", "moderate", "aggressive"] | None = None
    sim: SimSettings = SimSettings()
    stream: bool | None = None
    """Follow the venue's mark prices between polls; None: where ccxt has the stream (see stream.py)."""
    api_key: SecretStr | None = None
    secret: SecretStr | None = None
    password: SecretStr | None = None
    hooks: dict[str, Hook] = Field(default_factory=dict)
    dead_man_switch: Duration | None = None
    """Opt-in: the venue cancels the account's open orders this long after riskd's last good tick."""

    @field_validator("quote")
    @classmethod
    def _upper(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty; the currency equity is measured in, like USDT (every read would fail without it)")
        return value.upper()

    @field_validator("keep_assets", mode="before")
    @classmethod
    def _assets(cls, value: Any) -> Any:
        return tuple(str(asset).upper() for asset in value) if isinstance(value, (list, tuple)) else value

    @property
    def is_sim(self) -> bool:
        return self.exchange == "sim"

    def secrets(self) -> list[str]:
        """The secret values, for scrubbing them out of any text riskd writes."""
        own = [field.get_secret_value() for field in (self.api_key, self.secret, self.password) if field]
        return own + [secret for hook in self.hooks.values() for secret in hook.secrets()]


class TelegramSettings(BaseModel):
    """Where alerts go and who may give commands. Without a token, alerts go to the log.

    `chat_ids` receive every alert and are the only chats commands are taken from;
    `user_ids`, when given, are the only people obeyed in them (otherwise anyone in a
    private chat listed here, and only administrators in a listed group).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: SecretStr | None = None
    chat_ids: tuple[int, ...] = ()
    user_ids: tuple[int, ...] = ()
    base_url: str = "https://api.telegram.org/bot"
    timeout: Duration = timedelta(seconds=10)
    backoff: Duration = timedelta(seconds=2)
    backoff_max: Duration = timedelta(seconds=60)
    confirm_within: Duration = timedelta(seconds=60)

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL, like https://api.telegram.org/bot")
        return value

    @property
    def enabled(self) -> bool:
        return self.token is not None


class AlertSettings(BaseModel):
    """Alert channels besides Telegram: Apprise URLs (Slack, Discord, email, ntfy, Pushover,
    Matrix, webhooks ...). The URLs hold tokens and passwords, so they come from the
    environment only: RISKD_ALERTS__APPRISE='["ntfy://topic", "discord://id/token"]'."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    apprise: tuple[SecretStr, ...] = ()
    timeout: Duration = timedelta(seconds=10)
    backoff: Duration = timedelta(seconds=2)
    backoff_max: Duration = timedelta(seconds=60)

    def secrets(self) -> list[str]:
        return [url.get_secret_value() for url in self.apprise]


class HttpSettings(BaseModel):
    """The optional HTTP server (/healthz, /metrics, /v1/state). It has no authentication,
    so it listens on loopback unless told otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9787, ge=0, le=65535)
    token: SecretStr | None = None
    """When set (from the environment only), `/` and `/v1/*` answer only requests that carry it."""

    @property
    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "::1", "localhost") or self.host.startswith("127.")


PORTFOLIO = "portfolio"
"""The name the portfolio goes by in the database, events and commands; no account may take it."""


class PortfolioSettings(BaseModel):
    """Breakers on the sum of every account, in one currency, whose actions apply to every account.

    `rates` is what one unit of an account's quote currency is worth in `currency` (for
    accounts that count in another); riskd does not price them live.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = "USDT"
    rates: dict[str, float] = Field(default_factory=dict)
    breakers: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("currency")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("rates")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for currency, rate in value.items():
            if not rate > 0 or rate == float("inf"):
                raise ValueError(f"the rate of {currency} must be a finite number above zero, got {rate!r}")
        return {currency.upper(): rate for currency, rate in value.items()}

    def rate(self, quote: str) -> float | None:
        """What one unit of `quote` is worth in the portfolio's currency; None when not known."""
        return 1.0 if quote == self.currency else self.rates.get(quote)

    def breakers_in_force(self) -> dict[str, BreakerConfig]:
        """Each enabled portfolio breaker's configuration, a ladder's levels each under its own name."""
        configs = {}
        for name, section in self.breakers.items():
            config = BREAKERS[name].config.model_validate(section)
            if config.enabled:
                for number, level in enumerate(config.ladder(), start=1):
                    configs[level_name(name, number)] = level
        return configs


class ReportSettings(BaseModel):
    """The daily risk report: sent at `at` (UTC) to Telegram as a chart with its text, else logged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: time | None = None

    @field_validator("at", mode="before")
    @classmethod
    def _quoted_time(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError("write the time quoted, like \"21:00\" (YAML reads 21:00 unquoted as a number)")
        return value


class MarketDataSettings(BaseModel):
    """Candles for the market breakers: fetched apart from the ticks, cached in the database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    timeframe: Literal["1m", "5m", "15m", "1h"] = "1m"
    refresh: Duration = timedelta(minutes=1)
    history: Duration = timedelta(days=1)
    """How far back the first fetch of a symbol reaches."""
    keep: Duration = timedelta(days=2)
    """Candles older than this are pruned."""
    benchmark: str | None = "BTC"
    """An asset (priced in the account's quote) or a ccxt symbol, fetched even when not held."""


class Settings(BaseSettings):
    """The whole configuration. Build it with `load_settings`, not directly."""

    model_config = SettingsConfigDict(
        env_prefix="RISKD_",
        env_nested_delimiter="__",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    live: bool = False
    poll_interval: Duration = timedelta(seconds=10)
    database: Path = Path("riskd.db")
    day_reset: time = time(0, 0)
    alert_cooldown: Duration = timedelta(minutes=15)
    retention: Duration = timedelta(days=30)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    http: HttpSettings = HttpSettings()
    accounts: dict[str, AccountConfig] = Field(min_length=1)
    breakers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    preset: Literal["conservative", "moderate", "aggressive"] | None = None
    portfolio: PortfolioSettings | None = None
    telegram: TelegramSettings = TelegramSettings()
    alerts: AlertSettings = AlertSettings()
    market_data: MarketDataSettings = MarketDataSettings()
    report: ReportSettings = ReportSettings()

    @field_validator("day_reset", mode="before")
    @classmethod
    def _quoted_time(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError("write the time quoted, like \"23:30\" (YAML reads 23:30 unquoted as a number)")
        return value

    @field_validator("poll_interval")
    @classmethod
    def _not_too_often(cls, value: timedelta) -> timedelta:
        if value < MIN_POLL_INTERVAL:
            raise ValueError(
                f"{format_span(value)} is too short: a tick's reads and judgement take longer than that; "
                f"use at least {format_span(MIN_POLL_INTERVAL)}"
            )
        return value

    @field_validator("retention")
    @classmethod
    def _keeps_a_day(cls, value: timedelta) -> timedelta:
        if value < MIN_RETENTION:
            raise ValueError(
                f"{format_span(value)} would prune the record of a breach before anyone reads it; keep at least 1d"
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, dotenv_settings, YamlConfigSettingsSource(settings_cls)

    def breaker_sections(self, account: str) -> dict[str, dict[str, Any]]:
        """What is written for each breaker of `account`, merged field by field: the preset
        (the account's, else the top-level one), then `breakers`, then the account's own.
        An opt-in breaker (a runaway-bot guard) is left out unless one of them names it."""
        preset = PRESETS.get(self.accounts[account].preset or self.preset or "", {})
        sections = {}
        for name, breaker in BREAKERS.items():
            layers = [preset.get(name), self.breakers.get(name), self.accounts[account].breakers.get(name)]
            written = [layer for layer in layers if layer is not None]
            if breaker.config.portfolio_only or breaker.config.opt_in and not written:
                continue
            sections[name] = {key: value for layer in written for key, value in layer.items()}
        return sections

    def breakers_for(self, account: str) -> dict[str, BreakerConfig]:
        """Each enabled breaker's configuration for `account`, a ladder's levels each under
        its own name (`drawdown`, `drawdown.2`, ...)."""
        configs = {}
        for name, section in self.breaker_sections(account).items():
            config = BREAKERS[name].config.model_validate(section)
            if config.enabled:
                for number, level in enumerate(config.ladder(), start=1):
                    configs[level_name(name, number)] = level
        return configs


def config_path(path: str | Path | None = None) -> Path:
    """The file chosen by `--config`, else `RISKD_CONFIG`, else `./config.yaml`."""
    return Path(path or os.environ.get("RISKD_CONFIG") or DEFAULT_CONFIG)


RELOADABLE = (
    "live", "poll_interval", "day_reset", "alert_cooldown", "retention", "log_level", "log_format", "breakers", "accounts",
    "preset", "portfolio",
)
"""Settings a running daemon takes on at SIGHUP; every other one waits for a restart."""


def reloadable(old: Settings, new: Settings) -> tuple[Settings, list[str]]:
    """What a running daemon can take on of `new`, and the keys that must wait for a restart.

    Breakers, `live`, the poll interval and logging apply at once. The database, the
    HTTP server, Telegram, accounts added or removed, and an account's connection
    (exchange, credentials, ccxt settings) need a restart; until then the old values stay.
    """
    restart = [key for key in type(old).model_fields if key not in RELOADABLE and getattr(old, key) != getattr(new, key)]
    kept = {key: getattr(old, key) for key in restart}
    accounts = {}
    for name, account in old.accounts.items():
        if name not in new.accounts:
            restart.append(f"accounts.{name} (removed)")
            accounts[name] = account
            continue
        accounts[name] = account.model_copy(update={"breakers": new.accounts[name].breakers, "preset": new.accounts[name].preset})
        if accounts[name] != new.accounts[name]:
            restart.append(f"accounts.{name}")
    restart += [f"accounts.{name} (added)" for name in new.accounts if name not in old.accounts]
    return new.model_copy(update={**kept, "accounts": accounts}), restart


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read and check the configuration, or raise ConfigError saying what to fix.

    The YAML file and the `.env` file are read by `sources` before pydantic-settings
    sees them, so that every way they can be unusable (not there, a folder, not text,
    not UTF-8, a key written twice, a line that does not parse) is named with its file
    and line, and the document read is the one the settings are built from.
    """
    path = config_path(path)
    env_file = overrides.get("_env_file", Settings.model_config["env_file"])
    env_path = Path(env_file) if env_file else None
    try:
        document = read_yaml(path)
        dotenv = read_dotenv(env_path) if env_path else {}
    except UnusableSource as error:
        raise ConfigError(str(error)) from None
    found = _check_yaml(path, document)

    def sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        return init_settings, env_settings, dotenv_settings, InitSettingsSource(settings_cls, document)

    settings_cls = type("Settings", (Settings,), {"settings_customise_sources": classmethod(sources)})
    try:
        settings = settings_cls(**overrides)
    except ValidationError as error:
        described = [_describe(item) + set_by(item["loc"], Settings, env_path, dotenv) for item in error.errors()]
        raise ConfigError("\n".join([*found, *described])) from None
    except SettingsError as error:
        raise ConfigError("\n".join([*found, *unparsed_environment(error, Settings, env_path, dotenv)])) from None
    problems = [*found, *_breaker_problems(settings), *_portfolio_problems(settings), *_account_problems(settings)]
    if settings.telegram.enabled and not settings.telegram.chat_ids:
        problems.append("telegram.chat_ids: needed with a token; the chats alerts go to and commands come from")
    if problems:
        raise ConfigError("\n".join(problems))
    return settings


def _check_yaml(path: Path, document: dict) -> list[str]:
    """What the settings model cannot see: unknown top-level keys and secrets in YAML.

    The model ignores unknown top-level names so that a `.env` file may hold other
    programs' variables; the YAML file has no such excuse.
    """
    path = shown(path)
    problems = [f"{key}: unknown key (check its spelling)" for key in document if key not in Settings.model_fields]
    accounts = document.get("accounts")
    for name, account in (accounts.items() if isinstance(accounts, dict) else ()):
        account = account if isinstance(account, dict) else {}
        for key in SECRET_KEYS:
            if key in account:
                variable = f"RISKD_ACCOUNTS__{str(name).upper()}__{key.upper()}"
                problems.append(f"accounts.{name}.{key}: secrets do not belong in {path}; set {variable} instead")
        for where in _secret_looking(account.get("ccxt"), f"accounts.{name}.ccxt"):
            problems.append(
                f"{where}: secrets do not belong in {path}; use RISKD_ACCOUNTS__{str(name).upper()}__API_KEY / __SECRET / __PASSWORD"
            )
        hooks = account.get("hooks") if isinstance(account.get("hooks"), dict) else {}
        for hook_name, hook in hooks.items():
            hook = hook if isinstance(hook, dict) else {}
            for key in HOOK_SECRETS.get(hook.get("type"), ()):
                if key in hook:
                    variable = f"RISKD_ACCOUNTS__{str(name).upper()}__HOOKS__{str(hook_name).upper()}__{key.upper()}"
                    problems.append(f"accounts.{name}.hooks.{hook_name}.{key}: secrets do not belong in {path}; set {variable} instead")
    http = document.get("http")
    if isinstance(http, dict) and "token" in http:
        problems.append(f"http.token: secrets do not belong in {path}; set RISKD_HTTP__TOKEN instead")
    alerts = document.get("alerts")
    if isinstance(alerts, dict) and "apprise" in alerts:
        problems.append(
            f"alerts.apprise: Apprise URLs hold secrets and do not belong in {path}; "
            """set RISKD_ALERTS__APPRISE='["scheme://...", ...]' instead"""
        )
    telegram = document.get("telegram")
    if isinstance(telegram, dict) and "token" in telegram:
        problems.append(f"telegram.token: secrets do not belong in {path}; set RISKD_TELEGRAM__TOKEN instead")
    return problems


def _secret_looking(value: Any, where: str) -> list[str]:
    """The dotted keys, at any depth under `where`, that look like credentials."""
    found = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if re.sub(r"[_\-\s]", "", str(key)).lower() in CCXT_SECRET_KEYS:
                found.append(f"{where}.{key}")
            else:
                found += _secret_looking(inner, f"{where}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _secret_looking(inner, f"{where}.{index}")
    return found


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "configuration"
    kind, message = error["type"], error["msg"]
    if kind == "extra_forbidden":
        message = "unknown key (check its spelling)"
    elif kind == "missing":
        message = "missing (required)"
    return f"{where}: {message.removeprefix('Value error, ')}"


def _breaker_problems(settings: Settings) -> list[str]:
    problems = []
    sections = [("breakers", settings.breakers)] + [
        (f"accounts.{name}.breakers", account.breakers) for name, account in settings.accounts.items()
    ]
    for prefix, section in sections:
        for name in section:
            if name not in BREAKERS:
                problems.append(f"{prefix}.{name}: unknown breaker (known: {', '.join(BREAKERS)})")
            elif BREAKERS[name].config.portfolio_only:
                problems.append(f"{prefix}.{name}: judges the sum of every account; write it under portfolio.breakers")
    for account in settings.accounts:
        quote = settings.accounts[account].quote
        for name, merged in settings.breaker_sections(account).items():
            override = settings.accounts[account].breakers.get(name) or {}
            if name == "loss_streak" and merged.get("enabled", True) is not False:
                problems += _income_problem(account, settings.accounts[account], "accounts" if override else "")
            try:
                config = BREAKERS[name].config.model_validate(merged)
            except ValidationError as error:
                for item in error.errors():
                    # a rule between fields (a ladder, money) has no field: it is the account's if it wrote any
                    written_here = item["loc"][0] in override if item["loc"] else bool(override)
                    prefix = f"accounts.{account}.breakers" if written_here else "breakers"
                    problems.append(_describe({**item, "loc": (prefix, name, *item["loc"])}))
                continue
            for level in config.ladder():
                if level.currency is not None and level.currency != quote:
                    prefix = f"accounts.{account}.breakers" if override else "breakers"
                    problems.append(
                        f"{prefix}.{name}: a limit in {level.currency}, but account {account} counts in {quote};"
                        f" write it in {quote}"
                    )
    return list(dict.fromkeys(problems))


def _income_problem(name: str, account: AccountConfig, written: str) -> list[str]:
    """loss_streak where the venue keeps no income history riskd can read: it would never measure."""
    if account.exchange in INCOME_VENUES and account.market != "spot":
        return []
    where = "a spot account" if account.market == "spot" else f"{account.exchange}"
    prefix = f"accounts.{name}.breakers" if written else "breakers"
    return [
        f"{prefix}.loss_streak: riskd reads closed trades only from a Binance futures account's income history, "
        f"and account {name} is {where}; loss_streak could never measure there, so remove it"
    ]


def _portfolio_problems(settings: Settings) -> list[str]:
    portfolio = settings.portfolio
    problems = [f"accounts.{PORTFOLIO}: the name {PORTFOLIO} is the portfolio's; choose another"] if PORTFOLIO in settings.accounts else []
    if portfolio is None:
        return problems
    for name, account in settings.accounts.items():
        if portfolio.rate(account.quote) is None:
            problems.append(
                f"portfolio.rates: account {name} counts in {account.quote}; give its rate in {portfolio.currency},"
                f" like rates: {{{account.quote}: 1.0}}"
            )
    for name, section in portfolio.breakers.items():
        if name not in PORTFOLIO_BREAKERS:
            problems.append(f"portfolio.breakers.{name}: not a portfolio breaker (known: {', '.join(PORTFOLIO_BREAKERS)})")
            continue
        try:
            config = BREAKERS[name].config.model_validate(section)
        except ValidationError as error:
            problems += [_describe({**item, "loc": ("portfolio", "breakers", name, *item["loc"])}) for item in error.errors()]
            continue
        for level in config.ladder():
            if level.currency is not None and level.currency != portfolio.currency:
                problems.append(f"portfolio.breakers.{name}: a limit in {level.currency}, but the portfolio counts in {portfolio.currency}")
    return problems


def _streams(exchange: str) -> bool:
    """Whether ccxt has a websocket class for the exchange (imported only to ask: about 6 MB)."""
    import ccxt.pro

    return exchange in ccxt.pro.exchanges


def _account_problems(settings: Settings) -> list[str]:
    import ccxt  # imported here: it is large, and only needed to check exchange ids

    problems = []
    for name, account in settings.accounts.items():
        if not ACCOUNT_NAME.fullmatch(name):
            problems.append(f"accounts.{_printable(name)}: account names are lower-case letters, digits and _, starting with a letter")
        if account.stream and account.market == "spot":
            problems.append(f"accounts.{_printable(name)}.stream: the mark-price stream follows futures positions; a spot account is polled")
        if account.stream and account.is_sim and account.sim.venue == "bybit":
            problems.append(f"accounts.{_printable(name)}.stream: the simulator's Bybit dialect serves no websocket; this account is polled")
        if account.stream and not account.is_sim and account.market != "spot" and account.exchange in ccxt.exchanges \
                and not _streams(account.exchange):
            problems.append(f"accounts.{_printable(name)}.stream: ccxt has no websocket class for {account.exchange}; this account is polled")
        if not account.is_sim and account.exchange not in ccxt.exchanges:
            problems.append(f"accounts.{name}.exchange: {account.exchange!r} is not a ccxt exchange id (or sim)")
        elif not account.is_sim and not (account.api_key and account.secret):
            variable = f"RISKD_ACCOUNTS__{name.upper()}"
            problems.append(
                f"accounts.{name}: credentials missing; set {variable}__API_KEY and {variable}__SECRET in the environment"
            )
        if account.dead_man_switch is not None and account.dead_man_switch < settings.poll_interval * 2:
            problems.append(
                f"accounts.{name}.dead_man_switch: {format_duration(account.dead_man_switch)} is shorter than two poll "
                f"intervals ({format_duration(settings.poll_interval * 2)}); the venue would cancel orders between riskd's ticks"
            )
        if account.exchange == "okx" and account.dead_man_switch is not None and not OKX_DEAD_MAN[0] <= account.dead_man_switch <= OKX_DEAD_MAN[1]:
            problems.append(
                f"accounts.{name}.dead_man_switch: {format_duration(account.dead_man_switch)} is outside what OKX "
                f"allows ({format_duration(OKX_DEAD_MAN[0])} to {format_duration(OKX_DEAD_MAN[1])})"
            )
        for hook_name, hook in account.hooks.items():
            if not ACCOUNT_NAME.fullmatch(hook_name):
                problems.append(f"accounts.{name}.hooks.{hook_name}: hook names are lower-case letters, digits and _")
            missing = [key for key in HOOK_SECRETS.get(hook.type, ()) if getattr(hook, key) is None]
            if missing:
                variables = " and ".join(f"RISKD_ACCOUNTS__{name.upper()}__HOOKS__{hook_name.upper()}__{key.upper()}" for key in missing)
                problems.append(f"accounts.{name}.hooks.{hook_name}: {', '.join(missing)} missing; set {variables} in the environment")
    readers, unbuilt = _readers(settings)
    return problems + unbuilt + [plan.problem() for plan in _plans(settings, readers) if not plan.fits]


def budget_plans(settings: Settings) -> list[budget.Fit | budget.Floor]:
    """How the accounts' routine reads fit their venues' request budgets (riskd.budget)."""
    return _plans(settings, _readers(settings)[0])


def _plans(settings: Settings, readers: list[budget.Reader]) -> list[budget.Fit | budget.Floor]:
    market = settings.market_data
    symbols = budget.planned_symbols(market.benchmark) if market.enabled else 0
    return budget.plans(readers, settings.poll_interval, symbols, market.refresh)


def _readers(settings: Settings) -> tuple[list[budget.Reader], list[str]]:
    """Each account as its venue's budget sees it, and a problem per account whose `ccxt`
    mapping ccxt cannot build a client from.

    The client is built (never opened) as the account's settings shape the one riskd
    runs: riskd's market options for it under its own `ccxt` mapping, which decide where
    it goes (venue, hosts, proxy) and ccxt's rate. The embedded exchange, which enforces
    no budget, and exchange ids ccxt does not know (refused apart) are left out.
    """
    import ccxt  # imported here: it is large

    readers, problems = [], []
    for name, account in settings.accounts.items():
        if account.is_sim or account.exchange not in ccxt.exchanges:
            continue
        try:
            client = _client(ccxt, account)
        except (TypeError, ValueError, ccxt.BaseError) as error:
            problems.append(f"accounts.{name}.ccxt: ccxt cannot build a client from these settings ({redact(str(error))})")
            continue
        readers.append(budget.Reader(name, account.exchange, client, _reads_trades(settings, name)))
    return readers, problems


def _client(ccxt: Any, account: AccountConfig) -> Any:
    mapping = dict(account.ccxt)
    written = mapping.get("options")
    options = {**market_options(account.exchange, account.market), **(written if isinstance(written, dict) else {})}
    return getattr(ccxt, account.exchange)({**mapping, "options": options})


def _reads_trades(settings: Settings, account: str) -> bool:
    """Whether loss_streak is in force for `account`, so riskd reads its trade history (a
    section that does not validate counts: the configuration is refused for it anyway)."""
    section = settings.breaker_sections(account).get("loss_streak")
    if section is None:
        return False
    try:
        return BREAKERS["loss_streak"].config.model_validate(section).enabled
    except ValidationError:
        return True


def _printable(name: str) -> str:
    """An account name fit for a one-line message: control characters and spaces made visible."""
    return name if name.isprintable() and not any(character.isspace() for character in name) else repr(name)
