"""The REST routes not covered elsewhere: 0.x execute, killJobs, pause, history list, heartbeats."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from gateway_testing import RawSocket, rest_wait_terminal

from linkis_magic import protocol as p

pytestmark = pytest.mark.timeout(60)


def test_rest_execute_takes_the_0x_body(http: httpx.Client) -> None:
    body = p.build_execute_body(
        "echo ${greeting}", "shell", "shell", creator="nb", variables={"greeting": "hello"}
    )
    reply = http.post("/entrance/execute", json=body).json()
    assert reply["status"] == 0 and reply["method"] == "/api/entrance/execute"
    exec_id, task_id = reply["data"]["execID"], reply["data"]["taskID"]
    assert p.decode_exec_id(exec_id).job_id == f"nb_alice_shell_{task_id}"
    assert rest_wait_terminal(http, exec_id) == "Succeed"
    log = http.get(f"/entrance/{exec_id}/log", params={"fromLine": 1, "size": -1}).json()
    assert "INFO hello" in log["data"]["log"][2]
    task = http.get(f"/jobhistory/{task_id}/get").json()["data"]["task"]
    assert task["requestApplicationName"] == "nb" and task["runType"] == "shell"
    assert task["executionCode"] == "echo ${greeting}"


def test_status_falls_back_to_the_task_id(http: httpx.Client) -> None:
    body = p.build_execute_body("x = 1", "python", "python")
    data = http.post("/entrance/execute", json=body).json()["data"]
    assert rest_wait_terminal(http, data["execID"]) == "Succeed"
    reply = http.get("/entrance/unknown-id/status", params={"taskID": data["taskID"]}).json()
    assert reply["status"] == 0 and reply["data"]["status"] == "Succeed"


async def test_kill_jobs_and_pause(ws: RawSocket, http: httpx.Client) -> None:
    exec_id, task_id = await ws.execute("import time\ntime.sleep(30)", creator="killjobs")
    await ws.until(
        lambda f: f["method"].endswith("/status") and f["data"].get("status") == "Running"
    )
    pause = http.get(f"/entrance/{exec_id}/pause").json()
    assert pause["status"] == 0
    reply = http.post(
        f"/entrance/{exec_id}/killJobs", json={"idList": [exec_id, "nope"], "taskIDList": []}
    ).json()
    assert reply["status"] == 0
    assert [m["status"] for m in reply["data"]["messages"]] == [0, 1]
    assert await ws.wait_status(task_id) == "Cancelled"


def test_job_history_list_is_the_users_own(gateway: Any, http: httpx.Client) -> None:
    body = p.build_execute_body("x = 2", "python", "python")
    data = http.post("/entrance/execute", json=body).json()["data"]
    rest_wait_terminal(http, data["execID"])
    listing = http.get("/jobhistory/list", params={"pageSize": 5}).json()["data"]
    assert listing["tasks"][0]["taskID"] == data["taskID"]
    assert len(listing["tasks"]) <= 5 and listing["totalPage"] >= len(listing["tasks"])
    assert {t["umUser"] for t in listing["tasks"]} == {"alice"}
    failed = http.get("/jobhistory/list", params={"status": "Succeed", "pageSize": 50}).json()
    assert {t["status"] for t in failed["data"]["tasks"]} == {"Succeed"}


def test_heartbeats(gateway: Any, http: httpx.Client) -> None:
    beat = httpx.get(gateway.url + p.REST_PREFIX + "/gateway/heartbeat").json()
    assert beat["message"] == "Gateway heartbeat ok!" and beat["data"]["isHealthy"] is True
    assert (
        http.post("/user/heartbeat").json()["message"] == "Maintain heartbeat success(维系心跳成功)"
    )


async def test_waiting_jobs_get_their_queue_position(ws: RawSocket) -> None:
    first_exec, first = await ws.execute("import time\ntime.sleep(30)", creator="waiting")
    await ws.until(
        lambda f: f["data"].get("taskID") == first and f["data"].get("status") == "Running"
    )
    _e, second = await ws.execute("x = 1", creator="waiting")
    _e, third = await ws.execute("x = 2", creator="waiting")
    sizes = {}
    for task in (second, third):
        frame = await ws.until(
            lambda f, t=task: f["method"].endswith("/waitingSize") and f["data"]["taskID"] == t
        )
        sizes[task] = frame["data"]["waitingSize"]
        assert frame["message"] == "Get waiting size succeed." and frame["data"]["execID"]
    assert sizes[second] < sizes[third]
    await ws.send(p.build_job_frame(first_exec, "kill"))
    assert await ws.wait_status(third) == "Succeed"


async def test_a_burst_of_queued_jobs_costs_a_linear_number_of_position_pushes(
    ws: RawSocket,
) -> None:
    first_exec, first = await ws.execute("import time\ntime.sleep(30)", creator="burst")
    await ws.until(
        lambda f: f["data"].get("taskID") == first and f["data"].get("status") == "Running"
    )
    code = "import time\ntime.sleep(0.02)"
    queued = [(await ws.execute(code, creator="burst"))[1] for _ in range(30)]
    await ws.send(p.build_job_frame(first_exec, "kill"))
    for task in queued:
        assert await ws.wait_status(task) == "Succeed"

    pushes = [f for f in ws.frames if f["method"].endswith("/waitingSize")]
    positions: dict[int, list[int]] = {}
    for frame in pushes:
        positions.setdefault(frame["data"]["taskID"], []).append(frame["data"]["waitingSize"])
    assert set(positions) <= set(queued) and queued[-1] in positions
    assert all(seen == sorted(seen, reverse=True) for seen in positions.values())
    # Pushing every change to every waiting job would take about 30 * 30 frames.
    assert len(pushes) < 30 * 30 / 2


async def test_queued_jobs_hold_no_open_files(ws: RawSocket, http: httpx.Client) -> None:
    first_exec, first = await ws.execute("import time\ntime.sleep(30)", creator="fds")
    await ws.until(
        lambda f: f["data"].get("taskID") == first and f["data"].get("status") == "Running"
    )
    before = len(os.listdir("/proc/self/fd"))
    body = p.build_submit_body("x = 1", "python", "python", user="alice", creator="fds")
    ids = [http.post("/entrance/submit", json=body).json()["data"]["execID"] for _ in range(60)]
    assert len(os.listdir("/proc/self/fd")) - before < 20
    reply = http.post(f"/entrance/{first_exec}/killJobs", json={"idList": [first_exec, *ids]})
    assert all(m["status"] == 0 for m in reply.json()["data"]["messages"])
    assert await ws.wait_status(first) == "Cancelled"
    assert rest_wait_terminal(http, ids[-1]) == "Cancelled"
