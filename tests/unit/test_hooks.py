"""Which hook calls a step causes (pure), the webhook signature, and hook configuration in words."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from riskd.config import AccountConfig, ConfigError, load_settings
from riskd.domain import Action, ActionKind, HookCall, HookTrigger, StepResult, TradingState
from riskd.hooks import calls, sign, triggers
from riskd.redact import redact, register
from tests.factories import state

HOOKS = AccountConfig.model_validate(
    {
        "exchange": "sim",
        "hooks": {
            "bot": {"type": "freqtrade", "url": "http://127.0.0.1:8080/", "username": "u", "password": "p"},
            "news": {"type": "webhook", "url": "https://example.org/riskd", "secret": "s", "events": ["halted", "flatten"]},
            "lock": {"type": "lock_file", "path": "/run/riskd/main.lock"},
        },
    }
).hooks

ACTIVE, REDUCING, HALTED = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED


def step(before: TradingState, after: TradingState, *actions: ActionKind) -> tuple:
    result = StepResult(
        state(trading_state=after, reason="drawdown 11.8% is past the limit of 10.0%"),
        actions=tuple(Action(kind, "main", "why") for kind in actions),
    )
    return state(trading_state=before), result


@pytest.mark.parametrize(
    ("before", "after", "actions", "expected"),
    [
        (ACTIVE, ACTIVE, (), ()),
        (ACTIVE, REDUCING, (ActionKind.REDUCE,), (HookTrigger.REDUCING,)),
        (REDUCING, HALTED, (), (HookTrigger.HALTED,)),
        (ACTIVE, HALTED, (ActionKind.FLATTEN,), (HookTrigger.HALTED, HookTrigger.FLATTEN)),
        (HALTED, HALTED, (ActionKind.FLATTEN,), (HookTrigger.FLATTEN,)),  # a flatten asked while halted
        (HALTED, ACTIVE, (), (HookTrigger.RESUME,)),
        (HALTED, REDUCING, (), (HookTrigger.REDUCING,)),  # the halt released, a reduce still holds
        (HALTED, HALTED, (ActionKind.CANCEL_ORDERS,), ()),  # enforcing is no news
    ],
)
def test_a_step_is_news_when_it_changes_the_state_or_flattens(before, after, actions, expected):
    assert triggers(*step(before, after, *actions)) == expected


def test_each_hook_is_called_for_the_moments_it_is_on_and_a_lock_file_is_never_called():
    made = calls("main", HOOKS, *step(ACTIVE, HALTED, ActionKind.FLATTEN))
    reason = "drawdown 11.8% is past the limit of 10.0%"
    assert made == [
        HookCall("main", "bot", "freqtrade", HookTrigger.HALTED, HALTED, reason),
        HookCall("main", "news", "webhook", HookTrigger.HALTED, HALTED, reason),
        HookCall("main", "bot", "freqtrade", HookTrigger.FLATTEN, HALTED, reason),
        HookCall("main", "news", "webhook", HookTrigger.FLATTEN, HALTED, reason),
    ]
    assert calls("main", HOOKS, *step(ACTIVE, REDUCING)) == [HookCall("main", "bot", "freqtrade", HookTrigger.REDUCING, REDUCING, reason)]


def test_freqtrade_is_called_on_resume_only_when_told_what_to_do():
    assert calls("main", HOOKS, *step(HALTED, ACTIVE)) == []
    starting = {"bot": HOOKS["bot"].model_copy(update={"on_resume": "start"})}
    assert [call.trigger for call in calls("main", starting, *step(HALTED, ACTIVE))] == [HookTrigger.RESUME]


def test_the_signature_is_hmac_sha256_of_the_body_in_hex():
    body = b'{"event": "halted"}'
    assert sign("key", body) == "sha256=" + hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert sign("key", body) != sign("other", body)


def test_hook_secrets_are_registered_for_scrubbing_with_the_account_s(monkeypatch):
    account = AccountConfig.model_validate(
        {"exchange": "sim", "hooks": {"bot": {"type": "freqtrade", "url": "http://h", "username": "ft-user-x", "password": "ft-pass-y"}}}
    )
    register(*account.secrets())
    assert redact("auth ft-user-x:ft-pass-y failed") == "auth ***:*** failed"


def write(tmp_path, hooks: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(f"accounts:\n  main:\n    exchange: sim\n    hooks:\n{hooks}")
    return str(path)


def problems(path: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value)


def test_a_hook_secret_in_yaml_is_refused_with_the_variable_to_use(tmp_path):
    text = "      bot: {type: webhook, url: 'https://example.org/x', secret: hunter2}\n"
    assert problems(write(tmp_path, text)) == (
        f"accounts.main.hooks.bot.secret: secrets do not belong in {tmp_path}/config.yaml; "
        "set RISKD_ACCOUNTS__MAIN__HOOKS__BOT__SECRET instead"
    )


def test_a_hook_without_its_secrets_says_which_variables_to_set(tmp_path):
    text = "      bot: {type: freqtrade, url: 'http://127.0.0.1:8080'}\n"
    assert problems(write(tmp_path, text)) == (
        "accounts.main.hooks.bot: username, password missing; set RISKD_ACCOUNTS__MAIN__HOOKS__BOT__USERNAME "
        "and RISKD_ACCOUNTS__MAIN__HOOKS__BOT__PASSWORD in the environment"
    )


def test_hook_secrets_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RISKD_ACCOUNTS__MAIN__HOOKS__BOT__SECRET", "from-the-environment")
    settings = load_settings(write(tmp_path, "      bot: {type: webhook, url: 'https://example.org/x'}\n"))
    assert settings.accounts["main"].hooks["bot"].secret.get_secret_value() == "from-the-environment"


@pytest.mark.parametrize(
    ("hook", "problem"),
    [
        ("{type: pager, url: 'http://x'}", "accounts.main.hooks.bot: Input tag 'pager' found using 'type' does not match any of the expected tags: 'webhook', 'command', 'lock_file', 'freqtrade'"),
        ("{type: command, run: []}", "accounts.main.hooks.bot.command.run: Tuple should have at least 1 item after validation, not 0"),
        ("{type: lock_file, path: /tmp/x, events: [halted]}", "accounts.main.hooks.bot.lock_file.events: unknown key (check its spelling)"),
        ("{type: command, run: [x], events: [crashed]}", "accounts.main.hooks.bot.command.events.0: Input should be 'reducing', 'halted', 'flatten' or 'resume'"),
        ("{type: freqtrade, url: 'ftp://x', on_resume: start}", "accounts.main.hooks.bot.freqtrade.url: expected an http:// or https:// URL"),
    ],
)
def test_a_malformed_hook_is_one_line_naming_its_key(tmp_path, hook, problem):
    assert problem in problems(write(tmp_path, f"      bot: {hook}\n")).splitlines()
