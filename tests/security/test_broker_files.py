"""The broker's files without a broker: mosquitto's hash format, the ACL text, atomic writes, reloading."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest

from broadcast_server.broker_auth.atomic_file import write_atomically
from broadcast_server.broker_auth.broker_files import (
    BrokerAccount,
    InvalidBrokerAccount,
    cluster_username,
    render_acl,
    render_password_file,
)
from broadcast_server.broker_auth.password_hash import (
    InvalidBrokerHash,
    hash_password,
    new_password,
    parse_hash,
    verify_password,
)
from broadcast_server.broker_auth.reload import BrokerReloader, BrokerReloadError
from mqtt_contract import Topics


@pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="mosquitto_passwd is not installed")
def test_hashes_written_by_mosquitto_passwd_verify_and_ours_parse_alike(tmp_path) -> None:
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "alice", "s3cret-pass"], check=True, timeout=30)
    username, theirs = path.read_text().strip().split(":", 1)
    assert username == "alice" and theirs.startswith("$7$")
    assert verify_password("s3cret-pass", theirs)
    assert not verify_password("s3cret-pasS", theirs)
    their_iterations, their_salt, their_key = parse_hash(theirs)
    iterations, salt, key = parse_hash(hash_password("s3cret-pass"))
    assert (iterations, len(salt), len(key)) == (their_iterations, len(their_salt), len(their_key))
    # Same salt and iterations as mosquitto_passwd used: the same hash, byte for byte.
    assert hash_password("s3cret-pass", salt=their_salt, iterations=their_iterations) == theirs


def test_hash_is_salted_and_checks_its_input() -> None:
    password = new_password()
    assert len(password) >= 43
    first, second = hash_password(password), hash_password(password)
    assert first != second and verify_password(password, first) and verify_password(password, second)
    with pytest.raises(ValueError):
        hash_password("")
    for bad in ("plain", "$6$abc$def", "$7$x$AAAA$BBBB", "$7$101$!!$AAAA", "$7$101$AAAAAAAAAAAAAAAA$AAAA"):
        with pytest.raises(InvalidBrokerHash):
            parse_hash(bad)


def _accounts() -> list[BrokerAccount]:
    return [
        BrokerAccount(cluster_username("hq-002"), hash_password("b"), "hq-002"),
        BrokerAccount(cluster_username("hq-001"), hash_password("a"), "hq-001"),
        BrokerAccount("bcast-server", hash_password("s")),
    ]


def test_acl_gives_the_server_the_root_and_each_cluster_only_its_topics() -> None:
    acl = render_acl(_accounts(), Topics("tinh/qng"))
    blocks = [block.strip().splitlines() for block in acl.split("\n\n")[1:]]
    assert blocks == [
        ["# server account", "user bcast-server", "topic readwrite tinh/qng/#"],
        [
            "# cluster hq-001",
            "user hq-001",
            "topic read tinh/qng/v1/clusters/hq-001/command",
            "topic write tinh/qng/v1/clusters/hq-001/status",
            "topic write tinh/qng/v1/clusters/hq-001/heartbeat",
            "topic write tinh/qng/v1/clusters/hq-001/report",
        ],
        [
            "# cluster hq-002",
            "user hq-002",
            "topic read tinh/qng/v1/clusters/hq-002/command",
            "topic write tinh/qng/v1/clusters/hq-002/status",
            "topic write tinh/qng/v1/clusters/hq-002/heartbeat",
            "topic write tinh/qng/v1/clusters/hq-002/report",
        ],
    ]
    # Nothing before the first `user` line: anonymous clients get no topic at all.
    assert not [line for line in acl.split("user ")[0].splitlines() if line and not line.startswith("#")]


def test_password_file_lists_each_account_once_with_its_hash() -> None:
    accounts = _accounts()
    lines = render_password_file(accounts).splitlines()
    assert [line.split(":", 1)[0] for line in lines] == ["bcast-server", "hq-001", "hq-002"]
    assert all(line.split(":", 1)[1].startswith("$7$") for line in lines)


@pytest.mark.parametrize(
    "accounts",
    [
        [BrokerAccount("a", hash_password("x")), BrokerAccount("a", hash_password("y"))],  # twice
        [
            BrokerAccount("x", hash_password("x")),
            BrokerAccount("x", hash_password("y"), "x"),
        ],  # server named as a cluster
        [BrokerAccount("cluster-y", hash_password("x"), "x")],  # username not the cluster's
        [BrokerAccount("bad:name", hash_password("x"))],  # ':' splits mosquitto's password line
        [BrokerAccount("bad name", hash_password("x"))],
        [BrokerAccount("plain", "not-a-hash")],
    ],
)
def test_accounts_that_cannot_go_into_the_files_are_refused(accounts) -> None:
    with pytest.raises((InvalidBrokerAccount, InvalidBrokerHash)):
        render_password_file(accounts)
    with pytest.raises((InvalidBrokerAccount, InvalidBrokerHash)):
        render_acl(accounts, Topics())


def test_atomic_write_replaces_whole_files_and_keeps_the_mode(tmp_path) -> None:
    path = tmp_path / "etc" / "passwd"
    write_atomically(path, "one\n")
    assert path.read_text() == "one\n" and (path.stat().st_mode & 0o777) == 0o640
    os.chmod(path, 0o600)
    write_atomically(path, "two\n")
    assert path.read_text() == "two\n" and (path.stat().st_mode & 0o777) == 0o600
    with pytest.raises(UnicodeEncodeError):
        write_atomically(path, "three \udcff\n")  # fails half-way through writing
    assert path.read_text() == "two\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["passwd"]  # no temp file left behind


def test_reload_by_pid_file_sends_sighup_and_refuses_bad_pid_files(tmp_path) -> None:
    assert BrokerReloader().reload() is False
    pid_file = tmp_path / "broker.pid"
    for content in ("", "abc", "1", "0"):
        pid_file.write_text(content)
        with pytest.raises(BrokerReloadError):
            BrokerReloader(pid_file=pid_file).reload()
    with pytest.raises(BrokerReloadError):
        BrokerReloader(pid_file=tmp_path / "missing.pid").reload()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time\nsignal.signal(signal.SIGHUP, lambda *a: sys.exit(42))\n"
            "print('ready', flush=True)\nfor _ in range(600): time.sleep(0.1)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout.readline().strip() == b"ready"
        pid_file.write_text(f"{child.pid}\n")
        assert BrokerReloader(pid_file=pid_file).reload() is True
        assert child.wait(30) == 42  # the handler ran: it was SIGHUP
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            child.wait(5)
    with pytest.raises(BrokerReloadError):  # that process is gone now
        BrokerReloader(pid_file=pid_file).reload()


def test_reload_command_runs_and_its_failure_is_reported(tmp_path) -> None:
    marker = tmp_path / "reloaded"
    assert BrokerReloader(command=f"touch {marker}").reload() is True
    assert marker.exists()
    with pytest.raises(BrokerReloadError, match="exited with 3"):
        BrokerReloader(command=f"{sys.executable} -c 'import sys; sys.exit(3)'").reload()
    with pytest.raises(BrokerReloadError):
        BrokerReloader(command="/nonexistent/reload-broker").reload()
