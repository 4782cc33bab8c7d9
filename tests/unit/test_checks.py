"""How `riskd check` judges what it finds: API key permissions, the env file's mode,
whether the database can be written."""

from __future__ import annotations

from riskd import checks
from riskd.store import write_problem


def test_a_binance_key_that_can_withdraw_is_a_loud_warning():
    finding = checks.binance_permissions("main", {"enableReading": True, "enableFutures": True, "enableWithdrawals": True})
    assert finding.level == checks.WARNING and "WITHDRAWALS ARE ENABLED" in str(finding)
    safe = checks.binance_permissions("main", {"enableReading": True, "enableFutures": True, "ipRestrict": True})
    assert (safe.level, safe.text) == (checks.OK, "API key may: read, futures trading; no withdrawals")
    transfer = checks.binance_permissions("main", {"enableReading": True, "permitsUniversalTransfer": True})
    assert transfer.level == checks.WARNING and "transfer funds" in transfer.text


def test_an_okx_key_that_can_withdraw_is_a_loud_warning():
    assert checks.okx_permissions("main", {"data": [{"perm": "read_only,trade,withdraw"}]}).level == checks.WARNING
    finding = checks.okx_permissions("main", {"data": [{"perm": "read_only,trade"}]})
    assert (finding.level, finding.text) == (checks.OK, "API key may: read_only, trade; no withdrawals")


def test_env_file_permissions(tmp_path):
    secrets = tmp_path / "riskd.env"
    secrets.write_text("RISKD_LIVE=false\n")
    for mode, level in ((0o600, checks.OK), (0o640, checks.OK), (0o644, checks.WARNING), (0o660, checks.WARNING)):
        secrets.chmod(mode)
        assert checks.env_file_permissions(secrets).level == level, oct(mode)


def test_the_database_write_probe_changes_nothing(tmp_path):
    assert write_problem(tmp_path / "new" / "riskd.db") is None
    assert not (tmp_path / "new").exists()
    (tmp_path / "notes.db").write_text("not a database")
    assert write_problem(tmp_path / "notes.db") == f"{tmp_path / 'notes.db'}: file is not a database"
