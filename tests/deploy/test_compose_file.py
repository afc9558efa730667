"""docker/compose.yaml against the Compose Specification's JSON Schema, and what the schema cannot see.

There is no Docker engine here: the schema (tests/deploy/compose-spec.json, see compose-spec.SOURCE.md)
checks the file's shape; the other tests check that it fits this code base (settings names, volumes,
health checks, the files it mounts, the proxy's upstreams, the Dockerfile's copies).
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the dev extra")

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
SCHEMA = Path(__file__).with_name("compose-spec.json")
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+][^}]*)?\}")


def load_compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))


def schema_errors(document: dict) -> list[str]:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator_class(schema).iter_errors(document)
    ]


def one_shot(name: str, compose: dict) -> bool:
    """A job that runs once before others start: restart "no" and awaited with service_completed_successfully."""
    service = compose["services"][name]
    awaited = any(
        isinstance(other.get("depends_on"), dict)
        and other["depends_on"].get(name, {}).get("condition") == "service_completed_successfully"
        for other in compose["services"].values()
    )
    return service.get("restart") == "no" and awaited


def test_compose_file_is_valid_against_the_compose_specification():
    assert schema_errors(load_compose()) == []


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(lambda d: d["services"]["db"].__setitem__("ports", 5), id="ports-not-a-list"),
        pytest.param(lambda d: d.__setitem__("servces", {}), id="unknown-top-level-key"),
        pytest.param(lambda d: d["services"]["db"]["healthcheck"].__setitem__("every", "10s"), id="healthcheck-key"),
        pytest.param(
            lambda d: d["services"]["proxy"]["depends_on"]["server-1"].__setitem__("condition", "service_ready"),
            id="depends-on-condition",
        ),
        pytest.param(lambda d: d["services"]["broker"].__setitem__("volumes", "mosquitto-data"), id="volumes-string"),
    ],
)
def test_a_broken_compose_file_is_refused(breakage):
    document = copy.deepcopy(load_compose())
    breakage(document)
    assert schema_errors(document), "the schema accepted a broken compose file"


def test_every_long_running_service_has_a_health_check():
    compose = load_compose()
    for name, service in compose["services"].items():
        if one_shot(name, compose):
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    servers = [s for s in compose["services"].values() if s.get("command", [None, None])[:2] == ["bcast", "server"]]
    assert len(servers) == 2
    for server in servers:
        assert any("/api/v1/health" in part for part in server["healthcheck"]["test"])


def test_every_bcast_variable_is_a_setting_the_code_reads():
    from broadcast_server.health.config import HealthSettings
    from broadcast_server.settings import Settings

    known = {f"BCAST_{name.upper()}" for name in Settings.model_fields}
    known |= {f"BCAST_HEALTH_{name.upper()}" for name in HealthSettings.model_fields}
    used = {
        key
        for service in load_compose()["services"].values()
        for key in (service.get("environment") or {})
        if key.startswith("BCAST_")
    }
    assert used, "compose.yaml sets no BCAST_* variable"
    assert used - known == set(), f"not read by the code: {sorted(used - known)}"
    assert {"BCAST_DATABASE_URL", "BCAST_AUDIO_DIR", "BCAST_MQTT_HOST", "BCAST_PUBLIC_URL"} <= used


def test_replicas_have_their_own_mqtt_session():
    servers = {k: v for k, v in load_compose()["services"].items() if k.startswith("server-")}
    ids = [s["environment"]["BCAST_MQTT_CLIENT_ID"] for s in servers.values()]
    assert len(ids) == len(set(ids)) == 2


def test_volumes_are_declared_used_and_bind_mounts_exist():
    compose = load_compose()
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith(("./", "/", "${")):
                if source.startswith("./"):
                    assert (DOCKER / source).exists(), f"{name} mounts {source}, which is not in docker/"
                continue
            assert source in declared, f"{name} uses volume {source!r}, not declared"
            used.add(source)
    assert declared - used == set(), f"declared but unused: {sorted(declared - used)}"
    assert {"pgdata", "audio"} <= used
    backup = compose["services"]["backup"]
    assert "audio:/data/audio:ro" in backup["volumes"]


def test_every_interpolated_variable_is_in_the_env_example():
    text = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    needed = set(INTERPOLATION.findall(text))
    example = {
        line.split("=", 1)[0].strip()
        for line in (DOCKER / ".env.example").read_text(encoding="utf-8").splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    assert needed - example == set(), f"missing from docker/.env.example: {sorted(needed - example)}"


def test_the_proxy_sends_traffic_to_every_replica():
    compose = load_compose()
    caddyfile = (DOCKER / "Caddyfile").read_text(encoding="utf-8")
    upstreams = re.search(r"reverse_proxy\s+([^{]+)\{", caddyfile).group(1).split()
    replicas = sorted(
        f"{k}:8000" for k, v in compose["services"].items() if v.get("command", [])[:2] == ["bcast", "server"]
    )
    assert sorted(upstreams) == replicas
    assert "health_uri /api/v1/health" in caddyfile


def test_the_dockerfile_copies_every_package_the_project_installs():
    dockerfile = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")}
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    for pattern in packages["find"]["include"]:
        assert pattern.rstrip("*") in copied, f"the Dockerfile does not copy {pattern}"
    for source in copied:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
    assert re.search(r"^FROM \S+", dockerfile, re.M) and re.search(r"^CMD \[", dockerfile, re.M)
