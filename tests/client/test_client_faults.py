"""Faults: the gateway killed and restarted, sockets closed, bad frames, errors, slow logins."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from client_testing import FAST, async_wait_until
from fakes import FaultProxy

from linkis_magic import protocol as p
from linkis_magic.client import AsyncLinkisClient
from linkis_magic.errors import ConnectionError, JobError
from linkis_magic.protocol import JobStatus

TICKING = "\n".join(
    [
        "import time",
        "for i in range(12):",
        "    print(f'tick {i}', flush=True)",
        "    time.sleep(0.1)",
    ]
)
TICKS = [f"tick {i}" for i in range(12)]


def printed(text: str) -> list[str]:
    """The engine's output lines of a log (what the job printed), in order."""
    return [ln.split(" INFO ", 1)[1] for ln in text.splitlines() if " INFO tick " in ln]


async def server_log(url: str, user: str, password: str, exec_id: str, task_id: int) -> str:
    """The job's whole log as the server numbers it, read with a fresh login."""
    async with httpx.AsyncClient(base_url=url + p.REST_PREFIX, timeout=20) as http:
        await http.post("/user/login", json={"userName": user, "password": password})
        params = {"fromLine": 1, "size": -1, "taskID": task_id}
        reply = (await http.get(f"/entrance/{exec_id}/log", params=params)).json()
    return reply["data"]["log"][3] + "\n"


def through(proxy: FaultProxy, gateway: Any, **kwargs: Any) -> AsyncLinkisClient:
    options = {**FAST, "reconnect_delay": 0.05, "reconnect_max_delay": 0.5, **kwargs}
    return AsyncLinkisClient(proxy.url, gateway.user, gateway.password, **options)


@pytest.mark.timeout(90)
async def test_gateway_killed_and_restarted_mid_job(gateway_process: Callable[..., Any]) -> None:
    first = gateway_process()
    options = {**FAST, "reconnect_delay": 0.05, "reconnect_max_delay": 0.5}
    async with AsyncLinkisClient(first.url, first.user, first.password, **options) as client:
        code = "import time\nprint('before the crash', flush=True)\ntime.sleep(60)"
        job = await client.submit(code, engine="python")
        await async_wait_until(lambda: "before the crash" in job.logs.all, timeout=60)
        first.kill()
        await async_wait_until(lambda: client.transport_in_use == "rest", timeout=10)

        second = gateway_process(data_dir=first.data_dir, port=first.port)
        with pytest.raises(JobError) as caught:
            await job.wait(60)

        assert caught.value.status == "Failed" and job.status is JobStatus.FAILED
        assert "The gateway stopped while the job was" in job.logs.error
        whole = await server_log(second.url, first.user, first.password, job.exec_id, job.task_id)
        assert job.logs.all == whole
        await async_wait_until(lambda: client.transport_in_use == "websocket", timeout=20)
        after = await client.submit("print('after the restart')", engine="python")
        await after.wait(60)
        assert "after the restart" in after.logs.info


async def test_socket_closed_by_the_server_mid_job(
    gateway: Any, make_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = make_proxy(gateway.url)
    async with through(proxy, gateway) as client:
        job = await client.submit(TICKING, engine="python")
        await async_wait_until(lambda: "tick 3" in job.logs.all, timeout=60)
        proxy.close_clients()
        await job.wait(60)

        assert proxy.upgrades >= 2 and client.transport_in_use == "websocket"
        assert printed(job.logs.all) == TICKS
        whole = await server_log(
            gateway.url, gateway.user, gateway.password, job.exec_id, job.task_id
        )
        assert job.logs.all == whole


async def test_garbage_frames_are_ignored(
    gateway: Any, make_proxy: Callable[[str], FaultProxy], caplog: pytest.LogCaptureFixture
) -> None:
    proxy = make_proxy(gateway.url)
    garbage: list[str | bytes] = [
        "not json at all {",
        b"\x00\x01\x02binary",
        "[1, 2, 3]",
        "null",
        json.dumps({"method": "/api/rest_j/v1/entrance/nonsense", "status": 0, "data": {}}),
        json.dumps(
            {
                "method": p.job_method("0305xx", "status"),
                "status": 0,
                "data": {"status": "Exploded"},
            }
        ),
        json.dumps(
            {
                "method": p.job_method("other", "status"),
                "status": 0,
                "data": {"status": "Failed", "taskID": 987654321},
            }
        ),
        json.dumps(
            {
                "method": p.job_method("other", "log"),
                "status": 0,
                "data": {"log": ["", "", "", "not my line\n"], "taskID": 987654321},
            }
        ),
        json.dumps({"status": "zero"}),
    ]
    async with through(proxy, gateway) as client:
        job = await client.submit(TICKING, engine="python")
        await async_wait_until(lambda: "tick 2" in job.logs.all, timeout=60)
        with caplog.at_level(logging.DEBUG, logger="linkis_magic.client"):
            for frame in garbage:
                proxy.inject(frame)
            await job.wait(60)

        assert job.status is JobStatus.SUCCEED and printed(job.logs.all) == TICKS
        assert "not my line" not in job.logs.all
        assert proxy.upgrades == 1
        assert "frame ignored" in caplog.text and "does not follow" in caplog.text


async def test_oversized_frame_drops_the_socket_and_the_job_still_ends_whole(
    gateway: Any, make_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = make_proxy(gateway.url)
    async with through(proxy, gateway, max_message_size=64 * 1024) as client:
        job = await client.submit(TICKING, engine="python")
        await async_wait_until(lambda: "tick 2" in job.logs.all, timeout=60)
        proxy.inject(json.dumps({"method": "x", "status": 0, "data": {"pad": "y" * 200_000}}))
        await job.wait(60)

        assert proxy.upgrades >= 2
        assert printed(job.logs.all) == TICKS
        whole = await server_log(
            gateway.url, gateway.user, gateway.password, job.exec_id, job.task_id
        )
        assert job.logs.all == whole


async def test_large_frames_within_the_limit_are_read(
    gateway: Any, make_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = make_proxy(gateway.url)
    code = (
        "import sys\n"
        "sys.stdout.write(''.join(f'{i:06d} ' + 'x' * 90 + '\\n' for i in range(20000)))"
    )
    async with through(proxy, gateway) as client:
        job = await client.submit(code, engine="python")
        await job.wait(60)

        numbers = [ln.split(" INFO ", 1)[1][:6] for ln in job.logs.all.splitlines() if "xxxx" in ln]
        assert numbers == [f"{i:06d}" for i in range(20000)]
        assert proxy.upgrades == 1 and proxy.largest_frame > 200_000


async def test_gateway_error_frame_makes_the_client_reconnect(
    gateway: Any, make_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = make_proxy(gateway.url)
    async with through(proxy, gateway) as client:
        job = await client.submit(TICKING, engine="python")
        await async_wait_until(lambda: "tick 2" in job.logs.all, timeout=60)
        proxy.poison(
            "Application spark does not exist any instances(应用程序 spark 不存在任何实例)"
        )
        await job.wait(60)
        after = await client.submit("print('after the error')", engine="python")
        await after.wait(60)

        assert proxy.upgrades >= 2
        assert printed(job.logs.all) == TICKS and "after the error" in after.logs.info


async def test_execute_without_an_answer_fails_and_is_not_resubmitted(
    gateway: Any, make_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = make_proxy(gateway.url)
    proxy.drop_methods = {p.EXECUTE_METHOD}
    async with through(proxy, gateway, execute_timeout=1.0) as client:
        job = await client.submit("print('never runs')", engine="python")
        with pytest.raises(JobError, match="execID never arrived") as caught:
            await job.wait(30)

        assert caught.value.exec_id is None and job.done and job.error
        executes = [f for f in proxy.client_frames if p.EXECUTE_METHOD in f]
        assert len(executes) == 1


async def test_socket_lost_before_the_execute_answer_fails_the_job(
    gateway: Any, make_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = make_proxy(gateway.url)
    proxy.drop_methods = {p.EXECUTE_METHOD}
    async with through(proxy, gateway) as client:
        job = await client.submit("print('lost')", engine="python")
        await async_wait_until(lambda: any(p.EXECUTE_METHOD in f for f in proxy.client_frames))
        proxy.close_clients()
        with pytest.raises(JobError, match="dropped before it answered"):
            await job.wait(30)
        await async_wait_until(lambda: client.transport_in_use == "websocket", timeout=20)

        assert len([f for f in proxy.client_frames if p.EXECUTE_METHOD in f]) == 1


async def test_slow_login_through_the_proxy(
    gateway: Any, make_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = make_proxy(gateway.url)
    proxy.login_delay = 1.5
    async with through(proxy, gateway) as client:
        job = await client.submit("echo after a slow login", engine="shell")
        await job.wait(60)

        assert proxy.logins == 1 and "after a slow login" in job.logs.info
    proxy.login_delay = 2.0
    impatient = through(proxy, gateway, request_timeout=0.5)
    with pytest.raises(ConnectionError, match="no answer"):
        await impatient.connect()
    await impatient.close()


async def test_session_logged_out_behind_the_clients_back(
    gateway: Any, make_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = make_proxy(gateway.url)
    async with through(proxy, gateway) as client:
        first = await client.submit("echo one", engine="shell")
        await first.wait(60)
        assert client._http is not None
        await client._http.post("user/logout")

        second = await client.submit("echo two", engine="shell")
        await second.wait(60)

        assert proxy.logins == 2 and "two" in second.logs.info


async def test_socket_lost_for_good_the_job_ends_over_rest_with_its_whole_log(
    gateway: Any, make_proxy: Callable[[str], FaultProxy]
) -> None:
    proxy = make_proxy(gateway.url)
    async with through(proxy, gateway) as client:
        job = await client.submit(TICKING, engine="python")
        await async_wait_until(lambda: "tick 3" in job.logs.all, timeout=60)
        proxy.refuse_upgrade = True
        proxy.close_clients()
        await job.wait(60)

        assert client.transport_in_use == "rest" and proxy.upgrades == 1
        assert printed(job.logs.all) == TICKS
        whole = await server_log(
            gateway.url, gateway.user, gateway.password, job.exec_id, job.task_id
        )
        assert job.logs.all == whole
