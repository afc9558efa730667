"""Raw heartbeats past their retention are deleted by the leader, and nothing newer ever is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from broadcast_server.health.retention import HeartbeatPruner, prune_heartbeats
from broadcast_server.models import Heartbeat
from broadcast_server.settings import get_settings

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
TABLE = Heartbeat.__table__


def _store(engine, received: list[datetime]) -> None:
    """One heartbeat per time, ids in list order."""
    with engine.begin() as connection:
        for i, at in enumerate(received):
            connection.execute(
                TABLE.insert().values(cluster_id=f"c-{i % 7}", sent_at=at, received_at=at, seq=1, uptime_s=float(i))
            )


def _remaining(engine) -> list[datetime]:
    with engine.connect() as connection:
        return list(connection.execute(select(TABLE.c.received_at).order_by(TABLE.c.id)).scalars())


def test_rows_before_the_cutoff_go_in_batches_and_newer_ones_stay(engine) -> None:
    hourly = [NOW - timedelta(days=40) + timedelta(hours=h) for h in range(24 * 20)]  # days 40 to 20 ago
    late_old = NOW - timedelta(days=35)  # stored after newer rows (a replica's late batch)
    _store(engine, hourly + [late_old, NOW - timedelta(minutes=1)])
    cutoff = NOW - timedelta(days=30)

    deleted = prune_heartbeats(engine, cutoff, batch=7)  # many small transactions

    older = [at for at in hourly if at < cutoff]
    assert deleted == len(older) == 240
    remaining = _remaining(engine)
    assert remaining == [at for at in hourly if at >= cutoff] + [late_old, NOW - timedelta(minutes=1)]
    assert prune_heartbeats(engine, cutoff) == 0  # the late old row sits after the boundary: kept for now
    assert prune_heartbeats(engine, NOW - timedelta(minutes=5)) == len(remaining) - 1  # a later run takes it


def test_everything_older_goes_when_no_row_is_newer(engine) -> None:
    _store(engine, [NOW - timedelta(days=60 - d) for d in range(10)])
    assert prune_heartbeats(engine, NOW, batch=3) == 10
    assert _remaining(engine) == []
    assert prune_heartbeats(engine, NOW) == 0  # an empty table


def test_only_the_leader_prunes_and_none_keeps_everything(engine) -> None:
    _store(engine, [NOW - timedelta(days=90), NOW - timedelta(days=1)])
    leading = False
    pruner = HeartbeatPruner(engine, lambda: NOW, lambda: leading, keep=timedelta(days=30))
    assert pruner.run_once() == 0 and len(_remaining(engine)) == 2
    assert HeartbeatPruner(engine, lambda: NOW, lambda: True, keep=None).run_once() == 0
    leading = True
    assert pruner.run_once() == 1
    assert _remaining(engine) == [NOW - timedelta(days=1)]
    assert pruner.deleted == 1


def test_retention_setting_defaults_to_30_days_and_refuses_negative(monkeypatch) -> None:
    assert get_settings().heartbeat_retention_days == 30
    monkeypatch.setenv("BCAST_HEARTBEAT_RETENTION_DAYS", "0")
    assert get_settings().heartbeat_retention_days == 0
    monkeypatch.setenv("BCAST_HEARTBEAT_RETENTION_DAYS", "-1")
    with pytest.raises(ValidationError):
        get_settings()
