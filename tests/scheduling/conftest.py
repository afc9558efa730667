"""Fixtures of the scheduling tests: the Bình Sơn fleet, schedule files applied as the CLI does, snapshots.

Speech: applying a schedule synthesises (espeak-ng, cached by text) and then renders every text item with
ffmpeg's two-pass loudness normalisation, which is not cached and costs over a second per item of the
example week. `_speech_once` renders each distinct text for real once per test session and hands out the
same file afterwards; `test_rendering_is_deterministic` (test_apply_export_preview.py) checks with the real
renderer that this is what rendering the same text again gives anyway.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINH_SON_CSV = ROOT / "bcast" / "data" / "binh-son.csv"
EXAMPLE_WEEK = ROOT / "schedules" / "example-week.yaml"
PUBLIC_URL = "http://bcast.test:8000"
# Friday before the example week (which starts on Monday 2026-11-23): conflicts are looked for from there.
APPLY_NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def _speech_memo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    return {}, tmp_path_factory.mktemp("rendered-speech")


@pytest.fixture(autouse=True)
def _speech_once(_speech_memo: tuple[dict, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import audio.speech

    memo, store = _speech_memo
    real = audio.speech.text_to_broadcast_audio

    def once(
        text: str, out_dir: Path, *, voice=None, engine=None, rate_wpm=None, target_lufs: float = -16.0, cache=None
    ):
        key = (text, voice, engine if isinstance(engine, str | None) else id(engine), rate_wpm, target_lufs)
        if key not in memo:
            result = real(
                text, store, voice=voice, engine=engine, rate_wpm=rate_wpm, target_lufs=target_lufs, cache=cache
            )
            memo[key] = result
        result = memo[key]
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        final = out_dir / result.path.name
        if not final.exists():
            shutil.copyfile(result.path, final)
        return dataclasses.replace(result, path=final)

    monkeypatch.setattr(audio.speech, "text_to_broadcast_audio", once)


@pytest.fixture
def public_url() -> str:
    return PUBLIC_URL


@pytest.fixture
def example_week() -> str:
    return EXAMPLE_WEEK.read_text(encoding="utf-8")


@pytest.fixture
def fleet(engine):
    """The engine, with the Bình Sơn fleet imported (duplicate ids renamed, as the demo does)."""
    from broadcast_server.domain.fleet import parse_fleet
    from broadcast_server.services.fleet_import import import_fleet

    parsed = parse_fleet(BINH_SON_CSV.read_text(encoding="utf-8"), rename_duplicates=True)
    assert parsed.renamed, "the Bình Sơn file has repeated ids (Bình Thanh / Bình Thạnh)"
    import_fleet(engine, parsed.rows)
    return engine


@pytest.fixture
def audio_dir(tmp_path: Path) -> Path:
    return tmp_path / "audio"


@pytest.fixture
def files_dir(tmp_path: Path) -> Path:
    """Where schedule files of a test lie (their audio_file paths are relative to it)."""
    path = tmp_path / "schedules"
    path.mkdir()
    return path


@pytest.fixture
def apply(fleet, audio_dir: Path, files_dir: Path):
    """apply(yaml_text, **options): parse and apply in one unit of work, as `bcast schedule apply` does."""
    from broadcast_server.db.session import session_scope
    from broadcast_server.scheduling.apply import ApplyResult, apply_schedule
    from broadcast_server.scheduling.schedule_file import parse_schedule_yaml

    def run(text: str, **options) -> ApplyResult:
        options.setdefault("now", APPLY_NOW)
        spec = parse_schedule_yaml(text)
        with session_scope(fleet) as session:
            return apply_schedule(
                session, spec, audio_dir=audio_dir, base_dir=files_dir, public_url=PUBLIC_URL, **options
            )

    return run


@pytest.fixture
def clusters_of(fleet) -> Callable[..., list[str]]:
    """clusters_of('Xã Bình Hải', ...): ids of the clusters in those communes (of Bình Sơn), sorted."""
    from sqlmodel import select

    from broadcast_server.db.session import session_scope
    from broadcast_server.models import AdminUnit, Cluster

    def find(*communes: str) -> list[str]:
        with session_scope(fleet) as session:
            units = {u.id: u for u in session.exec(select(AdminUnit))}
            found = []
            for cluster in session.exec(select(Cluster)):
                unit = units[cluster.unit_id]
                while unit is not None and unit.name not in communes:
                    unit = units.get(unit.parent_id) if unit.parent_id is not None else None
                if unit is not None:
                    found.append(cluster.id)
        return sorted(found)

    return find


@pytest.fixture
def tone(files_dir: Path) -> Callable[..., str]:
    """tone('am-thanh/nhac-hieu.wav', seconds): a short real recording under files_dir, by relative path."""
    import subprocess

    def make(relative: str, seconds: float = 1.0) -> str:
        path = files_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=660:duration={seconds}", str(path)],
            check=True,
        )
        return relative

    return make


LY_SON = "ly-son-dong-001"


@pytest.fixture
def world(fleet, apply, example_week):
    """The Bình Sơn fleet, one more cluster elsewhere (Lý Sơn, which no slot targets), the example week applied."""
    from broadcast_server.domain.fleet import parse_fleet_csv
    from broadcast_server.services.fleet_import import import_fleet

    import_fleet(
        fleet,
        parse_fleet_csv(
            "cluster_id,province,district,commune,village,lat,lon\n"
            f"{LY_SON},Quảng Ngãi,Lý Sơn,,Thôn Đông,15.38,109.12\n"
        ),
    )
    apply(example_week)
    return fleet


@pytest.fixture
def api(fleet, database_url):
    """An API client on this test's database, signed in as the admin; `bearer()` gives other accounts' headers."""
    from fastapi.testclient import TestClient

    from bcast.demo import admin_headers
    from broadcast_server.api.app import create_app
    from broadcast_server.runtime import Runtime
    from broadcast_server.settings import Settings

    runtime = Runtime.from_settings(Settings(database_url=database_url), engine=fleet)
    with TestClient(create_app(runtime, manage_runtime=False), headers=admin_headers(fleet)) as client:
        yield client


def bearer(engine, username: str, unit: str, role: str = "approver") -> dict[str, str]:
    """Authorization header of a new account of `role` limited to the unit named `unit` (e.g. 'Xã Bình Hải')."""
    from sqlmodel import select

    from broadcast_server.accounts.service import create_user, issue_token
    from broadcast_server.db.session import session_scope
    from broadcast_server.models import AdminUnit

    with session_scope(engine) as session:
        unit_id = session.exec(select(AdminUnit.id).where(AdminUnit.name == unit)).one()
        user = create_user(session, username=username, password="mat-khau-dai-du-16", role=role, scope_unit_id=unit_id)
        token, _ = issue_token(session, user.id, name="api")
    return {"Authorization": f"Bearer {token}"}
