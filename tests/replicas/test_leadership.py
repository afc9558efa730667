"""One leader at a time among replicas on PostgreSQL; the lead passes on when the leader goes."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from broadcast_server.db.engine import make_engine
from broadcast_server.replicas.leadership import Leadership


def test_sqlite_is_a_single_server_and_always_leads(engine, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("the PostgreSQL case is below")
    assert Leadership(engine).check() and Leadership(engine).check()


@pytest.mark.postgres
def test_one_leader_and_the_lead_passes_on_release_and_on_a_lost_session(engine, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("advisory locks are PostgreSQL's")
    other_engine = make_engine(database_url)
    first, second = Leadership(engine, name="a"), Leadership(other_engine, name="b")
    try:
        assert first.check() and not second.check()
        assert first.check() and not second.check()  # holding is stable, asking again changes nothing
        first.release()
        assert second.check() and not first.check()
        # The leader's database session dies (a crash, a network cut): the lock goes with it.
        with engine.connect() as admin:
            pid = admin.execute(
                text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted LIMIT 1")
            ).scalar()
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert not second.check()  # it notices it no longer leads
        assert first.check()  # and another replica takes over
    finally:
        first.release()
        second.release()
        other_engine.dispose()
