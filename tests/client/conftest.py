"""Fixtures of the client tests: fake Linkis 1.x servers, a fault proxy, a polling helper."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fakes import FakeLinkis, FaultProxy

# Short gaps keep the tests fast; the logic is the same at the defaults.
FAST = {"log_gap": 0.2, "progress_gap": 0.2, "poll_interval": 0.1, "reconnect_delay": 0.05}


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


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it is truthy; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


async def async_wait_until(
    condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.02
) -> Any:
    """``wait_until`` for coroutines: polls without blocking the loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
