"""Every bad configuration is refused at start with one line naming its source, and exit status 2.

Two corpora under tests/configs: the files there (each gives its whole expected lines, for
problems of the settings' keys and values), and sources/ (each gives the whole expected
line, for problems of the file itself, of the environment and of `.env`). Each case runs
through `riskd check` as the command line runs it, in-process for speed; a few run as
real processes, where an uncaught error would print a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from riskd import cli
from tests.unit.test_config import ENV_KEY, ENV_SECRET, SECRETS, corpus_cases

SOURCES = Path(__file__).resolve().parents[1] / "configs" / "sources"
GOOD = "accounts:\n  main:\n    exchange: sim\n"


@pytest.fixture(autouse=True)
def isolated(no_riskd_environment, monkeypatch, tmp_path):
    """Each case runs in its own folder, with no RISKD_ variable but its own."""
    monkeypatch.chdir(tmp_path)


def source_cases():
    for path in sorted(SOURCES.glob("*.yaml")):
        yield pytest.param(yaml.safe_load(path.read_text(encoding="utf-8")), id=path.stem)


def arrange(case: dict, folder: Path, monkeypatch) -> str:
    """Lay out the case's files and environment in `folder`; returns the --config argument."""
    for name, value in case.get("env", {}).items():
        monkeypatch.setenv(name, str(value))
    if "dotenv" in case:
        (folder / ".env").write_text(case["dotenv"], encoding="utf-8")
    if "dotenv_file" in case:
        shutil.copy(SOURCES / "files" / case["dotenv_file"], folder / ".env")
    if case.get("config_path") == "folder":
        (folder / "config.yaml").mkdir()
        return "config.yaml"
    if case.get("config_path") == "too_long":
        return "c" * (os.pathconf(folder, "PC_NAME_MAX") + 1) + ".yaml"
    if "config_file" in case:
        shutil.copy(SOURCES / "files" / case["config_file"], folder / "config.yaml")
    else:
        (folder / "config.yaml").write_text(case.get("config", GOOD), encoding="utf-8")
    return "config.yaml"


def refused(config: str, capsys) -> list[str]:
    """`riskd --config CONFIG check`: must stop with exit status 2; returns the problem lines."""
    assert cli.main(["--config", config, "check"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    heading, *lines = captured.err.splitlines()
    assert heading == "riskd: configuration error:"
    assert "Traceback" not in captured.err
    return [line.removeprefix("  ") for line in lines]


@pytest.mark.parametrize("case", list(source_cases()))
def test_a_problem_of_the_file_or_the_environment_is_one_line_naming_its_source(case, tmp_path, monkeypatch, capsys):
    config = arrange(case, tmp_path, monkeypatch)
    shown = config if len(config) <= 120 else f"{config[:50]}…{config[-50:]}"
    expected = case["expect"].replace("<file>", shown).replace("<dotenv>", ".env")
    lines = refused(config, capsys)
    assert lines == [expected]
    for secret in SECRETS:
        assert secret not in lines[0]


def test_the_sources_corpus_covers_every_kind_of_problem():
    cases = [case for case in source_cases()]
    assert len(cases) >= 30
    kinds = {key for case in cases for key in case.values[0]}
    assert {"config", "config_file", "config_path", "env", "dotenv", "dotenv_file"} <= kinds


@pytest.mark.parametrize("path, directives", list(corpus_cases()))
def test_every_file_of_the_key_corpus_stops_the_command_line_with_exit_status_2(path, directives, monkeypatch, capsys):
    if directives.get("credentials", "main") != "none":
        account = directives.get("credentials", "main").upper()
        monkeypatch.setenv(f"RISKD_ACCOUNTS__{account}__API_KEY", ENV_KEY)
        monkeypatch.setenv(f"RISKD_ACCOUNTS__{account}__SECRET", ENV_SECRET)
    expected = [line.replace("<file>", str(path)) for line in directives["expect"]]
    assert refused(str(path), capsys) == expected


def riskd(folder: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "riskd", *arguments], cwd=folder, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL, env={**os.environ, **environment},
    )


def test_a_second_live_true_cannot_start_riskd_live(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "live: false\ndatabase: guard.db\naccounts:\n  main:\n    exchange: sim\nlive: true\n", encoding="utf-8"
    )
    result = riskd(tmp_path, "run", "--once")
    assert result.returncode == 2
    assert result.stderr.splitlines()[1].strip().startswith("config.yaml: line 6: live is written twice (first at line 1)")
    assert "LIVE" not in result.stderr + result.stdout
    assert not (tmp_path / "guard.db").exists()  # it never started: no tick, no order, no record


@pytest.mark.parametrize(
    "arrangement, environment",
    [
        ("utf16.yaml", {}),
        ("binary.bin", {}),
        (None, {"RISKD_ACCOUNTS__MAIN__KEEP_ASSETS": "BNB,ETH"}),
        (None, {"RISKD_TELEGRAM__CHAT_IDS": "word"}),
    ],
    ids=["utf16", "binary", "keep_assets", "chat_ids"],
)
def test_as_a_process_a_refusal_is_one_line_and_no_traceback(tmp_path, arrangement, environment):
    if arrangement:
        shutil.copy(SOURCES / "files" / arrangement, tmp_path / "config.yaml")
    else:
        (tmp_path / "config.yaml").write_text(GOOD, encoding="utf-8")
    result = riskd(tmp_path, "check", **environment)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 2 and "Traceback" not in result.stderr


def test_every_key_written_twice_is_named_and_a_merge_may_still_override(tmp_path):
    from riskd.config import ConfigError, load_settings

    (tmp_path / "twice.yaml").write_text(
        "accounts:\n  main:\n    exchange: sim\n    exchange: sim\n  paper:\n    exchange: sim\n"
        "    keep_assets: [BNB]\n    keep_assets: [ETH]\n", encoding="utf-8",
    )
    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path / "twice.yaml")
    assert [line.split(" is written")[0] for line in str(refused.value).splitlines()] == [
        f"{tmp_path / 'twice.yaml'}: line 4: accounts.main.exchange",
        f"{tmp_path / 'twice.yaml'}: line 8: accounts.paper.keep_assets",
    ]
    (tmp_path / "merged.yaml").write_text(
        "accounts:\n  main: &main\n    exchange: sim\n    quote: USDT\n  paper:\n    <<: *main\n    quote: USDC\n",
        encoding="utf-8",
    )
    assert load_settings(tmp_path / "merged.yaml").accounts["paper"].quote == "USDC"
