"""`bcast broker ...`: the broker's password and ACL files, enrolment tokens, revocation, the server account."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from sqlmodel import Session

    from broadcast_server.broker_auth.sync import BrokerFiles
    from broadcast_server.settings import Settings

app = typer.Typer()
broker_app = typer.Typer(
    help="Bảo mật máy chủ MQTT: tài khoản và quyền của từng cụm loa, mã đăng ký một lần, thu hồi.",
    no_args_is_help=True,
)
app.add_typer(broker_app, name="broker")

DATABASE_OPTION = typer.Option(None, "--database-url", help="Cơ sở dữ liệu (mặc định: BCAST_DATABASE_URL).")
EXIT_REFUSED = 2
EXIT_BROKER = 3


def _sync(session: Session, files: BrokerFiles, err: Console, out: Console, *, reload: bool = True) -> None:
    """Commit, rewrite the broker's files and reload it; exit 3 when the files or the reload fail."""
    from broadcast_server.broker_auth.reload import BrokerReloadError
    from broadcast_server.broker_auth.sync import sync_broker

    try:
        result = sync_broker(session, files, reload=reload)
    except BrokerReloadError as exc:
        err.print(f"[bold red]Đã ghi tệp nhưng không nạp lại được máy chủ MQTT:[/] {exc}")
        raise typer.Exit(EXIT_BROKER) from None
    except OSError as exc:
        err.print(f"[bold red]Không ghi được tệp của máy chủ MQTT, chưa lưu gì:[/] {exc}")
        raise typer.Exit(EXIT_BROKER) from None
    note = "đã nạp lại máy chủ MQTT" if result.reloaded else "chưa nạp lại máy chủ MQTT (chưa cấu hình cách nạp lại)"
    out.print(f"Đã ghi {result.accounts} tài khoản vào {files.password_file} và {files.acl_file}; {note}.")


def _sync_or_warn(session: Session, settings: Settings, err: Console, out: Console) -> None:
    """Sync the broker when its files are configured; else commit and say what to do."""
    from broadcast_server.broker_auth.sync import BrokerFiles, BrokerFilesNotConfigured

    try:
        files = BrokerFiles.from_settings(settings)
    except BrokerFilesNotConfigured:
        session.commit()
        err.print(
            "[yellow]Đã lưu vào cơ sở dữ liệu, nhưng chưa cấu hình tệp mật khẩu và tệp ACL của máy chủ MQTT "
            "(BCAST_BROKER_PASSWORD_FILE, BCAST_BROKER_ACL_FILE): hãy chạy [bold]bcast broker write-files[/] "
            "rồi nạp lại máy chủ MQTT.[/]"
        )
        return
    _sync(session, files, err, out)


@broker_app.command("write-files")
def write_files_command(
    password_file: Path | None = typer.Option(
        None, "--password-file", dir_okay=False, help="Tệp mật khẩu (mặc định: BCAST_BROKER_PASSWORD_FILE)."
    ),
    acl_file: Path | None = typer.Option(
        None, "--acl-file", dir_okay=False, help="Tệp ACL (mặc định: BCAST_BROKER_ACL_FILE)."
    ),
    reload: bool = typer.Option(True, "--reload/--no-reload", help="Nạp lại máy chủ MQTT sau khi ghi."),
    database_url: str | None = DATABASE_OPTION,
) -> None:
    """Ghi tệp mật khẩu và tệp ACL của Mosquitto từ cơ sở dữ liệu (ghi nguyên khối), rồi nạp lại máy chủ MQTT."""
    from rich.console import Console

    from broadcast_server.broker_auth.sync import BrokerFiles, BrokerFilesNotConfigured
    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope

    out, err = Console(), Console(stderr=True)
    with open_database(database_url) as (settings, engine):
        try:
            files = BrokerFiles.from_settings(settings, password_file=password_file, acl_file=acl_file)
        except BrokerFilesNotConfigured:
            err.print(
                "[bold red]Thiếu --password-file và --acl-file[/] "
                "(hoặc BCAST_BROKER_PASSWORD_FILE, BCAST_BROKER_ACL_FILE)."
            )
            raise typer.Exit(EXIT_REFUSED) from None
        with session_scope(engine) as session:
            _sync(session, files, err, out, reload=reload)


@broker_app.command("enrol-token")
def enrol_token_command(
    cluster_id: str = typer.Argument(..., help="Mã cụm loa cần đăng ký."),
    ttl_hours: int | None = typer.Option(
        None, "--ttl-hours", min=1, max=720, help="Thời hạn của mã (giờ; mặc định BCAST_ENROLMENT_TOKEN_TTL_H = 72)."
    ),
    database_url: str | None = DATABASE_OPTION,
) -> None:
    """Tạo mã đăng ký dùng một lần cho một cụm loa; mã chỉ hiện một lần, mã cũ chưa dùng của cụm bị huỷ."""
    from datetime import UTC, datetime, timedelta

    from rich.console import Console

    from broadcast_server.broker_auth.credentials import UnknownCluster, issue_enrolment_token
    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope
    from broadcast_server.scheduling.recurrence import LOCAL_TZ

    out, err = Console(), Console(stderr=True)
    with open_database(database_url) as (settings, engine):
        ttl = timedelta(hours=ttl_hours or settings.enrolment_token_ttl_h)
        try:
            with session_scope(engine) as session:
                issued = issue_enrolment_token(session, cluster_id, now=datetime.now(UTC), ttl=ttl, created_by="cli")
        except UnknownCluster:
            err.print(f"[bold red]Không có cụm loa {cluster_id!r} trong danh sách thiết bị.[/]")
            raise typer.Exit(EXIT_REFUSED) from None
    expires = issued.expires_at.astimezone(LOCAL_TZ).strftime("%H:%M ngày %d/%m/%Y")
    out.print(f"Mã đăng ký cho cụm [bold]{cluster_id}[/] (dùng một lần, hết hạn lúc {expires}):")
    out.print(issued.token, markup=False, highlight=False)
    out.print(f"Trên bộ thu: bcast agent enrol --server {settings.public_url} --cluster {cluster_id} --token <mã>")


@broker_app.command("revoke")
def revoke_command(
    cluster_id: str = typer.Argument(..., help="Mã cụm loa cần thu hồi quyền kết nối."),
    database_url: str | None = DATABASE_OPTION,
) -> None:
    """Thu hồi tài khoản MQTT của một cụm loa (và mã đăng ký chưa dùng), ghi lại tệp và nạp lại máy chủ MQTT."""
    from datetime import UTC, datetime

    from rich.console import Console

    from broadcast_server.broker_auth.credentials import NoActiveCredential, UnknownCluster, revoke_cluster
    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope

    out, err = Console(), Console(stderr=True)
    with open_database(database_url) as (settings, engine), session_scope(engine) as session:
        try:
            revocation = revoke_cluster(session, cluster_id, now=datetime.now(UTC))
        except UnknownCluster:
            err.print(f"[bold red]Không có cụm loa {cluster_id!r} trong danh sách thiết bị.[/]")
            raise typer.Exit(EXIT_REFUSED) from None
        except NoActiveCredential:
            err.print(f"[bold red]Cụm loa {cluster_id!r} không có tài khoản MQTT hay mã đăng ký nào còn hiệu lực.[/]")
            raise typer.Exit(EXIT_REFUSED) from None
        out.print(
            f"Đã thu hồi {revocation.credentials} tài khoản và huỷ {revocation.tokens} mã đăng ký của cụm {cluster_id}."
        )
        _sync_or_warn(session, settings, err, out)


@broker_app.command("server-password")
def server_password_command(
    username: str | None = typer.Option(
        None, "--username", help="Tên tài khoản MQTT của máy chủ (mặc định: BCAST_MQTT_USERNAME, hoặc bcast-server)."
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Đọc mật khẩu từ đầu vào chuẩn thay vì tạo mật khẩu ngẫu nhiên."
    ),
    database_url: str | None = DATABASE_OPTION,
) -> None:
    """Đặt tài khoản MQTT của chính máy chủ (toàn quyền dưới gốc chủ đề); mật khẩu chỉ hiện một lần."""
    import sys
    from datetime import UTC, datetime

    from rich.console import Console

    from broadcast_server.broker_auth.broker_files import InvalidBrokerAccount
    from broadcast_server.broker_auth.credentials import set_server_password
    from broadcast_server.broker_auth.password_hash import new_password
    from broadcast_server.db.open import open_database
    from broadcast_server.db.session import session_scope

    out, err = Console(), Console(stderr=True)
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else new_password()
    if len(password) < 16:
        err.print("[bold red]Mật khẩu MQTT của máy chủ phải dài ít nhất 16 ký tự.[/]")
        raise typer.Exit(EXIT_REFUSED)
    with open_database(database_url) as (settings, engine), session_scope(engine) as session:
        name = username or settings.mqtt_username or "bcast-server"
        try:
            set_server_password(session, name, password, now=datetime.now(UTC))
        except InvalidBrokerAccount as exc:
            err.print(f"[bold red]Tên tài khoản không hợp lệ:[/] {exc}")
            raise typer.Exit(EXIT_REFUSED) from None
        # Shown before the files are written: if the reload then fails, the stored account is still usable.
        shown = "<mật khẩu vừa nhập>" if password_stdin else password
        out.print(f"Tài khoản MQTT của máy chủ: [bold]{name}[/]. Đặt cho máy chủ (chỉ hiện một lần):")
        out.print(f"BCAST_MQTT_USERNAME={name}\nBCAST_MQTT_PASSWORD={shown}", markup=False, highlight=False)
        _sync_or_warn(session, settings, err, out)
