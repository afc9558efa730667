"""`bcast sim run`: a simulated fleet of real agents against a broker, with faults, until a time limit."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Mô phỏng đội cụm loa (chạy mã agent thật) để kiểm thử.", no_args_is_help=True)


@app.command("run")
def run(
    fleet: Path = typer.Option(..., "--fleet", exists=True, dir_okay=False, help="Tệp CSV danh sách cụm loa."),
    scenario_file: Path | None = typer.Option(
        None, "--scenario", exists=True, dir_okay=False, help="Kịch bản lỗi (YAML hoặc TOML)."
    ),
    mqtt_host: str = typer.Option("127.0.0.1", help="Máy chủ MQTT."),
    mqtt_port: int = typer.Option(1883, help="Cổng MQTT."),
    local_broker: bool = typer.Option(
        False, "--local-broker", help="Tự chạy một mosquitto riêng (cần cho lỗi khởi động lại máy chủ MQTT)."
    ),
    topic_root: str = typer.Option("bcast", help="Gốc chủ đề MQTT."),
    seconds: float | None = typer.Option(None, help="Chạy trong bao nhiêu giây (mặc định: theo kịch bản, hoặc 60)."),
    speed: float | None = typer.Option(None, help="Tốc độ phát mô phỏng (lớn hơn 1 là phát nhanh hơn thời gian thực)."),
    offline_fraction: float | None = typer.Option(None, min=0.0, max=1.0, help="Tỷ lệ cụm loa không bao giờ kết nối."),
    seed: int | None = typer.Option(None, help="Hạt giống ngẫu nhiên (kết quả lặp lại được)."),
    data_dir: Path | None = typer.Option(None, help="Thư mục dữ liệu của các agent (mặc định: thư mục tạm)."),
    cut_commune: list[str] = typer.Option([], help="Cắt liên lạc cả xã này (lặp lại được)."),
    cut_at: float = typer.Option(1.0, help="Cắt liên lạc sau bao nhiêu giây."),
    cut_for: float = typer.Option(10.0, help="Cắt liên lạc trong bao nhiêu giây."),
    cut_mode: str = typer.Option("network", help="'network' (mất mạng) hoặc 'power' (mất điện: mất bộ nhớ, còn đĩa)."),
    corrupt_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Tỷ lệ cụm loa tải về tệp bị hỏng."),
    truncate_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Tỷ lệ cụm loa tải về bị đứt giữa chừng."),
    fault_responses: int | None = typer.Option(
        None, min=1, help="Chỉ làm hỏng/đứt bấy nhiêu lần tải đầu tiên của mỗi cụm (mặc định: mọi lần)."
    ),
    slow_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Tỷ lệ cụm loa có đường truyền chậm."),
    slow_bytes_per_s: float = typer.Option(20_000.0, min=1.0, help="Tốc độ của đường truyền chậm (byte/giây)."),
    skew_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Tỷ lệ cụm loa có đồng hồ lệch."),
    skew_s: float = typer.Option(300.0, help="Độ lệch đồng hồ (giây, âm là chậm)."),
    amplifier_fraction: float = typer.Option(0.0, min=0.0, max=1.0, help="Tỷ lệ cụm loa hỏng bộ khuếch đại."),
    broker_restart_at: list[float] = typer.Option(
        [], help="Khởi động lại máy chủ MQTT sau bao nhiêu giây (lặp lại được)."
    ),
    broker_down_s: float = typer.Option(2.0, help="Máy chủ MQTT tắt trong bao nhiêu giây."),
    dispatch_at: list[float] = typer.Option(
        [], help="Tự gửi lệnh phát tới mọi cụm sau bao nhiêu giây (lặp lại được; không cần máy chủ)."
    ),
    expires_in_s: float = typer.Option(60.0, help="Lệnh phát hết hạn sau bao nhiêu giây."),
    duration_s: float = typer.Option(10.0, help="Độ dài bản tin mô phỏng (giây)."),
) -> None:
    """Chạy đội cụm loa mô phỏng và in tóm tắt JSON những gì các agent thực sự đã làm."""
    import asyncio
    import json
    import logging
    import tempfile

    from firmware_sim.fleet_sim import FleetSimulation, SimulationError, run_fleet
    from firmware_sim.scenario import (
        AmplifierFailure,
        BrokerRestart,
        ClockSkew,
        Cutoff,
        Dispatch,
        DownloadFault,
        Scenario,
        ScenarioError,
        Selection,
        SlowLink,
        load_fleet,
        load_scenario,
    )

    logging.basicConfig(level=logging.ERROR)
    try:
        scenario = load_scenario(scenario_file) if scenario_file else Scenario()
    except ScenarioError as exc:
        typer.echo(f"Lỗi kịch bản: {exc}", err=True)
        raise typer.Exit(2) from None
    # Flags add to (or override) the scenario file.
    if seed is not None:
        scenario.seed = seed
    if offline_fraction is not None:
        scenario.offline = Selection(fraction=offline_fraction)
    if cut_mode not in ("network", "power"):
        typer.echo("--cut-mode phải là 'network' hoặc 'power'.", err=True)
        raise typer.Exit(2)
    if cut_commune:
        scenario.cutoffs.append(Cutoff(Selection(communes=list(cut_commune)), cut_at, cut_for, cut_mode))
    if corrupt_fraction:
        scenario.corrupt = DownloadFault(Selection(fraction=corrupt_fraction), fault_responses)
    if truncate_fraction:
        scenario.truncate = DownloadFault(Selection(fraction=truncate_fraction), fault_responses)
    if slow_fraction:
        scenario.slow = SlowLink(Selection(fraction=slow_fraction), slow_bytes_per_s)
    if skew_fraction:
        scenario.skew = ClockSkew(Selection(fraction=skew_fraction), skew_s)
    if amplifier_fraction:
        scenario.amplifier = AmplifierFailure(Selection(fraction=amplifier_fraction))
    scenario.broker_restarts += [BrokerRestart(at, broker_down_s) for at in broker_restart_at]
    scenario.dispatches += [
        Dispatch(at, Selection(), expires_in_s=expires_in_s, duration_s=duration_s) for at in dispatch_at
    ]
    run_for = seconds if seconds is not None else (scenario.seconds if scenario.seconds is not None else 60.0)
    play_speed = speed if speed is not None else (scenario.speed if scenario.speed is not None else 1.0)
    members = load_fleet(fleet)

    async def main(root: Path) -> dict:
        broker = None
        if local_broker or scenario.broker_restarts:
            from bcast.broker import LocalBroker

            broker = await asyncio.to_thread(LocalBroker(extra_config="log_dest none\nmax_connections -1").start)
        try:
            sim = FleetSimulation(
                [m.cluster_id for m in members],
                communes={m.cluster_id: m.commune for m in members},
                data_root=root,
                mqtt_host=mqtt_host,
                mqtt_port=mqtt_port,
                topic_root=topic_root,
                speed=play_speed,
                scenario=scenario,
                broker=broker,
            )
            await sim.start()
            timeline = asyncio.ensure_future(sim.run_timeline())
            loop = asyncio.get_running_loop()
            end = loop.time() + run_for
            await asyncio.wait([timeline], timeout=run_for)
            await asyncio.sleep(max(0.0, end - loop.time()))
            if timeline.done() and timeline.exception() is not None:
                raise timeline.exception()  # type: ignore[misc]
            await sim.stop()
            summary = sim.summary()
            summary["scenario"] = scenario.as_json()
            summary["seconds"] = run_for
            return summary
        finally:
            if broker is not None:
                await asyncio.to_thread(broker.stop)

    try:
        with tempfile.TemporaryDirectory(prefix="bcast-sim-") as tmp:
            summary = run_fleet(main(data_dir or Path(tmp)))  # uvloop where installed
    except (ScenarioError, SimulationError) as exc:
        typer.echo(f"Lỗi mô phỏng: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(summary, ensure_ascii=False))
