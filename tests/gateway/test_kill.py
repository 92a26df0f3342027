"""Kill over the socket and REST stops the engine's work for real; the job ends Cancelled."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from gateway_testing import RawSocket, open_socket, rest_wait_terminal

from linkis_magic import protocol as p

pytestmark = pytest.mark.timeout(60)


async def wait_running(ws: RawSocket, task_id: int) -> None:
    await ws.until(
        lambda f: (
            f["method"].endswith("/status")
            and f["data"].get("taskID") == task_id
            and f["data"].get("status") == "Running"
        )
    )


async def test_killed_python_sleep_ends_cancelled_within_2s_and_names_survive(
    ws: RawSocket,
) -> None:
    _e, task_id = await ws.execute("kept_name = 41\nimport os\nprint(os.getpid())")
    assert await ws.wait_status(task_id) == "Succeed"
    pid_before = ws.job_log(task_id)

    exec_id, task_id = await ws.execute("import time\ntime.sleep(60)")
    await wait_running(ws, task_id)
    started = time.monotonic()
    await ws.send(p.build_job_frame(exec_id, "kill"))
    reply = await ws.until(lambda f: f["method"] == p.job_method(exec_id, "kill"))
    assert reply["status"] == 0 and reply["message"] == "Kill task succeeded(kill任务成功)"
    assert await ws.wait_status(task_id, timeout=5) == "Cancelled"
    assert time.monotonic() - started < 2.0

    _e, task_id = await ws.execute("import os\nprint(kept_name + 1, os.getpid())")
    assert await ws.wait_status(task_id) == "Succeed"
    log = ws.job_log(task_id)
    assert "42" in log
    pid = log.split("42 ")[-1].split()[0]
    assert pid in pid_before, "the same interpreter process ran both jobs"


async def test_rest_kill_of_a_running_shell_job_stops_its_processes(
    ws: RawSocket, http: httpx.Client, tmp_path: Any
) -> None:
    marker = tmp_path / "still-running"
    code = f"sleep 30; touch {marker}"
    exec_id, task_id = await ws.execute(code, engine="shell", run_type="shell")
    await wait_running(ws, task_id)
    started = time.monotonic()
    reply = http.get(f"/entrance/{exec_id}/kill").json()
    assert reply["status"] == 0 and reply["message"] == "Successfully killed the job(成功kill了job)"
    assert await ws.wait_status(task_id, timeout=10) == "Cancelled"
    assert time.monotonic() - started < 3.0
    assert rest_wait_terminal(http, exec_id) == "Cancelled"
    task = http.get(f"/jobhistory/{task_id}/get").json()["data"]["task"]
    assert task["status"] == "Cancelled"
    assert not marker.exists()


async def test_killing_a_queued_job_cancels_it_before_it_runs(ws: RawSocket) -> None:
    first_exec, first = await ws.execute("import time\ntime.sleep(30)", creator="queue")
    await wait_running(ws, first)
    exec_id, second = await ws.execute("print('must not run')", creator="queue")
    waiting = await ws.until(
        lambda f: f["method"].endswith("/waitingSize") and f["data"].get("taskID") == second
    )
    assert waiting["data"]["waitingSize"] >= 0
    await ws.send(p.build_job_frame(exec_id, "kill"))
    assert await ws.wait_status(second, timeout=5) == "Cancelled"
    statuses = [
        f["data"]["status"] for f in ws.job_frames(second) if f["method"].endswith("/status")
    ]
    assert "Running" not in statuses
    assert "must not run" not in ws.job_log(second).split("SCRIPT CODE")[-1]

    await ws.send(p.build_job_frame(first_exec, "kill"))
    assert await ws.wait_status(first, timeout=5) == "Cancelled"


async def test_a_second_socket_can_kill_and_then_follows_the_job(
    gateway: Any, ws: RawSocket, alice_ticket: str
) -> None:
    exec_id, task_id = await ws.execute("import time\ntime.sleep(30)", creator="other")
    await wait_running(ws, task_id)
    other = await open_socket(gateway.ws_url, alice_ticket)
    try:
        await other.send(p.build_job_frame(exec_id, "status"))
        status = await other.until(lambda f: f["method"] == p.job_method(exec_id, "status"))
        assert status["data"]["status"] == "Running"
        await other.send(p.build_job_frame(exec_id, "kill"))
        assert await other.wait_status(task_id, timeout=5) == "Cancelled"
        assert await ws.wait_status(task_id, timeout=5) == "Cancelled"
    finally:
        await other.conn.close()


def submit_with_labels(http: httpx.Client, code: str, creator: str, **labels: str) -> int:
    body = p.build_submit_body(code, "python", "python", user="alice", creator=creator)
    body["labels"].update(labels)
    reply = http.post("/entrance/submit", json=body).json()
    assert reply["status"] == 0, reply
    return int(reply["data"]["taskID"])


async def test_running_and_queuing_timeouts_end_jobs_timeout(
    ws: RawSocket, http: httpx.Client
) -> None:
    started = time.monotonic()
    running = submit_with_labels(
        http, "import time\ntime.sleep(30)", "timeouts", jobRunningTimeout="1"
    )
    queued = submit_with_labels(http, "x = 1", "timeouts", jobQueuingTimeout="0.3")
    assert await ws.wait_status(queued, timeout=10) == "Timeout"
    assert await ws.wait_status(running, timeout=10) == "Timeout"
    assert time.monotonic() - started < 8
    statuses = [f["data"]["status"] for f in ws.job_frames(queued) if "/status" in f["method"]]
    assert "Running" not in statuses
    task = http.get(f"/jobhistory/{running}/get").json()["data"]["task"]
    assert task["status"] == "Timeout" and "jobRunningTimeout of 1 s" in task["errDesc"]

    body = p.build_submit_body("x = 1", "python", "python", user="alice")
    body["labels"]["jobRunningTimeout"] = "soon"
    assert http.post("/entrance/submit", json=body).json()["data"]["errorMsg"]["errCode"] == 20009


async def test_a_job_that_ignores_the_interrupt_is_killed_with_its_process(ws: RawSocket) -> None:
    code = (
        "import os, time\nprint(os.getpid())\n"
        "while True:\n    try:\n        time.sleep(10)\n    except KeyboardInterrupt:\n        pass"
    )
    exec_id, task_id = await ws.execute(code, creator="stubborn")
    await wait_running(ws, task_id)
    started = time.monotonic()
    await ws.send(p.build_job_frame(exec_id, "kill"))
    assert await ws.wait_status(task_id, timeout=10) == "Cancelled"
    assert time.monotonic() - started < 5
    assert "its process is killed" in ws.job_log(task_id)

    _e, task_id = await ws.execute("print('a new engine')", creator="stubborn")
    assert await ws.wait_status(task_id) == "Succeed"
    assert "Starting a new python engine" in ws.job_log(task_id)


async def test_the_kill_grace_is_per_engine(make_gateway: Any, login: Any) -> None:
    gw = make_gateway(kill_grace=60.0, engine_kill_grace={"python": 0.3})
    ws = await open_socket(gw.ws_url, login(gw.url, gw.user, gw.password))
    code = (
        "import time\n"
        "while True:\n    try:\n        time.sleep(10)\n    except KeyboardInterrupt:\n        pass"
    )
    try:
        exec_id, task_id = await ws.execute(code)
        await wait_running(ws, task_id)
        await ws.send(p.build_job_frame(exec_id, "kill"))

        assert await ws.wait_status(task_id, timeout=20) == "Cancelled"
        assert "its process is killed" in ws.job_log(task_id)
    finally:
        await ws.conn.close()
