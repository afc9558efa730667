"""How a text is read out, through the API: the voices offered, a voice and speed kept on the bulletin, an
edit that keeps or changes them, and the speeds refused."""

from __future__ import annotations

from sqlmodel import Session

from broadcast_server.models import AudioAsset

TEXT = "Xã tổ chức ra quân dọn vệ sinh môi trường vào sáng Chủ nhật, ngày 6/12/2026."


def test_voices_are_listed_and_a_bulletin_keeps_its_voice_and_speed(client, world) -> None:
    me = world.headers("phatthanh-bt")
    offered = client.get("/api/v1/bulletins/voices", headers=me).json()
    assert offered["engine"] == "espeak-ng" and (offered["min_rate_wpm"], offered["max_rate_wpm"]) == (80, 300)
    assert [(v["id"], v["default"]) for v in offered["voices"]] == [
        ("vi", True),
        ("vi-vn-x-central", False),
        ("vi-vn-x-south", False),
    ]
    assert offered["voices"][1]["label"] == "giọng nam miền Trung"

    made = client.post(
        "/api/v1/bulletins",
        json={"title": "Vệ sinh môi trường", "text": TEXT, "voice": "vi-vn-x-central", "rate_wpm": 150},
        headers=me,
    )
    assert made.status_code == 201, made.text
    bulletin = made.json()
    assert (bulletin["voice"], bulletin["rate_wpm"]) == ("vi-vn-x-central", 150)
    plain = client.post("/api/v1/bulletins", json={"title": "Mặc định", "text": TEXT}, headers=me).json()
    assert (plain["voice"], plain["rate_wpm"]) == ("vi", None)  # the server's BCAST_TTS_VOICE, the engine's speed
    assert plain["audio_asset_id"] != bulletin["audio_asset_id"]

    url = f"/api/v1/bulletins/{bulletin['id']}"
    retitled = client.patch(url, json={"title": "Dọn vệ sinh"}, headers=me).json()
    assert (retitled["voice"], retitled["rate_wpm"], retitled["audio_asset_id"]) == (
        "vi-vn-x-central",
        150,
        bulletin["audio_asset_id"],
    )
    engine_speed = client.patch(url, json={"rate_wpm": None}, headers=me).json()
    assert (engine_speed["voice"], engine_speed["rate_wpm"]) == ("vi-vn-x-central", None)
    with Session(world.engine) as session:  # 150 words a minute took longer than the engine's 175
        assert (
            session.get(AudioAsset, bulletin["audio_asset_id"]).duration_s
            > session.get(AudioAsset, engine_speed["audio_asset_id"]).duration_s
        )


def test_a_speed_or_voice_out_of_bounds_is_refused_and_nothing_changes(client, world) -> None:
    me = world.headers("phatthanh-bt")
    for body in ({"rate_wpm": 500}, {"rate_wpm": 40}, {"voice": "EN US"}):
        refused = client.post("/api/v1/bulletins", json={"title": "x", "text": TEXT, **body}, headers=me)
        assert refused.status_code == 422, body
    unknown = client.post("/api/v1/bulletins", json={"title": "x", "text": TEXT, "voice": "en-us"}, headers=me)
    assert unknown.status_code == 422 and "unknown voice 'en-us'" in unknown.json()["detail"]
    made = client.post("/api/v1/bulletins", json={"title": "x", "text": TEXT, "rate_wpm": 200}, headers=me).json()
    refused = client.patch(f"/api/v1/bulletins/{made['id']}", json={"rate_wpm": 301}, headers=me)
    assert refused.status_code == 422
    kept = client.get(f"/api/v1/bulletins/{made['id']}", headers=me).json()
    assert (kept["rate_wpm"], kept["audio_asset_id"]) == (200, made["audio_asset_id"])
