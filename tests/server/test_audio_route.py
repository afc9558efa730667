"""The audio route under an emergency's load (issue 9): one lookup for a crowd of first requests, then the
file from memory (same bytes and headers as from disk), and everything else still through the route."""

from __future__ import annotations

import asyncio
import hashlib
import time

import httpx
import pytest
from starlette.responses import FileResponse

from broadcast_server.api import routes_audio
from broadcast_server.models import AudioAsset
from broadcast_server.settings import Settings
from broadcast_server.signing.audio_tokens import authorised_url
from broadcast_server.signing.keyring import load_or_create_keyring

DATA = b"ID3" + bytes(range(256)) * 40


@pytest.fixture
def served(engine, database_url, tmp_path):
    """(app, runtime, path of the file, URL with a valid token) for one stored asset."""
    from broadcast_server.api.app import create_app
    from broadcast_server.db.session import session_scope
    from broadcast_server.runtime import Runtime

    sha = hashlib.sha256(DATA).hexdigest()
    (tmp_path / "audio").mkdir()
    path = tmp_path / "audio" / f"{sha}.mp3"
    path.write_bytes(DATA)
    with session_scope(engine) as session:
        session.add(AudioAsset(id=sha, size_bytes=len(DATA), duration_s=1.0, storage_key=f"{sha}.mp3"))
    settings = Settings(database_url=database_url, audio_dir=tmp_path / "audio", signing_key_file=tmp_path / "k.json")
    secret = load_or_create_keyring(settings.signing_key_file).audio_token_secret
    runtime = Runtime.from_settings(settings, engine=engine)
    app = create_app(runtime, manage_runtime=False)
    url = authorised_url(f"http://testserver/api/v1/audio/{sha}", sha, int(time.time()) + 600, secret)
    return app, runtime, path, url


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_a_crowd_of_first_downloads_looks_the_asset_up_once(served, monkeypatch) -> None:
    app, runtime, path, url = served
    real, calls = routes_audio._locate, []

    def slow_locate(*args):
        calls.append(args[1])
        time.sleep(0.2)  # the database is slow: every request of the crowd arrives meanwhile
        return real(*args)

    monkeypatch.setattr(routes_audio, "_locate", slow_locate)
    async with _client(app) as client:
        answers = await asyncio.gather(*(client.get(url) for _ in range(40)))
    assert [a.status_code for a in answers] == [200] * 40
    assert all(a.content == DATA for a in answers)
    assert len(calls) == 1


async def test_memory_answers_like_the_file_and_the_rest_goes_to_the_route(served) -> None:
    from broadcast_server.api.deps import get_runtime

    app, runtime, path, url = served
    routed = []

    async def counted_runtime():
        routed.append(1)
        return runtime

    app.dependency_overrides[get_runtime] = counted_runtime  # counts the requests that reach the route
    on_disk = FileResponse(path, media_type="audio/mpeg", stat_result=path.stat()).headers
    async with _client(app) as client:
        first = await client.get(url)  # looks the asset up through the route, keeps the bytes
        assert first.status_code == 200 and first.content == DATA and len(routed) == 1
        again = await client.get(url)  # answered from memory, before the route
        assert again.status_code == 200 and again.content == DATA and len(routed) == 1
        for answer in (first, again):
            for name in ("content-length", "content-type", "etag", "last-modified", "accept-ranges"):
                assert answer.headers[name] == on_disk[name], name
            assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"

        # A resumed download (Range) is the route's, from the file on disk.
        resumed = await client.get(url, headers={"Range": "bytes=1000-"})
        assert resumed.status_code == 206 and resumed.content == DATA[1000:] and len(routed) == 2
        # A bad token is refused by the route, even for a file in memory.
        forged = url.replace("tok=", "tok=x")
        refused = await client.get(forged)
        assert refused.status_code == 403 and refused.content != DATA and len(routed) == 3
        no_token = await client.get(url.split("?")[0])
        assert no_token.status_code == 403 and len(routed) == 4
    stored = runtime.audio_files[path.stem]
    assert isinstance(stored, routes_audio.StoredAudio) and stored.body == DATA


async def test_a_file_too_large_for_memory_is_sent_from_disk(served, monkeypatch) -> None:
    app, runtime, path, url = served
    monkeypatch.setattr(routes_audio, "MEMORY_FILE_MAX", len(DATA) - 1)
    async with _client(app) as client:
        for _ in range(2):
            answer = await client.get(url)
            assert answer.status_code == 200 and answer.content == DATA
    assert runtime.audio_files[path.stem].body is None


async def test_an_unknown_asset_is_404_and_not_remembered(served) -> None:
    app, runtime, path, url = served
    sha = "0" * 64
    secret = load_or_create_keyring(runtime.settings.signing_key_file).audio_token_secret
    unknown = authorised_url(f"http://testserver/api/v1/audio/{sha}", sha, int(time.time()) + 600, secret)
    async with _client(app) as client:
        assert (await client.get(unknown)).status_code == 404
    assert sha not in runtime.audio_files


async def test_a_changed_token_secret_is_never_refused_and_the_old_one_ends(served, monkeypatch) -> None:
    """The in-memory answer keeps the secret it read for SECRET_RECHECK_S; what it refuses goes to the route,
    which reads the key file each time: a new secret's token is served at once, an old one ends with the wait."""
    from types import SimpleNamespace

    from broadcast_server.api.deps import get_runtime
    from broadcast_server.signing.command_signer import ServerCommandSigner
    from broadcast_server.signing.keyring import generate_keyring, save_keyring

    app, runtime, path, url = served
    key_file = runtime.settings.signing_key_file
    runtime.bus = SimpleNamespace(signer=ServerCommandSigner(key_file))  # the key file as the running server reads it
    routed = []

    async def counted_runtime():
        routed.append(1)
        return runtime

    app.dependency_overrides[get_runtime] = counted_runtime
    monkeypatch.setattr(routes_audio, "SECRET_RECHECK_S", 3600.0)
    async with _client(app) as client:
        assert (await client.get(url)).status_code == 200 and len(routed) == 1  # the route looks the file up
        assert (await client.get(url)).status_code == 200 and len(routed) == 1  # from memory, secret kept

        fresh = generate_keyring()
        save_keyring(key_file, fresh)
        sha = path.stem
        new_url = authorised_url(
            f"http://testserver/api/v1/audio/{sha}", sha, int(time.time()) + 600, fresh.audio_token_secret
        )
        answer = await client.get(new_url)  # refused by the kept secret, served by the route
        assert answer.status_code == 200 and answer.content == DATA and len(routed) == 2

        monkeypatch.setattr(routes_audio, "SECRET_RECHECK_S", 0.0)  # the wait is over
        assert (await client.get(new_url)).status_code == 200 and len(routed) == 2  # from memory again
        old = await client.get(url)
        assert old.status_code == 403 and len(routed) == 3
