"""The systemd units promise what the README says: a notify service with a watchdog, restarts
within a limit, secrets from an env file, state in its state directory, its own user, and
hardening rated at most 2.0 by `systemd-analyze security`.

The directives are checked by parsing the files, so the promise holds wherever the tests
run; `systemd-analyze` checks the rest where it is installed, and says so where it is not.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from riskd import cli, health, supervisor
from riskd.config import Settings
from riskd.units import parse_duration

UNITS = Path(__file__).resolve().parents[2] / "systemd"
SERVICE, TEMPLATE = UNITS / "riskd.service", UNITS / "riskd@.service"
EXECUTABLE = "/opt/riskd/bin/riskd"
SECURITY_LIMIT = 2.0
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (Debian package: systemd)")


def directives(path: Path) -> dict[str, dict[str, list[str]]]:
    """section → key → every value given, in order (systemd keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    section = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict, section: str, key: str) -> str:
    values = unit[section].get(key)
    assert values, f"[{section}] {key}= is missing"
    return values[-1]


@pytest.fixture(params=[SERVICE, TEMPLATE], ids=["riskd.service", "riskd@.service"])
def unit(request) -> dict:
    return directives(request.param)


def test_a_notify_service_with_a_watchdog_above_riskds_own_staleness_limit(unit):
    assert one(unit, "Service", "Type") == "notify"
    assert one(unit, "Service", "NotifyAccess") == "main"
    watchdog = parse_duration(one(unit, "Service", "WatchdogSec"))
    default_poll = Settings.model_fields["poll_interval"].default
    assert watchdog >= 2 * health.freshness(default_poll)  # ticks may be late a while before systemd steps in


def test_restarts_on_failure_within_a_limit_but_not_on_a_configuration_error(unit):
    assert one(unit, "Service", "Restart") == "on-failure"
    assert parse_duration(one(unit, "Service", "RestartSec")).total_seconds() >= 1
    assert int(one(unit, "Unit", "StartLimitBurst")) <= 10
    assert parse_duration(one(unit, "Unit", "StartLimitIntervalSec")).total_seconds() >= 60
    assert one(unit, "Service", "RestartPreventExitStatus") == str(cli.CONFIG_ERROR)


def test_stopping_leaves_riskd_time_to_abandon_its_tick_and_flush(unit):
    assert parse_duration(one(unit, "Service", "TimeoutStopSec")).total_seconds() >= supervisor.STOP_GRACE + 10


def test_secrets_from_an_env_file_state_in_the_state_directory_run_as_its_own_user(unit):
    assert one(unit, "Service", "EnvironmentFile").startswith("/etc/riskd/")
    assert one(unit, "Service", "EnvironmentFile").endswith(".env")
    assert one(unit, "Service", "StateDirectory").startswith("riskd")
    assert one(unit, "Service", "WorkingDirectory") == "%S/" + one(unit, "Service", "StateDirectory")
    assert one(unit, "Service", "User") == one(unit, "Service", "Group") == "riskd"
    assert one(unit, "Service", "UMask") == "0077"


def test_runs_riskd_and_reloads_with_sighup(unit):
    command = one(unit, "Service", "ExecStart").split()
    assert command[0] == EXECUTABLE and command[1] == "--config" and command[-1] == "run"
    assert one(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


def test_hardened(unit):
    service = unit["Service"]
    expected = {
        "NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "PrivateUsers": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes", "ProtectControlGroups": "yes", "RestrictNamespaces": "yes",
        "RestrictSUIDSGID": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native",
    }
    assert {key: service.get(key, ["(missing)"])[-1] for key in expected} == expected
    assert set(one(unit, "Service", "RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert service["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]


def test_the_template_is_the_service_with_one_instance_per_configuration_file():
    service, template = SERVICE.read_text(), TEMPLATE.read_text()
    assert "--config /etc/riskd/%i.yaml run" in template
    assert "EnvironmentFile=/etc/riskd/%i.env" in template
    assert "StateDirectory=riskd/%i\n" in template
    strip = lambda text: [line for line in text.splitlines() if not line.startswith("#") and "%i" not in line]
    differing = {line.split("=")[0] for line in set(strip(service)) ^ set(strip(template))}
    assert differing == {"Description", "ExecStart", "EnvironmentFile", "StateDirectory", "WorkingDirectory"}


# --- systemd-analyze, where it is installed -------------------------------------------------

def analyze(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([ANALYZE, *arguments], cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture
def installable(tmp_path) -> Path:
    """The unit files as verify sees them installed: ExecStart must name an executable."""
    executable = tmp_path / "riskd"
    executable.write_text("#!/bin/sh\n")
    executable.chmod(0o755)
    for source in (SERVICE, TEMPLATE):
        (tmp_path / source.name).write_text(source.read_text().replace(EXECUTABLE, str(executable)))
    (tmp_path / "riskd@example.service").symlink_to("riskd@.service")
    return tmp_path


@needs_analyze
@pytest.mark.parametrize("name", ["riskd.service", "riskd@example.service"])
def test_systemd_analyze_verify_is_clean(installable, name):
    result = analyze("verify", f"./{name}", cwd=installable)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@needs_analyze
@pytest.mark.parametrize("path", [SERVICE, TEMPLATE], ids=["riskd.service", "riskd@.service"])
def test_systemd_analyze_security_rates_exposure_at_most_2(path):
    result = analyze("security", "--offline=yes", path.name, cwd=path.parent)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found, result.stdout + result.stderr
    assert float(found.group(1)) <= SECURITY_LIMIT, result.stdout
