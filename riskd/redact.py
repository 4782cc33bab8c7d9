"""Keeps secrets out of every text riskd writes: logs, the database, error messages.

Secrets are registered once at start; `redact` replaces each with `***` and strips
query strings (which carry request signatures) from URLs. The logging filter applies
the same to every record, whatever library emitted it.
"""

from __future__ import annotations

import logging
import re

_URL_QUERY = re.compile(r"(https?://[^\s?#]+)\?[^\s]*")
_secrets: set[str] = set()


def register(*values: str | None) -> None:
    """Remember secret values (API keys, bot tokens) so no text can carry them."""
    _secrets.update(value for value in values if value and len(value) >= 4)


def redact(text: object) -> str:
    result = _URL_QUERY.sub(r"\1?…", str(text))
    for secret in sorted(_secrets, key=len, reverse=True):
        result = result.replace(secret, "***")
    return result


class RedactingFilter(logging.Filter):
    """Rewrites each log record's message, arguments included, without secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info:
            cleaned += "\n" + redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = cleaned, ()
        return True
