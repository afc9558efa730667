"""`bcast user ...` and `bcast token ...`: accounts and API tokens from the server machine (audited as "cli").

Only Typer is imported at import time (see bcast/cli.py); each command imports what it needs.
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich")
user_app = typer.Typer(help="Tài khoản người dùng (vai trò và địa bàn quản lý).", no_args_is_help=True)
token_app = typer.Typer(help="Mã truy cập API cho các hệ thống tích hợp.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")

EXIT_REFUSED = 2

_DATABASE = typer.Option(None, "--database-url", help="Cơ sở dữ liệu (mặc định: BCAST_DATABASE_URL).")


def _fail(message: str) -> typer.Exit:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[bold red]Lỗi:[/] {escape(message)}")
    return typer.Exit(EXIT_REFUSED)


def _unit_id(session, text: str) -> int:
    """A unit by id ("12") or by its path of names ("Quảng Ngãi/Bình Sơn/Bình Thạnh")."""
    from broadcast_server.domain.admin_tree import normalize_name
    from broadcast_server.models import AdminUnit
    from broadcast_server.scheduling.targets import unit_paths
    from broadcast_server.services.tree_query import load_units

    text = text.strip()
    if text.isdigit():
        if session.get(AdminUnit, int(text)) is None:
            raise _fail(f"không có địa bàn mã {text}")
        return int(text)
    key = "/".join(normalize_name(part) for part in text.split("/"))
    found = unit_paths(load_units(session)).get(key)
    if found is None:
        raise _fail(f"không có địa bàn {text!r} (viết đủ đường dẫn, ví dụ: Quảng Ngãi/Bình Sơn/Bình Thạnh)")
    return found


@user_app.command("add")
def user_add(
    username: str = typer.Argument(..., help="Tên đăng nhập (chữ thường, số, '.', '_' hoặc '-')."),
    role: str = typer.Option(
        ...,
        "--role",
        help="Vai trò: admin (quản trị), approver (duyệt tin), editor (biên tập), "
        "broadcaster (phát thanh viên xã), technician (kỹ thuật), viewer (chỉ xem).",
    ),
    unit: str | None = typer.Option(
        None, "--unit", help='Địa bàn quản lý: mã hoặc đường dẫn "Tỉnh/Huyện/Xã". Bỏ trống: toàn bộ hệ thống.'
    ),
    display_name: str = typer.Option("", "--name", help="Họ tên hiển thị."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Đọc mật khẩu từ dòng đầu của stdin."),
    database_url: str | None = _DATABASE,
) -> None:
    """Tạo tài khoản mới (mật khẩu ít nhất 8 ký tự, được băm bằng Argon2)."""
    from broadcast_server.accounts.management import add_user
    from broadcast_server.accounts.passwords import MIN_PASSWORD_LENGTH, WeakPassword
    from broadcast_server.accounts.principal import CLI_PRINCIPAL, ROLE_LABELS_VI
    from broadcast_server.accounts.service import AccountError
    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope

    if role not in {r.value for r in ROLE_LABELS_VI}:
        raise _fail(f"không có vai trò {role!r}; chọn một trong: {', '.join(r.value for r in ROLE_LABELS_VI)}")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Mật khẩu", hide_input=True, confirmation_prompt="Nhập lại mật khẩu")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise _fail(f"mật khẩu phải có ít nhất {MIN_PASSWORD_LENGTH} ký tự")
    with open_database(database_url) as (_, engine):
        try:
            with session_scope(engine) as session:
                scope = _unit_id(session, unit) if unit else None
                user = add_user(
                    session,
                    CLI_PRINCIPAL,
                    username=username,
                    password=password,
                    role=role,
                    scope_unit_id=scope,
                    display_name=display_name,
                )
                typer.echo(f"Đã tạo tài khoản {user.username} (mã {user.id}, vai trò {user.role}).")
        except (AccountError, WeakPassword) as exc:
            raise _fail(str(exc)) from None


@user_app.command("list")
def user_list(database_url: str | None = _DATABASE) -> None:
    """Liệt kê các tài khoản: vai trò, địa bàn, lần đăng nhập gần nhất."""
    from rich.console import Console
    from rich.table import Table
    from sqlmodel import select

    from broadcast_server.accounts.principal import ROLE_LABELS_VI, Role
    from broadcast_server.accounts.scope import unit_label
    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope
    from broadcast_server.models import User
    from broadcast_server.scheduling.recurrence import LOCAL_TZ

    table = Table("Mã", "Tên đăng nhập", "Họ tên", "Vai trò", "Địa bàn", "Đăng nhập gần nhất", "Trạng thái")
    with open_database(database_url) as (_, engine), session_scope(engine) as session:
        for user in session.exec(select(User).order_by(User.username)):
            table.add_row(
                str(user.id),
                user.username,
                user.display_name,
                ROLE_LABELS_VI[Role(user.role)],
                "Toàn hệ thống" if user.scope_unit_id is None else unit_label(session, user.scope_unit_id),
                user.last_login_at.astimezone(LOCAL_TZ).strftime("%H:%M %d/%m/%Y") if user.last_login_at else "—",
                "đã khóa" if user.disabled_at else "hoạt động",
            )
    Console().print(table)


@token_app.command("create")
def token_create(
    username: str = typer.Argument(..., help="Tài khoản mà mã truy cập thay mặt."),
    name: str = typer.Option(..., "--name", help="Dùng cho việc gì (ví dụ: cổng thông tin huyện)."),
    database_url: str | None = _DATABASE,
) -> None:
    """Tạo mã truy cập API. Mã chỉ hiện một lần: hãy lưu lại ngay."""
    from sqlmodel import select

    from broadcast_server.accounts.management import create_token
    from broadcast_server.accounts.principal import CLI_PRINCIPAL
    from broadcast_server.accounts.service import AccountError, normalize_username
    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope
    from broadcast_server.models import User

    with open_database(database_url) as (_, engine):
        try:
            with session_scope(engine) as session:
                user_id = session.exec(select(User.id).where(User.username == normalize_username(username))).first()
                if user_id is None:
                    raise AccountError(f"không có tài khoản {username!r}")
                plain, token = create_token(session, CLI_PRINCIPAL, name=name, user_id=user_id)
        except AccountError as exc:
            raise _fail(str(exc)) from None
    typer.echo(f"Mã truy cập số {token.id} ({token.name}) của {username}:")
    typer.echo(plain)
    typer.echo("Gửi kèm mỗi yêu cầu: Authorization: Bearer <mã>. Mã này không hiện lại lần nữa.", err=True)


@token_app.command("revoke")
def token_revoke(
    token_id: int = typer.Argument(..., help="Số của mã truy cập (xem trong trang quản trị hoặc GET /api/v1/tokens)."),
    database_url: str | None = _DATABASE,
) -> None:
    """Thu hồi mã truy cập ngay lập tức."""
    from broadcast_server.accounts.management import revoke_token_as
    from broadcast_server.accounts.principal import CLI_PRINCIPAL
    from broadcast_server.accounts.service import AccountError
    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope

    with open_database(database_url) as (_, engine):
        try:
            with session_scope(engine) as session:
                token = revoke_token_as(session, CLI_PRINCIPAL, token_id)
        except AccountError as exc:
            raise _fail(str(exc)) from None
    typer.echo(f"Đã thu hồi mã truy cập số {token.id} ({token.name}).")
