"""`bcast server`: the HTTP API with MQTT dispatch and ingest, on the configured database."""

from __future__ import annotations

import typer

app = typer.Typer()


@app.command("server")
def server(
    host: str = typer.Option("127.0.0.1", "--host", help="Địa chỉ lắng nghe."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Cổng HTTP."),
) -> None:
    """Chạy máy chủ: API REST (/api/v1), gửi lệnh qua MQTT và nhận báo cáo từ các cụm loa.

    Cơ sở dữ liệu lấy từ BCAST_DATABASE_URL (mặc định: tệp SQLite trong thư mục dữ liệu người dùng) và được
    nâng cấp lên phiên bản lược đồ mới nhất trước khi chạy.
    """
    import logging

    import uvicorn
    from rich.console import Console

    from broadcast_server.api.app import create_app
    from broadcast_server.db.migrate import upgrade
    from broadcast_server.messaging.mqtt_bus import BusError
    from broadcast_server.runtime import Runtime
    from broadcast_server.settings import get_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    err = Console(stderr=True)
    settings = get_settings()
    upgrade(settings.database_url)
    runtime = Runtime.from_settings(settings)
    if _first_admin(runtime.engine, settings):
        err.print(f"Đã tạo tài khoản quản trị đầu tiên: [bold]{settings.admin_username}[/]")
    try:
        runtime.start()
    except BusError as exc:
        err.print(f"[bold red]Không kết nối được máy chủ MQTT:[/] {exc}")
        raise typer.Exit(1) from None
    try:
        uvicorn.run(create_app(runtime, manage_runtime=False), host=host, port=port, log_level="info")
    finally:
        runtime.stop()


def _first_admin(engine, settings) -> bool:
    """Create the first administrator from BCAST_ADMIN_USERNAME / BCAST_ADMIN_PASSWORD when no account exists."""
    from broadcast_server.accounts.service import ensure_first_admin
    from broadcast_server.db.session import session_scope

    with session_scope(engine) as session:
        return ensure_first_admin(session, settings.admin_username, settings.admin_password) is not None
