"""Nhật ký: the audit log of the user's area, newest first, read-only (there is no edit or delete anywhere)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response

from broadcast_server.api.deps import SessionDep
from broadcast_server.audit.log import entries
from broadcast_server.console.access import ConsolePrincipal
from broadcast_server.console.templating import page

router = APIRouter()
PAGE_SIZE = 50
ACTION_LABELS_VI = {
    "login.success": "Đăng nhập",
    "login.failure": "Đăng nhập sai",
    "login.throttled": "Bị chặn đăng nhập tạm thời",
    "logout": "Đăng xuất",
    "bulletin.create": "Tạo bản tin",
    "bulletin.edit": "Sửa bản tin",
    "bulletin.submit": "Gửi duyệt bản tin",
    "bulletin.approve": "Duyệt bản tin",
    "bulletin.return": "Trả lại bản tin",
    "bulletin.emergency_skip_queue": "Tin khẩn cấp không qua duyệt",
    "broadcast.create": "Phát bản tin",
    "schedule.create": "Lên lịch phát",
    "schedule.apply": "Áp dụng tệp lịch",
    "device.command": "Lệnh tới thiết bị",
    "user.create": "Tạo tài khoản",
    "token.issue": "Cấp mã API",
    "token.revoke": "Thu hồi mã API",
}


def detail_text(detail: dict | None) -> str:
    if not detail:
        return ""
    return json.dumps(detail, ensure_ascii=False)[:300]


@router.get("/audit")
def audit_log(
    request: Request, session: SessionDep, principal: ConsolePrincipal, before: int | None = None, action: str = ""
) -> Response:
    rows = entries(session, principal, limit=PAGE_SIZE + 1, before_id=before, action=action or None)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return page(
        request,
        "audit.html",
        title="Nhật ký",
        rows=rows,
        next_before=rows[-1].id if more and rows else None,
        action=action,
        labels=ACTION_LABELS_VI,
        detail_text=detail_text,
    )
