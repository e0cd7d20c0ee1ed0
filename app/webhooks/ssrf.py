"""Where a webhook may be sent: https to public addresses only, checked after resolving.

A URL is checked twice: when it is saved (for a clear message) and before every attempt,
which is the real guard: the host is resolved once, every address it resolves to must be
public, and the connection is then made to that checked address (the name goes only into the
Host header and TLS SNI), so a DNS answer that changes between check and connect (DNS
rebinding) cannot send the request anywhere else. Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from app.webhooks.models import MAX_URL_LENGTH

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

# Never reachable by a webhook, whatever Python's is_global says on this version: loopback,
# "this network"/unspecified, private, CGNAT, link-local (cloud metadata at 169.254.169.254),
# IETF/benchmarking ranges, multicast and reserved.
BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4",
        "240.0.0.0/4",
        "::/128", "::1/128", "100::/64", "64:ff9b:1::/48", "fc00::/7", "fe80::/10",
        "fec0::/10", "ff00::/8",
    )
)  # fmt: skip
# IPv6 forms that carry an IPv4 address inside: IPv4-mapped and -compatible, NAT64.
EMBEDDING_NETWORKS = tuple(
    ipaddress.ip_network(net) for net in ("::ffff:0:0/96", "::/96", "64:ff9b::/96")
)


class UnsafeDestination(Exception):
    """The URL must not receive webhooks; the message is for the person."""


class UnresolvableHost(UnsafeDestination):
    """The host name did not resolve (perhaps only for now: deliveries try again)."""


@dataclass(frozen=True)
class DestinationPolicy:
    """What the operator allows: plain http and private addresses are for development only."""

    allow_http: bool = False
    allow_private: bool = False


@dataclass(frozen=True)
class Destination:
    """A checked URL: connect to `address`, send `host_header`, verify TLS for `host`."""

    scheme: str
    host: str
    port: int
    address: str
    target: str
    host_header: str


def is_public_address(address: IPAddress) -> bool:
    """True for an address on the public internet (IPv4 inside IPv6 is judged as IPv4)."""
    inner = _embedded_ipv4(address)
    if inner is not None:
        return is_public_address(inner)
    if any(address in network for network in BLOCKED_NETWORKS):
        return False
    return address.is_global and not address.is_multicast


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if address.version == 4:
        return None
    assert isinstance(address, ipaddress.IPv6Address)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address != ipaddress.IPv6Address("::1") and any(
        address in network for network in EMBEDDING_NETWORKS
    ):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def check_url_shape(url: str, policy: DestinationPolicy) -> tuple[str, str, int, str]:
    """(scheme, ASCII host, port, path and query) of a well-formed webhook URL, or refuse it."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeDestination("Give the URL that should receive the webhooks.")
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeDestination(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise UnsafeDestination("The URL contains spaces or control characters.")
    parts = urlsplit(url)
    schemes = ("https", "http") if policy.allow_http else ("https",)
    if parts.scheme.lower() not in schemes:
        if policy.allow_http:
            raise UnsafeDestination("Use an http:// or https:// URL.")
        raise UnsafeDestination("Use an https:// URL: webhooks are only sent over https.")
    if "@" in parts.netloc:
        raise UnsafeDestination(
            "Leave user names and passwords out of the URL; check the signature instead."
        )
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        host = _ascii_host(parts.hostname or "")
    except (ValueError, UnicodeError) as exc:
        raise UnsafeDestination("The URL's host or port is not valid.") from exc
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme.lower(), host, port, target


def _ascii_host(hostname: str) -> str:
    if not hostname:
        raise ValueError("no host")
    try:
        return str(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    ascii_name = hostname.rstrip(".").encode("idna").decode("ascii").lower()
    if not ascii_name or len(ascii_name) > 253:
        raise ValueError("bad host name")
    return ascii_name


def resolve_destination(
    url: str, policy: DestinationPolicy, resolver: Resolver = socket.getaddrinfo
) -> Destination:
    """Check the URL, resolve its host once and check every address; the first is pinned."""
    scheme, host, port, target = check_url_shape(url, policy)
    try:
        answers = resolver(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(ipaddress.ip_address(a[4][0]) for a in answers))
    except (OSError, UnicodeError, ValueError) as exc:
        raise UnresolvableHost(f"The host {host} could not be found.") from exc
    if not addresses:
        raise UnresolvableHost(f"The host {host} could not be found.")
    if not policy.allow_private:
        blocked = [a for a in addresses if not is_public_address(a)]
        if blocked:
            raise UnsafeDestination(
                f"{host} points to {blocked[0]}, which is not a public internet address "
                "(loopback, private, link-local or reserved): webhooks are not sent there."
            )
    default_port = 443 if scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == default_port else f"{shown}:{port}"
    return Destination(scheme, host, port, str(addresses[0]), target, host_header)
