"""Một cụm loa: what a technician checks before a visit, and the commands a technician may send to it.

Presence now (since when, why), the box's last heartbeat (firmware, volume, amplifier, clock, disk, link,
last error), its connections of the last days and its recent reports; then volume, stop, ping and
amplifier off/on (`services/device_commands.py`, audited, the same as `POST /api/v1/clusters/{id}/commands`).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, col, select

from broadcast_server.accounts.principal import Action, Principal
from broadcast_server.accounts.scope import OutOfScope, unit_in_scope, unit_label
from broadcast_server.api.auth import client_ip
from broadcast_server.api.deps import RuntimeDep, SessionDep
from broadcast_server.console.access import ConsolePrincipal, PageForbidden, PageNotFound, allowed
from broadcast_server.console.templating import page
from broadcast_server.models import Cluster, ClusterState, Heartbeat, PlaybackReport, PresenceEvent
from broadcast_server.services.device_commands import DeviceCommandError, DeviceCommandType, send_device_command
from mqtt_contract.signing import NO_TRUSTED_KEY

router = APIRouter()

Technician = Annotated[Principal, Depends(allowed(Action.DEVICE_COMMAND))]
RECENT = 20  # connections and reports listed
COMMAND_TTL_S = 300  # a command the box has not received by then is dropped (it reports it expired)
COMMAND_LABELS_VI = {
    "volume": "Đặt âm lượng",
    "stop": "Dừng phát",
    "ping": "Kiểm tra kết nối",
    "amplifier-off": "Tắt ampli",
    "amplifier-on": "Bật ampli",
}
AMPLIFIER_VI = {
    "on": "Đang hoạt động",
    "off": "Đang tắt theo lệnh: không phát, kể cả tin khẩn cấp",
    "fault": "Báo hỏng",
}


def _cluster_in_view(session: Session, principal: Principal, cluster_id: str) -> Cluster:
    cluster = session.get(Cluster, cluster_id)
    if cluster is None:
        raise PageNotFound("Không có cụm loa này.")
    if not unit_in_scope(session, principal, cluster.unit_id):
        raise PageForbidden("Cụm loa này ở ngoài địa bàn của bạn.")
    return cluster


def _page(request: Request, session: Session, principal: Principal, cluster: Cluster, **extra) -> Response:
    state = session.get(ClusterState, cluster.id)
    beat = session.exec(
        select(Heartbeat).where(Heartbeat.cluster_id == cluster.id).order_by(col(Heartbeat.id).desc()).limit(1)
    ).first()
    events = session.exec(
        select(PresenceEvent)
        .where(PresenceEvent.cluster_id == cluster.id)
        .order_by(col(PresenceEvent.at).desc())
        .limit(RECENT)
    ).all()
    reports = session.exec(
        select(PlaybackReport)
        .where(PlaybackReport.cluster_id == cluster.id)
        .order_by(col(PlaybackReport.received_at).desc())
        .limit(RECENT)
    ).all()
    return page(
        request,
        "cluster.html",
        title=f"Cụm loa {cluster.id}",
        cluster=cluster,
        place=unit_label(session, cluster.unit_id),
        state=state,
        beat=beat,
        events=events,
        reports=reports,
        unkeyed=bool(state and state.last_error and NO_TRUSTED_KEY in state.last_error),
        can_command=principal.can(Action.DEVICE_COMMAND),
        amplifier_vi=lambda value: AMPLIFIER_VI.get(value, value or "—"),
        **extra,
    )


@router.get("/fleet/clusters/{cluster_id}")
def cluster_page(
    request: Request,
    cluster_id: str,
    session: SessionDep,
    principal: ConsolePrincipal,
    sent: str | None = None,
    queued: int = 0,
) -> Response:
    cluster = _cluster_in_view(session, principal, cluster_id)
    flash, flash_kind = None, "ok"
    if sent in COMMAND_LABELS_VI and queued:
        flash, flash_kind = (
            f"Lệnh “{COMMAND_LABELS_VI[sent]}” chưa được máy chủ MQTT xác nhận: lệnh chờ gửi, "
            f"hết hạn sau {COMMAND_TTL_S // 60} phút.",
            "bad",
        )
    elif sent in COMMAND_LABELS_VI:
        flash = f"Đã gửi lệnh “{COMMAND_LABELS_VI[sent]}”. Kết quả hiện trong các báo cáo gần đây khi cụm loa trả lời."
    return _page(request, session, principal, cluster, flash=flash, flash_kind=flash_kind)


@router.post("/fleet/clusters/{cluster_id}/command")
def cluster_command(
    request: Request,
    cluster_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Technician,
    kind: Annotated[str, Form()],
    volume: Annotated[str, Form()] = "",
) -> Response:
    cluster = _cluster_in_view(session, principal, cluster_id)

    def refuse(problem: str) -> Response:
        response = _page(request, session, principal, cluster, problem=problem)
        response.status_code = 422
        return response

    if kind not in COMMAND_LABELS_VI:
        return refuse("Lệnh không hợp lệ: chỉ có đặt âm lượng, dừng phát, kiểm tra kết nối, tắt và bật ampli.")
    level = None
    command_type, _, amplifier = kind.partition("-")
    if kind == "volume":
        if not re.fullmatch(r"[0-9]{1,3}", volume.strip()) or not 0 <= int(volume) <= 100:
            return refuse("Âm lượng phải là số nguyên từ 0 đến 100.")
        level = int(volume)
    if runtime.bus is None:
        return refuse("Máy chủ chưa kết nối với máy chủ MQTT: chưa gửi được lệnh.")
    try:
        _, acknowledged = send_device_command(
            session,
            runtime.bus,
            principal,
            cluster.id,
            DeviceCommandType(command_type),
            volume=level,
            amplifier=amplifier or None,
            ttl_s=COMMAND_TTL_S,
            ip=client_ip(request),
        )
    except OutOfScope as exc:
        raise PageForbidden("Cụm loa này ở ngoài địa bàn của bạn.") from exc
    except DeviceCommandError as exc:
        return refuse(f"Không gửi được lệnh: {exc}")
    session.commit()
    queued = "" if acknowledged else "&queued=1"
    return RedirectResponse(f"/fleet/clusters/{cluster.id}?sent={kind}{queued}", status_code=303)
