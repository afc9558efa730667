"""When to alert, in Vietnamese, without storms. Pure: the caller feeds presence changes and the time.

Alerts:
- ``cluster_offline``: a cluster stays offline past ``offline_after_s``; ``cluster_recovered`` when an
  alerted cluster comes back. Several clusters due at once go out as one message.
- ``commune_low``: a commune's share of clusters online stays below ``commune_min_online_share`` for
  ``offline_after_s``; ``commune_recovered`` when it is back at or above the share.
- ``mass_offline``: many clusters drop within ``storm_window_s`` (a broker restart, a district power cut):
  one grouped alert, then per-cluster and per-commune alerts are held until it settles: no new drop for
  ``settle_s`` and fewer of those clusters still offline than the storm threshold. ``mass_recovered``
  then says how many came back; the few still offline are alerted one by one as usual.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from broadcast_server.domain.admin_tree import name_sort_key
from broadcast_server.statistics.periods import local_text

GROUP_ABOVE = 3  # more cluster alerts than this due at once are sent as one message


@dataclass(frozen=True)
class AlertPolicy:
    offline_after_s: float = 900.0
    commune_min_online_share: float = 0.7
    storm_window_s: float = 120.0
    storm_min_clusters: int = 10
    storm_min_fraction: float = 0.2
    settle_s: float = 300.0


@dataclass(frozen=True)
class Alert:
    kind: str  # cluster_offline, cluster_recovered, commune_low, commune_recovered, mass_offline, mass_recovered
    at: datetime
    message: str  # Vietnamese, for people
    cluster_ids: tuple[str, ...] = ()
    commune: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON body."""
        return {
            "kind": self.kind,
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "message": self.message,
            "cluster_ids": list(self.cluster_ids),
            "commune": self.commune,
            **self.details,
        }


def _minutes(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} phút"
    hours, rest = divmod(minutes, 60)
    return f"{hours} giờ {rest} phút" if rest else f"{hours} giờ"


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%"


@dataclass
class _Storm:
    started_at: datetime
    last_drop_at: datetime
    clusters: set[str]


class AlertEngine:
    """The alerting state of the fleet; call ``on_change`` for each presence change, ``due`` on time."""

    def __init__(
        self,
        policy: AlertPolicy,
        communes: Mapping[str, str],
        *,
        online: Iterable[str] = (),
        offline_since: Mapping[str, datetime] | None = None,
        now: datetime,
    ) -> None:
        self.policy = policy
        self.communes: dict[str, str] = dict(communes)  # cluster id -> commune name
        self.members: dict[str, set[str]] = {}
        for cluster_id, commune in self.communes.items():
            self.members.setdefault(commune, set()).add(cluster_id)
        self.online: set[str] = set(online)
        self.offline_since: dict[str, datetime] = {}
        self.pending: dict[str, datetime] = {}  # offline, not alerted yet: alert due at
        self.alerted: set[str] = set()
        self.low_since: dict[str, datetime] = {}
        self.alerted_communes: set[str] = set()
        self.storm: _Storm | None = None
        self._recent: deque[tuple[datetime, str]] = deque()
        delay = timedelta(seconds=policy.offline_after_s)
        for cluster_id in self.communes:
            if cluster_id in self.online:
                continue
            since = (offline_since or {}).get(cluster_id)
            if since is not None and since + delay > now:
                self.offline_since[cluster_id] = since
                self.pending[cluster_id] = since + delay  # went offline recently: alert when due
            else:
                # Offline since before we started (or never connected): not news, no alert now.
                self.offline_since[cluster_id] = since or now
        for commune in set(self.communes.values()):
            if self._share(commune) < policy.commune_min_online_share:
                self.alerted_communes.add(commune)  # already low when we started: alert on recovery only

    # ------------------------------------------------------------------ inputs

    def add_cluster(self, cluster_id: str, commune: str, now: datetime) -> None:
        """A cluster imported while running: offline (not news) until it connects."""
        if cluster_id not in self.communes:
            self.communes[cluster_id] = commune
            self.members.setdefault(commune, set()).add(cluster_id)
            self.offline_since[cluster_id] = now

    def on_change(self, cluster_id: str, online: bool, at: datetime) -> list[Alert]:
        if cluster_id not in self.communes:
            return []
        alerts: list[Alert] = []
        commune = self.communes[cluster_id]
        if online:
            if cluster_id in self.online:
                return []
            self.online.add(cluster_id)
            since = self.offline_since.pop(cluster_id, None)
            self.pending.pop(cluster_id, None)
            if cluster_id in self.alerted:
                self.alerted.discard(cluster_id)
                if self.storm is None:
                    alerts.append(self._recovered(cluster_id, since, at))
        else:
            if cluster_id not in self.online and cluster_id in self.offline_since:
                return []
            self.online.discard(cluster_id)
            self.offline_since[cluster_id] = at
            self.pending[cluster_id] = at + timedelta(seconds=self.policy.offline_after_s)
            alerts.extend(self._note_drop(cluster_id, at))
        alerts.extend(self._check_commune(commune, at))
        return alerts

    def due(self, now: datetime) -> list[Alert]:
        """Alerts whose time has come."""
        alerts: list[Alert] = []
        if self.storm is not None:
            alerts.extend(self._maybe_end_storm(now))
            if self.storm is not None:
                return alerts
        ready = sorted((c for c, when in self.pending.items() if when <= now), key=lambda c: self.offline_since[c])
        for cluster_id in ready:
            del self.pending[cluster_id]
            self.alerted.add(cluster_id)
        if len(ready) > GROUP_ABOVE:
            alerts.append(self._offline_group(ready, now))
        else:
            alerts.extend(self._offline_one(c, now) for c in ready)
        delay = timedelta(seconds=self.policy.offline_after_s)
        for commune, since in sorted(self.low_since.items(), key=lambda kv: name_sort_key(kv[0])):
            if commune not in self.alerted_communes and since + delay <= now:
                self.alerted_communes.add(commune)
                alerts.append(self._commune_low(commune, now))
        return alerts

    def next_wakeup(self) -> datetime | None:
        """When ``due`` may have something next (None: nothing pending)."""
        if self.storm is not None:
            return self.storm.last_drop_at + timedelta(seconds=self.policy.settle_s)
        times = list(self.pending.values())
        delay = timedelta(seconds=self.policy.offline_after_s)
        times += [since + delay for c, since in self.low_since.items() if c not in self.alerted_communes]
        return min(times) if times else None

    # ------------------------------------------------------------------ storms

    def _storm_threshold(self) -> int:
        fleet = max(1, len(self.communes))
        return max(self.policy.storm_min_clusters, math.ceil(self.policy.storm_min_fraction * fleet))

    def _note_drop(self, cluster_id: str, at: datetime) -> list[Alert]:
        window = timedelta(seconds=self.policy.storm_window_s)
        self._recent.append((at, cluster_id))
        while self._recent and self._recent[0][0] < at - window:
            self._recent.popleft()
        if self.storm is not None:
            self.storm.clusters.add(cluster_id)
            self.storm.last_drop_at = max(self.storm.last_drop_at, at)
            return []
        dropped = {c for _, c in self._recent if c not in self.online}
        if len(dropped) < self._storm_threshold():
            return []
        self.storm = _Storm(started_at=min(t for t, _ in self._recent), last_drop_at=at, clusters=dropped)
        communes = sorted({self.communes[c] for c in dropped}, key=name_sort_key)
        return [
            Alert(
                kind="mass_offline",
                at=at,
                message=(
                    f"Cảnh báo: {len(dropped)} cụm loa mất kết nối gần như cùng lúc (trong "
                    f"{self.policy.storm_window_s:.0f} giây, đến {local_text(at)}) tại {len(communes)} xã. "
                    "Có thể do máy chủ MQTT, mạng hoặc mất điện diện rộng. Tạm dừng cảnh báo từng cụm loa "
                    "cho đến khi kết nối ổn định lại."
                ),
                cluster_ids=tuple(sorted(dropped)),
                details={"communes": communes, "count": len(dropped)},
            )
        ]

    def _maybe_end_storm(self, now: datetime) -> list[Alert]:
        storm = self.storm
        assert storm is not None
        still = sorted(c for c in storm.clusters if c not in self.online)
        quiet = now - storm.last_drop_at >= timedelta(seconds=self.policy.settle_s)
        if not quiet or len(still) >= self._storm_threshold():
            return []
        self.storm = None
        self._recent.clear()
        for cluster_id in still:  # the few left get their own alerts, no earlier than now
            if cluster_id in self.pending:
                self.pending[cluster_id] = max(self.pending[cluster_id], now)
        recovered = len(storm.clusters) - len(still)
        return [
            Alert(
                kind="mass_recovered",
                at=now,
                message=(
                    f"Kết nối đã ổn định lại lúc {local_text(now)}: {recovered}/{len(storm.clusters)} cụm loa "
                    f"đã kết nối lại, {len(still)} cụm loa vẫn mất kết nối."
                ),
                cluster_ids=tuple(still),
                details={"recovered": recovered, "still_offline": len(still)},
            )
        ]

    # ------------------------------------------------------------------ communes

    def _share(self, commune: str) -> float:
        online, total = self._counts(commune)
        return online / total if total else 1.0

    def _counts(self, commune: str) -> tuple[int, int]:
        members = self.members.get(commune, set())
        return len(members & self.online), len(members)

    def _check_commune(self, commune: str, at: datetime) -> list[Alert]:
        online, total = self._counts(commune)
        share = online / total if total else 1.0
        if share < self.policy.commune_min_online_share:
            self.low_since.setdefault(commune, at)
            return []
        self.low_since.pop(commune, None)
        if commune in self.alerted_communes:
            self.alerted_communes.discard(commune)
            if self.storm is None:
                return [
                    Alert(
                        kind="commune_recovered",
                        at=at,
                        message=(
                            f"{commune}: đã trở lại {online}/{total} cụm loa trực tuyến ({_percent(share)}) "
                            f"lúc {local_text(at)}."
                        ),
                        commune=commune,
                        details={"online": online, "clusters": total},
                    )
                ]
        return []

    def _commune_low(self, commune: str, now: datetime) -> Alert:
        online, total = self._counts(commune)
        share = online / total if total else 1.0
        return Alert(
            kind="commune_low",
            at=now,
            message=(
                f"{commune}: chỉ còn {online}/{total} cụm loa trực tuyến ({_percent(share)}), dưới ngưỡng "
                f"{_percent(self.policy.commune_min_online_share)} từ {local_text(self.low_since[commune])}."
            ),
            commune=commune,
            details={"online": online, "clusters": total},
        )

    # ------------------------------------------------------------------ clusters

    def _offline_one(self, cluster_id: str, now: datetime) -> Alert:
        since = self.offline_since[cluster_id]
        commune = self.communes[cluster_id]
        return Alert(
            kind="cluster_offline",
            at=now,
            message=(
                f"Cụm loa {cluster_id} ({commune}) mất kết nối từ {local_text(since)}, "
                f"đã {_minutes((now - since).total_seconds())}."
            ),
            cluster_ids=(cluster_id,),
            commune=commune,
        )

    def _offline_group(self, cluster_ids: list[str], now: datetime) -> Alert:
        communes = sorted({self.communes[c] for c in cluster_ids}, key=name_sort_key)
        shown = ", ".join(cluster_ids[:10]) + (f" và {len(cluster_ids) - 10} cụm khác" if len(cluster_ids) > 10 else "")
        return Alert(
            kind="cluster_offline",
            at=now,
            message=(
                f"{len(cluster_ids)} cụm loa mất kết nối quá {_minutes(self.policy.offline_after_s)} "
                f"tại {', '.join(communes)}: {shown}."
            ),
            cluster_ids=tuple(cluster_ids),
            details={"communes": communes, "count": len(cluster_ids)},
        )

    def _recovered(self, cluster_id: str, since: datetime | None, at: datetime) -> Alert:
        commune = self.communes[cluster_id]
        lasted = f" sau {_minutes((at - since).total_seconds())} mất kết nối" if since else ""
        return Alert(
            kind="cluster_recovered",
            at=at,
            message=f"Cụm loa {cluster_id} ({commune}) đã kết nối lại lúc {local_text(at)}{lasted}.",
            cluster_ids=(cluster_id,),
            commune=commune,
        )
