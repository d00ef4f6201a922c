"""The crawler's SSRF guard: names that resolve to metadata, loopback or private addresses.

DNS is injected (no real lookups); redirects are covered in tests/ingest/test_http.py.
"""

from __future__ import annotations

import pytest

from ingest.exceptions import BlockedURLError
from ingest.netguard import AddressGuard

METADATA_AND_LOCAL = [
    ["169.254.169.254"],  # AWS/GCP/Azure instance metadata
    ["fd00:ec2::254"],  # AWS metadata over IPv6 (unique local)
    ["::1"],
    ["127.0.0.1"],
    ["0.0.0.0"],
    ["::"],
    ["::ffff:169.254.169.254"],  # IPv4-mapped
    ["::ffff:127.0.0.1"],
    ["64:ff9b::a9fe:a9fe"],  # NAT64 form of 169.254.169.254
    ["fe80::1%eth0"],
    ["10.0.0.5"],
    ["93.184.216.34", "169.254.169.254"],  # one bad answer among good ones (rebinding)
]


@pytest.mark.parametrize("answers", METADATA_AND_LOCAL, ids=lambda a: ",".join(a))
@pytest.mark.parametrize("allow_private", [False, True], ids=["public-only", "allow-private"])
def test_a_name_resolving_to_a_forbidden_address_is_refused(
    answers: list[str], allow_private: bool
) -> None:
    guard = AddressGuard(resolve=lambda host, port: answers)
    link_local = any(
        a.startswith(("169.254.", "::ffff:169.254", "fe80", "64:ff9b::a9fe")) for a in answers
    )
    unspecified = any(a in ("0.0.0.0", "::") for a in answers)
    if allow_private and not (link_local or unspecified):
        guard.check_url("http://feeds.example.com/rss", allow_private=True)  # opted in
        return
    with pytest.raises(BlockedURLError):
        guard.check_url("http://feeds.example.com/rss", allow_private=allow_private)


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data/", "http://[::1]:9101/metrics",
     "http://[::ffff:a9fe:a9fe]/", "file:///etc/passwd", "gopher://127.0.0.1:6379/_INFO"],
)  # fmt: skip
def test_literal_addresses_and_other_schemes_are_refused(url: str) -> None:
    from ingest.netguard import system_resolve

    with pytest.raises(BlockedURLError):
        AddressGuard(resolve=system_resolve).check_url(url, allow_private=False)


def test_a_public_answer_is_allowed() -> None:
    guard = AddressGuard(resolve=lambda host, port: ["93.184.216.34", "2606:2800:220:1::1"])
    guard.check_url("https://feeds.example.com/rss", allow_private=False)
