"""Play an approved bulletin now on units in scope: the dispatch service (it audits), commands sent afterwards."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import BackgroundTasks
from sqlmodel import Session

from broadcast_server.accounts.principal import NotPermitted, Principal
from broadcast_server.accounts.scope import OutOfScope
from broadcast_server.console.access import FormProblem, PageForbidden
from broadcast_server.domain.targeting import UnknownTarget
from broadcast_server.models import Broadcast
from broadcast_server.runtime import Runtime
from broadcast_server.services.dispatch import (
    MAX_START_AHEAD_S,
    START_PAST_TOLERANCE_S,
    DispatchError,
    Repeat,
    Target,
    create_broadcast,
    send_broadcast,
)
from broadcast_server.statistics.periods import LOCAL_TZ


def play_now(
    session: Session,
    runtime: Runtime,
    background: BackgroundTasks,
    principal: Principal,
    bulletin_id: str,
    unit_ids: tuple[int, ...],
    *,
    ip: str | None,
    repeat: Repeat = Repeat(),
    volume: int | None = None,
    start_at: datetime | None = None,
) -> tuple[Broadcast, int]:
    """Store the broadcast and its deliveries (committed before the page answers); return it and its size.

    With `start_at` the clusters get the command now and start it then."""
    if runtime.bus is None:
        raise FormProblem("Máy chủ chưa kết nối được tới máy chủ MQTT, chưa thể phát. Hãy thử lại sau ít phút.")
    if not unit_ids:
        raise FormProblem("Hãy chọn ít nhất một xã để phát.")
    try:
        broadcast, deliveries = create_broadcast(
            session,
            bulletin_id,
            Target(unit_ids, ()),
            ttl_s=runtime.settings.command_ttl_s,
            now=runtime.clock.now(),
            principal=principal,
            ip=ip,
            repeat=repeat,
            volume=volume,
            start_at=start_at,
        )
    except (NotPermitted, OutOfScope) as exc:
        raise PageForbidden("Bạn không được phát bản tin này tới địa bàn đã chọn.") from exc
    except (DispatchError, UnknownTarget) as exc:
        raise FormProblem(f"Không phát được: {exc}") from None
    session.commit()
    background.add_task(send_broadcast, runtime.engine, runtime.bus, broadcast.id, runtime.settings.public_url)
    return broadcast, len(deliveries)


def start_from_form(start_local: str, now: datetime) -> datetime | None:
    """The start typed in the form (local time, 'YYYY-MM-DDTHH:MM'), or None for at once; FormProblem if unusable."""
    if not start_local.strip():
        return None
    try:
        start = datetime.fromisoformat(start_local.strip()).replace(tzinfo=LOCAL_TZ)
    except ValueError:
        raise FormProblem("Giờ bắt đầu không đúng dạng ngày giờ.") from None
    if start < now - timedelta(seconds=START_PAST_TOLERANCE_S):
        raise FormProblem(f"Giờ bắt đầu {start:%H:%M %d/%m/%Y} đã qua: hãy để trống để phát ngay, hoặc chọn giờ sau.")
    if start > now + timedelta(seconds=MAX_START_AHEAD_S):
        raise FormProblem("Chỉ đặt giờ trước tối đa 7 ngày; xa hơn thì hãy lên lịch phát.")
    return start
