"""Root of the `bcast` command line.

Each capability owns its sub-command module; those modules import only Typer at import time and load
their heavy dependencies inside the command, so `bcast agent` works on a device without the server's
packages installed.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="bcast",
    help="Hệ thống điều khiển truyền thanh cơ sở ứng dụng CNTT-VT (cụm loa thông minh).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

# (module, attribute, sub-command name or None to merge its commands at the top level)
_SUBCOMMANDS: list[tuple[str, str, str | None]] = [
    ("broadcast_server.cli", "app", None),  # fleet import
    ("broadcast_server.server_cli", "app", None),  # server
    ("broadcast_server.report_cli", "app", None),  # report coverage
    ("broadcast_server.schedule_cli", "app", None),  # schedule apply, export, preview
    ("broadcast_server.accounts_cli", "app", None),  # user add/list, token create/revoke
    ("broadcast_server.broker_auth.cli", "app", None),  # broker write-files, enrol-token, revoke
    ("broadcast_server.keys_cli", "app", None),  # keys generate, show-public, rotate, push
    ("speaker_agent.cli", "app", None),  # agent
    ("firmware_sim.cli", "app", "sim"),
    ("audio.cli", "tts_app", "tts"),
    ("audio.cli", "audio_app", "audio"),
    ("bcast.demo_cli", "app", None),  # demo
    ("bcast.bench_cli", "app", None),  # bench (the suite in bench/, from a source checkout)
]


def _register() -> None:
    for module_name, attribute, name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A device install lacks the server's packages: keep the commands that can run.
            if exc.name and exc.name.split(".")[0] in {m.split(".")[0] for m, _, _ in _SUBCOMMANDS}:
                raise
            continue
        sub = getattr(module, attribute)
        if name is None:
            for command in sub.registered_commands:
                app.registered_commands.append(command)
            for group in sub.registered_groups:
                app.registered_groups.append(group)
        else:
            app.add_typer(sub, name=name)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
