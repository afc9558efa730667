"""Authorised audio downloads (tokens the signer puts in commands, checked by the route without the
database) and the server's key file: made at first start, rotation steps, `bcast keys`."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from broadcast_server.models import AudioAsset
from broadcast_server.settings import Settings
from broadcast_server.signing.audio_tokens import (
    AudioTokenRefused,
    audio_token,
    authorised_url,
    check_audio_token,
)
from broadcast_server.signing.command_signer import ServerCommandSigner
from broadcast_server.signing.keyring import (
    KeyringError,
    generate_keyring,
    load_keyring,
    load_or_create_keyring,
    save_keyring,
)
from mqtt_contract import Channel, validate
from mqtt_contract.signing import trust, verify
from mqtt_contract.times import isoformat
from speaker_agent.config import AgentConfig

SECRET = b"s" * 32
SHA = "ab" * 32


def test_token_checks() -> None:
    good = audio_token(SECRET, SHA, 2000)
    check_audio_token(SECRET, SHA, "2000", good, now=1999)
    for expires, token, now, message in (
        (None, None, 0, "needs a token"),
        ("2000", "", 0, "needs a token"),
        ("2000", good, 2000, "expired"),
        ("2001", good, 0, "not valid"),  # the expiry is covered by the token
        ("2000", audio_token(SECRET, "cd" * 32, 2000), 0, "not valid"),  # another file's token
        ("2000", audio_token(b"t" * 32, SHA, 2000), 0, "not valid"),  # another server's secret
        ("-5", good, 0, "Unix time"),
    ):
        with pytest.raises(AudioTokenRefused, match=message):
            check_audio_token(SECRET, SHA, expires, token, now=now)
    url = authorised_url(f"http://h/api/v1/audio/{SHA}?exp=1&tok=old&x=1", SHA, 2000, SECRET)
    assert url == f"http://h/api/v1/audio/{SHA}?x=1&exp=2000&tok={good}"


def test_signer_authorises_every_audio_url_and_leaves_the_callers_dicts_alone(tmp_path) -> None:
    signer = ServerCommandSigner(tmp_path / "keys.json")
    now = datetime.now(UTC)
    audio = {"url": f"http://h/api/v1/audio/{SHA}", "sha256": SHA, "size_bytes": 3, "duration_s": 1.5}
    entry = {"id": "s1@x", "start_at": isoformat(now), "items": [{"audio": audio}, {"audio": audio}]}
    window = {"version": 1, "window_end": isoformat(now + timedelta(hours=48)), "entries": [entry]}
    command = {
        "v": 1,
        "id": "c1",
        "type": "schedule",
        "issued_at": isoformat(now),
        "expires_at": window["window_end"],
        "schedule": window,
    }
    signed = signer.sign(command)
    assert "?" not in audio["url"] and "seq" not in command  # shared between clusters: untouched
    validate(Channel.COMMAND, signed)
    assert verify(signed, trust(signer.keyring.trusted_public_keys)) == signer.keyring.active.kid
    expires = int((now + timedelta(hours=49)).timestamp())
    for item in signed["schedule"]["entries"][0]["items"]:
        query = dict(part.split("=") for part in item["audio"]["url"].split("?")[1].split("&"))
        assert abs(int(query["exp"]) - expires) <= 1
        check_audio_token(signer.keyring.audio_token_secret, SHA, query["exp"], query["tok"], now.timestamp())
    assert signer.sign(command)["seq"] > signed["seq"]


def test_signer_leaves_a_relays_stream_as_it_is_in_a_play_and_in_a_schedule(tmp_path) -> None:
    """A live relay's address is the station's, not ours: no token goes on it; the files beside it get theirs."""
    signer = ServerCommandSigner(tmp_path / "keys.json")
    now = datetime.now(UTC)
    stream = {"url": "https://radio.example.vn/vov1.mp3?mount=a", "duration_s": 900}
    audio = {"url": f"http://h/api/v1/audio/{SHA}", "sha256": SHA, "size_bytes": 3, "duration_s": 1.5}
    entry = {"id": "s1@x", "start_at": isoformat(now), "items": [{"stream": stream}, {"audio": audio}]}
    window = {"version": 1, "window_end": isoformat(now + timedelta(hours=48)), "entries": [entry]}
    base = {"v": 1, "issued_at": isoformat(now), "expires_at": window["window_end"]}
    schedule = signer.sign({**base, "id": "c1", "type": "schedule", "schedule": window})
    relay, file = schedule["schedule"]["entries"][0]["items"]
    assert relay == {"stream": stream} and "tok=" in file["audio"]["url"]
    play = {"broadcast_id": "b1", "priority": "normal", "stream": stream}
    signed = signer.sign({**base, "id": "c2", "type": "play", "play": play})
    assert signed["play"] == play
    for command in (schedule, signed):
        validate(Channel.COMMAND, command)
        verify(command, trust(signer.keyring.trusted_public_keys))


@pytest.fixture
def audio_app(engine, database_url, tmp_path):
    from broadcast_server.api.app import create_app
    from broadcast_server.db.session import session_scope
    from broadcast_server.runtime import Runtime

    data = b"ID3" + bytes(3000)
    sha = hashlib.sha256(data).hexdigest()
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / f"{sha}.mp3").write_bytes(data)
    with session_scope(engine) as session:
        session.add(AudioAsset(id=sha, size_bytes=len(data), duration_s=1.0, storage_key=f"{sha}.mp3"))
    settings = Settings(
        database_url=database_url, audio_dir=tmp_path / "audio", signing_key_file=tmp_path / "keys.json"
    )
    runtime = Runtime.from_settings(settings, engine=engine)
    with TestClient(create_app(runtime, manage_runtime=False)) as client:
        yield client, sha, data, settings, engine


def test_audio_route_needs_a_valid_token_or_a_signed_in_user(audio_app) -> None:
    client, sha, data, settings, engine = audio_app
    path = f"/api/v1/audio/{sha}"
    secret = load_or_create_keyring(settings.signing_key_file).audio_token_secret
    future = int(datetime.now(UTC).timestamp()) + 600
    past = int(datetime.now(UTC).timestamp()) - 1
    for params, reason in (
        ({}, "needs a token"),
        ({"exp": str(future), "tok": audio_token(secret, sha, future + 1)}, "not valid"),
        ({"exp": str(future), "tok": audio_token(b"x" * 32, sha, future)}, "not valid"),
        ({"exp": str(past), "tok": audio_token(secret, sha, past)}, "expired"),
    ):
        response = client.get(path, params=params)
        assert response.status_code == 403 and reason in response.json()["detail"], (params, response.text)
        assert response.content != data
    assert client.get(path, headers={"Authorization": "Bearer bct_forged"}).status_code == 403

    # The URL a signed command carries downloads (and resumes: Range still works).
    now = datetime.now(UTC)
    command = {
        "v": 1,
        "id": "c1",
        "type": "play",
        "issued_at": isoformat(now),
        "expires_at": isoformat(now + timedelta(minutes=10)),
        "play": {
            "broadcast_id": "b1",
            "priority": "emergency",
            "audio": {"url": f"http://testserver{path}", "sha256": sha, "size_bytes": len(data), "duration_s": 1.0},
        },
    }
    url = ServerCommandSigner(settings.signing_key_file).sign(command)["play"]["audio"]["url"]
    response = client.get(url)
    assert response.status_code == 200 and response.content == data
    assert client.get(url, headers={"Range": "bytes=100-"}).content == data[100:]

    from bcast.demo import admin_headers

    response = client.get(path, headers=admin_headers(engine))  # a console user listening
    assert response.status_code == 200 and response.content == data


# ----------------------------------------------------------------------------- the key file


def test_key_file_is_made_once_with_mode_0600_and_a_log_line(tmp_path, caplog) -> None:
    path = tmp_path / "deep" / "keys.json"
    with caplog.at_level(logging.WARNING):
        made = load_or_create_keyring(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert made.active.kid in caplog.text and str(path) in caplog.text
    again = load_or_create_keyring(path)
    assert again.active.kid == made.active.kid and again.audio_token_secret == made.audio_token_secret
    path.write_text("{not json")
    with pytest.raises(KeyringError, match="not a bcast key file"):
        load_or_create_keyring(path)  # a damaged file is never replaced silently by a new key


def test_rotation_steps_in_order_only() -> None:
    keyring = generate_keyring()
    with pytest.raises(KeyringError, match="no next key"):
        keyring.switched()
    with pytest.raises(KeyringError, match="no previous key"):
        keyring.retired()
    added = keyring.with_next_key(datetime.now(UTC))
    assert len(added.trusted_public_keys) == 2 and added.active.kid == keyring.active.kid
    with pytest.raises(KeyringError, match="next key exists"):
        added.with_next_key(datetime.now(UTC))
    switched = added.switched()
    assert switched.active.kid != keyring.active.kid and len(switched.trusted_public_keys) == 2
    with pytest.raises(KeyringError, match="retire it first"):
        switched.with_next_key(datetime.now(UTC))
    assert switched.retired().trusted_public_keys == [switched.active.public_key]


def test_running_signer_follows_the_key_file(tmp_path) -> None:
    path = tmp_path / "keys.json"
    signer = ServerCommandSigner(path)
    command = {"v": 1, "id": "p", "type": "ping", "issued_at": "2030-01-01T00:00:00Z"}
    command["expires_at"] = "2030-01-01T00:01:00Z"
    first = signer.sign(command)["sig"]["kid"]
    switched = load_keyring(path).with_next_key(datetime.now(UTC)).switched()
    save_keyring(path, switched)
    assert signer.sign(command)["sig"]["kid"] == switched.active.kid != first
    path.write_text("damaged")
    assert signer.sign(command)["sig"]["kid"] == switched.active.kid  # keeps the last good keys


def test_keys_cli(tmp_path) -> None:
    from bcast.cli import app

    runner = CliRunner()
    path = tmp_path / "keys.json"
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    result = runner.invoke(app, ["keys", "generate", "--file", str(path)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["keys", "generate", "--file", str(path)]).exit_code == 2  # never overwritten
    shown = runner.invoke(app, ["keys", "show-public", "--file", str(path)])
    line = next(x for x in shown.output.splitlines() if x.startswith("trusted_keys = "))
    config = AgentConfig(cluster_id="c-1", data_dir=tmp_path / "a", trusted_keys=json.loads(line.split("= ", 1)[1]))
    assert list(trust(config.trusted_public_keys)) == [load_keyring(path).active.kid]

    _fleet(database)
    result = runner.invoke(app, ["keys", "rotate", "add", "--file", str(path), "--database-url", database, "--no-push"])
    assert result.exit_code == 0, result.output
    # No cluster has adopted the new set yet: switching would make them refuse every command.
    result = runner.invoke(app, ["keys", "rotate", "switch", "--file", str(path), "--database-url", database])
    assert result.exit_code == 2 and "chưa nhận bộ khóa" in result.output
    before = load_keyring(path).active.kid
    result = runner.invoke(
        app, ["keys", "rotate", "switch", "--file", str(path), "--database-url", database, "--force"]
    )
    assert result.exit_code == 0, result.output
    assert load_keyring(path).active.kid != before


def _fleet(database_url: str) -> None:
    from broadcast_server.db.engine import make_engine
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.domain.fleet import decode_fleet_bytes, parse_fleet
    from broadcast_server.services.fleet_import import import_fleet

    upgrade(database_url)
    engine = make_engine(database_url)
    fleet = Path(__file__).parents[2] / "bcast" / "data" / "hon-quan.csv"
    import_fleet(engine, parse_fleet(decode_fleet_bytes(fleet.read_bytes()), rename_duplicates=True).rows)
    engine.dispose()
