"""Refuse dangerous XML before any lenient parser (feedparser) sees it.

defusedxml parses the document with entity declarations and external
references forbidden, so billion-laughs / quadratic-blowup bombs and XXE are
rejected at the declaration, before any expansion happens.

>>> check_xml(b"<rss version='2.0'><channel><title>ok</title></channel></rss>")
>>> bomb = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">]><l>&a;</l>'
>>> check_xml(bomb)
Traceback (most recent call last):
...
ingest.exceptions.UnsafeXMLError: XML declares entities (possible entity bomb): EntitiesForbidden...
"""

from __future__ import annotations

from xml.etree.ElementTree import ParseError as _ExpatError

import defusedxml
import defusedxml.ElementTree

from ingest.exceptions import ParseError, UnsafeXMLError

__all__ = ["check_xml"]


def check_xml(data: bytes) -> None:
    """Raise :class:`UnsafeXMLError` for dangerous XML, :class:`ParseError` for malformed XML."""
    try:
        defusedxml.ElementTree.fromstring(
            data, forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
    except defusedxml.EntitiesForbidden as exc:
        raise UnsafeXMLError(f"XML declares entities (possible entity bomb): {exc!r}") from exc
    except defusedxml.DefusedXmlException as exc:
        raise UnsafeXMLError(f"XML refers to external resources: {exc!r}") from exc
    except _ExpatError as exc:
        raise ParseError(f"XML is not well-formed: {exc}") from exc
    except (ValueError, LookupError) as exc:
        raise ParseError(f"XML cannot be decoded: {exc}") from exc
