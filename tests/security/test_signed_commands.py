"""Signed commands without a broker: the canonical form, sign and verify (with arbitrary contract-valid
commands), the agent's replay window and key-set rules. On the broker: tests/agent/test_signed_commands_on_broker.py."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mqtt_contract import Channel, decode, encode, validate
from mqtt_contract.signing import (
    BadSignature,
    CommandSigner,
    UnknownKey,
    UnsignedCommand,
    canonical_bytes,
    key_id,
    sign,
    trust,
    verify,
)
from speaker_agent.clock import isoformat
from speaker_agent.state import REPLAY_WINDOW, AgentState

BROKER = ("127.0.0.1", 1883)
SHA = "ab" * 32


def _command(kind: str = "ping", *, expires_in: float = 60, **fields) -> dict:
    now = datetime.now(UTC)
    return {
        "v": 1,
        "id": uuid.uuid4().hex,
        "type": kind,
        "issued_at": isoformat(now),
        "expires_at": isoformat(now + timedelta(seconds=expires_in)),
        **fields,
    }


def _play(url: str, sha: str, size: int, *, expires_in: float = 60, broadcast_id: str = "b1") -> dict:
    audio = {"url": url, "sha256": sha, "size_bytes": size, "duration_s": 2.0}
    play = {"broadcast_id": broadcast_id, "priority": "normal", "title": "Thông báo", "audio": audio}
    return _command("play", expires_in=expires_in, play=play)


# ----------------------------------------------------------------------------- canonical form, sign, verify


def test_canonical_bytes_ignore_order_whitespace_and_the_signature() -> None:
    command = _play("http://x/a.mp3", SHA, 10)
    shuffled = json.loads(json.dumps(dict(reversed(list(command.items()))), indent=3))
    assert canonical_bytes(shuffled) == canonical_bytes(command)
    assert canonical_bytes({**command, "sig": {"alg": "Ed25519", "kid": "x", "value": "y"}}) == canonical_bytes(command)
    text = canonical_bytes(command).decode()
    assert " " not in text.replace("Thông báo", "") and text.index('"expires_at"') < text.index('"id"')
    assert "Thông báo".encode() in canonical_bytes(command)  # UTF-8, not \\u escapes
    # Integral floats are written as integers (RFC 8785), so 2.0 and 2 sign the same; other floats round-trip.
    assert canonical_bytes({"a": 2.0, "b": 0.1}) == b'{"a":2,"b":0.1}'
    with pytest.raises(ValueError):
        canonical_bytes({"a": float("nan")})


def test_sign_then_verify_and_each_way_to_fail() -> None:
    server, stranger = CommandSigner.generate(), CommandSigner.generate()
    trusted = trust([server.public_key])
    signed = server.sign(_play("http://x/a.mp3", SHA, 10))
    assert validate(Channel.COMMAND, signed) is signed
    assert signed["sig"]["kid"] == server.kid == key_id(server.public_key)
    assert verify(decode(Channel.COMMAND, encode(Channel.COMMAND, signed)), trusted) == server.kid

    with pytest.raises(UnsignedCommand):
        verify({k: v for k, v in signed.items() if k != "sig"}, trusted)
    with pytest.raises(UnknownKey, match="unknown key id"):
        verify(stranger.sign(_command()), trusted)
    forged = stranger.sign(_command())
    forged["sig"]["kid"] = server.kid  # a stranger claiming the server's key id
    with pytest.raises(BadSignature):
        verify(forged, trusted)
    for tamper in (
        lambda c: c["play"]["audio"].update(sha256="cd" * 32),
        lambda c: c["play"]["audio"].update(url="http://evil/a.mp3"),
        lambda c: c.update(expires_at="2999-01-01T00:00:00.000Z"),
        lambda c: c.update(seq=c["seq"] + 1),
        lambda c: c["sig"].update(value="A" * 86),
        lambda c: c["sig"].update(value="not base64!"),
    ):
        copy = json.loads(json.dumps(signed))
        tamper(copy)
        with pytest.raises(BadSignature):
            verify(copy, trusted)


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")


@st.composite
def contract_commands(draw) -> dict:
    kind = draw(st.sampled_from(["ping", "stop", "volume", "play", "keys"]))
    command = _command(kind, expires_in=draw(st.integers(1, 10**6)))
    command["id"] = draw(_ids)
    if kind == "volume":
        command["volume"] = draw(st.integers(0, 100))
    elif kind == "keys":
        command["keys"] = [CommandSigner.generate().public_key]
    elif kind == "play":
        audio = {
            "url": "http://127.0.0.1/api/v1/audio/"
            + SHA
            + "?exp=1&tok="
            + draw(st.from_regex(r"\A[A-Za-z0-9_-]{0,20}\Z")),
            "sha256": SHA,
            "size_bytes": draw(st.integers(1, 2**40)),
            "duration_s": draw(st.floats(min_value=0.001, max_value=1e6, allow_nan=False)),
        }
        command["play"] = {
            "broadcast_id": draw(_ids),
            "priority": draw(st.sampled_from(["normal", "priority", "emergency"])),
            "title": draw(_text),
            "audio": audio,
        }
    return validate(Channel.COMMAND, command)


SIGNER = CommandSigner.generate()


@settings(max_examples=150, deadline=None)
@given(contract_commands())
def test_any_contract_valid_command_verifies_after_the_wire(command) -> None:
    signed = SIGNER.sign(command)
    received = decode(Channel.COMMAND, encode(Channel.COMMAND, signed))  # what the agent parses
    assert verify(received, trust([SIGNER.public_key])) == SIGNER.kid
    received["id"] = received["id"] + "x" if len(received["id"]) < 64 else "x"
    with pytest.raises(BadSignature):
        verify(received, trust([SIGNER.public_key]))


def test_replay_window_survives_a_restart_and_stays_bounded(tmp_path) -> None:
    state = AgentState(tmp_path / "state.json")
    far = datetime.now(UTC).timestamp() + 3600
    state.record_seq(100, far, now=0)
    state.save()
    again = AgentState(tmp_path / "state.json")
    assert again.seq_seen(100) and not again.seq_seen(101)
    for seq in range(1000, 1000 + REPLAY_WINDOW + 5):
        again.record_seq(seq, far, now=0)
    assert len(again.seen_seqs) == REPLAY_WINDOW
    assert again.seq_floor == 1004 and again.seq_seen(1003)  # older than the window: refused
    # Seqs of commands expired for over an hour are forgotten: their expiry refuses them anyway.
    again.record_seq(5000, far + 86400, now=far + 3601 + 10)
    assert list(again.seen_seqs) == [5000]


@pytest.mark.parametrize("allow_unsigned", [False, True])
def test_agent_without_trusted_keys_refuses_a_key_set(tmp_path, allow_unsigned) -> None:
    """Nothing could have checked the signature of a first key set: trust on first use is a hijack."""
    from speaker_agent.command_auth import CommandGate, KeySetRefused

    gate = CommandGate((), tmp_path, AgentState(tmp_path / "state.json"), allow_unsigned=allow_unsigned)
    command = sign({**_command("keys", keys=[SIGNER.public_key]), "seq": 5}, SIGNER.private_key)
    assert gate.enforcing is not allow_unsigned
    with pytest.raises(KeySetRefused, match="no trusted key"):
        gate.adopt(command)


def test_agent_without_trusted_keys_refuses_every_command_unless_allowed(tmp_path) -> None:
    """A box that knows no server key cannot tell the server from anyone else on the broker: it refuses
    signed and unsigned commands alike, saying how to cure it; only `allow_unsigned_commands` makes it obey."""
    from speaker_agent.command_auth import NO_TRUSTED_KEY, CommandGate, CommandRefused

    unsigned = _command("ping")
    signed = sign({**_command("ping"), "seq": 7}, SIGNER.private_key)
    closed = CommandGate((), tmp_path / "closed", AgentState(tmp_path / "closed.json"))
    assert closed.refusing_all
    for command in (unsigned, signed):
        with pytest.raises(CommandRefused) as refused:
            closed.check(command, redelivered=False, now_ts=0)
        assert refused.value.reason == NO_TRUSTED_KEY and "bcast agent enrol" in NO_TRUSTED_KEY
    allowed = CommandGate((), tmp_path / "open", AgentState(tmp_path / "open.json"), allow_unsigned=True)
    assert not allowed.refusing_all
    allowed.check(unsigned, redelivered=False, now_ts=0)  # obeyed unchecked
    keyed = CommandGate(
        (SIGNER.public_key,), tmp_path / "keyed", AgentState(tmp_path / "keyed.json"), allow_unsigned=True
    )
    with pytest.raises(CommandRefused, match="unsigned"):  # with a key, the switch changes nothing
        keyed.check(unsigned, redelivered=False, now_ts=0)


def test_allow_unsigned_commands_is_off_unless_the_file_or_the_environment_says_so(tmp_path) -> None:
    from speaker_agent.config import AgentConfig, ConfigError

    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\ncluster_id = "c-1"\ndata_dir = "{tmp_path / "data"}"\n')
    assert AgentConfig.load(config, env={}).allow_unsigned_commands is False
    config.write_text(config.read_text() + "allow_unsigned_commands = true\n")
    assert AgentConfig.load(config, env={}).allow_unsigned_commands is True
    assert (
        AgentConfig.load(config, env={"BCAST_AGENT_ALLOW_UNSIGNED_COMMANDS": "false"}).allow_unsigned_commands is False
    )
    with pytest.raises(ConfigError, match="allow_unsigned_commands"):
        AgentConfig.load(config, env={"BCAST_AGENT_ALLOW_UNSIGNED_COMMANDS": "maybe"})
