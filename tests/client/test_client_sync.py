"""LinkisClient: the synchronous face on a background loop, interrupts, running inside a loop."""

from __future__ import annotations

import _thread
import asyncio
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from client_testing import FAST
from waiting import wait_for as wait_until

from linkis_magic import Job, JobError, LinkisClient
from linkis_magic.client import LoopThread
from linkis_magic.protocol import JobStatus


def client_for(gateway: Any, **kwargs: Any) -> LinkisClient:
    return LinkisClient(gateway.url, gateway.user, gateway.password, **{**FAST, **kwargs})


def test_sync_client_submits_waits_and_reads_a_table(gateway: Any) -> None:
    code = "import pandas as pd\nprint('sync hello')\npd.DataFrame({'a': [1, 2, 3]})"
    with client_for(gateway) as client:
        job = client.submit(code, engine="python")
        assert isinstance(job, Job)
        assert job.wait(60) is job

        assert job.status is JobStatus.SUCCEED and job.done and job.progress == 1.0
        assert "sync hello" in job.logs.info
        df = job.result()
        assert isinstance(df, pd.DataFrame) and df["a"].tolist() == [1, 2, 3]
        assert client.jobs == [job] and client.jobs[0] is job
        assert client.transport_in_use == "websocket" and client.connected
        assert client.user == gateway.user and client.gateway == gateway.url
        assert gateway.password not in repr(client) and repr(job).startswith("Job(")
    assert client.transport_in_use is None and not client.connected


async def test_sync_client_works_inside_a_running_event_loop(gateway: Any) -> None:
    asyncio.get_running_loop()  # a notebook cell runs inside one
    client = client_for(gateway)
    try:
        job = client.submit("echo inside a loop", engine="shell").wait(60)
        assert "inside a loop" in job.logs.info
    finally:
        client.close()


def test_sync_wait_raises_job_error_and_timeout(gateway: Any) -> None:
    with client_for(gateway) as client:
        failing = client.submit("exit 3", engine="shell")
        with pytest.raises(JobError) as caught:
            failing.wait(60)
        assert caught.value.status == "Failed"

        slow = client.submit("sleep 1; echo late", engine="shell")
        with pytest.raises(TimeoutError):
            slow.wait(0.2)
        assert "late" in slow.wait(60).logs.info


def test_keyboard_interrupt_while_waiting_kills_the_job(gateway: Any) -> None:
    with client_for(gateway) as client:
        job = client.submit("import time\nprint('long', flush=True)\ntime.sleep(60)", "python")
        wait_until(lambda: "long" in job.logs.all, timeout=60)
        timer = threading.Timer(0.3, _thread.interrupt_main)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            job.wait(60)
        timer.join()

        assert job.done and job.status is JobStatus.CANCELLED


def test_subscribers_get_the_sync_job_on_the_loop_thread(gateway: Any) -> None:
    seen: list[tuple[Any, str]] = []
    with client_for(gateway) as client:
        job = client.submit("echo sub", engine="shell")
        job.subscribe(lambda j, _e: seen.append((j, threading.current_thread().name)))
        job.wait(60)

    assert seen and all(j is job for j, _ in seen)
    assert {name for _, name in seen} == {LoopThread.shared().thread.name}


def test_waiting_on_the_loop_thread_is_refused(gateway: Any) -> None:
    errors: list[BaseException] = []

    def callback(job: Job, _event: Any) -> None:
        try:
            job.wait()
        except RuntimeError as exc:
            errors.append(exc)

    with client_for(gateway) as client:
        job = client.submit("echo x", engine="shell")
        job.subscribe(callback)
        job.wait(60)

    assert errors and "loop thread" in str(errors[0])


def test_embedded_gateway_starts_and_logs_in_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKIS_MAGIC_DATA_DIR", str(tmp_path / "embedded"))
    with LinkisClient("embedded", **FAST) as client:
        job = client.submit("echo embedded", engine="shell").wait(60)

        assert client.gateway.startswith("http://127.0.0.1:")
        assert client.user and "embedded" in job.logs.info


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="transport"):
        LinkisClient("http://127.0.0.1:1", transport="carrier-pigeon")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unknown client options: colour"):
        LinkisClient("http://127.0.0.1:1", colour="red")
    with pytest.raises(ValueError, match="http://"):
        LinkisClient("127.0.0.1:9001")
