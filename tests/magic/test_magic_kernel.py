"""The magic in a real ipykernel through jupyter_client: interrupts, live widget updates."""

from __future__ import annotations

import os
import queue
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from linkis_magic import protocol as p

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

EXEC_ID = re.compile(r"execID <code>([^<]+)</code>")


@pytest.fixture
def kernel(gateway: Any, tmp_path: Path) -> Iterator[BlockingKernelClient]:
    """An ipykernel whose environment names the session gateway, with linkis_magic loaded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINKIS_")}
    env.update(
        HOME=str(tmp_path),
        LINKIS_GATEWAY=gateway.url,
        LINKIS_USER=gateway.user,
        LINKIS_PASSWORD=gateway.password,
    )
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive("%load_ext linkis_magic", timeout=30)
        assert reply["content"]["status"] == "ok"
        client.manager = manager  # type: ignore[attr-defined]
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def iopub_until(
    client: BlockingKernelClient, done: Callable[[dict[str, Any]], bool], timeout: float
) -> list[dict[str, Any]]:
    """IOPub messages up to and including the first for which ``done`` is true."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            kinds = [m["msg_type"] for m in seen]
            raise AssertionError(f"IOPub condition not met in {timeout} s; saw {kinds}")
        try:
            msg = client.get_iopub_msg(timeout=remaining)
        except queue.Empty:
            continue
        seen.append(msg)
        if done(msg):
            return seen


def widget_values(msg: dict[str, Any]) -> list[str]:
    """The string trait values a widget message carries (comm_open state or update)."""
    if msg["msg_type"] not in ("comm_open", "comm_msg"):
        return []
    data = msg["content"].get("data", {})
    state = data.get("state", {})
    return [v for v in state.values() if isinstance(v, str)]


def shell_reply(client: BlockingKernelClient, msg_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        msg = client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg["content"]


def server_status(gateway: Any, exec_id: str) -> str:
    with httpx.Client(base_url=gateway.url, timeout=5) as http:
        http.post(
            p.REST_PREFIX + "/user/login",
            json={"userName": gateway.user, "password": gateway.password},
        ).raise_for_status()
        reply = http.get(p.job_method(exec_id, "status"))
        return str(p.parse_envelope(reply.json()).data.get("status"))


def test_an_interrupt_cancels_the_job_within_2_s_and_the_cell_raises_keyboard_interrupt(
    kernel: BlockingKernelClient, gateway: Any
) -> None:
    msg_id = kernel.execute("%%linkis python\nimport time\ntime.sleep(60)")

    def running(msg: dict[str, Any]) -> bool:
        return msg["parent_header"].get("msg_id") == msg_id and any(
            ">Running</b>" in v for v in widget_values(msg)
        )

    seen = iopub_until(kernel, running, timeout=60)
    exec_ids = [
        m.group(1) for msg in seen for v in widget_values(msg) for m in [EXEC_ID.search(v)] if m
    ]
    assert exec_ids, "the view never showed an execID"
    exec_id = exec_ids[-1]
    # Widget updates arrived while the cell was still waiting: the reply has not come yet.
    assert not any(
        m["msg_type"] == "status"
        and m["content"]["execution_state"] == "idle"
        and m["parent_header"].get("msg_id") == msg_id
        for m in seen
    )

    # The elapsed clock keeps ticking through comm messages while the cell waits.
    ticks = iopub_until(
        kernel,
        lambda m: any(re.search(r"Running</b> · [1-9]\.\d s", v) for v in widget_values(m)),
        timeout=10,
    )
    assert ticks

    interrupted = time.monotonic()
    kernel.manager.interrupt_kernel()  # type: ignore[attr-defined]
    status = ""
    while time.monotonic() - interrupted < 2.0:
        status = server_status(gateway, exec_id)
        if status == "Cancelled":
            break
        time.sleep(0.05)
    assert status == "Cancelled", f"server status {status} 2 s after the interrupt"

    reply = shell_reply(kernel, msg_id, timeout=20)
    assert reply["status"] == "error"
    assert reply["ename"] == "KeyboardInterrupt"
    cancelled = iopub_until(
        kernel, lambda m: any(">Cancelled</b>" in v for v in widget_values(m)), timeout=10
    )
    assert cancelled


def test_a_failed_job_is_an_error_reply_and_a_background_view_updates_after_its_cell(
    kernel: BlockingKernelClient,
) -> None:
    reply = kernel.execute_interactive("%%linkis python\nraise RuntimeError('kaput')", timeout=60)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "JobError"
    assert "kaput" in reply["content"]["evalue"]

    reply = kernel.execute_interactive(
        "%%linkis python --background\nimport time\ntime.sleep(2)\n'done'", timeout=30
    )
    assert reply["content"]["status"] == "ok"
    finished = iopub_until(
        kernel, lambda m: any(">Succeed</b>" in v for v in widget_values(m)), timeout=30
    )
    assert finished[-1]["msg_type"] == "comm_msg"


def test_a_background_text_view_prints_into_its_own_cell(kernel: BlockingKernelClient) -> None:
    background = kernel.execute("%%linkis shell --background --view text\nsleep 1; echo bg-done")
    assert shell_reply(kernel, background, timeout=30)["status"] == "ok"
    later = kernel.execute("1 + 1")
    assert shell_reply(kernel, later, timeout=30)["status"] == "ok"

    def succeeded(msg: dict[str, Any]) -> bool:
        return msg["msg_type"] == "stream" and "] Succeed" in msg["content"]["text"]

    seen = iopub_until(kernel, succeeded, timeout=30)
    assert seen[-1]["parent_header"]["msg_id"] == background
