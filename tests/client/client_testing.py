"""Helpers of the client tests: fast client options and waiting for a condition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

# Short gaps keep the tests fast; the logic is the same at the defaults.
FAST = {"log_gap": 0.2, "progress_gap": 0.2, "poll_interval": 0.1, "reconnect_delay": 0.05}


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
