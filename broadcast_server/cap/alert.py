"""A CAP 1.2 alert as the server uses it, parsed from XML without I/O (defusedxml: no entities, no DTDs).

Only what airing needs is kept: who sent which alert when, its status and type (with the alerts it
updates or cancels), and per info block the words to speak, the urgency and severity, the expiry, the
areas as polygons and circles, and the resources (a recording to air instead of the words). Anything
missing that CAP requires is refused with the element named.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime

from broadcast_server.cap.untrusted_xml import parse_untrusted

NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
_NS = {"cap": NAMESPACE}
# A CAP alert is a few KB; one with its recording embedded (derefUri, base64) a few MB. Larger ones are
# refused unread.
MAX_BYTES = 8 * 1024 * 1024
MAX_ID_LENGTH = 255  # sender and identifier, as stored
MAX_SPOKEN = 20_000  # characters read out, as for a text bulletin through the API
# Recordings by MIME type, as the suffix the renderer knows them by (services/recordings.py).
AUDIO_SUFFIXES = {
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
    "audio/wave": ".wav",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
    "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "audio/3gpp": ".3gp",
}
_SHA1_HEX = re.compile(r"^[0-9a-fA-F]{40}$")


class CapError(ValueError):
    """Not a CAP 1.2 alert the server can use; the message names the element and the problem."""


@dataclass(frozen=True)
class Circle:
    lat: float
    lon: float
    radius_km: float


@dataclass(frozen=True)
class Area:
    description: str
    polygons: tuple[tuple[tuple[float, float], ...], ...]  # each a closed ring of (lat, lon)
    circles: tuple[Circle, ...]


@dataclass(frozen=True)
class Resource:
    """A file the alert comes with: `content` when embedded (derefUri), else fetched from `uri`."""

    description: str
    mime_type: str
    size: int | None
    uri: str
    content: bytes | None
    digest: str  # CAP 1.2: the SHA-1 of the file, lowercase hex; "" when not given

    @property
    def audio_suffix(self) -> str | None:
        """The file suffix of a recording type the server can air; None for anything else."""
        return AUDIO_SUFFIXES.get(self.mime_type.split(";")[0].strip().lower())


@dataclass(frozen=True)
class Info:
    language: str
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str
    description: str
    instruction: str
    expires: datetime | None
    areas: tuple[Area, ...]
    resources: tuple[Resource, ...] = ()

    @property
    def recording(self) -> Resource | None:
        """The first resource that is a recording the server can air (with its bytes or a link to them)."""
        for resource in self.resources:
            if resource.audio_suffix is not None and (resource.content is not None or resource.uri):
                return resource
        return None

    @property
    def text(self) -> str:
        """What the loudspeakers say: headline, description, instruction, each once, in that order."""
        parts: list[str] = []
        for part in (self.headline, self.description, self.instruction):
            part = " ".join(part.split())
            if part and part not in parts:
                parts.append(part if part.endswith((".", "!", "?")) else part + ".")
        return " ".join(parts)


@dataclass(frozen=True)
class Alert:
    identifier: str
    sender: str
    sent: datetime
    status: str  # Actual, Exercise, System, Test, Draft
    msg_type: str  # Alert, Update, Cancel, Ack, Error
    references: tuple[tuple[str, str], ...]  # (sender, identifier) of earlier alerts it updates or cancels
    infos: tuple[Info, ...]

    def info_for(self, language_prefix: str = "vi") -> Info | None:
        """The info block in the listeners' language if there is one, else the first."""
        for info in self.infos:
            if info.language.lower().startswith(language_prefix):
                return info
        return self.infos[0] if self.infos else None


def _text(node, name: str, *, required: bool = False, where: str = "alert") -> str:
    found = node.find(f"cap:{name}", _NS)
    value = " ".join((found.text or "").split()) if found is not None else ""
    if required and not value:
        raise CapError(f"{where}: <{name}> is missing or empty")
    return value


def _time(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CapError(f"<{name}> {text!r} is not a CAP date-time (e.g. 2026-10-29T14:00:00+07:00)") from None
    if value.tzinfo is None:
        raise CapError(f"<{name}> {text!r} has no time zone")
    return value


def _point(text: str, where: str) -> tuple[float, float]:
    try:
        lat_text, lon_text = text.split(",")
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        raise CapError(f"{where}: {text!r} is not a 'latitude,longitude' pair") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise CapError(f"{where}: {text!r} is outside the globe")
    return lat, lon


def _area(node, index: int) -> Area:
    where = f"area {index + 1}"
    polygons = []
    for polygon in node.findall("cap:polygon", _NS):
        ring = tuple(_point(p, f"{where} <polygon>") for p in (polygon.text or "").split())
        if len(ring) < 4 or ring[0] != ring[-1]:
            raise CapError(f"{where}: a <polygon> needs at least four points, the first repeated last")
        polygons.append(ring)
    circles = []
    for circle in node.findall("cap:circle", _NS):
        try:
            centre, radius = (circle.text or "").split()
            circles.append(Circle(*_point(centre, f"{where} <circle>"), float(radius)))
        except ValueError:
            raise CapError(f"{where}: <circle> {circle.text!r} is not 'latitude,longitude radius_km'") from None
        if not 0 < circles[-1].radius_km <= 2000:
            raise CapError(f"{where}: <circle> radius {circles[-1].radius_km} km is not within (0, 2000]")
    return Area(_text(node, "areaDesc", required=True, where=where), tuple(polygons), tuple(circles))


def _resource(node, index: int, where: str) -> Resource:
    where = f"{where} resource {index + 1}"
    size_text = _text(node, "size")
    try:
        size = int(size_text) if size_text else None
    except ValueError:
        raise CapError(f"{where}: <size> {size_text!r} is not a whole number of bytes") from None
    if size is not None and size < 0:
        raise CapError(f"{where}: <size> {size} is negative")
    digest = _text(node, "digest")
    if digest and not _SHA1_HEX.match(digest):
        raise CapError(f"{where}: <digest> {digest!r} is not a SHA-1 in hexadecimal")
    deref = node.find("cap:derefUri", _NS)
    content = None
    if deref is not None:
        try:
            content = base64.b64decode("".join((deref.text or "").split()), validate=True)
        except (binascii.Error, ValueError):
            raise CapError(f"{where}: <derefUri> is not base64") from None
    return Resource(
        description=_text(node, "resourceDesc", required=True, where=where),
        mime_type=_text(node, "mimeType", required=True, where=where),
        size=size,
        uri=_text(node, "uri"),
        content=content,
        digest=digest.lower(),
    )


def _info(node, index: int) -> Info:
    where = f"info {index + 1}"
    expires = _text(node, "expires")
    return Info(
        language=_text(node, "language") or "en-US",
        event=_text(node, "event", required=True, where=where),
        urgency=_text(node, "urgency", required=True, where=where),
        severity=_text(node, "severity", required=True, where=where),
        certainty=_text(node, "certainty", required=True, where=where),
        headline=_text(node, "headline"),
        description=_text(node, "description"),
        instruction=_text(node, "instruction"),
        expires=_time(expires, "expires") if expires else None,
        areas=tuple(_area(a, i) for i, a in enumerate(node.findall("cap:area", _NS))),
        resources=tuple(_resource(r, i, where) for i, r in enumerate(node.findall("cap:resource", _NS))),
    )


def _references(text: str) -> tuple[tuple[str, str], ...]:
    """CAP's `references`: space-separated 'sender,identifier,sent' triples."""
    found = []
    for triple in text.split():
        parts = triple.split(",")
        if len(parts) != 3:
            raise CapError(f"<references> entry {triple!r} is not 'sender,identifier,sent'")
        found.append((parts[0], parts[1]))
    return tuple(found)


def parse_alert(data: bytes) -> Alert:
    """Parse one CAP 1.2 `<alert>`; raises CapError, never another error, for any bytes given."""
    root = parse_untrusted(data, max_bytes=MAX_BYTES, error=CapError, what="document")
    if root.tag != f"{{{NAMESPACE}}}alert":
        raise CapError(f"root element is {root.tag!r}, not <alert> in the CAP 1.2 namespace {NAMESPACE}")
    status = _text(root, "status", required=True)
    msg_type = _text(root, "msgType", required=True)
    if status not in ("Actual", "Exercise", "System", "Test", "Draft"):
        raise CapError(f"<status> {status!r} is not a CAP status")
    if msg_type not in ("Alert", "Update", "Cancel", "Ack", "Error"):
        raise CapError(f"<msgType> {msg_type!r} is not a CAP message type")
    references = _references(_text(root, "references"))
    if msg_type in ("Update", "Cancel") and not references:
        raise CapError(f"an {msg_type} needs <references> to the alert it changes")
    identifier, sender = _text(root, "identifier", required=True), _text(root, "sender", required=True)
    for name, value in (("identifier", identifier), ("sender", sender)):
        if len(value) > MAX_ID_LENGTH:
            raise CapError(f"<{name}> is {len(value)} characters long, more than {MAX_ID_LENGTH}")
    infos = tuple(_info(node, i) for i, node in enumerate(root.findall("cap:info", _NS)))
    for index, info in enumerate(infos):
        if len(info.text) > MAX_SPOKEN:
            raise CapError(f"info {index + 1}: {len(info.text)} characters to speak, more than {MAX_SPOKEN}")
    return Alert(
        identifier=identifier,
        sender=sender,
        sent=_time(_text(root, "sent", required=True), "sent"),
        status=status,
        msg_type=msg_type,
        references=references,
        infos=infos,
    )
