"""Helpers for the gateway tests: a raw WebSocket client that keeps its frames, polling."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from waiting import wait_for
from websockets.asyncio.client import ClientConnection, connect

from linkis_magic import protocol as p

V1 = p.REST_PREFIX
TERMINAL = {"Succeed", "Failed", "Cancelled", "Timeout"}


class RawSocket:
    """A raw ``websockets`` connection that keeps every frame it received."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.frames: list[dict[str, Any]] = []
        self._seen = 0

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        text = frame if isinstance(frame, str | bytes) else json.dumps(frame)
        await self.conn.send(text)

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv(), timeout)
        frame = json.loads(raw)
        self.frames.append(frame)
        return frame

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        """Frames are read (and kept) until one matches; returns it."""
        deadline = time.monotonic() + timeout
        for frame in self.frames[self._seen :]:
            self._seen += 1
            if predicate(frame):
                return frame
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching frame; got {[f['method'] for f in self.frames]}")
            frame = await self.recv(left)
            self._seen = len(self.frames)
            if predicate(frame):
                return frame

    async def execute(
        self,
        code: str,
        engine: str = "python",
        run_type: str | None = None,
        tag: str | None = None,
        **kwargs: Any,
    ) -> tuple[str, int]:
        """Send an execute frame; returns (execID, taskID) from the first reply."""
        tag = tag or uuid.uuid4().hex
        frame = p.build_execute_frame(code, engine, run_type or engine, tag=tag, **kwargs)
        await self.send(frame)
        reply = await self.until(
            lambda f: (
                f["method"] == p.EXECUTE_METHOD and (f.get("data") or {}).get("websocketTag") == tag
            )
        )
        assert reply["status"] == 0, reply
        return reply["data"]["execID"], reply["data"]["taskID"]

    async def wait_status(self, task_id: int, timeout: float = 30.0) -> str:
        """Read frames until the job's terminal status push; returns the status."""
        frame = await self.until(
            lambda f: (
                f["method"].endswith("/status")
                and (f.get("data") or {}).get("taskID") == task_id
                and f["data"].get("status") in TERMINAL
            ),
            timeout,
        )
        return str(frame["data"]["status"])

    def job_frames(self, task_id: int) -> list[dict[str, Any]]:
        return [f for f in self.frames if (f.get("data") or {}).get("taskID") == task_id]

    def job_log(self, task_id: int) -> str:
        return "".join(
            f["data"]["log"][3] for f in self.job_frames(task_id) if f["method"].endswith("/log")
        )


async def open_socket(ws_url: str, ticket: str | None = None, **headers: str) -> RawSocket:
    extra = dict(headers)
    if ticket:
        extra["Cookie"] = f"{p.TICKET_COOKIE}={ticket}"
    conn = await connect(ws_url, additional_headers=extra, max_size=None, open_timeout=10)
    return RawSocket(conn)


def rest_wait_terminal(client: httpx.Client, exec_id: str, timeout: float = 30.0) -> str:
    def status() -> str | None:
        value = client.get(f"/entrance/{exec_id}/status").json()["data"]["status"]
        return value if value in TERMINAL else None

    return str(wait_for(status, timeout))
