"""The device packaging: the systemd unit passes `systemd-analyze verify`, the config examples load."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speaker_agent.config import AgentConfig, ConfigError

PACKAGING = Path(__file__).resolve().parents[2] / "packaging"
UNIT = PACKAGING / "systemd" / "bcast-agent.service"


def unit_sections() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as systemd's EnvironmentFile reads them (comments and blank lines skipped)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))


def test_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart's program exists: point it at this checkout's bcast, nothing else changes.
    bcast = Path(sys.executable).with_name("bcast")
    if not bcast.exists():
        pytest.skip("the bcast command is not installed in this environment")
    text = UNIT.read_text(encoding="utf-8")
    assert "ExecStart=/opt/bcast/venv/bin/bcast " in text
    done = verify(analyze, text.replace("/opt/bcast/venv/bin/bcast", str(bcast)), tmp_path)
    assert done.returncode == 0, done.stderr
    problems = [line for line in done.stderr.splitlines() if UNIT.name in line]
    assert problems == []


def verify(analyze: str, unit_text: str, folder: Path) -> subprocess.CompletedProcess[str]:
    (folder / UNIT.name).write_text(unit_text)
    return subprocess.run([analyze, "verify", str(folder / UNIT.name)], capture_output=True, text=True, timeout=60)


def test_systemd_analyze_reports_what_the_check_above_looks_for(tmp_path):
    """The check can fail: a program that is not there fails verify; a misspelt key is a line on stderr."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = UNIT.read_text(encoding="utf-8")
    missing = verify(analyze, text, tmp_path)
    assert missing.returncode != 0 and "not executable" in missing.stderr
    bcast = str(Path(sys.executable).with_name("bcast"))
    misspelt = verify(analyze, text.replace("/opt/bcast/venv/bin/bcast", bcast) + "RestartSecs=5\n", tmp_path)
    assert "Unknown key 'RestartSecs'" in misspelt.stderr and UNIT.name in misspelt.stderr


def test_unit_is_hardened_and_restarts():
    service = unit_sections()["Service"]
    expected = {
        "User": "bcast",
        "Restart": "always",
        "StateDirectory": "bcast-agent",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
    }
    assert {key: service.get(key) for key in expected} == expected
    assert service["ExecStart"].endswith("bcast agent --config /etc/bcast/agent.toml")
    assert unit_sections()["Install"]["WantedBy"] == "multi-user.target"


def test_config_examples_load_with_the_agent_loader():
    config = AgentConfig.load(PACKAGING / "agent.toml.example", env={})
    assert config.data_dir == Path("/var/lib") / unit_sections()["Service"]["StateDirectory"]
    assert config.mqtt_username is None  # the account comes from `bcast agent enrol`
    assert config.player == "auto" and config.heartbeat_interval_s == 60

    env = env_file(PACKAGING / "agent.env.example")
    assert set(env) == {"BCAST_AGENT_MQTT_USERNAME", "BCAST_AGENT_MQTT_PASSWORD"}
    by_hand = AgentConfig.load(PACKAGING / "agent.toml.example", env=env)
    assert (by_hand.mqtt_username, by_hand.mqtt_password) == (
        env["BCAST_AGENT_MQTT_USERNAME"],
        env["BCAST_AGENT_MQTT_PASSWORD"],
    )
    assert by_hand.mqtt_username == f"cluster-{by_hand.cluster_id}"  # the broker's naming of cluster accounts


def test_a_misspelt_key_in_the_example_would_be_refused(tmp_path):
    """The loader refuses unknown keys, so the example loading above proves its names are real."""
    text = (PACKAGING / "agent.toml.example").read_text(encoding="utf-8").replace("mqtt_host", "mqtt_hostname")
    (tmp_path / "agent.toml").write_text(text)
    with pytest.raises(ConfigError, match="mqtt_hostname"):
        AgentConfig.load(tmp_path / "agent.toml", env={})
