"""Live relay (tiếp sóng) through the API: a relay bulletin is drafted, checked, approved, edited like any
other, and its broadcast sends each cluster a signed `play.stream` command over the real broker."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta, timezone

from sqlmodel import Session, select

from broadcast_server.models import Broadcast, Bulletin
from mqtt_contract import Channel, validate
from mqtt_contract.signing import trust, verify
from mqtt_contract.times import parse_time

STREAM = "https://radio.example.vn:8443/vov1.mp3"


def test_a_relay_is_drafted_approved_and_broadcast_as_a_signed_stream_play(client, world, runtime, broker) -> None:
    import paho.mqtt.client as mqtt

    me = world.headers("phatthanh-bt")
    made = client.post(
        "/api/v1/bulletins/relays",
        json={"title": "Tiếp sóng thời sự VOV1", "stream_url": STREAM, "duration_s": 1800, "category": "Thời sự"},
        headers=me,
    )
    assert made.status_code == 201, made.text
    relay = made.json()
    assert (relay["kind"], relay["stream_url"], relay["relay_duration_s"], relay["duration_s"]) == (
        "relay",
        STREAM,
        1800,
        1800,
    )
    assert (relay["status"], relay["audio_asset_id"], relay["text"]) == ("draft", None, None)
    url = f"/api/v1/bulletins/{relay['id']}"
    # A relay has no text to read; a text has no stream: each refused, nothing changed.
    assert client.patch(url, json={"text": "Nội dung"}, headers=me).status_code == 422
    edited = client.patch(url, json={"duration_s": 900, "title": "Thời sự trưa"}, headers=me)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["relay_duration_s"], edited.json()["stream_url"]) == (900, STREAM)
    # Not approved yet: it cannot go out.
    target = {"unit_ids": [world.units["Bình Thạnh"]]}
    early = client.post(
        "/api/v1/broadcasts", json={"bulletin_id": relay["id"], "target": target}, headers=world.headers("duyet-bt")
    )
    assert early.status_code == 422 and "not approved" in early.json()["detail"]
    assert client.post(f"{url}/submit", headers=me).status_code == 200
    assert client.post(f"{url}/approve", headers=world.headers("duyet-bt")).status_code == 200

    received: list[dict] = []
    subscribed, arrived = threading.Event(), threading.Event()
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="relay-listener")
    listener.on_subscribe = lambda *args: subscribed.set()

    def on_message(_client, _userdata, message) -> None:
        received.append(json.loads(message.payload))
        if len(received) >= 2:
            arrived.set()

    listener.on_message = on_message
    listener.connect(broker.host, broker.port)
    listener.subscribe("acct/v1/clusters/+/command", qos=1)
    listener.loop_start()
    try:
        assert subscribed.wait(10)
        sent = client.post(
            "/api/v1/broadcasts", json={"bulletin_id": relay["id"], "target": target}, headers=world.headers("duyet-bt")
        )
        assert sent.status_code == 201, sent.text
        assert arrived.wait(10)
    finally:
        listener.loop_stop()
        listener.disconnect()
    assert sent.json()["targeted"] == 2
    trusted = trust(runtime.bus.signer.keyring.trusted_public_keys)
    for command in received:
        validate(Channel.COMMAND, command)  # the contract's own check, as the agent does it
        assert command["play"]["stream"] == {"url": STREAM, "duration_s": 900}
        assert "audio" not in command["play"] and command["play"]["title"] == "Thời sự trưa"
        verify(command, trusted)  # signed like every command: an agent trusting the server's key takes it
    with Session(world.engine) as session:
        broadcast = session.get(Broadcast, sent.json()["id"])
        assert broadcast.audio_asset_id is None
        # A cluster back online 20 minutes into the relay still joins it: the command lives as long as the relay.
        assert (broadcast.expires_at - broadcast.created_at).total_seconds() >= 900


def test_bad_relays_are_refused_and_nothing_is_stored(client, world) -> None:
    me = world.headers("phatthanh-bt")
    good = {"title": "Tiếp sóng", "stream_url": STREAM, "duration_s": 600}
    for change, words in (
        ({"stream_url": "ftp://radio.example.vn/live"}, "http:// or https://"),
        ({"stream_url": "https://user:secret@radio.example.vn/live"}, "password"),
        ({"stream_url": "https://radio.example.vn/live now"}, "no spaces"),
        ({"stream_url": "https://x.vn/" + "a" * 2000}, None),
        ({"duration_s": 30}, None),
        ({"duration_s": 5 * 3600}, None),
        ({"title": "   "}, "title is empty"),
    ):
        refused = client.post("/api/v1/bulletins/relays", json={**good, **change}, headers=me)
        assert refused.status_code == 422, change
        if words:
            assert words in json.dumps(refused.json(), ensure_ascii=False), (change, refused.json())
    made = client.post("/api/v1/bulletins/relays", json=good, headers=me).json()
    refused = client.patch(f"/api/v1/bulletins/{made['id']}", json={"stream_url": "rtsp://cam/1"}, headers=me)
    assert refused.status_code == 422 and "http:// or https://" in refused.json()["detail"]
    with Session(world.engine) as session:
        kept = session.get(Bulletin, made["id"])
        assert (kept.stream_url, kept.relay_duration_s) == (STREAM, 600)
        assert {b.kind for b in session.exec(select(Bulletin)).all()} == {"relay"}  # none of the refused ones stored
    # Another commune's broadcaster cannot see or edit it.
    other = world.headers("phatthanh-bh")
    assert client.patch(f"/api/v1/bulletins/{made['id']}", json={"duration_s": 900}, headers=other).status_code == 403
    # A text bulletin takes no stream.
    text = world.bulletin("Bình Thạnh")
    assert client.patch(f"/api/v1/bulletins/{text}", json={"duration_s": 900}, headers=me).status_code == 422


def test_a_broadcast_set_for_later_carries_its_start_and_lives_from_it(client, world, broker) -> None:
    """A relay of the 18:00 news set up in the afternoon: the clusters are told when to start, and may
    still start it for ttl_s after that time; a start in the past, without offset or past 7 days is refused."""
    import paho.mqtt.client as mqtt

    me = world.headers("duyet-bt")
    relay = client.post(
        "/api/v1/bulletins/relays",
        json={"title": "Thời sự 18 giờ", "stream_url": STREAM, "duration_s": 1800},
        headers=world.headers("phatthanh-bt"),
    ).json()
    assert (
        client.post(f"/api/v1/bulletins/{relay['id']}/submit", headers=world.headers("phatthanh-bt")).status_code == 200
    )
    assert client.post(f"/api/v1/bulletins/{relay['id']}/approve", headers=me).status_code == 200
    body = {"bulletin_id": relay["id"], "target": {"cluster_ids": ["bt-1"]}, "ttl_s": 600}
    now = datetime.now(UTC)
    for start, words in (
        ((now - timedelta(minutes=10)).isoformat(), "in the past"),
        ((now + timedelta(days=8)).isoformat(), "at most 7 days ahead"),
        ((now + timedelta(hours=1)).replace(tzinfo=None).isoformat(), "time zone offset"),
    ):
        refused = client.post("/api/v1/broadcasts", json={**body, "start_at": start}, headers=me)
        assert refused.status_code == 422 and words in refused.json()["detail"], refused.text
    with Session(world.engine) as session:
        assert session.exec(select(Broadcast)).all() == []  # nothing stored by the refusals

    received: list[dict] = []
    subscribed, arrived = threading.Event(), threading.Event()
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="relay-later-listener")
    listener.on_subscribe = lambda *args: subscribed.set()
    listener.on_message = lambda _c, _u, message: (received.append(json.loads(message.payload)), arrived.set())
    listener.connect(broker.host, broker.port)
    listener.subscribe("acct/v1/clusters/bt-1/command", qos=1)
    listener.loop_start()
    start = (now + timedelta(hours=3)).replace(microsecond=0)
    try:
        assert subscribed.wait(10)
        local = start.astimezone(timezone(timedelta(hours=7))).isoformat()  # as a Vietnamese client writes it
        sent = client.post("/api/v1/broadcasts", json={**body, "start_at": local}, headers=me)
        assert sent.status_code == 201, sent.text
        assert arrived.wait(10)
    finally:
        listener.loop_stop()
        listener.disconnect()
    out = sent.json()
    assert datetime.fromisoformat(out["start_at"]) == start
    # The relay's 1800 s outlast the 600 s ttl: a cluster back online at 18:25 still joins the last 5 minutes.
    assert datetime.fromisoformat(out["expires_at"]) == start + timedelta(seconds=1800)
    [command] = received
    assert parse_time(command["play"]["start_at"]) == start
    assert parse_time(command["expires_at"]) == start + timedelta(seconds=1800)
