"""Kernel test helpers: install the kernelspecs, start a Linkis kernel, run cells, ask REST."""

from __future__ import annotations

import os
import queue
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from linkis_magic import kernelspecs
from linkis_magic import protocol as p

EXEC_ID = re.compile(r"execID (?!pending)([^\s,\]]+)")
EMBEDDED_URL = re.compile(r"embedded gateway at (http://127\.0\.0\.1:\d+)")


def engine_processes(parent: int) -> set[int]:
    """Pids of the gateway engine processes whose parent is ``parent`` (read from /proc)."""
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and b"linkis_magic.gateway.engines" in cmdline:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def kernel_env(
    tmp: Path,
    gateway: Any | None,
    *,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a kernel under test.

    It holds the gateway's URL and token (none: the embedded gateway), text views, a private
    IPython directory, and no Linkis settings inherited from the test process.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("LINKIS_")}
    config = tmp / "linkis-magic.toml"
    config.write_text('view = "text"\n', encoding="utf-8")
    env["LINKIS_MAGIC_CONFIG"] = str(config)
    env["IPYTHONDIR"] = str(tmp / "ipython")
    env["PYTHONUNBUFFERED"] = "1"
    if gateway is not None:
        env.update(
            {
                "LINKIS_GATEWAY": gateway.url,
                "LINKIS_USER": gateway.user,
                "LINKIS_TOKEN": gateway.token,
            }
        )
    env.update(extra or {})
    return env


@dataclass
class Cell:
    """What running one cell gave: the execute reply's content and the iopub outputs."""

    reply: dict[str, Any]
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.reply["status"])

    def text(self, stream: str = "stdout") -> str:
        return "".join(
            m["content"]["text"]
            for m in self.outputs
            if m["msg_type"] == "stream" and m["content"]["name"] == stream
        )

    def data(self, msg_type: str, mime: str = "text/plain") -> list[str]:
        return [
            m["content"]["data"][mime]
            for m in self.outputs
            if m["msg_type"] == msg_type and mime in m["content"]["data"]
        ]


class RunningCell:
    """A cell sent to the kernel: read its outputs as they come, then its reply."""

    def __init__(self, kc: BlockingKernelClient, msg_id: str) -> None:
        self.kc = kc
        self.msg_id = msg_id
        self.outputs: list[dict[str, Any]] = []
        self.idle = False

    def text(self, stream: str = "stdout") -> str:
        return Cell({}, self.outputs).text(stream)

    def read_until(self, condition: Callable[[RunningCell], bool], timeout: float) -> None:
        """Read iopub until ``condition(self)`` holds; fail after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"not seen within {timeout} s; outputs: {self.outputs}")
            try:
                msg = self.kc.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != self.msg_id:
                continue
            if msg["msg_type"] == "status":
                self.idle = self.idle or msg["content"]["execution_state"] == "idle"
            elif msg["msg_type"] != "execute_input":
                self.outputs.append(msg)

    def finish(self, timeout: float = 60) -> Cell:
        """Wait for the kernel to be idle after this cell; return its reply and outputs."""
        deadline = time.monotonic() + timeout
        self.read_until(lambda cell: cell.idle, timeout)
        while True:
            reply = self.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == self.msg_id:
                return Cell(reply["content"], self.outputs)


class LinkisKernelSession:
    """A Linkis kernel started from kernelspecs installed into a temporary Jupyter directory."""

    def __init__(self, name: str, tmp: Path, env: dict[str, str]) -> None:
        prefix = tmp / "jupyter-prefix"
        kernelspecs.install([name], prefix=str(prefix))
        manager = KernelSpecManager(kernel_dirs=[str(prefix / "share" / "jupyter" / "kernels")])
        self.km = KernelManager(kernel_name=name, kernel_spec_manager=manager)
        self.km.start_kernel(env=env)
        self.kc: BlockingKernelClient = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def start(self, code: str) -> RunningCell:
        """Send ``code`` without waiting for it."""
        return RunningCell(self.kc, self.kc.execute(code))

    def execute(self, code: str, timeout: float = 60) -> Cell:
        """Run ``code`` and collect its iopub messages until the kernel is idle again."""
        return self.start(code).finish(timeout)

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=False)


def job_status(gateway: Any, exec_id: str) -> str:
    """The job's status as the gateway's REST API reports it."""
    headers = {p.TOKEN_USER_HEADER: gateway.user, p.TOKEN_CODE_HEADER: gateway.token}
    url = f"{gateway.url}{p.REST_PREFIX}/entrance/{exec_id}/status"
    reply = httpx.get(url, headers=headers, timeout=10)
    reply.raise_for_status()
    return str(reply.json()["data"]["status"])


def kill_job(gateway: Any, exec_id: str) -> None:
    """Kill a job over the gateway's REST API (cleanup for tests that leave one running)."""
    headers = {p.TOKEN_USER_HEADER: gateway.user, p.TOKEN_CODE_HEADER: gateway.token}
    httpx.get(f"{gateway.url}{p.REST_PREFIX}/entrance/{exec_id}/kill", headers=headers, timeout=10)
