"""A restarted gateway keeps history, logs and results; unfinished jobs become Failed."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_testing import V1, open_socket, rest_wait_terminal
from waiting import wait_for

from linkis_magic import protocol as p

pytestmark = pytest.mark.timeout(90)


@contextlib.contextmanager
def client_for(url: str, user: str, password: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url + V1, timeout=20) as client:
        reply = client.post("/user/login", json={"userName": user, "password": password})
        assert reply.json()["status"] == 0
        yield client


def submit(client: httpx.Client, code: str, engine: str = "python") -> tuple[str, int]:
    body = p.build_submit_body(code, engine, engine, user="alice")
    data = client.post("/entrance/submit", json=body).json()["data"]
    return data["execID"], data["taskID"]


def wait_running(client: httpx.Client, exec_id: str) -> None:
    wait_for(
        lambda: client.get(f"/entrance/{exec_id}/status").json()["data"]["status"] == "Running"
    )


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


async def test_restart_keeps_history_and_fails_what_was_running(
    make_gateway: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "restart"
    first = make_gateway(data_dir)
    with client_for(first.url, first.user, first.password) as client:
        done_id, done_task = submit(client, "print('kept across restarts')")
        assert rest_wait_terminal(client, done_id) == "Succeed"
        run_id, run_task = submit(client, "import time\ntime.sleep(30)")
        wait_running(client, run_id)
    sock = await open_socket(
        first.ws_url, None, **{"Token-User": "alice", "Token-Code": first.token}
    )
    await sock.send(p.build_job_frame(run_id, "status"))
    await sock.until(lambda f: f["method"] == p.job_method(run_id, "status"))
    started = time.monotonic()
    first.stop()
    assert time.monotonic() - started < 5
    assert await sock.wait_status(run_task, timeout=5) == "Failed"
    await sock.conn.close()

    second = make_gateway(data_dir)
    with client_for(second.url, second.user, second.password) as client:
        task = client.get(f"/jobhistory/{done_task}/get").json()["data"]["task"]
        assert task["status"] == "Succeed"
        tree = client.get("/filesystem/getDirFileTrees", params={"path": task["resultLocation"]})
        first_file = tree.json()["data"]["dirFileTrees"]["children"][0]["path"]
        page = client.get("/filesystem/openFile", params={"path": first_file}).json()["data"]
        assert page["fileContent"] == [["kept across restarts"]]
        log = client.get(f"/entrance/{done_id}/log", params={"fromLine": 1, "size": -1}).json()
        assert "kept across restarts" in log["data"]["log"][3]

        failed = client.get(f"/jobhistory/{run_task}/get").json()["data"]["task"]
        assert failed["status"] == "Failed" and "gateway stopped" in failed["errDesc"]
        assert client.get(f"/entrance/{run_id}/status").json()["data"]["status"] == "Failed"

        new_id, new_task = submit(client, "print('after restart')")
        assert new_task > run_task
        assert rest_wait_terminal(client, new_id) == "Succeed"


def test_kill_9_and_restart_marks_running_jobs_failed(gateway_process: Any, tmp_path: Path) -> None:
    data_dir = tmp_path / "crashing"
    gw = gateway_process(data_dir)
    with client_for(gw.url, gw.user, gw.password) as client:
        run_id, run_task = submit(client, "import os, time\nprint(os.getpid())\ntime.sleep(60)")
        wait_running(client, run_id)

        def engine_pid() -> int | None:
            reply = client.get(f"/entrance/{run_id}/log", params={"fromLine": 1, "size": -1})
            match = re.search(r" INFO (\d+)$", reply.json()["data"]["log"][2], re.M)
            return int(match.group(1)) if match else None

        pid = wait_for(engine_pid)
    gw.kill()
    wait_for(lambda: not pid_alive(pid), timeout=10)

    again = gateway_process(data_dir)
    with client_for(again.url, again.user, again.password) as client:
        task = client.get(f"/jobhistory/{run_task}/get").json()["data"]["task"]
        assert task["status"] == "Failed"
        assert "gateway stopped while the job was Running" in task["errDesc"]
        log = client.get(f"/entrance/{run_id}/log", params={"fromLine": 1, "size": -1}).json()
        assert "gateway stopped" in log["data"]["log"][0]
    again.stop()
    assert again.proc.returncode == 0
