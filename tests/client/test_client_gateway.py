"""AsyncLinkisClient against the embedded gateway on loopback: jobs, logs, results, auth."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pandas as pd
import pytest
from client_testing import FAST, async_wait_until

from linkis_magic import protocol as p
from linkis_magic.client import AsyncLinkisClient
from linkis_magic.errors import AuthError, JobCancelled, JobError, ServerError
from linkis_magic.jobs import AsyncJob
from linkis_magic.protocol import JobStatus


def client_for(gateway: Any, **kwargs: Any) -> AsyncLinkisClient:
    return AsyncLinkisClient(gateway.url, gateway.user, gateway.password, **{**FAST, **kwargs})


class Recorder:
    """A job subscriber that keeps every event with the job's state at that moment."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.states: list[tuple[JobStatus, float, int]] = []

    def __call__(self, job: AsyncJob, event: Any) -> None:
        self.events.append(event)
        self.states.append((job.status, job.progress, job.logs.lines))


async def test_python_job_logs_timings_and_table(gateway: Any) -> None:
    code = "\n".join(
        [
            "import pandas as pd",
            "print('first line')",
            "print('second line')",
            "pd.DataFrame({'n': [1, 2, None], 's': ['a', 'b', 'c'], 'x': [0.5, 1.5, 2.5]})",
        ]
    )
    async with client_for(gateway) as client:
        job = await client.submit(code, engine="python")
        assert job.status is JobStatus.INITED and not job.done
        await job.wait(60)

        assert client.transport_in_use == "websocket" and client.connected
        assert job.status is JobStatus.SUCCEED and job.done and job.progress == 1.0
        assert job.exec_id and isinstance(job.task_id, int) and job.engine == "python"
        assert "first line\n" in job.logs.info and "second line" in job.logs.all
        assert job.logs.error == "" and job.logs.all.endswith("\n")
        assert job.submitted_at <= job.started_at <= job.ended_at and job.elapsed > 0
        assert job.error is None
        df = await job.result()
        assert isinstance(df, pd.DataFrame)
        assert df["s"].tolist() == ["a", "b", "c"] and df["x"].dtype == "float64"


async def test_log_is_whole_and_has_no_line_twice(gateway: Any, login: Any) -> None:
    code = (
        "import time\nfor i in range(40):\n    print(f'line {i}', flush=True)\n    time.sleep(0.02)"
    )
    async with client_for(gateway) as client:
        job = await client.submit(code, engine="python")
        await job.wait(60)

        lines = [f"line {i}" for i in range(40)]
        printed = [
            ln.split(" INFO ", 1)[1] for ln in job.logs.all.splitlines() if " INFO line " in ln
        ]
        assert printed == lines
        ticket = login(gateway.url, gateway.user, gateway.password)
        cookies = {p.TICKET_COOKIE: ticket}
        async with httpx.AsyncClient(base_url=gateway.url + p.REST_PREFIX, cookies=cookies) as http:
            params = {"fromLine": 1, "size": -1}
            whole = (await http.get(f"/entrance/{job.exec_id}/log", params=params)).json()
        assert job.logs.all == whole["data"]["log"][3] + "\n"


async def test_variables_are_substituted(gateway: Any) -> None:
    async with client_for(gateway) as client:
        job = await client.submit(
            "print('day=${day}')", engine="python", variables={"day": 20261201}
        )
        await job.wait(60)

        assert "day=20261201" in job.logs.info


async def test_failed_job_raises_job_error_with_the_error_tail(gateway: Any) -> None:
    async with client_for(gateway) as client:
        job = await client.submit("print('before')\nraise ValueError('boom here')", engine="python")
        with pytest.raises(JobError) as caught:
            await job.wait(60)

        err = caught.value
        assert type(err) is JobError and err.status == "Failed"
        assert err.exec_id == job.exec_id and err.task_id == job.task_id
        assert "boom here" in err.error_tail and "boom here" in job.logs.error
        assert "boom here" in str(err) and "Failed" in str(err)


async def test_kill_ends_the_job_cancelled(gateway: Any) -> None:
    async with client_for(gateway) as client:
        job = await client.submit("import time\nprint('sleeping')\ntime.sleep(60)", engine="python")
        await async_wait_until(lambda: "sleeping" in job.logs.all, timeout=60)
        await job.kill()

        with pytest.raises(JobCancelled):
            await job.wait(30)
        assert job.status is JobStatus.CANCELLED


async def test_wait_timeout_leaves_the_job_running(gateway: Any) -> None:
    async with client_for(gateway) as client:
        job = await client.submit("import time\ntime.sleep(1.0)\nprint('woke')", engine="python")
        with pytest.raises(TimeoutError):
            await job.wait(0.2)
        assert not job.done

        await job.wait(60)
        assert "woke" in job.logs.info


async def test_subscribers_see_every_change_and_cannot_break_the_client(
    gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()

    def broken(_job: AsyncJob, _event: Any) -> None:
        raise RuntimeError("a view bug")

    async with client_for(gateway) as client:
        job = await client.submit("print('hello')", engine="python")
        job.subscribe(recorder)
        job.subscribe(broken)
        late = Recorder()
        unsubscribe = job.subscribe(late)
        unsubscribe()
        await job.wait(60)
        await job.results()

    kinds = [type(e).__name__ for e in recorder.events]
    assert "StatusChanged" in kinds and "LogLines" in kinds and "NoneType" in kinds
    statuses = [e.status for e in recorder.events if isinstance(e, p.StatusChanged)]
    assert statuses[-1] is JobStatus.SUCCEED and JobStatus.RUNNING in statuses
    assert all(e.task_id == job.task_id for e in recorder.events if hasattr(e, "task_id"))
    assert recorder.events[-1] is None  # results fetched
    assert late.events == []
    assert "a job subscriber failed" in caplog.text and "a view bug" in caplog.text


async def test_attach_follows_a_job_from_another_client_with_its_earlier_lines(
    gateway: Any,
) -> None:
    code = (
        "import time\nfor i in range(6):\n    print(f'tick {i}', flush=True)\n    time.sleep(0.15)"
    )
    async with client_for(gateway) as first, client_for(gateway) as second:
        job = await first.submit(code, engine="python")
        await async_wait_until(lambda: "tick 1" in job.logs.all, timeout=60)
        attached = await second.attach(job.exec_id, job.task_id)
        assert attached.engine == "python" and attached.code == code
        await attached.wait(60)
        await job.wait(60)

        assert attached.status is JobStatus.SUCCEED
        assert attached.logs.all == job.logs.all
        assert await second.attach(job.exec_id, job.task_id) is attached


async def test_attach_to_a_finished_job_reads_its_whole_log(gateway: Any) -> None:
    async with client_for(gateway) as first:
        job = await first.submit("print('done before')", engine="python")
        await job.wait(60)
    async with client_for(gateway) as second:
        attached = await second.attach(job.exec_id, job.task_id)
        await attached.wait(30)

        assert attached.logs.all == job.logs.all and attached.status is JobStatus.SUCCEED


async def test_token_login_on_the_gateway(gateway: Any) -> None:
    client = AsyncLinkisClient(gateway.url, gateway.user, token=gateway.token, **FAST)
    async with client:
        job = await client.submit("echo by-token", engine="shell")
        await job.wait(60)

        assert "by-token" in job.logs.info and client.transport_in_use == "websocket"


async def test_forced_rest_transport_on_the_gateway(gateway: Any) -> None:
    async with client_for(gateway, transport="rest") as client:
        job = await client.submit("echo over-rest; sleep 0.3; echo again", engine="shell")
        await job.wait(60)

        assert client.transport_in_use == "rest"
        assert "over-rest" in job.logs.info and "again" in job.logs.info
        assert job.exec_id.startswith("exec_id")


async def test_forced_websocket_transport_on_the_gateway(gateway: Any) -> None:
    async with client_for(gateway, transport="websocket") as client:
        job = await client.submit("echo over-socket", engine="shell")
        await job.wait(60)

        assert "over-socket" in job.logs.info


async def test_large_code_goes_over_rest_in_auto_mode(gateway: Any) -> None:
    padding = "#" + "x" * 2000 + "\n"
    code = padding * 400 + "print('big code ran')"
    async with client_for(gateway, max_frame_size=100_000) as client:
        job = await client.submit(code, engine="python")
        await job.wait(60)

        assert "big code ran" in job.logs.info and job.exec_id.startswith("exec_id")


async def test_results_page_and_limit(gateway: Any) -> None:
    code = "import pandas as pd\nprint('a text result')\npd.DataFrame({'n': list(range(25))})"
    async with client_for(gateway, page_size=10) as client:
        job = await client.submit(code, engine="python")
        everything = await job.results()
        limited = await job.result(limit=5)

        kinds = [(r.kind, r.index) for r in everything]
        assert sorted(kinds, key=lambda k: k[1]) == kinds and {k for k, _ in kinds} == {
            "text",
            "table",
        }
        table = next(r for r in everything if r.kind == "table")
        assert table.data["n"].tolist() == list(range(25)) and not table.truncated
        text = next(r for r in everything if r.kind == "text")
        assert "a text result" in text.data
        assert limited is not None and limited["n"].tolist() == [0, 1, 2, 3, 4]
        assert next(r for r in await job.results(limit=5) if r.kind == "table").truncated


async def test_secrets_appear_in_no_repr_error_or_log(
    gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    by_password = client_for(gateway)
    by_token = AsyncLinkisClient(gateway.url, gateway.user, token=gateway.token, **FAST)
    async with by_password, by_token:
        jobs = [await c.submit("echo hi", engine="shell") for c in (by_password, by_token)]
        for job in jobs:
            await job.wait(60)
        tickets = [c.value for c in by_password._http.cookies.jar]
        texts = [repr(by_password), repr(by_token), *(repr(j) for j in jobs), caplog.text]
    bad = AsyncLinkisClient(gateway.url, gateway.user, "wrong-" + gateway.password)
    with pytest.raises(AuthError) as caught:
        await bad.connect()
    await bad.close()
    texts.append(str(caught.value))

    secrets = [gateway.password, gateway.token, *tickets]
    assert tickets
    for text in texts:
        for secret in secrets:
            assert secret not in text


async def test_hundred_jobs_at_once_finish_without_crossing(gateway: Any) -> None:
    async with AsyncLinkisClient(gateway.url, gateway.user, gateway.password) as client:
        jobs = await asyncio.gather(
            *(client.submit(f"echo marker-{i}-end", engine="shell") for i in range(100))
        )
        recorders = []
        for job in jobs:
            recorder = Recorder()
            job.subscribe(recorder)
            recorders.append(recorder)
        await asyncio.gather(*(job.wait(120) for job in jobs))

        assert len({job.task_id for job in jobs}) == 100
        for i, (job, recorder) in enumerate(zip(jobs, recorders, strict=True)):
            markers = [
                ln for ln in job.logs.info.splitlines() if "marker-" in ln and "echo" not in ln
            ]
            assert markers and all(f"marker-{i}-end" in ln for ln in markers), (i, markers)
            assert all(getattr(e, "task_id", job.task_id) == job.task_id for e in recorder.events)
        assert len(client.jobs) == 100


async def test_rejected_submission_fails_the_job_with_the_servers_reason(gateway: Any) -> None:
    async with client_for(gateway) as client:
        job = await client.submit("   ", engine="python")
        with pytest.raises(JobError, match="rejected the job") as caught:
            await job.wait(30)

        assert caught.value.exec_id is None and "20007" in str(caught.value)
        ok = await client.submit("print('still fine')", engine="python")
        await ok.wait(60)
        assert "still fine" in ok.logs.info


async def test_attach_to_an_unknown_job_is_a_clear_error(gateway: Any) -> None:
    async with client_for(gateway) as client:
        with pytest.raises(ServerError, match="cannot attach to job"):
            await client.attach("030615IDEpython127.0.0.1:1IDE_alice_python_999999", 999999)

        assert client.jobs == []
