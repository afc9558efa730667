"""The whole path on real parts: espeak-ng, ffmpeg, a mosquitto we start, the server on SQLite, real agents."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bcast.broker import LocalBroker
from bcast.demo import default_fleet, run_demo
from mqtt_contract import InvalidTopic, Topics, decode

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


class Wiretap:
    """Subscribes to '#' like `mosquitto_sub -v -t '#'` and keeps every message."""

    def __init__(self, broker: LocalBroker) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"tap-{uuid.uuid4().hex[:6]}")
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.client.connect(broker.host, broker.port)
        self.client.subscribe("#", qos=1)
        self.client.loop_start()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_demo_plays_on_every_cluster_of_hon_quan_and_speaks_only_the_contract(tmp_path):
    with LocalBroker() as broker:
        tap = Wiretap(broker)
        try:
            result = run_demo(keep=tmp_path / "kept", broker=broker)
        finally:
            tap.close()
    assert result.clusters == 202
    assert len(result.communes) == 13
    assert sum(c["clusters"] for c in result.communes) == 202
    assert all(c["played"] == c["clusters"] for c in result.communes), result.communes
    # What the server reports equals what the simulated speakers really did.
    truth = result.extra["ground_truth"]
    assert truth["clusters_played"] == 202 and truth["plays_completed"] == 202
    # Acceptance 4: every message on the broker is on a contract topic and valid against its schema.
    topics = Topics("bcast")
    assert len(tap.messages) > 202 * 3  # at least status, command and report per cluster
    seen_channels = set()
    for topic, payload in tap.messages:
        try:
            cluster_id, channel = topics.parse(topic)
        except InvalidTopic as exc:
            pytest.fail(f"message outside the contract: {exc}")
        if payload:  # an empty retained payload would be a clear; we send none
            decode(channel, payload)
        seen_channels.add(channel.value)
    assert seen_channels == {"command", "status", "heartbeat", "report"}
    # --keep leaves the database and the audio for exploring afterwards.
    assert (tmp_path / "kept" / "bcast.sqlite3").is_file()
    assert list((tmp_path / "kept" / "audio").glob("*.mp3"))


def test_demo_cli_json_on_binh_son(tmp_path):
    fleet = ROOT / "bcast" / "data" / "binh-son.csv"
    completed = subprocess.run(
        [sys.executable, "-m", "bcast", "demo", "--fleet", str(fleet), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    document = json.loads(completed.stdout)
    assert document["clusters"] == 144
    assert len(document["communes"]) == 22
    assert sum(c["played"] for c in document["communes"]) == 144
    assert set(document) == {"clusters", "communes", "seconds"}


def test_demo_with_a_district_without_communes(tmp_path):
    csv = tmp_path / "ly-son.csv"
    csv.write_text(
        "cluster_id,province,district,commune,village,lat,lon\n"
        "ly-son-an-vinh-001,Quảng Ngãi,Lý Sơn,,Thôn Đông,15.38,109.12\n"
        "ly-son-an-vinh-002,Quảng Ngãi,Lý Sơn,,Thôn Tây,15.39,109.10\n"
        "ly-son-an-hai-001,Quảng Ngãi,Lý Sơn,,Thôn Trung Hòa,15.37,109.11\n"
        "binh-son-x-001,Quảng Ngãi,Bình Sơn,Xã Bình Hải,Thôn 1,15.30,108.80\n",
        encoding="utf-8",
    )
    result = run_demo(csv)
    by_name = {c["name"]: c for c in result.communes}
    assert (by_name["Lý Sơn"]["clusters"], by_name["Lý Sơn"]["played"]) == (3, 3)
    assert by_name["Xã Bình Hải"]["played"] == 1


def test_default_fleet_is_shipped_in_the_package():
    assert default_fleet().read_text(encoding="utf-8").count("\n") == 203


def test_demo_with_offline_clusters_counts_only_real_plays():
    result = run_demo(offline_fraction=0.1, seed=1)
    document = result.as_json()
    assert document["offline"] == 20  # round(0.1 × 202)
    assert sum(c["offline"] for c in document["communes"]) == 20
    played = sum(c["played"] for c in document["communes"])
    truth = result.extra["ground_truth"]
    assert played == truth["clusters_played"] == 202 - 20
    assert all(c["played"] + c["offline"] == c["clusters"] for c in document["communes"])
    # The same seed picks the same clusters.
    again = run_demo(offline_fraction=0.1, seed=1).as_json()
    assert [c["offline"] for c in again["communes"]] == [c["offline"] for c in document["communes"]]


def test_quarterly_report_on_a_database_kept_by_the_demo(tmp_path):
    """Issue 6, acceptance 4: `bcast report quarterly` on what `bcast demo --keep DIR` left behind."""
    from openpyxl import load_workbook
    from typer.testing import CliRunner

    from broadcast_server.report_cli import app

    kept = tmp_path / "kept"
    result = run_demo(keep=kept)
    out = tmp_path / "report"
    now = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))  # the demo plays now, so its figures are in this quarter
    quarter = f"{now.year}Q{(now.month - 1) // 3 + 1}"
    invoked = CliRunner().invoke(
        app,
        [
            "report",
            "quarterly",
            "--quarter",
            quarter,
            "-o",
            str(out),
            "--database-url",
            f"sqlite:///{kept / 'bcast.sqlite3'}",
        ],
    )
    assert invoked.exit_code == 0, invoked.output
    csv_text = next(out.glob(f"*{quarter}.csv")).read_text(encoding="utf-8")
    for commune in result.communes:
        assert commune["name"] in csv_text
    workbook = load_workbook(next(out.glob("*.xlsx")))
    assert any(sheet._charts for sheet in workbook.worksheets)
    html = next(out.glob("*.html")).read_text(encoding="utf-8")
    assert "<svg" in html and "Hớn Quản" in html
