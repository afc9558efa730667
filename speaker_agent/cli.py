"""`bcast agent`: run the agent of one cluster on its receiver box, or enrol the box with the server."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer()
agent_app = typer.Typer(
    help="Phần mềm trên bộ thu của cụm loa: chạy với --config, hoặc đăng ký với máy chủ (enrol).",
    invoke_without_command=True,
)
app.add_typer(agent_app, name="agent")


@agent_app.callback()
def agent_command(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", "-c", help="Tệp cấu hình TOML của cụm loa (agent.toml)."),
) -> None:
    """Chạy phần mềm điều khiển trên bộ thu của một cụm loa: nhận lệnh, tải và phát âm thanh, báo cáo."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        typer.echo("Thiếu --config: tệp cấu hình TOML của cụm loa (agent.toml).", err=True)
        raise typer.Exit(2)
    from speaker_agent.runner import main

    status = main(config)  # also run without Typer by bcast/cli.py for `bcast agent --config FILE`
    if status:
        raise typer.Exit(status)


@agent_app.command("enrol")
def enrol_command(
    server: str = typer.Option(..., "--server", help="Địa chỉ máy chủ, ví dụ https://bcast.binhson.gov.vn."),
    cluster: str = typer.Option(..., "--cluster", help="Mã cụm loa của bộ thu này."),
    token: str = typer.Option(..., "--token", help="Mã đăng ký dùng một lần do kỹ thuật viên cấp ('-': đọc từ stdin)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Tệp cấu hình của cụm loa (lấy data_dir từ đó)."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Thư mục dữ liệu của cụm loa (khi không có --config)."
    ),
    ca_file: Path | None = typer.Option(None, "--ca-file", help="Chứng chỉ CA để kiểm tra máy chủ HTTPS."),
) -> None:
    """Đăng ký bộ thu với máy chủ bằng mã một lần; tài khoản MQTT được lưu (quyền 0600) trong thư mục dữ liệu."""
    import sys

    import httpx

    from mqtt_contract import CLUSTER_ID_PATTERN
    from speaker_agent.config import AgentConfig, ConfigError
    from speaker_agent.enrol import EnrolmentError, request_enrolment, save_credentials

    if not CLUSTER_ID_PATTERN.match(cluster):
        typer.echo(f"Mã cụm loa không hợp lệ: {cluster!r}", err=True)
        raise typer.Exit(2)
    if config is not None:
        try:
            loaded = AgentConfig.load(config)
        except ConfigError as exc:
            typer.echo(f"Lỗi cấu hình: {exc}", err=True)
            raise typer.Exit(2) from None
        if loaded.cluster_id != cluster:
            typer.echo(f"Tệp cấu hình là của cụm {loaded.cluster_id!r}, không phải {cluster!r}.", err=True)
            raise typer.Exit(2)
        data_dir = loaded.data_dir
    if data_dir is None:
        typer.echo("Cần --config hoặc --data-dir để biết nơi lưu tài khoản MQTT.", err=True)
        raise typer.Exit(2)
    if token == "-":
        token = sys.stdin.readline().strip()
    verify: str | bool = str(ca_file) if ca_file is not None else True
    try:
        with httpx.Client(timeout=30, verify=verify) as http:
            credentials = request_enrolment(http, server, cluster, token)
    except EnrolmentError as exc:
        typer.echo(f"Đăng ký không thành công: {exc}", err=True)
        raise typer.Exit(1) from None
    path = save_credentials(data_dir, credentials)
    typer.echo(f"Đã đăng ký cụm {cluster} với tài khoản MQTT {credentials.username}; đã lưu vào {path}.")
