"""GET a file from outside for CAP (a feed, an alert, a recording): no more than a limit, one clear error."""

from __future__ import annotations

import httpx


class FetchFailed(Exception):
    """The file was not had: another status than 200, too many bytes, or the network; the message says which."""


def get_bounded(client: httpx.Client, url: str, limit: int) -> bytes:
    """The body of a 200 answer to GET `url`, read no further than `limit` bytes (redirects: as the client)."""
    try:
        with client.stream("GET", url) as answer:
            if answer.status_code != 200:
                raise FetchFailed(f"{url} answered HTTP {answer.status_code}")
            data = bytearray()
            for chunk in answer.iter_bytes():
                data += chunk
                if len(data) > limit:
                    raise FetchFailed(f"{url} sent more than {limit} bytes")
            return bytes(data)
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{url} could not be fetched: {exc}") from None
