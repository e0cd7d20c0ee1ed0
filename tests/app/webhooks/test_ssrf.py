"""The address guard on its own: which URLs and addresses may receive webhooks, and the pin."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from app.webhooks.ssrf import (
    DestinationPolicy,
    UnresolvableHost,
    UnsafeDestination,
    is_public_address,
    resolve_destination,
)

PRODUCTION = DestinationPolicy()
NOT_PUBLIC = [
    "127.0.0.1", "127.8.9.10", "0.0.0.0", "10.0.0.1", "172.16.5.4", "172.31.255.255",
    "192.168.1.1", "169.254.169.254", "100.64.0.1", "100.127.255.254", "224.0.0.1",
    "239.255.255.250", "255.255.255.255", "192.0.0.8", "198.18.0.1",
    "::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::127.0.0.1",
    "64:ff9b::a00:1", "2002:7f00:1::1", "2002:a9fe:a9fe::1",
]  # fmt: skip
PUBLIC = ["93.184.215.14", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_loopback_private_link_local_cgnat_multicast_and_their_ipv6_forms_are_not_public(
    address: str,
) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def dns(answers: dict[str, list[str]], asked: list[str] | None = None) -> Callable[..., Any]:
    """A resolver answering like getaddrinfo from a table (the tests' DNS zone)."""

    def resolve(host: str, port: int, **_: Any) -> Sequence[tuple[Any, ...]]:
        if asked is not None:
            asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers[host]
        ]

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook", "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/", "https://[::1]:8443/", "https://[::ffff:169.254.169.254]/",
        "https://2130706433/", "https://0x7f.1/", "https://127.1/", "https://localhost/hook",
    ],
)  # fmt: skip
def test_addresses_that_are_not_public_are_refused_in_production(url: str) -> None:
    # Real resolution (getaddrinfo) of literal, decimal, hex and short forms and of localhost.
    with pytest.raises(UnsafeDestination, match="not a public internet address"):
        resolve_destination(url, PRODUCTION)


@pytest.mark.parametrize(
    ("name", "addresses"),
    [
        ("hooks.attune.test", ["127.0.0.1"]),
        ("metadata.attune.test", ["169.254.169.254"]),
        ("intranet.attune.test", ["10.0.0.1"]),
        ("mixed.attune.test", ["93.184.215.14", "10.0.0.1"]),  # every address is checked
        ("six.attune.test", ["::ffff:169.254.169.254"]),
    ],
)
def test_names_resolving_to_such_addresses_are_refused(name: str, addresses: list[str]) -> None:
    with pytest.raises(UnsafeDestination, match="not a public internet address"):
        resolve_destination(f"https://{name}/hook", PRODUCTION, dns({name: addresses}))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://93.184.215.14/hook", "https"),
        ("ftp://93.184.215.14/hook", "https"),
        ("https://user:secret@93.184.215.14/", "passwords"),
        ("https://93.184.215.14:99999/", "not valid"),
        ("https:///nohost", "not valid"),
        ("https://exa mple.com/", "spaces"),
        ("", "Give the URL"),
        ("https://a.example/" + "x" * 2100, "longer"),
    ],
)
def test_malformed_urls_get_a_clear_message(url: str, message: str) -> None:
    with pytest.raises(UnsafeDestination, match=message):
        resolve_destination(url, PRODUCTION, dns({}))


def test_an_unknown_host_is_unresolvable_not_unsafe() -> None:
    with pytest.raises(UnresolvableHost, match="could not be found"):
        resolve_destination("https://nowhere.attune.test/", PRODUCTION, dns({}))


def test_the_checked_address_is_pinned_with_the_name_kept_for_host_and_tls() -> None:
    asked: list[str] = []
    zone = dns({"hooks.example.com": ["93.184.215.14", "2606:2800:21f::1"]}, asked)
    destination = resolve_destination(
        "https://hooks.example.com:8443/in/attune?x=1#frag", PRODUCTION, zone
    )
    assert asked == ["hooks.example.com"]  # resolved once; the connection uses the result
    assert (destination.address, destination.host, destination.port) == (
        "93.184.215.14", "hooks.example.com", 8443,
    )  # fmt: skip
    assert destination.host_header == "hooks.example.com:8443"
    assert destination.target == "/in/attune?x=1"
    plain = resolve_destination("https://hooks.example.com/", PRODUCTION, zone)
    assert (plain.port, plain.host_header, plain.target) == (443, "hooks.example.com", "/")


def test_development_switches_allow_http_and_loopback() -> None:
    development = DestinationPolicy(allow_http=True, allow_private=True)
    destination = resolve_destination("http://localhost:8080/hook", development)
    assert destination.address in ("127.0.0.1", "::1")
    assert destination.host_header == "localhost:8080"
    with pytest.raises(UnsafeDestination):  # each switch on its own
        resolve_destination("http://localhost:8080/hook", DestinationPolicy(allow_private=True))
