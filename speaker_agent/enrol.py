"""Enrolment of a receiver box: spend the one-time token at the server, keep the MQTT credentials it returns.

The credentials go to ``<data_dir>/mqtt-credentials.json`` with mode 0600 (written through a renamed temp
file), and `AgentConfig.load` uses them when the configuration names no MQTT username.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from speaker_agent.durable_file import write_durably

if TYPE_CHECKING:  # httpx only to enrol: `AgentConfig.load` reads the credentials on every agent start
    import httpx

CREDENTIALS_FILE = "mqtt-credentials.json"
ENROL_PATH = "/api/v1/enrol"


class CredentialsError(ValueError):
    """The stored credentials file is unreadable, malformed, or belongs to another cluster."""


class EnrolmentError(RuntimeError):
    """The server refused the enrolment or could not be reached; the message is the server's reason."""


@dataclass(frozen=True)
class StoredCredentials:
    cluster_id: str
    username: str
    password: str
    server: str
    enrolled_at: str  # ISO 8601, UTC
    trusted_keys: str = ""  # the server's command-signing public keys, space-separated (given at enrolment)


def credentials_path(data_dir: Path) -> Path:
    return Path(data_dir) / CREDENTIALS_FILE


def save_credentials(data_dir: Path, credentials: StoredCredentials) -> Path:
    """Write the credentials readable by the agent's user only (0600), replacing any previous ones at once."""
    path = credentials_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_durably(path, json.dumps(asdict(credentials), ensure_ascii=False, indent=2), mode=0o600)
    return path


def load_credentials(data_dir: Path, cluster_id: str) -> StoredCredentials | None:
    """The stored credentials of this cluster, or None when it was never enrolled."""
    path = credentials_path(data_dir)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CredentialsError(f"cannot read {path}: {exc}") from None
    try:
        credentials = StoredCredentials(
            **{key: str(document[key]) for key in StoredCredentials.__dataclass_fields__ if key != "trusted_keys"},
            trusted_keys=str(document.get("trusted_keys", "")),
        )
    except (KeyError, TypeError):
        raise CredentialsError(f"{path} is not an MQTT credentials file") from None
    if credentials.cluster_id != cluster_id:
        raise CredentialsError(
            f"{path} holds the credentials of cluster {credentials.cluster_id!r}, not {cluster_id!r}"
        )
    return credentials


def request_enrolment(http: httpx.Client, server_url: str, cluster_id: str, token: str) -> StoredCredentials:
    """POST the token to the server once; return the credentials it gives (the password exists only here)."""
    import httpx

    url = server_url.rstrip("/") + ENROL_PATH
    try:
        response = http.post(url, json={"cluster_id": cluster_id, "token": token})
    except httpx.HTTPError as exc:
        raise EnrolmentError(f"cannot reach {url}: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 201:
        detail = body.get("detail") if isinstance(body, dict) else None
        raise EnrolmentError(
            f"the server refused the enrolment ({response.status_code}): {detail or response.text[:300]}"
        )
    try:
        if body["cluster_id"] != cluster_id:
            raise EnrolmentError(f"the server enrolled {body['cluster_id']!r} instead of {cluster_id!r}")
        return StoredCredentials(
            cluster_id=cluster_id,
            username=str(body["username"]),
            password=str(body["password"]),
            server=server_url,
            enrolled_at=datetime.now(UTC).isoformat(timespec="seconds"),
            trusted_keys=" ".join(str(k) for k in body.get("trusted_keys", [])),
        )
    except (KeyError, TypeError):
        raise EnrolmentError("the server's answer has no MQTT username and password") from None
