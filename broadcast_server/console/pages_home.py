"""Trang chủ: what needs attention now (bulletins waiting, clusters offline, CAP feeds failing, the next airings)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import select

from broadcast_server.accounts.principal import Action
from broadcast_server.accounts.scope import visible_cluster_ids
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.cap.feed_state import FeedHealth, configured_feed_views
from broadcast_server.console.access import ConsolePrincipal
from broadcast_server.console.bulletin_queries import count_in_scope
from broadcast_server.console.templating import page
from broadcast_server.console.upcoming import airings
from broadcast_server.models import Cluster, ClusterState

router = APIRouter()
NEXT_AIRINGS = 8


@router.get("/")
def home(request: Request, session: SessionDep, runtime: RuntimeDep, principal: ConsolePrincipal) -> Response:
    now = runtime.clock.now()
    clusters = visible_cluster_ids(session, principal)
    rows = session.exec(select(Cluster.id, ClusterState.online).join(ClusterState, isouter=True)).all()  # type: ignore[arg-type]
    rows = [(c, online) for c, online in rows if clusters is None or c in clusters]
    offline = sum(1 for _, online in rows if not online)
    waiting = count_in_scope(session, principal, ["submitted"]) if principal.can(Action.APPROVE_BULLETIN) else None
    mine = count_in_scope(session, principal, ["draft", "returned"]) if principal.can(Action.DRAFT_BULLETIN) else None
    feeds = configured_feed_views(session, runtime.settings, now) if principal.can(Action.EMERGENCY) else []
    upcoming = airings(session, runtime.settings.public_url, now, now + timedelta(hours=24), clusters)
    return page(
        request,
        "home.html",
        title="Trang chủ",
        waiting=waiting,
        mine=mine,
        clusters_total=len(rows),
        offline=offline,
        feeds_total=len(feeds),
        feeds_failing=sum(1 for f in feeds if f.health not in (FeedHealth.OK, FeedHealth.NEVER_READ)),
        upcoming=upcoming[:NEXT_AIRINGS],
        now=now,
    )
