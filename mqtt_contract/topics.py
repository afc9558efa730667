"""Topic names of contract v1: ``{root}/v1/clusters/{cluster_id}/{channel}``, read like paths."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

CLUSTER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Channel(StrEnum):
    """The four channels of a cluster; the direction and delivery of each are fixed by the contract."""

    COMMAND = "command"  # server -> agent
    STATUS = "status"  # agent -> server, retained, last will
    HEARTBEAT = "heartbeat"  # agent -> server
    REPORT = "report"  # agent -> server


QOS: dict[Channel, int] = {
    Channel.COMMAND: 1,
    Channel.STATUS: 1,
    Channel.HEARTBEAT: 0,
    Channel.REPORT: 1,
}
RETAINED: dict[Channel, bool] = {
    Channel.COMMAND: False,
    Channel.STATUS: True,
    Channel.HEARTBEAT: False,
    Channel.REPORT: False,
}


class InvalidTopic(ValueError):
    """A topic or cluster id that contract v1 does not allow."""


@dataclass(frozen=True)
class Topics:
    """Builds and parses topic names under one root (default ``bcast``), so a broker can host several."""

    root: str = "bcast"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", self.root):
            raise InvalidTopic(f"invalid topic root {self.root!r}")

    @property
    def prefix(self) -> str:
        return f"{self.root}/v1/clusters"

    def for_cluster(self, cluster_id: str, channel: Channel) -> str:
        if not CLUSTER_ID_PATTERN.match(cluster_id):
            raise InvalidTopic(f"invalid cluster id {cluster_id!r}")
        return f"{self.prefix}/{cluster_id}/{channel.value}"

    def wildcard(self, channel: Channel) -> str:
        """Subscription filter for one channel of every cluster."""
        return f"{self.prefix}/+/{channel.value}"

    def parse(self, topic: str) -> tuple[str, Channel]:
        """Split a topic into (cluster_id, channel); raises InvalidTopic for anything else."""
        head = self.prefix + "/"
        if not topic.startswith(head):
            raise InvalidTopic(f"topic {topic!r} is outside {head}")
        parts = topic[len(head) :].split("/")
        if len(parts) != 2 or not CLUSTER_ID_PATTERN.match(parts[0]):
            raise InvalidTopic(f"topic {topic!r} is not {head}<cluster_id>/<channel>")
        try:
            return parts[0], Channel(parts[1])
        except ValueError:
            raise InvalidTopic(f"unknown channel {parts[1]!r} in topic {topic!r}") from None
