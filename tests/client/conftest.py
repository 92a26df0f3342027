"""Fixtures of the client tests: fake Linkis 1.x servers and a fault proxy."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fakes import FakeLinkis, FaultProxy


@pytest.fixture
def fake_socket() -> Iterator[FakeLinkis]:
    """A Linkis 1.x server with socket mode on (status pushes only, progress at the end)."""
    server = FakeLinkis(socket_mode=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def fake_rest() -> Iterator[FakeLinkis]:
    """A Linkis 1.x server with socket mode off: the WebSocket upgrade is refused."""
    server = FakeLinkis(socket_mode=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_proxy() -> Iterator[Callable[[str], FaultProxy]]:
    """``make_proxy(upstream_url)``: a FaultProxy in front of a gateway; stopped at teardown."""
    started: list[FaultProxy] = []

    def factory(upstream: str) -> FaultProxy:
        proxy = FaultProxy(upstream)
        proxy.start()
        started.append(proxy)
        return proxy

    yield factory
    for proxy in started:
        proxy.stop()
