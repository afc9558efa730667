"""`bcast sim run`: a simulated fleet of real agents against a broker, until a time limit."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Mô phỏng đội cụm loa (chạy mã agent thật) để kiểm thử.", no_args_is_help=True)


@app.command("run")
def run(
    fleet: Path = typer.Option(..., "--fleet", help="Tệp CSV danh sách cụm loa."),
    mqtt_host: str = typer.Option("127.0.0.1", help="Máy chủ MQTT."),
    mqtt_port: int = typer.Option(1883, help="Cổng MQTT."),
    topic_root: str = typer.Option("bcast", help="Gốc chủ đề MQTT."),
    seconds: float = typer.Option(60.0, help="Chạy trong bao nhiêu giây."),
    speed: float = typer.Option(1.0, help="Tốc độ phát mô phỏng (lớn hơn 1 là phát nhanh hơn thời gian thực)."),
    offline_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Tỷ lệ cụm loa mất kết nối."),
    seed: int = typer.Option(0, help="Hạt giống ngẫu nhiên (kết quả lặp lại được)."),
    data_dir: Path | None = typer.Option(None, help="Thư mục dữ liệu của các agent (mặc định: thư mục tạm)."),
) -> None:
    """Chạy đội cụm loa mô phỏng và in tóm tắt JSON những gì các agent thực sự đã làm."""
    import asyncio
    import json
    import tempfile

    from firmware_sim.fleet_sim import FleetSimulation
    from firmware_sim.scenario import load_fleet_ids, pick_offline

    ids = load_fleet_ids(fleet)
    offline = pick_offline(ids, offline_fraction, seed)

    async def main(root: Path) -> dict:
        sim = FleetSimulation(
            ids,
            data_root=root,
            mqtt_host=mqtt_host,
            mqtt_port=mqtt_port,
            topic_root=topic_root,
            speed=speed,
            offline=offline,
            seed=seed,
        )
        await sim.start()
        await asyncio.sleep(seconds)
        await sim.stop()
        return sim.summary()

    with tempfile.TemporaryDirectory(prefix="bcast-sim-") as tmp:
        summary = asyncio.run(main(data_dir or Path(tmp)))
    typer.echo(json.dumps(summary, ensure_ascii=False))
