"""Who is asking: a signed-in account or an API token, with its role and the part of the tree it may touch.

Pure domain: no I/O. The permission table is the one place that says which role may do what; the
scope check (is this unit inside the principal's subtree?) is done by the caller with the admin tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Roles across the levels of the tree (Hướng dẫn 1273/BTTTT-TTCS: one system, accounts per level)."""

    ADMIN = "admin"  # quản trị viên tỉnh/huyện: everything in its subtree, accounts included
    APPROVER = "approver"  # người duyệt: approves or returns bulletins, broadcasts, schedules
    EDITOR = "editor"  # biên tập viên: drafts bulletins and schedules, cannot approve
    BROADCASTER = "broadcaster"  # phát thanh viên xã: drafts for its own commune only
    TECHNICIAN = "technician"  # kỹ thuật viên: fleet views and device commands
    VIEWER = "viewer"  # người xem: reads only


ROLE_LABELS_VI: dict[Role, str] = {
    Role.ADMIN: "Quản trị viên",
    Role.APPROVER: "Người duyệt tin",
    Role.EDITOR: "Biên tập viên",
    Role.BROADCASTER: "Phát thanh viên xã",
    Role.TECHNICIAN: "Kỹ thuật viên",
    Role.VIEWER: "Người xem",
}


class Action(StrEnum):
    """What a request wants to do; every /api/v1 write and every console form maps to one."""

    VIEW = "view"
    DRAFT_BULLETIN = "draft_bulletin"  # create, edit, submit for approval
    APPROVE_BULLETIN = "approve_bulletin"  # approve or return with a comment
    BROADCAST = "broadcast"  # play an approved bulletin now on targets
    EMERGENCY = "emergency"  # an emergency bulletin that skips the approval queue (audited)
    SCHEDULE = "schedule"  # programmes, slots, schedule files
    DEVICE_COMMAND = "device_command"  # volume, stop, ping on clusters
    MANAGE_FLEET = "manage_fleet"  # import clusters, edit the tree
    MANAGE_ACCOUNTS = "manage_accounts"  # accounts and API tokens


PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.APPROVER: frozenset(
        {
            Action.VIEW,
            Action.DRAFT_BULLETIN,
            Action.APPROVE_BULLETIN,
            Action.BROADCAST,
            Action.EMERGENCY,
            Action.SCHEDULE,
        }
    ),
    Role.EDITOR: frozenset({Action.VIEW, Action.DRAFT_BULLETIN, Action.SCHEDULE}),
    Role.BROADCASTER: frozenset({Action.VIEW, Action.DRAFT_BULLETIN}),
    Role.TECHNICIAN: frozenset({Action.VIEW, Action.DEVICE_COMMAND}),
    Role.VIEWER: frozenset({Action.VIEW}),
}


@dataclass(frozen=True)
class Principal:
    """The caller of a request. `scope_unit_id` None means the whole tree; otherwise that unit's subtree."""

    username: str
    role: Role
    scope_unit_id: int | None
    user_id: int | None = None
    display_name: str = ""
    via: str = "session"  # "session" (console cookie) or "token" (API token)
    token_id: int | None = None

    def can(self, action: Action) -> bool:
        return action in PERMISSIONS[self.role]


# Commands run on the server machine (`bcast schedule apply`, `bcast user add`...): whoever can run them
# already holds the database, so they act unscoped; the audit log records them as actor "cli".
CLI_PRINCIPAL = Principal(username="cli", role=Role.ADMIN, scope_unit_id=None, via="cli")


class NotPermitted(PermissionError):
    """The principal's role does not allow the action (the API answers 403)."""


def ensure_can(principal: Principal | None, action: Action) -> None:
    """Raise NotPermitted unless the principal may do `action`; None (the system itself) may do anything."""
    if principal is not None and not principal.can(action):
        raise NotPermitted(f"role {principal.role.value!r} may not {action.value.replace('_', ' ')}")
