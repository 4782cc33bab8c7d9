"""Logging set-up: one line per record, secrets scrubbed, chatty libraries kept quiet.

Under systemd (JOURNAL_STREAM is set) the journal adds its own timestamps, so lines
carry none of their own.
"""

from __future__ import annotations

import logging
import os
import sys

from riskd.redact import RedactingFilter

QUIET = ("ccxt", "httpx", "httpcore", "apscheduler", "aiohttp.access", "telegram")
"""Libraries that at INFO or DEBUG log URLs or bodies that may carry secrets."""


def setup(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    timestamps = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    handler.setFormatter(logging.Formatter(f"{timestamps}%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
