"""Log reading over REST and the socket, log push coalescing and latency, progress replies."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from gateway_testing import RawSocket, rest_wait_terminal

from linkis_magic import protocol as p

pytestmark = pytest.mark.timeout(90)


def submit(http: httpx.Client, code: str, **kwargs: Any) -> tuple[str, int]:
    body = p.build_submit_body(code, "python", "python", user="alice", **kwargs)
    data = http.post("/entrance/submit", json=body).json()["data"]
    return data["execID"], data["taskID"]


def test_rest_log_pages_by_line(http: httpx.Client) -> None:
    exec_id, _task = submit(http, "for i in range(25):\n    print(f'line-{i}')")
    assert rest_wait_terminal(http, exec_id) == "Succeed"

    whole = http.get(f"/entrance/{exec_id}/log", params={"fromLine": 1, "size": -1}).json()
    assert whole["method"] == f"/api/entrance/{exec_id}/log"
    lines = whole["data"]["log"][3].split("\n")
    total = len(lines)
    assert whole["data"]["fromLine"] == total + 1
    assert not whole["data"]["log"][3].endswith("\n")

    collected: list[str] = []
    from_line = 1
    while True:
        data = http.get(
            f"/entrance/{exec_id}/log", params={"fromLine": from_line, "size": 7}
        ).json()["data"]
        chunk = data["log"][3]
        if not chunk:
            assert data["fromLine"] == from_line
            break
        collected.extend(chunk.split("\n"))
        assert data["fromLine"] == from_line + len(chunk.split("\n"))
        from_line = data["fromLine"]
    assert collected == lines

    default = http.get(f"/entrance/{exec_id}/log").json()["data"]
    assert default["fromLine"] == min(total, 100) + 1
    zero = http.get(f"/entrance/{exec_id}/log", params={"fromLine": 0, "size": 3}).json()["data"]
    assert zero["log"][3].split("\n") == lines[:3]
    plain = http.get(
        f"/entrance/{exec_id}/log", params={"fromLine": 1, "size": 2, "distinctLevel": "false"}
    ).json()["data"]
    assert plain["log"] == "\n".join(lines[:2])
    info = whole["data"]["log"][2].split("\n")
    assert all(p.log_level_of(x) in (None, "INFO") for x in info)
    assert "line-24" in whole["data"]["log"][2]


async def test_socket_log_pull_reads_100_lines_at_a_time(ws: RawSocket) -> None:
    exec_id, task_id = await ws.execute("for i in range(150):\n    print(i)")
    assert await ws.wait_status(task_id) == "Succeed"
    method = p.job_method(exec_id, "log")
    pulled = []
    for _ in range(3):
        await ws.send(p.build_job_frame(exec_id, "log"))
        reply = await ws.until(lambda f: f["method"] == method and "fromLine" not in f["data"])
        assert reply["message"] == "Successfully obtained log information(成功获取到日志信息)"
        pulled.append(reply["data"]["log"][3])
    assert pulled[0].count("\n") == 100 and pulled[1].count("\n") > 50 and pulled[2] == ""


async def test_many_log_lines_are_coalesced_into_few_frames(ws: RawSocket) -> None:
    lines = 50_000
    _e, task_id = await ws.execute(f"for i in range({lines}):\n    print('n', i)")
    assert await ws.wait_status(task_id, timeout=80) == "Succeed"
    frames = [f for f in ws.job_frames(task_id) if f["method"].endswith("/log")]
    text = "".join(f["data"]["log"][2] for f in frames)
    assert text.count(" INFO n ") == lines
    assert f"INFO n {lines - 1}\n" in text
    assert len(frames) < 1000


async def test_a_lone_log_line_is_pushed_at_once(ws: RawSocket) -> None:
    code = "import time\nprint('stamp', time.monotonic())\ntime.sleep(1.0)"
    _e, task_id = await ws.execute(code)
    frame = await ws.until(
        lambda f: (
            f["method"].endswith("/log")
            and f["data"].get("taskID") == task_id
            and " stamp " in f["data"]["log"][2]
        )
    )
    received = time.monotonic()
    printed = float(frame["data"]["log"][2].split(" stamp ")[1].split()[0])
    emitted = frame["data"][p.EMIT_STAMP_KEY]
    assert emitted - printed < 0.5
    assert received - printed < 0.6
    statuses = [f for f in ws.job_frames(task_id) if f["method"].endswith("/status")]
    assert statuses[-1]["data"]["status"] == "Running"
    assert await ws.wait_status(task_id) == "Succeed"


def test_progress_is_not_generated_until_a_job_ends(http: httpx.Client) -> None:
    exec_id, _task = submit(http, "import time\ntime.sleep(0.5)")
    early = http.get(f"/entrance/{exec_id}/progress")
    assert early.status_code == 400 and early.json()["status"] == 1
    assert "not been generated" in early.json()["message"]
    assert rest_wait_terminal(http, exec_id) == "Succeed"
    done = http.get(f"/entrance/{exec_id}/progress").json()
    assert done["status"] == 0 and done["data"]["progress"] == 1.0
    assert done["data"]["progressInfo"] == []
    with_resource = http.get(f"/entrance/{exec_id}/progressWithResource").json()["data"]
    assert with_resource["progress"] == 1.0 and with_resource["yarnResource"] is None


async def test_socket_status_and_progress_pulls(ws: RawSocket) -> None:
    exec_id, task_id = await ws.execute("x = 3")
    assert await ws.wait_status(task_id) == "Succeed"
    await ws.send(p.build_job_frame(exec_id, "status"))
    status = await ws.until(
        lambda f: (
            f["method"] == p.job_method(exec_id, "status")
            and f["message"].startswith("Get the status")
        )
    )
    assert status["data"]["status"] == "Succeed" and status["data"]["taskID"] == task_id
    await ws.send(p.build_job_frame(exec_id, "progress"))
    progress = await ws.until(
        lambda f: (
            f["method"] == p.job_method(exec_id, "progress")
            and f["message"] == "Get the task progress successfully(获取任务进度成功)"
        )
    )
    assert progress["data"]["progress"] == 1.0


async def test_huge_log_output_is_split_into_bounded_frames(ws: RawSocket) -> None:
    code = "print('a' * 400_000)\nfor i in range(20):\n    print(str(i) * 60_000)"
    _e, task_id = await ws.execute(code)
    assert await ws.wait_status(task_id) == "Succeed"
    frames = [f for f in ws.job_frames(task_id) if f["method"].endswith("/log")]
    assert max(len(f["data"]["log"][3]) for f in frames) <= 600 * 1024
    text = "".join(f["data"]["log"][3] for f in frames)
    assert "more characters not logged" in text
    assert "19" * 30_000 in text
