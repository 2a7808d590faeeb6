"""Where deliveries may go: http(s) URLs whose every address is public, unless allowed.

Checked twice: when a webhook is saved (:func:`check_url`: the scheme, and the host when it is an
address) and when each delivery is sent (:func:`resolve`: the DNS answer of that moment, so a name
that later points at ``10.0.0.1`` or ``169.254.169.254`` is refused, and the connection goes to the
very address checked, never to a second lookup). ``FLAGSHIP_WEBHOOK_ALLOWED_NETWORKS`` lists the
private networks allowed anyway (the tests allow loopback).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

from flags import conf

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefusedError(ValueError):
    """The URL or the address it resolves to may not receive deliveries."""


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [
        ipaddress.ip_network(text.strip(), strict=False)
        for text in conf.webhook_allowed_networks()
        if text
    ]


def refusal(address: IPAddress) -> str | None:
    """Why deliveries may not reach ``address``, or ``None`` when they may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in _allowed_networks()):
        return None
    for label, test in (
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("a private", address.is_private),
        ("a multicast", address.is_multicast),
        ("an unspecified", address.is_unspecified),
        ("a reserved", address.is_reserved),
    ):
        if test:
            return f"{address} is {label} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def parts(url: str) -> SplitResult:
    """The URL split, refused unless it is an absolute http(s) URL with a host."""
    split = urlsplit(url)
    if split.scheme not in {"http", "https"}:
        raise AddressRefusedError("Webhook URLs must start with http:// or https://.")
    if not split.hostname:
        raise AddressRefusedError("The webhook URL has no host.")
    if split.username or split.password:
        raise AddressRefusedError(
            "Put no user name or password in the URL; the signature proves us."
        )
    try:
        split.port  # noqa: B018  # raises on a port out of range
    except ValueError as error:
        raise AddressRefusedError(f"The URL's port is invalid: {error}.") from None
    return split


def check_url(url: str) -> None:
    """Refuse (``AddressRefusedError``) a URL no delivery could go to, without a DNS lookup."""
    host = parts(url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            address = ipaddress.ip_address("127.0.0.1")
        else:
            return  # a name: checked against its DNS answer when each delivery is sent
    reason = refusal(address)
    if reason is not None:
        raise AddressRefusedError(f"Deliveries may not go to {host}: {reason}.")


def resolve(host: str, port: int) -> list[tuple[int, str]]:
    """The (family, address) pairs of ``host``, refused if any of them is not allowed."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise OSError(f"{host} does not resolve: {error.strerror}") from None
    pairs: list[tuple[int, str]] = []
    for family, _type, _proto, _name, sockaddr in answers:
        text = str(sockaddr[0]).split("%", 1)[0]
        reason = refusal(ipaddress.ip_address(text))
        if reason is not None:
            raise AddressRefusedError(f"{host} resolves to {reason}.")
        if (family, text) not in pairs:
            pairs.append((family, text))
    if not pairs:
        raise OSError(f"{host} has no address")
    return pairs
