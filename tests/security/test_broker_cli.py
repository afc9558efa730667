"""`bcast broker ...` refusals: unknown clusters, nothing to revoke, no files configured, a failing reload."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from bcast.cli import app


def _run(env: dict[str, str], *args: str, input: str | None = None):
    result = CliRunner().invoke(app, list(args), env=env, input=input)
    return result, " ".join(result.output.split())


def test_broker_commands_refuse_clearly(tmp_path, sqlite_fleet) -> None:
    database_url, _, _ = sqlite_fleet
    env = {"BCAST_DATABASE_URL": database_url}
    result, text = _run(env, "broker", "enrol-token", "Z")
    assert result.exit_code == 2 and "Không có cụm loa 'Z'" in text
    result, text = _run(env, "broker", "revoke", "A")
    assert result.exit_code == 2 and "không có tài khoản MQTT" in text
    result, text = _run(env, "broker", "write-files")
    assert result.exit_code == 2 and "Thiếu --password-file" in text
    result, text = _run(env, "broker", "server-password", "--password-stdin", input="short\n")
    assert result.exit_code == 2 and "ít nhất 16 ký tự" in text
    result, text = _run(env, "broker", "server-password", "--username", "A")
    assert result.exit_code == 2 and "không hợp lệ" in text

    # Without broker files the change is stored, with a warning saying what to run next.
    result, text = _run(env, "broker", "enrol-token", "A", "--ttl-hours", "1")
    assert result.exit_code == 0 and re.search(r"hết hạn lúc \d\d:\d\d ngày", text)
    result, text = _run(env, "broker", "revoke", "A")
    assert result.exit_code == 0 and "huỷ 1 mã đăng ký" in text and "bcast broker write-files" in text

    # The files are written but the broker cannot be told: exit 3, and the account is kept.
    files = {
        "BCAST_BROKER_PASSWORD_FILE": str(tmp_path / "passwd"),
        "BCAST_BROKER_ACL_FILE": str(tmp_path / "acl"),
        "BCAST_BROKER_PID_FILE": str(tmp_path / "no-broker.pid"),
    }
    result, text = _run({**env, **files}, "broker", "server-password")
    assert result.exit_code == 3 and "không nạp lại được" in text
    password = re.search(r"BCAST_MQTT_PASSWORD=(\S+)", result.output).group(1)
    assert (tmp_path / "passwd").read_text().startswith("bcast-server:$7$")
    assert password not in (tmp_path / "passwd").read_text()
    result, text = _run(
        env, "broker", "write-files", "--password-file", str(tmp_path / "p2"), "--acl-file", str(tmp_path / "a2")
    )
    assert result.exit_code == 0 and "1 tài khoản" in text
    assert (tmp_path / "p2").read_text() == (tmp_path / "passwd").read_text()
