"""Root of the `bcast` command line.

Each capability owns its sub-command module; those modules import only Typer at import time and load
their heavy dependencies inside the command, so `bcast agent` works on a device without the server's
packages installed.

`bcast NAME ...` imports only the module that owns NAME (`bcast agent` on a device carries neither the
simulator nor the server's command modules: issue 9, the agent under 40 MB resident); `bcast`, `bcast
--help`, completion and an unknown name load them all, so help lists every command. `app` (what the
tests drive with Typer's runner) is the root with every sub-command.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

HELP = "Hệ thống điều khiển truyền thanh cơ sở ứng dụng CNTT-VT (cụm loa thông minh)."

# (module, attribute, sub-command name or None to merge its commands at the top level, the top-level names
# it brings; tests/cli/test_root_cli.py checks these names against what the modules register)
_SUBCOMMANDS: list[tuple[str, str, str | None, tuple[str, ...]]] = [
    ("broadcast_server.cli", "app", None, ("fleet",)),  # fleet import
    ("broadcast_server.server_cli", "app", None, ("server",)),  # server
    ("broadcast_server.report_cli", "app", None, ("report",)),  # report coverage
    ("broadcast_server.schedule_cli", "app", None, ("schedule",)),  # schedule apply, export, preview
    ("broadcast_server.accounts_cli", "app", None, ("user", "token")),  # user add/list, token create/revoke
    ("broadcast_server.broker_auth.cli", "app", None, ("broker",)),  # broker write-files, enrol-token, revoke
    ("broadcast_server.keys_cli", "app", None, ("keys",)),  # keys generate, show-public, rotate, push
    ("speaker_agent.cli", "app", None, ("agent",)),  # agent
    ("firmware_sim.cli", "app", "sim", ("sim",)),
    ("audio.cli", "tts_app", "tts", ("tts",)),
    ("audio.cli", "audio_app", "audio", ("audio",)),
    ("bcast.demo_cli", "app", None, ("demo",)),  # demo
    ("bcast.bench_cli", "app", None, ("bench",)),  # bench (the suite in bench/, from a source checkout)
]


def _wanted(argv: list[str] | None) -> list[tuple[str, str, str | None, tuple[str, ...]]]:
    """The sub-command modules `argv` needs: the owner of the command it names, else all of them."""
    if argv is not None:
        name = next((arg for arg in argv if not arg.startswith("-")), None)
        owners = [entry for entry in _SUBCOMMANDS if name in entry[3]]
        if owners:
            return owners
    return _SUBCOMMANDS


def build_app(argv: list[str] | None = None) -> typer.Typer:
    """The root command with the sub-commands `argv` (the arguments after `bcast`) needs; None: all of them."""
    import typer

    root = typer.Typer(name="bcast", help=HELP, no_args_is_help=True, rich_markup_mode="rich")
    # A callback keeps the root a group when it holds a single command (`bcast server` loads only that
    # one): Typer would otherwise make that command the root itself and refuse its name as an argument.
    root.callback()(_root)
    packages = {m.split(".")[0] for m, _, _, _ in _SUBCOMMANDS}
    for module_name, attribute, name, _ in _wanted(argv):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A device install lacks the server's packages: keep the commands that can run.
            if exc.name and exc.name.split(".")[0] in packages:
                raise
            continue
        sub = getattr(module, attribute)
        if name is None:
            for command in sub.registered_commands:
                root.registered_commands.append(command)
            for group in sub.registered_groups:
                root.registered_groups.append(group)
        else:
            root.add_typer(sub, name=name)
    return root


def _root() -> None:
    pass


_full_app: typer.Typer | None = None


def __getattr__(name: str) -> Any:
    """`app`: the root with every sub-command, built on first use (`from bcast.cli import app`)."""
    global _full_app
    if name == "app":
        if _full_app is None:
            _full_app = build_app()
        return _full_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["agent"]:
        # The device's service, `bcast agent --config FILE`, runs without Typer (see speaker_agent/runner.py);
        # any other agent arguments (--help, enrol, mistakes) go through the command line below.
        from speaker_agent.runner import config_argument

        config = config_argument(argv[1:])
        if config is not None:
            from speaker_agent.runner import main as run_agent

            sys.exit(run_agent(config))
    build_app(argv)()


if __name__ == "__main__":
    main()
