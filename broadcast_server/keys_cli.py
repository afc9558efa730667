"""`bcast keys ...`: the server's command signing keys: make them, show the public keys, rotate them.

Only Typer is imported at import time (see bcast/cli.py); each command imports what it needs.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, rich_markup_mode="rich")
keys_app = typer.Typer(
    help="Khóa ký lệnh của máy chủ (Ed25519): tạo, xem khóa công khai, thay khóa qua mạng.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

EXIT_REFUSED = 2

_FILE = typer.Option(None, "--file", help="Tệp khóa (mặc định: BCAST_SIGNING_KEY_FILE).")
_DATABASE = typer.Option(None, "--database-url", help="Cơ sở dữ liệu (mặc định: BCAST_DATABASE_URL).")


class Step(StrEnum):
    add = "add"
    switch = "switch"
    retire = "retire"


def _fail(message: str) -> typer.Exit:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[bold red]Lỗi:[/] {escape(message)}")
    return typer.Exit(EXIT_REFUSED)


def _path(file: Path | None) -> Path:
    from broadcast_server.settings import get_settings

    return Path(file) if file is not None else get_settings().signing_key_file


def _show(keyring) -> None:
    from rich.console import Console
    from rich.table import Table

    labels = {"active": "đang ký", "next": "khóa kế tiếp", "previous": "khóa cũ (chờ thu hồi)"}
    table = Table("Mã khóa", "Trạng thái", "Tạo lúc", "Khóa công khai")
    for key in keyring.keys:
        table.add_row(key.kid, labels[key.state], key.created_at, key.public_key)
    console = Console()
    console.print(table)
    console.print("Dòng cấu hình cho agent.toml của mỗi cụm loa:")
    console.print(f'trusted_keys = "{" ".join(keyring.trusted_public_keys)}"', markup=False, soft_wrap=True)


@keys_app.command("generate")
def generate(file: Path | None = _FILE) -> None:
    """Tạo tệp khóa ký lệnh (quyền 0600); không ghi đè tệp đã có."""
    from broadcast_server.signing.keyring import generate_keyring, save_keyring

    path = _path(file)
    keyring = generate_keyring()
    try:
        save_keyring(path, keyring, exclusive=True)
    except FileExistsError:
        raise _fail(f"{path} đã có; dùng 'bcast keys rotate' để thay khóa") from None
    typer.echo(f"Đã tạo khóa ký lệnh {keyring.active.kid} trong {path}.")
    _show(keyring)


@keys_app.command("show-public")
def show_public(file: Path | None = _FILE) -> None:
    """In các khóa công khai mà cụm loa phải tin (dòng trusted_keys cho agent.toml)."""
    from broadcast_server.signing.keyring import KeyringError, load_keyring

    try:
        _show(load_keyring(_path(file)))
    except KeyringError as exc:
        raise _fail(str(exc)) from None


@keys_app.command("rotate")
def rotate(
    step: Step = typer.Argument(
        ...,
        help="add: tạo khóa kế tiếp và gửi bộ khóa tới các cụm; switch: ký bằng khóa kế tiếp; "
        "retire: thu hồi khóa cũ và gửi bộ khóa mới.",
    ),
    file: Path | None = _FILE,
    database_url: str | None = _DATABASE,
    push: bool = typer.Option(True, "--push/--no-push", help="Gửi bộ khóa tới mọi cụm loa qua MQTT (add, retire)."),
    force: bool = typer.Option(False, "--force", help="switch: chuyển dù còn cụm chưa nhận bộ khóa."),
) -> None:
    """Thay khóa ký lệnh qua mạng, ba bước: add -> switch -> retire."""
    from datetime import UTC, datetime

    from broadcast_server.db.open import open_database
    from broadcast_server.signing.key_push import clusters_missing_key_set
    from broadcast_server.signing.keyring import KeyringError, load_keyring, save_keyring

    path = _path(file)
    with open_database(database_url) as (settings, engine):
        try:
            keyring = load_keyring(path)
            if step is Step.switch:
                missing = clusters_missing_key_set(engine, keyring.trusted_public_keys)
                if missing and not force:
                    shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
                    raise _fail(
                        f"{len(missing)} cụm loa chưa nhận bộ khóa mới ({shown}); chúng sẽ từ chối lệnh ký bằng "
                        "khóa kế tiếp. Gửi lại: bcast keys push; hoặc dùng --force"
                    )
                changed = keyring.switched()
            elif step is Step.add:
                changed = keyring.with_next_key(datetime.now(UTC))
            else:
                changed = keyring.retired()
        except KeyringError as exc:
            raise _fail(str(exc)) from None
        save_keyring(path, changed)
        typer.echo(f"Đã lưu {path}; khóa đang ký: {changed.active.kid}.")
        if push and step is not Step.switch:
            _push(settings, engine, path, changed.trusted_public_keys)
    _show(changed)


@keys_app.command("push")
def push_command(
    file: Path | None = _FILE,
    database_url: str | None = _DATABASE,
) -> None:
    """Gửi lại bộ khóa hiện tại tới mọi cụm loa và cho biết cụm nào chưa nhận."""
    from broadcast_server.db.open import open_database
    from broadcast_server.signing.keyring import KeyringError, load_keyring

    path = _path(file)
    with open_database(database_url) as (settings, engine):
        try:
            keyring = load_keyring(path)
        except KeyringError as exc:
            raise _fail(str(exc)) from None
        _push(settings, engine, path, keyring.trusted_public_keys)


def _push(settings, engine, path: Path, public_keys: list[str]) -> None:
    from datetime import UTC, datetime

    from broadcast_server.messaging.mqtt_bus import BusError, MqttBus
    from broadcast_server.signing.key_push import clusters_missing_key_set, push_key_set

    # A throwaway clean session (no client id): the server keeps its own persistent one.
    bus = MqttBus.from_settings(settings.model_copy(update={"mqtt_client_id": None, "signing_key_file": path}))
    try:
        bus.start()
    except BusError as exc:
        raise _fail(f"không gửi được bộ khóa: {exc}; gửi lại sau bằng 'bcast keys push'") from None
    try:
        sent = push_key_set(engine, bus, public_keys, datetime.now(UTC))
    finally:
        bus.stop()
    missing = clusters_missing_key_set(engine, public_keys)
    typer.echo(f"Đã gửi bộ khóa tới {sent} cụm loa; {len(missing)} cụm chưa xác nhận (xem lại: bcast keys push).")
