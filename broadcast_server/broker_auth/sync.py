"""Bring the broker in line with the database: rewrite its password and ACL files, then make it reload.

Writers take a lock file beside the password file, read the accounts, write both files and commit while
holding it, so two servers or a server and a CLI never leave the broker with the older of two states.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session

from broadcast_server.broker_auth.atomic_file import write_atomically
from broadcast_server.broker_auth.broker_files import render_acl, render_password_file
from broadcast_server.broker_auth.credentials import broker_accounts
from broadcast_server.broker_auth.reload import BrokerReloader
from broadcast_server.settings import Settings
from mqtt_contract import Topics

log = logging.getLogger(__name__)


class BrokerFilesNotConfigured(RuntimeError):
    """The server does not know where the broker's password and ACL files are."""


@dataclass(frozen=True)
class BrokerFiles:
    """Where the broker reads its accounts, under which topic root, and how to make it reload."""

    password_file: Path
    acl_file: Path
    topics: Topics
    reloader: BrokerReloader

    @classmethod
    def from_settings(
        cls, settings: Settings, *, password_file: Path | None = None, acl_file: Path | None = None
    ) -> BrokerFiles:
        password_file = password_file or settings.broker_password_file
        acl_file = acl_file or settings.broker_acl_file
        if password_file is None or acl_file is None:
            raise BrokerFilesNotConfigured(
                "the broker's password and ACL files are not configured"
                " (BCAST_BROKER_PASSWORD_FILE, BCAST_BROKER_ACL_FILE)"
            )
        return cls(
            Path(password_file),
            Path(acl_file),
            Topics(settings.topic_root),
            BrokerReloader(settings.broker_reload_command, settings.broker_pid_file),
        )

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        lock_path = self.password_file.parent / f".{self.password_file.name}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+b") as handle:
            try:
                import fcntl
            except ImportError:  # not POSIX: one writer at a time is then the operator's business
                yield
                return
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class SyncResult:
    accounts: int  # lines in the password file
    reloaded: bool  # False: no reload command or pid file configured, the broker still has the old files


def sync_broker(session: Session, files: BrokerFiles, *, reload: bool = True) -> SyncResult:
    """Write both files from the session's view (its pending changes included), commit, then reload.

    If writing fails nothing is committed; if the reload fails (BrokerReloadError) the change is stored
    and the files are written, so the next reload of the broker applies it."""
    with files.locked():
        accounts = broker_accounts(session)
        write_atomically(files.acl_file, render_acl(accounts, files.topics))
        write_atomically(files.password_file, render_password_file(accounts))
        session.commit()
    log.info("broker files written: %d accounts in %s", len(accounts), files.password_file)
    reloaded = files.reloader.reload() if reload else False
    return SyncResult(len(accounts), reloaded)
