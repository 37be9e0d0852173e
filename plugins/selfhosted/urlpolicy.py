"""Where an endpoint URL may point.

``http``/``https`` only, no credentials in the URL, and the host must resolve. Link-local and
cloud-metadata addresses are always refused (a stored endpoint key must never be sent to
169.254.169.254); with ``allowed_networks`` set, every address the host resolves to must lie in one
of them. The address checks are pure; ``check_url`` adds the DNS lookup.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

import anyio

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALWAYS_REFUSED: tuple[Network, ...] = (
    ipaddress.ip_network("169.254.0.0/16"),  # IPv4 link-local, including 169.254.169.254 (AWS, GCP, Azure)
    ipaddress.ip_network("fe80::/10"),  # IPv6 link-local
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS metadata over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
    ipaddress.ip_network("0.0.0.0/32"),
    ipaddress.ip_network("::/128"),
)
RESOLVE_SECONDS = 5.0


class UrlRefused(ValueError):
    """The URL breaks the policy; the message says how, and never contains credentials."""


def address_problem(address: Address, allowed: Sequence[Network] | None) -> str | None:
    """Why ``address`` may not be an endpoint's, or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in ALWAYS_REFUSED):
        return f"points to {address}, a link-local or cloud-metadata address, which is never allowed"
    if allowed is not None and not any(address in network for network in allowed):
        return f"points to {address}, outside allowed_networks"
    return None


def static_problem(url: str, allowed: Sequence[Network] | None) -> str | None:
    """What can be checked without DNS: the scheme, credentials, and a host written as an address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL"
    if parts.username or parts.password:
        return "must not hold credentials; use api_key instead"
    literal = _address_literal(parts.hostname)
    return None if literal is None else address_problem(literal, allowed)


def _address_literal(host: str) -> Address | None:
    """The address ``host`` spells, in any form the system resolver accepts without DNS: besides
    dotted quads and IPv6, the decimal, hex, octal and short IPv4 forms (``2852039166``,
    ``0xA9FEA9FE``, ``169.254.43518`` are all 169.254.169.254)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


async def check_url(url: str, allowed: Sequence[Network] | None) -> None:
    """Raise ``UrlRefused`` unless ``url`` and every address its host resolves to are allowed."""
    problem = static_problem(url, allowed)
    if problem is not None:
        raise UrlRefused(problem)
    parts = urlsplit(url)
    host = str(parts.hostname)
    try:
        with anyio.fail_after(RESOLVE_SECONDS):
            found = await anyio.getaddrinfo(
                host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError) as exc:
        raise UrlRefused(f"the host {host!r} does not resolve") from exc
    for *_, sockaddr in found:
        problem = address_problem(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]), allowed)
        if problem is not None:
            raise UrlRefused(f"{host} {problem}")
