"""SSRF guard: only http(s), and never private, loopback or link-local addresses.

The guard resolves the host and checks *every* address it resolves to; the
fetcher calls it before each request and on each redirect hop, and
:class:`GuardedBackend` repeats the check at connect time and connects to the
address it checked, so a DNS answer that changes between check and connect
(DNS rebinding) cannot slip through.

>>> guard = AddressGuard(resolve=lambda host, port: ["10.0.0.1"])
>>> guard.check_url("http://intranet.example/feed", allow_private=False)
Traceback (most recent call last):
...
ingest.exceptions.BlockedURLError: http://intranet.example/feed: intranet.example resolves to \
non-public address 10.0.0.1
>>> guard.check_url("file:///etc/passwd", allow_private=True)
Traceback (most recent call last):
...
ingest.exceptions.BlockedURLError: file:///etc/passwd: only http and https URLs are fetched
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
from httpcore._backends.sync import SyncStream

from ingest.exceptions import BlockedURLError

__all__ = [
    "AddressGuard",
    "AllowPrivate",
    "GuardedBackend",
    "Resolver",
    "is_public",
    "permitted",
    "system_resolve",
]

#: ``resolve(host, port) -> [ip, ...]``; injectable so tests never touch real DNS.
Resolver = Callable[[str, int], list[str]]
#: ``False``: public addresses only. ``True``: also private and loopback (never
#: link-local: that is where cloud metadata services live). A tuple of networks:
#: public addresses plus exactly those networks.
AllowPrivate = bool | tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def system_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _unwrap(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address a packet really reaches: IPv4-mapped and NAT64 forms as their IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def is_public(address: str) -> bool:
    """True for a globally routable unicast address.

    >>> [is_public(a) for a in ("93.184.216.34", "127.0.0.1", "169.254.169.254", "::1")]
    [True, False, False, False]
    """
    ip = _unwrap(address)
    return ip.is_global and not (ip.is_multicast or ip.is_reserved)


def permitted(address: str, allow: AllowPrivate) -> bool:
    """Whether ``address`` may be connected to under policy ``allow``.

    >>> permitted("10.0.0.1", True), permitted("169.254.169.254", True)
    (True, False)
    >>> permitted("127.0.0.1", (ipaddress.ip_network("127.0.0.0/8"),)), permitted("10.0.0.1", ())
    (True, False)
    """
    if is_public(address):
        return True
    ip = _unwrap(address)
    if allow is True:
        return not (ip.is_link_local or ip.is_multicast or ip.is_unspecified)
    if allow is False:
        return False
    return any(ip.version == net.version and ip in net for net in allow)


class AddressGuard:
    """Checks URLs and hosts against the scheme and address policy."""

    def __init__(self, resolve: Resolver = system_resolve) -> None:
        self._resolve = resolve

    def check_url(self, url: str, *, allow_private: AllowPrivate) -> None:
        """Raise :class:`BlockedURLError` unless ``url`` may be fetched."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise BlockedURLError(f"{url}: only http and https URLs are fetched")
        if not parts.hostname:
            raise BlockedURLError(f"{url}: no host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            self.allowed_addresses(parts.hostname, port, allow_private=allow_private)
        except BlockedURLError as exc:
            raise BlockedURLError(f"{url}: {exc}") from None

    def allowed_addresses(self, host: str, port: int, *, allow_private: AllowPrivate) -> list[str]:
        """Resolve ``host``; raise if any address is not permitted by ``allow_private``."""
        addresses = self._resolve(host, port)
        if not addresses:
            raise BlockedURLError(f"{host} resolves to no address")
        for address in addresses:
            if not permitted(address, allow_private):
                raise BlockedURLError(f"{host} resolves to non-public address {address}")
        return addresses


class GuardedBackend(httpcore.SyncBackend):
    """httpcore network backend that connects only to addresses the guard approved."""

    def __init__(self, guard: AddressGuard, *, allow_private: AllowPrivate) -> None:
        self._guard = guard
        self._allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Resolve, check every address, then connect to the first one that answers."""
        addresses = self._guard.allowed_addresses(host, port, allow_private=self._allow_private)
        source = None if local_address is None else (local_address, 0)
        last: OSError | None = None
        for address in addresses:
            try:
                sock = socket.create_connection((address, port), timeout, source_address=source)
            except TimeoutError as exc:
                raise httpcore.ConnectTimeout(str(exc)) from exc
            except OSError as exc:
                last = exc
                continue
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return SyncStream(sock)
        raise httpcore.ConnectError(f"cannot connect to {host}:{port}: {last}")
