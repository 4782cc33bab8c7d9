"""Alert channels' secrets: every part of an Apprise URL that can be a secret on its own is
scrubbed, as Apprise puts tokens in the host, the user, the password, the path and the query."""

from __future__ import annotations

from pydantic import SecretStr

from riskd.channels import channels
from riskd.config import AlertSettings
from riskd.redact import redact

URLS = {
    "tgram://123456789:AAHfakeTelegramBotToken0123/-100123456": ["123456789:AAHfakeTelegramBotToken0123", "-100123456"],
    "pover://uFakePushoverUserKey12@aFakePushoverAppToken34": ["uFakePushoverUserKey12", "aFakePushoverAppToken34"],
    "slack://T1FAKEAAA/B2FAKEBBB/c3FakeTokenCcc/#alerts": ["T1FAKEAAA", "B2FAKEBBB", "c3FakeTokenCcc"],
    "mailtos://riskd-mailer:Pa55-fake@mail.example.org:587?to=ops@example.org": ["riskd-mailer", "Pa55-fake", "mail.example.org"],
    "ntfy://ntfy.example.org/riskd-topic-7f3a?token=tk_FakeNtfyToken9": ["riskd-topic-7f3a", "tk_FakeNtfyToken9"],
}


def test_each_part_of_an_apprise_url_that_can_be_a_secret_is_scrubbed():
    found = channels(AlertSettings(apprise=[SecretStr(url) for url in URLS]))
    assert len(found) == len(URLS)
    for url, parts in URLS.items():
        for part in parts:
            said = redact(f"Apprise said: could not reach {part} (from {url})")
            assert part not in said, (url, part)
            assert said.startswith("Apprise said: could not reach ***")


def test_a_percent_encoded_secret_is_scrubbed_as_written_and_decoded():
    channels(AlertSettings(apprise=[SecretStr("json://hooks.example.org/in?key=s%2Bcr%2Ft-FakeKey")]))
    assert redact("key s+cr/t-FakeKey and s%2Bcr%2Ft-FakeKey") == "key *** and ***"


def test_an_address_and_a_plain_short_word_are_not_taken_for_secrets():
    # scrubbing them would blank them out of every line riskd writes
    channels(AlertSettings(apprise=[SecretStr("json://127.0.0.1:8123/alerts")]))
    assert redact("posting alerts to 127.0.0.1") == "posting alerts to 127.0.0.1"
