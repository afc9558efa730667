"""The agent's stored MQTT credentials: written 0600 in one step, used by the configuration, checked."""

from __future__ import annotations

import stat

import pytest

from speaker_agent.config import AgentConfig, ConfigError
from speaker_agent.enrol import (
    CredentialsError,
    StoredCredentials,
    credentials_path,
    load_credentials,
    save_credentials,
)


def _stored(cluster_id: str = "A", password: str = "p" * 43) -> StoredCredentials:
    return StoredCredentials(
        cluster_id, f"cluster-{cluster_id}", password, "https://bcast.example", "2026-11-24T02:00:00"
    )


def _config_file(tmp_path, extra: str = ""):
    path = tmp_path / "agent.toml"
    path.write_text(f'[agent]\ncluster_id = "A"\ndata_dir = "{tmp_path / "data"}"\n{extra}')
    return path


def test_credentials_are_private_replaced_whole_and_used_by_the_config(tmp_path) -> None:
    data = tmp_path / "data"
    path = save_credentials(data, _stored(password="first-password"))
    assert path == credentials_path(data) and stat.S_IMODE(path.stat().st_mode) == 0o600
    save_credentials(data, _stored(password="second-password"))
    assert sorted(p.name for p in data.iterdir()) == [path.name]  # no temp file left
    assert load_credentials(data, "A").password == "second-password"
    config = AgentConfig.load(_config_file(tmp_path), env={})
    assert (config.mqtt_username, config.mqtt_password) == ("cluster-A", "second-password")
    # An account written in the configuration wins over the enrolled one.
    explicit = AgentConfig.load(_config_file(tmp_path, 'mqtt_username = "manual"\nmqtt_password = "m"\n'), env={})
    assert (explicit.mqtt_username, explicit.mqtt_password) == ("manual", "m")


def test_no_credentials_means_no_account(tmp_path) -> None:
    assert load_credentials(tmp_path / "data", "A") is None
    assert AgentConfig.load(_config_file(tmp_path), env={}).mqtt_username is None


@pytest.mark.parametrize("content", ["not json", "{}", '{"cluster_id": "A"}', "[1, 2]"])
def test_a_broken_credentials_file_is_a_config_error(tmp_path, content) -> None:
    (tmp_path / "data").mkdir()
    credentials_path(tmp_path / "data").write_text(content)
    with pytest.raises(CredentialsError):
        load_credentials(tmp_path / "data", "A")
    with pytest.raises(ConfigError):
        AgentConfig.load(_config_file(tmp_path), env={})


def test_credentials_of_another_cluster_are_refused(tmp_path) -> None:
    save_credentials(tmp_path / "data", _stored("B"))
    with pytest.raises(ConfigError, match="cluster 'B'"):
        AgentConfig.load(_config_file(tmp_path), env={})
