"""Helpers of the magic tests: a recording widget comm, a job-like object, a polling wait."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from linkis_magic.protocol import JobStatus, ProgressInfo
from linkis_magic.results import ResultSet


class RecordingComm:
    """A widget comm that keeps every message a widget sends (its frontend is this list)."""

    kernel = "recording"

    def __init__(self, **kwargs: Any) -> None:
        self.comm_id = kwargs.get("comm_id") or uuid.uuid4().hex
        self.opened = kwargs
        self.messages: list[dict[str, Any]] = []
        self.handler: Callable[[dict[str, Any]], None] | None = None
        self._lock = threading.Lock()

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        with self._lock:
            self.messages.append(data)

    def on_msg(self, callback: Callable[[dict[str, Any]], None]) -> None:
        self.handler = callback

    def open(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass

    def updates(self, key: str) -> list[Any]:
        """Every value the widget sent for trait ``key``, in order."""
        with self._lock:
            return [
                m["state"][key]
                for m in self.messages
                if isinstance(m, dict) and m.get("method") == "update" and key in m["state"]
            ]

    def click(self) -> None:
        """What the frontend sends when a Button is clicked."""
        assert self.handler is not None
        self.handler(
            {
                "content": {"data": {"method": "custom", "content": {"event": "click"}}},
                "buffers": [],
            }
        )


@dataclass
class Logs:
    all: str = ""
    error: str = ""
    warn: str = ""
    info: str = ""


@dataclass
class FakeJob:
    """Only the attributes a view reads; changes are announced to subscribers like the client."""

    engine: str = "python"
    run_type: str = "python"
    exec_id: str | None = "exec-1"
    task_id: int | None = 7
    status: JobStatus = JobStatus.INITED
    progress: float = 0.0
    progress_info: tuple[ProgressInfo, ...] = ()
    waiting_size: int | None = None
    elapsed: float | None = 0.0
    logs: Logs = field(default_factory=Logs)
    killed: threading.Event = field(default_factory=threading.Event)
    result_sets: list[ResultSet] = field(default_factory=list)
    callbacks: list[Callable[[Any, Any], None]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status.is_terminal

    def subscribe(self, callback: Callable[[Any, Any], None]) -> Callable[[], None]:
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback)

    def update(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        for callback in list(self.callbacks):
            callback(self, None)

    def kill(self) -> None:
        self.killed.set()

    def results(self, limit: int | None = None) -> list[ResultSet]:
        return self.result_sets


def comm_of(widget: Any) -> RecordingComm:
    assert isinstance(widget.comm, RecordingComm)
    return widget.comm
