"""CAP 1.2 documents for the tests (a storm warning for the coast of Bình Sơn, its cancel, variations, a
recording) and a loopback HTTP server to fetch them from."""

from __future__ import annotations

import contextlib
import http.server
import threading

# Commune Bình Hải's clusters lie inside this square, Bình Thạnh's outside it (see the fleets of the tests).
SQUARE = "15.20,108.70 15.20,108.90 15.40,108.90 15.40,108.70 15.20,108.70"


def alert(
    identifier: str = "VNDMA-2026-1021",
    *,
    status: str = "Actual",
    msg_type: str = "Alert",
    urgency: str = "Immediate",
    severity: str = "Severe",
    expires: str = "2099-10-29T18:00:00+07:00",
    area: str = f"<polygon>{SQUARE}</polygon>",
    references: str = "",
    sender: str = "canhbao@phongchongthientai.gov.vn",
    resource: str = "",
) -> bytes:
    refs = f"<references>{references}</references>" if references else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier>
  <sender>{sender}</sender>
  <sent>2026-10-29T14:00:00+07:00</sent>
  <status>{status}</status>
  <msgType>{msg_type}</msgType>
  <scope>Public</scope>
  {refs}
  <info>
    <language>en-US</language>
    <category>Met</category>
    <event>Typhoon</event>
    <urgency>{urgency}</urgency>
    <severity>{severity}</severity>
    <certainty>Likely</certainty>
    <headline>Typhoon warning</headline>
    <area><areaDesc>Coast</areaDesc>{area}</area>
  </info>
  <info>
    <language>vi-VN</language>
    <category>Met</category>
    <event>Bão</event>
    <urgency>{urgency}</urgency>
    <severity>{severity}</severity>
    <certainty>Likely</certainty>
    <expires>{expires}</expires>
    <headline>Cảnh báo bão số 12</headline>
    <description>Bão số 12 đổ bộ vào vùng biển Quảng Ngãi trong đêm nay, gió giật cấp 12.</description>
    <instruction>Bà con vùng ven biển di dời đến nơi an toàn, tàu thuyền vào bờ ngay</instruction>
    {resource}
    <area><areaDesc>Xã Bình Hải, huyện Bình Sơn</areaDesc>{area}</area>
  </info>
</alert>""".encode()


def tone_wav(seconds: float = 2.0, rate: int = 16_000) -> bytes:
    """A recording as an agency might attach one: a 440 Hz tone, mono 16-bit WAV."""
    import io
    import math
    import struct
    import wave

    frames = b"".join(
        struct.pack("<h", int(12_000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(frames)
    return out.getvalue()


def resource(
    *,
    mime: str = "audio/wav",
    content: bytes | None = None,
    uri: str = "",
    size: int | None = None,
    digest: str = "",
    description: str = "Bản tin ghi âm",
) -> str:
    """A <resource> element: embedded (derefUri, base64) when `content` is given, else a link."""
    import base64

    parts = [f"<resourceDesc>{description}</resourceDesc>", f"<mimeType>{mime}</mimeType>"]
    if size is not None:
        parts.append(f"<size>{size}</size>")
    if uri:
        parts.append(f"<uri>{uri}</uri>")
    if content is not None:
        parts.append(f"<derefUri>{base64.b64encode(content).decode()}</derefUri>")
    if digest:
        parts.append(f"<digest>{digest}</digest>")
    return f"<resource>{''.join(parts)}</resource>"


@contextlib.contextmanager
def serving(files: dict[str, bytes]):
    """A loopback HTTP server of `files`; yields its base URL and the paths asked for."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            requests.append(self.path)
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
