"""Cụm loa: the fleet as a map and a list, offline clusters first with since when and why, then those that
need a technician for another reason (amplifier fault, no server key, clock off, flapping)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import select

from broadcast_server.accounts.scope import visible_unit_ids
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.console.access import ConsolePrincipal
from broadcast_server.console.fleet_map import MapPoint, commune_colours, fleet_map_svg
from broadcast_server.console.templating import local_time, page
from broadcast_server.health.config import get_health_settings
from broadcast_server.health.fleet_view import ClusterNote, fleet_status
from broadcast_server.models import Cluster, ClusterState
from broadcast_server.reports.numbers import vn_float

router = APIRouter()


@router.get("/fleet")
def fleet(request: Request, session: SessionDep, runtime: RuntimeDep, principal: ConsolePrincipal) -> Response:
    now = runtime.clock.now()
    status = fleet_status(session, now, clock_offset_threshold_s=get_health_settings().clock_offset_threshold_s)
    visible = visible_unit_ids(session, principal)
    communes = [c for c in status.communes if visible is None or c.unit_id in visible]
    member_of = {}
    from broadcast_server.statistics.grouping import cluster_reporting_units

    unit_of, _ = cluster_reporting_units(session)
    names = {c.unit_id: c.name for c in communes}
    for cluster_id, unit_id in unit_of.items():
        if unit_id in names:
            member_of[cluster_id] = names[unit_id]
    rows = session.exec(
        select(Cluster.id, Cluster.lat, Cluster.lon, ClusterState.online).join(ClusterState, isouter=True)
    )  # type: ignore[arg-type]
    points = [
        MapPoint(cluster_id, lat, lon, member_of[cluster_id], bool(online))
        for cluster_id, lat, lon, online in rows
        if cluster_id in member_of
    ]
    colours = commune_colours([c.name for c in communes])
    offline = [(c.name, o) for c in communes for o in c.offline]
    # Online or not, clusters that need a technician for another reason; only those of the user's communes.
    threshold = status.clock_offset_threshold_s

    def seen(n: ClusterNote) -> str:
        return ("Trực tuyến" if n.online else "Mất kết nối") + (f" · từ {local_time(n.at)}" if n.at else "")

    def offset(n: ClusterNote) -> str:
        value = float(n.value or 0)
        return f"Lệch {'+' if value > 0 else ''}{vn_float(value)} giây (ngưỡng {vn_float(threshold)})"

    attention = [
        (label, [(n, detail(n)) for n in found if n.cluster_id in member_of])
        for label, found, detail in (
            ("Ampli báo hỏng", status.faulty_amplifiers, seen),
            ("Ampli đang tắt theo lệnh kỹ thuật viên: không phát, kể cả tin khẩn cấp", status.amplifiers_off, seen),
            ("Từ chối mọi lệnh: bộ thu chưa có khóa của máy chủ (chưa đăng ký)", status.refusing_commands, seen),
            ("Đồng hồ lệch", status.clock_off, offset),
            ("Chập chờn", status.flapping, lambda n: f"Mất kết nối {n.value} lần trong 7 ngày"),
        )
    ]
    offline.sort(key=lambda pair: (pair[1].since is None, pair[1].since or now))
    return page(
        request,
        "fleet.html",
        title="Cụm loa",
        map_svg=fleet_map_svg(points, colours, tile_url=runtime.settings.map_tile_url),
        colours=colours,
        communes=communes,
        offline=offline,
        attention=[(label, notes) for label, notes in attention if notes],
        total=sum(c.clusters for c in communes),
        online=sum(c.online for c in communes),
        now=now,
    )
