"""Jinja2 for the console: the template folder, Vietnamese filters and the context every page gets."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from broadcast_server.accounts.principal import ROLE_LABELS_VI, Action, Principal
from broadcast_server.reports.numbers import vn_float, vn_int, vn_percent
from broadcast_server.statistics.periods import LOCAL_TZ, local_text

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

STATUS_LABELS_VI = {
    "draft": "Bản nháp",
    "submitted": "Chờ duyệt",
    "approved": "Đã duyệt",
    "returned": "Bị trả lại",
}
PRIORITY_LABELS_VI = {"normal": "Thường", "priority": "Ưu tiên", "emergency": "Khẩn cấp"}
KIND_LABELS_VI = {"text": "Văn bản đọc tự động", "audio": "Tệp ghi âm", "relay": "Tiếp sóng"}
DELIVERY_LABELS_VI = {
    "queued": "Đang chờ gửi",
    "sent": "Đã gửi",
    "played": "Đã phát",
    "failed": "Lỗi",
    "missed": "Lỡ giờ",
    "rejected": "Bị từ chối",
    "stopped": "Bị dừng",
}
# A cluster's own reports: the delivery outcomes plus the answers to device commands.
REPORT_LABELS_VI = {**DELIVERY_LABELS_VI, "pong": "Trả lời kiểm tra", "applied": "Đã áp dụng"}
# Why a cluster went offline or came back (PresenceEvent.cause; None: it never connected).
CAUSE_LABELS_VI = {
    None: "Chưa từng kết nối",
    "heartbeat_timeout": "Không nhận được tín hiệu định kỳ (mất mạng hoặc mất điện)",
    "will": "Mất kết nối đột ngột",
    "clean": "Thiết bị tắt đúng cách",
    "reconnect": "Kết nối lại",
    "status": "Kết nối",
    "heartbeat": "Có tín hiệu trở lại",
}

# What the server did with a CAP alert (cap/policy.py).
CAP_ACTION_LABELS_VI = {
    "air": "Đã phát khẩn cấp",
    "review": "Chờ duyệt",
    "cancel": "Đã dừng lượt phát của cảnh báo trước",
    "record": "Chỉ lưu, không phát",
}
FEED_HEALTH_LABELS_VI = {
    "ok": "Đọc bình thường",
    "entry_failed": "Đọc được, có cảnh báo không lấy được",
    "unreadable": "Không đọc được",
    "stale": "Lâu không được đọc",
    "never_read": "Chưa đọc lần nào",
}
FEED_PROBLEM_LABELS_VI = {
    "feed_unreadable": "Không đọc được nguồn",
    "alert_not_fetched": "Không lấy được một cảnh báo (sẽ thử lại)",
    "alert_refused": "Một mục không phải cảnh báo CAP dùng được (bỏ qua)",
    "host_not_allowed": "Một mục trỏ tới máy chủ không được phép (bỏ qua)",
}

# The navigation: (path, label, action needed to see it).
NAV: tuple[tuple[str, str, Action], ...] = (
    ("/", "Trang chủ", Action.VIEW),
    ("/bulletins", "Bản tin", Action.VIEW),
    ("/review", "Duyệt tin", Action.APPROVE_BULLETIN),
    ("/schedule", "Lịch phát", Action.VIEW),
    ("/fleet", "Cụm loa", Action.VIEW),
    ("/history", "Lịch sử phát", Action.VIEW),
    ("/reports", "Báo cáo", Action.VIEW),
    ("/emergency", "Phát khẩn cấp", Action.EMERGENCY),
    ("/audit", "Nhật ký", Action.VIEW),
)


def local_time(at: datetime | None, with_seconds: bool = False) -> str:
    return local_text(at, with_seconds)


def local_clock(at: datetime | None) -> str:
    return "—" if at is None else at.astimezone(LOCAL_TZ).strftime("%H:%M")


def duration_text(seconds: float | None) -> str:
    """'1 phút 05 giây' for people; '—' when unknown."""
    if seconds is None:
        return "—"
    total = round(seconds)
    minutes, secs = divmod(total, 60)
    return f"{minutes} phút {secs:02d} giây" if minutes else f"{secs} giây"


TEMPLATES.env.filters.update(
    local_time=local_time,
    local_clock=local_clock,
    duration=duration_text,
    vn_int=vn_int,
    vn_float=vn_float,
    vn_percent=vn_percent,
    status_vi=lambda s: STATUS_LABELS_VI.get(s, s),
    priority_vi=lambda s: PRIORITY_LABELS_VI.get(s, s),
    kind_vi=lambda s: KIND_LABELS_VI.get(s, s),
    delivery_vi=lambda s: DELIVERY_LABELS_VI.get(s, s),
    report_vi=lambda s: REPORT_LABELS_VI.get(s, s),
    cause_vi=lambda cause: CAUSE_LABELS_VI.get(cause, cause),
    cap_action_vi=lambda a: CAP_ACTION_LABELS_VI.get(a, a),
    feed_health_vi=lambda h: FEED_HEALTH_LABELS_VI.get(h, h),
    feed_problem_vi=lambda p: FEED_PROBLEM_LABELS_VI.get(p, p),
    role_vi=lambda r: ROLE_LABELS_VI.get(r, r),
)


def page(request: Request, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a console page with the signed-in principal, its navigation and its CSRF token."""
    principal: Principal | None = getattr(request.state, "principal", None)
    nav = [(path, label) for path, label, action in NAV if principal is not None and principal.can(action)]
    csrf = getattr(request.state, "csrf_token", None)
    if csrf is None and principal is not None:
        from broadcast_server.api.auth import csrf_token

        csrf = csrf_token(request)
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {"principal": principal, "nav": nav, "csrf": csrf or "", "Action": Action, **context},
        status_code=status_code,
    )
