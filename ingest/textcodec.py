"""Decode fetched bodies by their declared, sniffed or guessed charset.

Order: byte-order mark, ``charset=`` in the Content-Type header, an XML
declaration or HTML ``<meta charset>``, then UTF-8, then windows-1252. Like
browsers (WHATWG Encoding), ``latin-1``/``iso-8859-1``/``ascii`` labels are
read as windows-1252, which is what such pages really contain.

>>> decode_body("Café – 5€".encode("cp1252"), "text/html; charset=ISO-8859-1")
'Café – 5€'
>>> decode_body('<meta charset="windows-1252"><p>Zürich'.encode("cp1252"), "text/html")
'<meta charset="windows-1252"><p>Zürich'
>>> decode_body("naïve".encode(), "")
'naïve'
"""

from __future__ import annotations

import codecs
import re

__all__ = ["declared_charset", "decode_body"]

_ALIASES = {
    "latin-1": "cp1252",
    "latin1": "cp1252",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "us-ascii": "cp1252",
}
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_DOC_CHARSET = re.compile(
    rb"""<\?xml[^>]*encoding\s*=\s*["']([\w.:-]+)|<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""",
    re.I,
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = _ALIASES.get(label.strip().lower(), label.strip().lower())
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def declared_charset(content: bytes, content_type: str = "") -> str | None:
    """The charset a body declares (BOM, header, then document), if any is known."""
    for bom, name in _BOMS:
        if content.startswith(bom):
            return name
    match = _HEADER_CHARSET.search(content_type)
    found = _codec(match.group(1)) if match else None
    if found:
        return found
    doc = _DOC_CHARSET.search(content[:4096])
    if doc:
        return _codec((doc.group(1) or doc.group(2)).decode("ascii", "replace"))
    return None


def decode_body(content: bytes, content_type: str = "") -> str:
    """Text of ``content``; never raises (undecodable bytes become U+FFFD)."""
    charset = declared_charset(content, content_type)
    if charset:
        return content.decode(charset, errors="replace")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return content.decode("cp1252", errors="replace")
