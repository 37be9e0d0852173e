"""Host names that resolve to forbidden addresses.

There is no DNS server here, and names such as ``metadata.google.internal`` resolve only inside a
cloud, so ``anyio.getaddrinfo`` is replaced by a resolver that answers from a table. Everything
else, from the URL parsing to the address checks, is the code the admin API runs.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import anyio
import pytest

from plugins.selfhosted.urlpolicy import UrlRefused, check_url

pytestmark = pytest.mark.anyio

RESOLVES = {
    "metadata.google.internal": ["169.254.169.254"],
    "rebound.example": ["10.0.0.7", "169.254.169.254"],  # one good address does not excuse a bad one
    "mapped.example": ["::ffff:169.254.169.254"],
    "alibaba.example": ["100.100.100.200"],
    "v6-link-local.example": ["fe80::1%2"],
    "gpu.example": ["10.0.0.7", "10.0.0.8"],
}


def family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


@pytest.fixture(autouse=True)
def table_resolver(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    asked: list[str] = []

    async def getaddrinfo(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        if host not in RESOLVES:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(family(address), socket.SOCK_STREAM, 6, "", (address, port)) for address in RESOLVES[host]]

    monkeypatch.setattr(anyio, "getaddrinfo", getaddrinfo)  # what urlpolicy.check_url calls
    return asked


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://metadata.google.internal/computeMetadata/v1/", "169.254.169.254"),
        ("http://rebound.example:7860", "169.254.169.254"),
        ("http://mapped.example:7860", "169.254.169.254"),
        ("http://alibaba.example/", "100.100.100.200"),
        ("https://v6-link-local.example/", "fe80::1"),
    ],
)
async def test_a_name_that_resolves_to_a_forbidden_address_is_refused(url: str, address: str) -> None:
    with pytest.raises(UrlRefused, match="link-local or cloud-metadata") as refused:
        await check_url(url, None)
    assert f"points to {address}" in str(refused.value)


async def test_every_resolved_address_must_lie_in_allowed_networks() -> None:
    allowed = [ipaddress.ip_network("10.0.0.0/24")]
    await check_url("http://gpu.example:7860", allowed)
    with pytest.raises(UrlRefused, match="outside allowed_networks"):
        await check_url("http://gpu.example:7860", [ipaddress.ip_network("10.0.0.7/32")])


async def test_an_address_is_checked_without_asking_the_resolver(table_resolver: list[str]) -> None:
    with pytest.raises(UrlRefused, match=r"points to 100\.100\.100\.200"):
        await check_url("http://100.100.100.200/latest/meta-data", None)
    with pytest.raises(UrlRefused, match="does not resolve"):
        await check_url("http://no-such-host.example/", None)
    assert table_resolver == ["no-such-host.example"]
