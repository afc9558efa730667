"""Whether a schedule file stays inside an account's area: what it targets, and which stored rows it changes.

A file names slots, programmes and groups by id; applying it creates or overwrites them. An account limited
to an area (a district, a commune) may apply a file only if every slot and group of the file targets that
area alone, every bulletin its items name belongs to that area, and every stored slot it would change
(same slot id, a programme or a group those slots use) plays in that area alone: a commune cannot
retarget, or change the programme of, the district's slots.
"""

from __future__ import annotations

from sqlmodel import Session, select

from broadcast_server.accounts.principal import Principal
from broadcast_server.accounts.scope import visible_cluster_ids, visible_unit_ids
from broadcast_server.models import Bulletin, Slot
from broadcast_server.scheduling.catalog import target_spec
from broadcast_server.scheduling.problems import Problem
from broadcast_server.scheduling.schedule_file import ScheduleSpec
from broadcast_server.scheduling.slot_reach import SlotReach, TargetIndex


def file_outside_scope(session: Session, principal: Principal, spec: ScheduleSpec) -> list[Problem]:
    """Every place where the file reaches beyond the principal's area (empty: it may be applied)."""
    visible_units = visible_unit_ids(session, principal)
    visible_clusters = visible_cluster_ids(session, principal)
    if visible_units is None or visible_clusters is None:
        return []
    index = TargetIndex.load(session)

    def inside(reach: SlotReach) -> bool:
        return set(reach.unit_ids) <= visible_units and set(reach.cluster_ids) <= visible_clusters

    problems: list[Problem] = []
    for i, slot in enumerate(spec.slots):
        if not inside(index.reach_target(slot.target, spec.groups)):
            problems.append(Problem(f"slots[{i}].target", "phát cả ngoài địa bàn của bạn", "reaches beyond your area"))
    for name, group in spec.groups.items():
        if not inside(index.reach_target(group, {})):
            problems.append(Problem(f"groups.{name}", "gồm nơi ngoài địa bàn của bạn", "reaches beyond your area"))

    for i, programme in enumerate(spec.programmes):
        for j, item in enumerate(programme.items):
            named = session.get(Bulletin, item.bulletin) if item.bulletin is not None else None
            if named is not None and named.owner_unit_id not in visible_units:
                problems.append(
                    Problem(
                        f"programmes[{i}].items[{j}].bulletin",
                        f"bản tin {named.id!r} thuộc địa bàn khác",
                        f"bulletin {named.id!r} belongs to a unit outside your area",
                    )
                )

    stored = list(session.exec(select(Slot)))
    beyond = {slot.id for slot in stored if not inside(index.reach(slot))}
    for i, slot in enumerate(spec.slots):
        if slot.id in beyond:
            problems.append(
                Problem(
                    f"slots[{i}].id",
                    f"khung giờ {slot.id!r} đã có và phát cả ngoài địa bàn của bạn",
                    f"slot {slot.id!r} exists and plays beyond your area",
                )
            )
    for i, programme in enumerate(spec.programmes):
        users = sorted(s.id for s in stored if s.programme_id == programme.id and s.id in beyond)
        if users:
            problems.append(
                Problem(
                    f"programmes[{i}].id",
                    f"chương trình {programme.id!r} đã có và được phát ngoài địa bàn của bạn ({', '.join(users)})",
                    f"programme {programme.id!r} exists and plays beyond your area (slots {', '.join(users)})",
                )
            )
    for name in spec.groups:
        users = sorted(s.id for s in stored if name in target_spec(s.target).groups and s.id in beyond)
        if users:
            problems.append(
                Problem(
                    f"groups.{name}",
                    f"nhóm {name!r} đã có và được dùng ngoài địa bàn của bạn ({', '.join(users)})",
                    f"group {name!r} exists and is used beyond your area (slots {', '.join(users)})",
                )
            )
    return problems
