"""Logging set-up: one line per record, secrets scrubbed, chatty libraries kept quiet.

Under systemd (stderr is the journal stream that JOURNAL_STREAM names) the journal adds
its own timestamps, so lines carry none of their own, and each starts with its syslog
priority (`<3>`) so that `journalctl -p err` finds the errors. A record that spans
lines (a traceback) is folded into one, which the journal keeps as one entry. The
`json` format writes one JSON object per line, for log shippers.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import datetime, timezone
from typing import TextIO

from riskd.redact import RedactingFilter

QUIET = ("ccxt", "httpx", "httpcore", "apscheduler", "aiohttp.access", "telegram")
"""Libraries that at INFO or DEBUG log URLs or bodies that may carry secrets."""


PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
"""syslog priorities of the logging levels, as the journal reads them from a `<N>` prefix."""


def setup(level: str = "INFO", format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLine(json_lines=format == "json", journal=to_journal(sys.stderr)))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def to_journal(stream: TextIO) -> bool:
    """Whether `stream` is connected to the journal: JOURNAL_STREAM names its device and inode."""
    try:
        status = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):  # a replaced or closed stream
        return False
    return os.environ.get("JOURNAL_STREAM") == f"{status.st_dev}:{status.st_ino}"


class OneLine(logging.Formatter):
    """One record, one line: text (`time LEVEL logger: message`) or a JSON object."""

    def __init__(self, json_lines: bool = False, journal: bool = False):
        super().__init__()
        self.json_lines, self.journal = json_lines, journal

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if self.json_lines:
            entry = {"level": record.levelname, "logger": record.name, "message": message}
            if not self.journal:
                moment = datetime.fromtimestamp(record.created, timezone.utc)
                entry = {"time": moment.isoformat(timespec="milliseconds"), **entry}
            line = json.dumps(entry, ensure_ascii=False)
        else:
            stamp = "" if self.journal else f"{self.formatTime(record)} "
            line = f"{stamp}{record.levelname} {record.name}: {' | '.join(message.splitlines())}"
        return f"<{PRIORITIES.get(record.levelno, 6)}>{line}" if self.journal else line
