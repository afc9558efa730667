"""Which commands the agent obeys: signed by a trusted server key, with a sequence number not seen before.

The trusted keys come from the configuration (`trusted_keys`) until the server pushes a key set with a
signed `keys` command; from then on the pushed set, kept in `{data_dir}/trusted_keys.json`, is the one
trusted (rotation over the air: add the next key, switch signing, retire the old one). An agent that
trusts no key refuses every command, saying why in each `rejected` report and in its heartbeat: a box
that obeyed unsigned commands would play whatever anyone able to publish on its topic sent, a false
storm warning included. `allow_unsigned_commands = true` in its configuration makes it obey them, for a
test bench or a simulated fleet without the server's key.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from mqtt_contract.signing import NO_TRUSTED_KEY as NO_KEY
from mqtt_contract.signing import CommandAuthError, InvalidKey, key_id, trust, verify
from speaker_agent.clock import parse_time
from speaker_agent.durable_file import write_durably
from speaker_agent.state import AgentState

log = logging.getLogger(__name__)

KEYRING_FILE = "trusted_keys.json"
_warned_unsigned = False  # once per process: a simulated fleet holds thousands of agents
NO_TRUSTED_KEY = f"{NO_KEY}: commands are refused until the box is enrolled (bcast agent enrol) or trusted_keys is set"


class CommandRefused(CommandAuthError):
    """A command the agent will not carry out; ``reason`` goes into its `rejected` report."""


class Redelivered(Exception):
    """The broker delivered a command again (MQTT DUP flag) that was taken already: ignored silently."""


class KeySetRefused(CommandAuthError):
    """A `keys` command whose key set cannot be adopted."""


class CommandGate:
    """Checks each decoded command before the agent acts on it; keeps the trusted key set."""

    def __init__(
        self, configured: tuple[str, ...], data_dir: Path, state: AgentState, *, allow_unsigned: bool = False
    ) -> None:
        self.state = state
        self.allow_unsigned = allow_unsigned
        self.path = data_dir / KEYRING_FILE
        self.pushed_seq = 0
        self.trusted = trust(configured)
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            self.trusted = trust(tuple(document["keys"]))
            self.pushed_seq = int(document.get("seq", 0))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, InvalidKey) as exc:
            # A damaged key file must not open the device to anyone: fall back to the configured keys.
            log.error("%s is unreadable (%s); trusting the configured keys", self.path, exc)
        global _warned_unsigned
        if not self.trusted and not _warned_unsigned:
            _warned_unsigned = True
            if allow_unsigned:
                log.warning("no trusted server key and allow_unsigned_commands: commands are obeyed unchecked")
            else:
                log.error("%s", NO_TRUSTED_KEY)

    @property
    def enforcing(self) -> bool:
        """Whether a command must prove it comes from the server: always, unless unsigned ones are allowed."""
        return bool(self.trusted) or not self.allow_unsigned

    @property
    def refusing_all(self) -> bool:
        """No key to check a signature with, and unsigned commands not allowed: nothing is carried out."""
        return not self.trusted and not self.allow_unsigned

    def check(self, command: dict[str, Any], *, redelivered: bool, now_ts: float) -> None:
        """Return if the command may be acted on; raise CommandRefused (to report) or Redelivered (to drop).

        A seq seen before is a replay unless the broker marked the message as a redelivery (DUP): QoS 1
        redelivers a message whose acknowledgement was lost, with the same bytes."""
        if not self.enforcing:
            return
        if not self.trusted:
            raise CommandRefused(NO_TRUSTED_KEY)
        try:
            verify(command, self.trusted)
        except CommandAuthError as exc:
            raise CommandRefused(exc.reason) from None
        seq = int(command["seq"])  # the schema requires seq with sig
        if self.state.seq_seen(seq):
            if redelivered:
                raise Redelivered()
            if seq <= self.state.seq_floor and seq not in self.state.seen_seqs:
                raise CommandRefused(f"replay: seq {seq} is older than the replay window")
            raise CommandRefused(f"replay: seq {seq} was already received")
        self.state.record_seq(seq, parse_time(command["expires_at"]).timestamp(), now_ts)

    def adopt(self, command: dict[str, Any]) -> list[str]:
        """Trust the key set of a signed `keys` command from now on; return the new key ids.

        Refused without a trusted key (nothing could have checked its signature), when older than the set
        held, or when the set leaves out the key that signed it (the server would lock itself out)."""
        if not self.trusted:
            raise KeySetRefused("keys: no trusted key configured, a key set cannot be verified")
        seq = int(command["seq"])
        if seq <= self.pushed_seq:
            raise KeySetRefused(f"keys: set of seq {seq} is not newer than the one held ({self.pushed_seq})")
        keys = list(command["keys"])
        new = trust(tuple(keys))
        signer = command["sig"]["kid"]
        if signer not in new:
            raise KeySetRefused(f"keys: the set leaves out the signing key {signer!r}")
        write_durably(self.path, json.dumps({"seq": seq, "keys": keys}))
        self.trusted, self.pushed_seq = new, seq
        return [key_id(k) for k in keys]
