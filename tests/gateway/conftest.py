"""Fixtures of the gateway tests: alice's ticket, a raw socket and an httpx client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from gateway_testing import V1, RawSocket, open_socket

from linkis_magic import protocol as p


@pytest.fixture(scope="session")
def alice_ticket(gateway: Any, login: Callable[[str, str, str], str]) -> str:
    return login(gateway.url, gateway.user, gateway.password)


@pytest.fixture
async def ws(gateway: Any, alice_ticket: str) -> AsyncIterator[RawSocket]:
    sock = await open_socket(gateway.ws_url, alice_ticket)
    yield sock
    await sock.conn.close()


@pytest.fixture
def http(gateway: Any, alice_ticket: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url + V1, timeout=20) as client:
        client.cookies.set(p.TICKET_COOKIE, alice_ticket)
        yield client
