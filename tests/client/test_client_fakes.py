"""The client against loopback fakes of Linkis 1.x: socket mode on (no log pushes) and off."""

from __future__ import annotations

import logging
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from client_testing import FAST, async_wait_until
from fakes import FakeLinkis

from linkis_magic import protocol as p
from linkis_magic.client import AsyncLinkisClient
from linkis_magic.errors import AuthError, ConnectionError, JobCancelled, JobError, ProtocolError
from linkis_magic.jobs import AsyncJob
from linkis_magic.protocol import JobStatus

USER, PASSWORD, TOKEN = "hadoop", "hadoop-pw", "hadoop-token"

SLOW_JOB = "\n".join(
    [
        "log INFO step one",
        "progress 0.3",
        "sleep 0.6",
        "log WARN step two",
        "progress 0.6",
        "sleep 0.6",
        "log INFO step three",
        "rows 7",
    ]
)


def client_for(server: FakeLinkis, **kwargs: Any) -> AsyncLinkisClient:
    options = {**FAST, **kwargs}
    return AsyncLinkisClient(server.url, USER, PASSWORD, **options)


class Snapshots:
    """Records what a view would see after every event: status, progress, log text."""

    def __init__(self, job: AsyncJob) -> None:
        self.seen: list[tuple[JobStatus, float, str]] = []
        self.events: list[Any] = []
        job.subscribe(self)

    def __call__(self, job: AsyncJob, event: Any) -> None:
        self.events.append(event)
        self.seen.append((job.status, job.progress, job.logs.all))

    def while_running(self) -> list[tuple[JobStatus, float, str]]:
        return [s for s in self.seen if s[0] is JobStatus.RUNNING]


async def test_socket_mode_server_logs_and_progress_arrive_live(fake_socket: FakeLinkis) -> None:
    async with client_for(fake_socket) as client:
        job = await client.submit(SLOW_JOB, engine="spark")
        snaps = Snapshots(job)
        await job.wait(20)

        assert client.transport_in_use == "websocket"
        running = snaps.while_running()
        assert any("step one" in logs and "step three" not in logs for _s, _p, logs in running)
        assert any(0.3 <= progress < 1.0 for _s, progress, _l in running)
        assert job.status is JobStatus.SUCCEED and job.progress == 1.0
        assert "step two" in job.logs.warn and "step three" in job.logs.info
        assert job.logs.all.count("step one") == 1
        assert job.logs.lines == len(fake_socket.jobs[job.task_id].lines)
        df = await job.result()
        assert df is not None and df["n"].tolist() == list(range(7))


async def test_socket_mode_execute_replies_and_queue_position(fake_socket: FakeLinkis) -> None:
    async with client_for(fake_socket) as client:
        job = await client.submit("log INFO hi", engine="spark")
        snaps = Snapshots(job)
        await job.wait(20)

        accepted = [e for e in snaps.events if isinstance(e, p.ExecuteAccepted)]
        waiting = [e for e in snaps.events if isinstance(e, p.WaitingSize)]
        assert len(accepted) <= 1 and job.exec_id == fake_socket.jobs[job.task_id].exec_id
        assert len(waiting) == 1 and waiting[0].task_id == job.task_id
        assert all(e.exec_id == job.exec_id for e in snaps.events if hasattr(e, "exec_id"))
        assert job.waiting_size is None
        executes = [f for f in fake_socket.frames if f["method"] == p.EXECUTE_METHOD]
        assert len(executes) == 1 and executes[0]["websocketTag"] == job.tag


async def test_rest_only_server_falls_back_and_polls(fake_rest: FakeLinkis) -> None:
    async with client_for(fake_rest) as client:
        job = await client.submit(SLOW_JOB, engine="spark")
        snaps = Snapshots(job)
        await job.wait(20)

        assert client.transport_in_use == "rest" and client.connected
        assert not fake_rest.sockets
        running = snaps.while_running()
        assert any("step one" in logs and "step three" not in logs for _s, _p, logs in running)
        assert any(0.3 <= progress < 1.0 for _s, progress, _l in running)
        assert job.exec_id.startswith("exec_id") and job.task_id in fake_rest.jobs
        assert job.logs.lines == len(fake_rest.jobs[job.task_id].lines)
        assert ("POST", p.REST_PREFIX + "/entrance/submit") in fake_rest.requests
        assert len((await job.results())[0].data) == 7


async def test_forced_websocket_against_rest_only_server_is_a_clear_error(
    fake_rest: FakeLinkis,
) -> None:
    client = client_for(fake_rest, transport="websocket")
    with pytest.raises(ConnectionError, match="refused the WebSocket"):
        await client.connect()
    await client.close()


async def test_forced_rest_never_opens_a_socket(fake_socket: FakeLinkis) -> None:
    async with client_for(fake_socket, transport="rest") as client:
        job = await client.submit("log INFO over rest", engine="spark")
        await job.wait(20)

        assert client.transport_in_use == "rest"
        assert not fake_socket.frames and "over rest" in job.logs.info


async def test_kill_over_rest_ends_cancelled(fake_rest: FakeLinkis) -> None:
    async with client_for(fake_rest) as client:
        job = await client.submit("log INFO start\nsleep 30", engine="spark")
        await async_wait_until(lambda: job.status is JobStatus.RUNNING)
        await job.kill()

        with pytest.raises(JobCancelled) as caught:
            await job.wait(20)
        assert caught.value.status == "Cancelled" and caught.value.task_id == job.task_id
        assert "the job was killed" in job.logs.warn


async def test_kill_over_socket_when_websocket_is_forced(fake_socket: FakeLinkis) -> None:
    async with client_for(fake_socket, transport="websocket") as client:
        job = await client.submit("sleep 30", engine="spark")
        await async_wait_until(lambda: job.status is JobStatus.RUNNING)
        await job.kill()

        with pytest.raises(JobCancelled):
            await job.wait(20)
        assert any(f["method"].endswith("/kill") for f in fake_socket.frames)


async def test_failed_job_error_names_status_ids_and_error_tail(fake_socket: FakeLinkis) -> None:
    async with client_for(fake_socket) as client:
        job = await client.submit("log INFO working\nfail the table does not exist", engine="spark")
        with pytest.raises(JobError) as caught:
            await job.wait(20)

        text = str(caught.value)
        assert "Failed" in text and job.exec_id in text and str(job.task_id) in text
        assert "the table does not exist" in caught.value.error_tail
        assert job.server_error == "the table does not exist"


async def test_frames_for_other_jobs_of_the_same_user_are_ignored(
    fake_socket: FakeLinkis, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(fake_socket) as client:
        mine = await client.submit("sleep 0.3\nlog INFO mine", engine="spark")
        snaps = Snapshots(mine)
        with httpx.Client(base_url=fake_socket.url + p.REST_PREFIX) as other:
            other.post("/user/login", json={"userName": USER, "password": PASSWORD})
            body = p.build_submit_body("log INFO theirs", "spark", "sql", user=USER)
            theirs = other.post("/entrance/submit", json=body).json()["data"]["taskID"]
        with caplog.at_level(logging.DEBUG, logger="linkis_magic.client"):
            await mine.wait(20)
            await async_wait_until(lambda: fake_socket.jobs[theirs].status == "Succeed")

        assert [j.task_id for j in client.jobs] == [mine.task_id]
        assert all(getattr(e, "task_id", mine.task_id) == mine.task_id for e in snaps.events)
        assert "theirs" not in mine.logs.all
        assert "a job this client does not follow" in caplog.text


async def test_token_login(fake_socket: FakeLinkis) -> None:
    client = AsyncLinkisClient(fake_socket.url, USER, token=TOKEN, **FAST)
    async with client:
        job = await client.submit("log INFO by token", engine="spark")
        await job.wait(20)

        assert client.user == USER and "by token" in job.logs.info


async def test_wrong_password_is_an_auth_error_without_the_password(
    fake_socket: FakeLinkis,
) -> None:
    client = AsyncLinkisClient(fake_socket.url, USER, "not-the-password-xyz", **FAST)
    with pytest.raises(AuthError) as caught:
        await client.connect()
    await client.close()

    assert "wrong user name or password" in str(caught.value)
    assert "not-the-password-xyz" not in str(caught.value) + repr(client)


async def test_expired_session_logs_in_again_once(fake_socket: FakeLinkis) -> None:
    async with client_for(fake_socket) as client:
        first = await client.submit("log INFO one", engine="spark")
        await first.wait(20)
        fake_socket.expire_tickets()

        second = await client.submit("log INFO two", engine="spark")
        await second.wait(20)

        assert fake_socket.logins == 2
        assert "two" in second.logs.info
        assert len(fake_socket.jobs) == 2  # the refused execute frame ran once, after the login


async def test_session_that_cannot_be_renewed_is_an_auth_error(fake_rest: FakeLinkis) -> None:
    async with client_for(fake_rest) as client:
        job = await client.submit("log INFO start\nsleep 30", engine="spark")
        await async_wait_until(lambda: job.status is JobStatus.RUNNING)
        fake_rest.users[USER] = ("a-new-password", TOKEN)
        fake_rest.expire_tickets()

        with pytest.raises(JobError, match="authentication failed"):
            await job.wait(20)
        assert fake_rest.logins == 2


async def test_slow_login_is_waited_for_once(fake_socket: FakeLinkis) -> None:
    fake_socket.login_delay = 1.0
    client = client_for(fake_socket)
    jobs = [await client.submit(f"log INFO job {i}", engine="spark") for i in range(3)]
    for job in jobs:
        await job.wait(20)
    await client.close()

    assert fake_socket.logins == 1
    assert [f"job {i}" in j.logs.info for i, j in enumerate(jobs)] == [True] * 3


async def test_login_slower_than_the_request_timeout_fails_clearly(
    fake_socket: FakeLinkis,
) -> None:
    fake_socket.login_delay = 3.0
    client = client_for(fake_socket, request_timeout=0.5)
    with pytest.raises(ConnectionError, match=r"user/login: no answer .* within 0.5 s"):
        await client.connect()
    await client.close()


async def test_websocket_pings_keep_the_socket_alive(fake_socket: FakeLinkis) -> None:
    async with client_for(fake_socket, ping_interval=0.05) as client:
        await async_wait_until(lambda: fake_socket.pings >= 3, timeout=10)

        assert client.transport_in_use == "websocket" and len(fake_socket.sockets) == 1


async def test_rest_submit_falls_back_to_the_0x_execute_route(fake_rest: FakeLinkis) -> None:
    fake_rest.submit_route = False
    async with client_for(fake_rest) as client:
        job = await client.submit("log INFO old style", engine="spark")
        await job.wait(20)

        assert "old style" in job.logs.info
        assert ("POST", p.REST_PREFIX + "/entrance/execute") in fake_rest.requests


async def test_not_logged_in_frame_after_a_failed_login_is_an_auth_error(
    fake_socket: FakeLinkis,
) -> None:
    async with client_for(fake_socket, transport="websocket") as client:
        first = await client.submit("log INFO one", engine="spark")
        await first.wait(20)
        fake_socket.users[USER] = ("a-new-password", TOKEN)
        fake_socket.expire_tickets()

        second = await client.submit("log INFO two", engine="spark")
        with pytest.raises(JobError, match="authentication failed"):
            await second.wait(20)
        assert fake_socket.logins == 2 and len(fake_socket.jobs) == 1


async def test_too_large_frame_with_forced_websocket_is_refused_and_leaves_no_job(
    fake_socket: FakeLinkis,
) -> None:
    async with client_for(fake_socket, transport="websocket", max_frame_size=1000) as client:
        with pytest.raises(ProtocolError, match="larger than 1000 bytes"):
            await client.submit("log INFO " + "x" * 2000, engine="spark")

        assert client.jobs == [] and not fake_socket.jobs


@pytest.fixture
def fake_tls(tmp_path: Path) -> Iterator[tuple[FakeLinkis, Path]]:
    """The socket-mode fake over https/wss with a self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = FakeLinkis(socket_mode=True)
    server.ssl_options = context
    server.start()
    yield server, cert
    server.stop()


async def test_tls_gateway_with_its_ca_or_without_verification(
    fake_tls: tuple[FakeLinkis, Path],
) -> None:
    server, cert = fake_tls
    for verify in (str(cert), False):
        async with client_for(server, verify=verify) as client:
            job = await client.submit("log INFO over tls", engine="spark")
            await job.wait(20)

            assert client.transport_in_use == "websocket" and "over tls" in job.logs.info
    strict = client_for(server)
    with pytest.raises(ConnectionError, match="cannot reach"):
        await strict.connect()
    await strict.close()


async def test_several_refused_frames_after_expiry_mean_one_login(
    fake_socket: FakeLinkis,
) -> None:
    async with client_for(fake_socket, transport="websocket") as client:
        warm = await client.submit("log INFO warm", engine="spark")
        await warm.wait(20)
        fake_socket.expire_tickets()

        jobs = [await client.submit(f"log INFO job {i}", engine="spark") for i in range(5)]
        for job in jobs:
            await job.wait(20)

        assert fake_socket.logins == 2 and len(fake_socket.jobs) == 6
        assert all(f"job {i}" in job.logs.info for i, job in enumerate(jobs))
