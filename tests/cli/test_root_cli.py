"""The root `bcast` command: each command name loads only the module that owns it, help lists them all, and
`bcast agent --config FILE` (the device's service) runs without Typer, httpx or cryptography (issue 9)."""

from __future__ import annotations

import importlib
import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bcast import cli

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("typer", "pydantic", "httpx", "anyio", "cryptography", "rich", "yaml", "broadcast_server", "firmware_sim")


def test_the_table_names_what_each_module_registers() -> None:
    for module_name, attribute, name, names in cli._SUBCOMMANDS:
        sub = getattr(importlib.import_module(module_name), attribute)
        if name is not None:
            registered = (name,)
        else:
            registered = tuple(
                [c.name or c.callback.__name__.replace("_", "-") for c in sub.registered_commands]
                + [g.name for g in sub.registered_groups]
            )
        assert registered == names, module_name


def test_help_lists_every_command() -> None:
    done = subprocess.run([sys.executable, "-m", "bcast", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    listed = {line.split()[1] for line in done.stdout.splitlines() if line.startswith("│ ") and len(line.split()) > 1}
    every = {n for _, _, _, names in cli._SUBCOMMANDS for n in names}
    assert every <= listed, every - listed
    full = cli.app  # what the tests drive: every command too
    names = {c.name for c in full.registered_commands} | {g.name for g in full.registered_groups}
    assert every == names


def test_a_command_loads_only_its_module() -> None:
    code = """
        import json, sys
        from bcast.cli import build_app
        app = build_app(sys.argv[1:])
        names = sorted({c.name for c in app.registered_commands} | {g.name for g in app.registered_groups})
        print(json.dumps({"names": names, "loaded": sorted({m.split(".")[0] for m in sys.modules})}))
    """
    for argv, expected in (
        (["agent", "--help"], ["agent"]),
        (["sim", "run"], ["sim"]),
        (["user", "list"], ["token", "user"]),
    ):
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *argv], cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout)
        assert seen["names"] == expected
        if argv[0] == "agent":
            assert not {"broadcast_server", "firmware_sim", "yaml"} & set(seen["loaded"])
    # An unknown name, options alone, nothing: everything, so the error or the help can list every command.
    for argv in (["nonsense"], ["--help"], []):
        assert cli._wanted(argv) == cli._SUBCOMMANDS


@pytest.mark.parametrize("name", ["server", "demo", "bench", "agent", "sim", "fleet"])
def test_a_command_alone_is_still_a_sub_command(name) -> None:
    """`bcast server` loads one module holding one command: Typer must not make it the root."""
    done = subprocess.run([sys.executable, "-m", "bcast", name, "--help"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"bcast {name} [OPTIONS]" in done.stdout


def test_agent_help_and_a_bad_config_still_go_through_the_command_line(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "bcast", "agent", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and "enrol" in done.stdout and "--config" in done.stdout
    missing = tmp_path / "missing.toml"
    for args in (["--config", str(missing)], ["-c", str(missing)], [f"--config={missing}"]):
        direct = subprocess.run(
            [sys.executable, "-m", "bcast", "agent", *args], cwd=ROOT, capture_output=True, text=True
        )
        assert direct.returncode == 2 and "Lỗi cấu hình: cannot read" in direct.stderr, args
    # The same refusal through Typer (the path of Typer's test runner, and of any other agent arguments).
    result = CliRunner().invoke(cli.app, ["agent", "--config", str(missing)])
    assert result.exit_code == 2 and "Lỗi cấu hình: cannot read" in result.output
    result = CliRunner().invoke(cli.app, ["agent"])
    assert result.exit_code == 2 and "Thiếu --config" in result.output


def test_the_running_agent_carries_no_cli_framework_http_library_or_cryptography(tmp_path) -> None:
    """`bcast agent --config FILE` up and retrying a broker that is not there: what it has imported."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "agent.toml"
    config.write_text(
        f'cluster_id = "c-1"\ndata_dir = "{tmp_path / "data"}"\nmqtt_port = {port}\nplayer = "simulated"\n'
        'trusted_keys = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"\n'
    )
    report = tmp_path / "modules.json"
    code = f"""
        import atexit, json, sys
        atexit.register(lambda: open({str(report)!r}, "w").write(json.dumps(sorted(sys.modules))))
        sys.argv = ["bcast", "agent", "--config", {str(config)!r}]
        from bcast.cli import main
        main()
    """
    agent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "data" / "state.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # a connection attempt or two, and its failure, are behind it
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode == 0, stderr
    loaded = {m.split(".")[0] for m in json.loads(report.read_text())}
    assert {"speaker_agent", "paho", "nacl", "fastjsonschema"} <= loaded
    assert not set(HEAVY) & loaded, set(HEAVY) & loaded


@pytest.mark.parametrize(
    "args",
    [["--config", "a.toml"], ["-c", "a.toml"], ["--config=a.toml"]],
)
def test_the_device_form_is_recognised(args) -> None:
    from speaker_agent.runner import config_argument

    assert config_argument(args) == Path("a.toml")


@pytest.mark.parametrize(
    "args",
    [[], ["--config"], ["--config="], ["--config", "a.toml", "--help"], ["--help"], ["enrol"], ["-c", "-x"]],
)
def test_anything_else_goes_to_typer(args) -> None:
    from speaker_agent.runner import config_argument

    assert config_argument(args) is None
