"""`bcast agent`: run the agent of one cluster on its receiver box."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer()


@app.command("agent")
def agent_command(
    config: Path = typer.Option(..., "--config", "-c", help="Tệp cấu hình TOML của cụm loa (agent.toml)."),
) -> None:
    """Chạy phần mềm điều khiển trên bộ thu của một cụm loa: nhận lệnh, tải và phát âm thanh, báo cáo."""
    import asyncio
    import logging

    from speaker_agent.config import AgentConfig, ConfigError
    from speaker_agent.runner import run_agent

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = AgentConfig.load(config)
    except ConfigError as exc:
        typer.echo(f"Lỗi cấu hình: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        asyncio.run(run_agent(settings))
    except KeyboardInterrupt:
        pass
