"""Log lines for a terminal, a file and the journal: one line each, a time where the
journal does not add its own, the priority where it reads one."""

from __future__ import annotations

import json
import logging
import os

from riskd.logs import OneLine, to_journal


def record(message: str, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("riskd", level, __file__, 1, message, (), None)


def test_a_text_line_has_a_time_and_a_multi_line_message_becomes_one_line():
    line = OneLine().format(record("configuration refused:\n  poll_interval: bad"))
    assert line.endswith(" WARNING riskd: configuration refused: |   poll_interval: bad")
    assert line[:4].isdigit() and "\n" not in line


def test_in_the_journal_lines_carry_the_priority_and_no_time_of_their_own():
    assert OneLine(journal=True).format(record("lost", logging.ERROR)) == "<3>ERROR riskd: lost"
    line = OneLine(json_lines=True, journal=True).format(record("a\nb", logging.INFO))
    assert line.startswith("<6>{") and json.loads(line[3:]) == {"level": "INFO", "logger": "riskd", "message": "a\nb"}


def test_a_json_line_outside_the_journal_has_its_time():
    entry = json.loads(OneLine(json_lines=True).format(record("hello")))
    assert set(entry) == {"time", "level", "logger", "message"} and entry["time"].endswith("+00:00")


def test_the_journal_is_recognised_by_the_device_and_inode_of_stderr(tmp_path, monkeypatch):
    with open(tmp_path / "stream", "w") as stream:
        status = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino}")
        assert to_journal(stream)
        monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino + 1}")  # inherited, then redirected
        assert not to_journal(stream)
