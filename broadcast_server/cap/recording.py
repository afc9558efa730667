"""The bytes of an alert's recording: embedded in the alert, or fetched from a host the district trusts.

A posted alert names any URL it likes, so the server fetches only from the hosts listed in
`BCAST_CAP_RESOURCE_HOSTS` (the agency's file servers): never its own network's other machines on an
alert's say-so. What arrives is checked against the alert's `size` and SHA-1 `digest` when it gives them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from broadcast_server.cap.alert import Resource
from broadcast_server.cap.bounded_get import FetchFailed, get_bounded


class RecordingUnusable(Exception):
    """The recording cannot be had or does not match what the alert says of it; the text is spoken instead."""


@dataclass(frozen=True)
class RecordingSource:
    """Where recordings may come from, and how much of one is read."""

    allowed_hosts: frozenset[str] = frozenset()  # lower-case host names; empty: links are never followed
    max_bytes: int = 50 * 1024 * 1024
    timeout_s: float = 10.0

    @classmethod
    def from_setting(cls, hosts: str, *, max_bytes: int) -> RecordingSource:
        """From `BCAST_CAP_RESOURCE_HOSTS`: host names separated by commas or spaces."""
        return cls(frozenset(h.lower() for h in hosts.replace(",", " ").split()), max_bytes)


def recording_bytes(resource: Resource, source: RecordingSource) -> bytes:
    """The recording's bytes, checked; raises RecordingUnusable with the reason in English."""
    data = resource.content if resource.content is not None else _fetch(resource.uri, source)
    if not data:
        raise RecordingUnusable("the recording is empty")
    if len(data) > source.max_bytes:
        raise RecordingUnusable(f"the recording has {len(data)} bytes, more than {source.max_bytes}")
    if resource.size is not None and resource.size != len(data):
        raise RecordingUnusable(f"the recording has {len(data)} bytes, the alert says {resource.size}")
    if resource.digest and hashlib.sha1(data).hexdigest() != resource.digest:  # noqa: S324 - CAP 1.2's digest
        raise RecordingUnusable("the recording does not match the alert's SHA-1 digest")
    return data


def _fetch(uri: str, source: RecordingSource) -> bytes:
    parts = urlsplit(uri)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        raise RecordingUnusable(f"{uri!r} is not an http or https address")
    if host not in source.allowed_hosts:
        raise RecordingUnusable(f"host {host!r} is not in BCAST_CAP_RESOURCE_HOSTS")
    try:
        with httpx.Client(timeout=source.timeout_s, follow_redirects=False) as client:
            return get_bounded(client, uri, source.max_bytes)
    except FetchFailed as exc:
        raise RecordingUnusable(str(exc)) from None
