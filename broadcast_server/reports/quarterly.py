"""The quarterly report's content: the statistics code's figures for one quarter, and where they apply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlmodel import Session

from broadcast_server.domain.admin_tree import DISTRICT, PROVINCE
from broadcast_server.statistics.figures import NO_CATEGORY, CommuneFigures, total_figures
from broadcast_server.statistics.grouping import cluster_reporting_units
from broadcast_server.statistics.periods import Quarter, local_day
from broadcast_server.statistics.queries import commune_figures, online_share_by_day

NO_CATEGORY_LABEL = "Chưa phân loại"


@dataclass(frozen=True)
class QuarterlyReport:
    quarter: Quarter
    area: str  # e.g. "huyện Hớn Quản, tỉnh Bình Phước"
    issuer: str  # e.g. "UBND HUYỆN HỚN QUẢN"
    generated_at: datetime
    communes: list[CommuneFigures]
    total: CommuneFigures
    categories: list[str]  # as stored ('' for none), most played first
    online: list[tuple[date, float | None]]  # share of clusters online per local day

    @property
    def online_average(self) -> float | None:
        values = [v for _, v in self.online if v is not None]
        return sum(values) / len(values) if values else None

    @staticmethod
    def category_label(category: str) -> str:
        return category or NO_CATEGORY_LABEL

    @property
    def file_stem(self) -> str:
        return f"bao-cao-truyen-thanh-{self.quarter.code}"


def _area(session: Session) -> tuple[str, str]:
    unit_of, units = cluster_reporting_units(session)
    districts, provinces = set(), set()
    for unit_id in set(unit_of.values()):
        current = units.get(unit_id)
        while current is not None:
            if current.level == DISTRICT:
                districts.add(current.name)
            if current.level == PROVINCE:
                provinces.add(current.name)
            current = units.get(current.parent_id) if current.parent_id is not None else None
    province = f"tỉnh {next(iter(provinces))}" if len(provinces) == 1 else ""
    if len(districts) == 1:
        district = next(iter(districts))
        return ", ".join(filter(None, (f"huyện {district}", province))), f"UBND HUYỆN {district.upper()}"
    if province:
        return province, f"UBND {province.upper()}"
    return "toàn hệ thống", "HỆ THỐNG TRUYỀN THANH CƠ SỞ"


def build_quarterly(session: Session, quarter: Quarter, now: datetime | None = None) -> QuarterlyReport:
    """Refresh the rollups and gather the quarter's figures (in the caller's transaction)."""
    now = now or datetime.now(UTC)
    communes = commune_figures(session, quarter.start, quarter.end)
    total = total_figures(communes)
    categories = sorted(total.categories, key=lambda c: (c == NO_CATEGORY, -total.categories[c], c))
    end = min(quarter.end, local_day(now).fromordinal(local_day(now).toordinal() + 1))
    online = online_share_by_day(session, quarter.start, max(end, quarter.start), now=now)
    area, issuer = _area(session)
    return QuarterlyReport(
        quarter=quarter,
        area=area,
        issuer=issuer,
        generated_at=now,
        communes=communes,
        total=total,
        categories=categories,
        online=online,
    )
