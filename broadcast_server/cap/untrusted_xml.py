"""XML from outside the server (alerts, feeds), parsed without DTDs or entities (defusedxml), size first."""

from __future__ import annotations

from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring


def parse_untrusted(data: bytes, *, max_bytes: int, error: type[ValueError], what: str) -> Element:
    """The root element; `error` saying why for a document too large, refused or not well-formed."""
    if len(data) > max_bytes:
        raise error(f"{what} of {len(data)} bytes exceeds {max_bytes}")
    try:
        return fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise error(f"refused XML: {type(exc).__name__} (no DTDs or entities in a {what})") from None
    except (ParseError, ValueError) as exc:
        raise error(f"not well-formed XML: {exc}") from None
