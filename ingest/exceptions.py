"""Errors raised by the crawlers.

Every class derives from :class:`IngestError`, itself a
:class:`stream.contracts.errors.FinSentinelError`; ``retriable`` says whether trying the
same thing again later can succeed::

    IngestError
    ├── SourceConfigError        the sources file is invalid (also a ConfigError)
    ├── FetchError               network failure, timeout, 429/5xx after retries (retriable)
    │   └── HTTPStatusError      a final non-success status; ``status`` attribute
    ├── BlockedURLError          scheme or address refused by the SSRF guard
    ├── RobotsDisallowedError    robots.txt forbids the URL
    ├── ResponseTooLargeError    body passed the configured byte cap
    ├── UnsafeXMLError           DTD entities, external references, entity bombs
    ├── ParseError               a body that is not the format the source expects
    └── CircuitOpenError         a source is backed off after repeated failures (retriable)
"""

from __future__ import annotations

from stream.contracts.errors import ConfigError, FinSentinelError

__all__ = [
    "BlockedURLError",
    "CircuitOpenError",
    "FetchError",
    "HTTPStatusError",
    "IngestError",
    "ParseError",
    "ResponseTooLargeError",
    "RobotsDisallowedError",
    "SourceConfigError",
    "UnsafeXMLError",
]


class IngestError(FinSentinelError):
    """Root of every crawler error."""

    #: Fixed, low-cardinality name used as the ``outcome`` metric label.
    outcome: str = "error"


class SourceConfigError(IngestError, ConfigError):
    """The sources file is invalid; the message names the source and the field."""

    outcome = "config_error"


class FetchError(IngestError):
    """The request failed (network, timeout, 429/5xx) even after retries."""

    retriable = True
    outcome = "fetch_error"


class HTTPStatusError(FetchError):
    """The server answered with a final non-success status."""

    outcome = "http_error"

    def __init__(self, status: int, url: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(f"HTTP {status} from {url}")
        self.status = status
        #: Seconds the server asked us to wait (``Retry-After``), if it did.
        self.retry_after_s = retry_after_s
        self.retriable = status == 429 or status >= 500


class BlockedURLError(IngestError):
    """The URL's scheme or resolved address is not allowed (SSRF guard)."""

    outcome = "blocked"


class RobotsDisallowedError(IngestError):
    """robots.txt disallows the URL for our user agent."""

    outcome = "robots_disallowed"


class ResponseTooLargeError(IngestError):
    """The body passed the configured size cap; the download was aborted."""

    outcome = "too_large"


class UnsafeXMLError(IngestError):
    """XML with entity declarations, external references or an entity bomb."""

    outcome = "unsafe_xml"


class ParseError(IngestError):
    """The body is not well-formed in the format the source expects."""

    outcome = "parse_error"


class CircuitOpenError(IngestError):
    """The source failed repeatedly and is backed off until its cool-down ends."""

    retriable = True
    outcome = "backed_off"


#: Every ``outcome`` label value of the fetch counter (a fixed set).
FETCH_OUTCOMES: tuple[str, ...] = (
    "ok",
    "not_modified",
    "error",
    "fetch_error",
    "http_error",
    "blocked",
    "robots_disallowed",
    "too_large",
    "unsafe_xml",
    "parse_error",
    "backed_off",
    "config_error",
)
