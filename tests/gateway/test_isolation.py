"""A user sees, follows and kills only their own jobs and reads only their own files."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
import pytest
from gateway_testing import V1, RawSocket, open_socket

from linkis_magic import protocol as p

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def bob_http(gateway: Any, second_user: Any, login: Any) -> Any:
    ticket = login(gateway.url, second_user.user, second_user.password)
    with httpx.Client(base_url=gateway.url + V1, cookies={p.TICKET_COOKIE: ticket}) as client:
        client.ticket = ticket  # type: ignore[attr-defined]
        yield client


async def test_another_user_cannot_see_follow_or_kill_a_job(
    gateway: Any, ws: RawSocket, http: httpx.Client, bob_http: httpx.Client
) -> None:
    exec_id, task_id = await ws.execute("import time\ntime.sleep(20)", creator="iso")
    await ws.until(
        lambda f: f["method"].endswith("/status") and f["data"].get("status") == "Running"
    )
    rest_id = p.encode_rest_exec_id("linkis-cg-entrance", "x:1", p.decode_exec_id(exec_id).job_id)

    for ident in (exec_id, rest_id):
        for op in ("status", "progress", "log", "kill"):
            reply = bob_http.get(f"/entrance/{ident}/{op}")
            assert reply.status_code == 403 and reply.json()["status"] == 3, op
    assert bob_http.get(f"/jobhistory/{task_id}/get").json()["status"] == 1

    bob = await open_socket(gateway.ws_url, bob_http.ticket)  # type: ignore[attr-defined]
    try:
        for op in ("status", "kill", "log", "progress"):
            await bob.send(p.build_job_frame(exec_id, op))  # type: ignore[arg-type]
            reply = await bob.until(lambda f, o=op: f["method"] == p.job_method(exec_id, o))
            assert reply["status"] == 3
        assert http.get(f"/entrance/{exec_id}/status").json()["data"]["status"] == "Running"
        http.get(f"/entrance/{exec_id}/kill")
        assert await ws.wait_status(task_id) == "Cancelled"
        with pytest.raises(asyncio.TimeoutError):
            await bob.recv(timeout=0.3)
        assert all(f["data"].get("taskID") != task_id for f in bob.frames)
    finally:
        await bob.conn.close()


async def test_rest_submitted_jobs_push_to_the_users_sockets_only(
    gateway: Any, ws: RawSocket, http: httpx.Client, bob_http: httpx.Client
) -> None:
    bob = await open_socket(gateway.ws_url, bob_http.ticket)  # type: ignore[attr-defined]
    try:
        body = p.build_submit_body("print('rest job')", "python", "python", user="alice")
        task_id = http.post("/entrance/submit", json=body).json()["data"]["taskID"]
        assert await ws.wait_status(task_id) == "Succeed"
        assert "rest job" in ws.job_log(task_id)
        with pytest.raises(asyncio.TimeoutError):
            await bob.recv(timeout=0.3)
    finally:
        await bob.conn.close()


async def test_result_files_are_confined_to_their_owner(
    gateway: Any, ws: RawSocket, http: httpx.Client, bob_http: httpx.Client
) -> None:
    _e, task_id = await ws.execute("print('secret result')")
    assert await ws.wait_status(task_id) == "Succeed"
    task = http.get(f"/jobhistory/{task_id}/get").json()["data"]["task"]
    location = task["resultLocation"]
    tree = http.get("/filesystem/getDirFileTrees", params={"path": location}).json()
    result_path = tree["data"]["dirFileTrees"]["children"][0]["path"]

    for op, path in (("getDirFileTrees", location), ("openFile", result_path)):
        reply = bob_http.get(f"/filesystem/{op}", params={"path": path}).json()
        assert reply["status"] == 1 and reply["data"]["errorMsg"]["errCode"] == 80010
    assert bob_http.get("/filesystem/openLog", params={"path": task["logPath"]}).json()["status"]

    root = gateway.data_dir / "results" / "alice"
    escapes = [
        "/etc/passwd",
        str(gateway.data_dir / "users.json"),
        f"{root}/../bob",
        f"file://{root}/../../users.json",
        f"{root}/%2e%2e/x",
        "hdfs:///tmp/x",
        "relative/path",
    ]
    for path in escapes:
        reply = http.get("/filesystem/openFile", params={"path": path}).json()
        assert reply["status"] == 1, path

    link = root / "link-out"
    os.symlink(gateway.data_dir, link)
    try:
        reply = http.get("/filesystem/openFile", params={"path": f"{link}/users.json"}).json()
        assert reply["data"]["errorMsg"]["errCode"] == 80010
    finally:
        link.unlink()

    log = http.get("/filesystem/openLog", params={"path": task["logPath"]}).json()
    assert log["status"] == 0 and "secret result" in log["data"]["log"][3]
