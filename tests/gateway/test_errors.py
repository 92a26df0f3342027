"""Bad input gets Linkis's errors, never a crash or a hang; the server goes on serving."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from gateway_testing import RawSocket

from linkis_magic import protocol as p

pytestmark = pytest.mark.timeout(60)


def err_code(frame: dict[str, Any]) -> int:
    return int(frame["data"]["errorMsg"]["errCode"])


async def still_serving(ws: RawSocket) -> None:
    _e, task_id = await ws.execute("print('still here')")
    assert await ws.wait_status(task_id) == "Succeed"


async def test_empty_code_is_20007_on_the_socket(ws: RawSocket) -> None:
    for code in ("", "   \n  "):
        frame = p.build_execute_frame(code, "python", "python", tag="empty")
        await ws.send(frame)
        reply = await ws.until(lambda f: f["method"] == p.EXECUTE_METHOD and f["status"] != 0)
        assert reply["status"] == 1 and err_code(reply) == 20007
        assert reply["message"].startswith("error code(错误码): 20007, error message(错误信息): ")
        assert reply["data"]["errorMsg"]["serviceKind"] == "linkis-cg-entrance"
    await still_serving(ws)


async def test_missing_engine_and_missing_data_are_refused(ws: RawSocket) -> None:
    frame = p.build_execute_frame("print(1)", "python", "python", tag="noengine")
    del frame["data"]["executeApplicationName"]
    await ws.send(frame)
    reply = await ws.until(lambda f: f["method"] == p.EXECUTE_METHOD and f["status"] != 0)
    assert err_code(reply) == 20009

    await ws.send({"method": p.EXECUTE_METHOD, "websocketTag": "nodata"})
    reply = await ws.until(lambda f: f["method"] == p.EXECUTE_METHOD and f["status"] != 0)
    assert reply["status"] == 1
    await still_serving(ws)


async def test_garbage_frames_get_an_error_and_the_socket_stays_usable(ws: RawSocket) -> None:
    for garbage in ("{not json", "[1, 2, 3]", '"text"', "", b"\xff\xfe binary", '{"data": {}}'):
        await ws.send(garbage)
        reply = await ws.recv()
        assert reply["status"] == 1 and set(reply) == {"method", "status", "message", "data"}
    await still_serving(ws)


async def test_oversize_frame_is_refused_cleanly(ws: RawSocket) -> None:
    code = "x = 1\n" + "#" * (p.MAX_TEXT_MESSAGE + 10)
    await ws.send(p.build_execute_frame(code, "python", "python", tag="big"))
    reply = await ws.recv()
    assert reply["status"] == 1 and "too large" in reply["message"]
    await still_serving(ws)


async def test_unknown_method_is_unresolvable(ws: RawSocket) -> None:
    for method in ("/api/rest_j/v1/entrance/abc/progressWithResource", "/api/rest_j/v1/nothing"):
        await ws.send({"method": method, "data": {}})
        reply = await ws.until(lambda f, m=method: f["method"] == m)
        assert reply["status"] == 1
        assert reply["message"].startswith("Unresolvable webSocket request, URI is")
    await still_serving(ws)


async def test_unknown_exec_ids_on_the_socket(ws: RawSocket) -> None:
    unknown = p.encode_legacy_exec_id("IDE", "python", "127.0.0.1:1", "IDE_alice_python_999999")
    expected = {
        "status": "Get task status failed(获取任务状态失败)",
        "progress": "Get task progress failed(获取任务进度失败)",
        "kill": "Get task failed(获取任务失败)",
    }
    for op in ("status", "progress", "kill", "log"):
        for exec_id in (unknown, "garbage-id", "99"):
            await ws.send(p.build_job_frame(exec_id, op))  # type: ignore[arg-type]
            reply = await ws.until(lambda f, e=exec_id, o=op: f["method"] == p.job_method(e, o))
            assert reply["status"] == 1
            if op in expected:
                assert reply["message"] == expected[op]
    await ws.send({"method": p.job_method(unknown, "pause")})
    reply = await ws.until(lambda f: f["method"] == p.job_method(unknown, "pause"))
    assert reply["status"] == 1
    await still_serving(ws)


def test_rest_errors(http: httpx.Client) -> None:
    reply = http.post("/entrance/execute", json=p.build_execute_body("", "python", "python"))
    assert reply.status_code == 400 and reply.json()["data"]["errorMsg"]["errCode"] == 20007

    body = p.build_submit_body("print(1)", "python", "python", user="alice")
    del body["labels"]
    assert http.post("/entrance/submit", json=body).json()["data"]["errorMsg"]["errCode"] == 20008

    body = p.build_submit_body("print(1)", "python", "python", user="alice")
    del body["labels"]["engineType"]
    assert http.post("/entrance/submit", json=body).json()["data"]["errorMsg"]["errCode"] == 20009

    body = p.build_submit_body("print(1)", "python", "python", user="mallory")
    assert http.post("/entrance/submit", json=body).json()["data"]["errorMsg"]["errCode"] == 50080

    body = p.build_submit_body("print(1)", "python", "python", user="alice")
    del body["executionContent"]["code"]
    assert http.post("/entrance/submit", json=body).json()["data"]["errorMsg"]["errCode"] == 20010

    body = p.build_submit_body("print(1)", "python", "python", user="alice")
    body["params"]["variable"] = {"n": 1}
    assert http.post("/entrance/submit", json=body).json()["data"]["errorMsg"]["errCode"] == 20039

    reply = http.post("/entrance/submit", content=b"{broken", headers={"Content-Type": "x"})
    assert reply.status_code == 400 and reply.json()["status"] == 1
    reply = http.post("/entrance/submit", json=[1, 2])
    assert reply.status_code == 400 and reply.json()["status"] == 1


def test_rest_unknown_exec_ids_and_routes(http: httpx.Client) -> None:
    unknown = p.encode_rest_exec_id("linkis-cg-entrance", "127.0.0.1:1", "IDE_alice_python_99999")
    for op in ("status", "progress", "log", "kill"):
        for exec_id in (unknown, "nonsense"):
            reply = http.get(f"/entrance/{exec_id}/{op}")
            assert reply.status_code == 400 and reply.json()["status"] == 1, (op, exec_id)
    status = http.get(f"/entrance/{unknown}/status").json()
    assert status["message"].startswith("ID The corresponding job is empty")
    assert http.get("/jobhistory/99999999/get").json()["status"] == 1
    assert http.get("/jobhistory/99999999999999999999999/get").json()["status"] == 1
    missing = http.get("/no/such/route")
    assert missing.json()["status"] == 1 and "Cannot find a service" in missing.json()["message"]
    reply = http.get(f"/entrance/{unknown}/log", params={"fromLine": "x"})
    assert reply.status_code == 400


async def test_unknown_engine_fails_the_job_naming_the_engines(ws: RawSocket) -> None:
    _e, task_id = await ws.execute("select 1", engine="hive", run_type="sql")
    assert await ws.wait_status(task_id) == "Failed"
    error = "".join(
        f["data"]["log"][0] for f in ws.job_frames(task_id) if f["method"].endswith("/log")
    )
    assert "hive" in error and "python" in error and "shell" in error and "spark" in error


async def test_wrong_run_type_fails_the_job(ws: RawSocket) -> None:
    _e, task_id = await ws.execute("print(1)", engine="python", run_type="sql")
    assert await ws.wait_status(task_id) == "Failed"
    assert "not 'sql'" in ws.job_log(task_id)


async def test_creators_that_are_not_names_are_refused(ws: RawSocket) -> None:
    for creator in ("../../etc", "a/b", "", "x" * 100):
        frame = p.build_execute_frame("print(1)", "python", "python", tag="c", creator=creator)
        if not creator:
            frame["data"]["requestApplicationName"] = "   "
        await ws.send(frame)
        reply = await ws.until(lambda f: f["method"] == p.EXECUTE_METHOD and f["status"] != 0)
        assert err_code(reply) == 20009
    await still_serving(ws)


async def test_frames_beyond_the_hard_limit_close_only_that_socket(
    gateway: Any, alice_ticket: str
) -> None:
    from gateway_testing import open_socket
    from websockets.exceptions import ConnectionClosed

    sock = await open_socket(gateway.ws_url, alice_ticket)
    with pytest.raises(ConnectionClosed) as closed:
        await sock.send("x" * (17 * 1024 * 1024))
        await sock.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    other = await open_socket(gateway.ws_url, alice_ticket)
    try:
        await still_serving(other)
    finally:
        await other.conn.close()


WEIRD_DATA: list[Any] = [
    [],
    "text",
    42,
    None,
    {"executeApplicationName": ["python"], "executionCode": "print(1)"},
    {"executeApplicationName": "python", "executionCode": {"code": 1}},
    {"executeApplicationName": "python", "executionCode": "x", "params": []},
    {"executeApplicationName": "python", "executionCode": "x", "params": {"variable": [1]}},
    {"executeApplicationName": "python", "executionCode": "x", "params": {"configuration": 5}},
    {"executeApplicationName": "python", "executionCode": "x", "labels": "spark"},
    {"executionContent": "x", "labels": {"engineType": "python"}},
    {"executionContent": {"code": "x", "runType": 7}, "labels": {"engineType": 3}},
    {"executionContent": {"code": "x"}, "labels": {"engineType": "python", "userCreator": 5}},
    {"executeApplicationName": "python-", "executionCode": "x", "requestApplicationName": 9},
    {"executeApplicationName": "\u0000", "executionCode": "x"},
]


async def test_weird_shapes_never_break_the_socket(ws: RawSocket) -> None:
    for data in WEIRD_DATA:
        await ws.send({"method": p.EXECUTE_METHOD, "websocketTag": 5, "data": data})
        reply = await ws.recv()
        assert set(reply) == {"method", "status", "message", "data"}
        if reply["status"] == 0:
            await ws.wait_status(reply["data"]["taskID"])
    for method in (
        5,
        [],
        {"a": 1},
        "/api/rest_j/v1/entrance//status",
        "/api/rest_j/v1/entrance/ /kill",
    ):
        await ws.send({"method": method, "data": {}})
        assert (await ws.recv())["status"] != 0
    await ws.send("[" * 100_000)
    assert (await ws.recv())["status"] == 1
    await still_serving(ws)


def test_weird_shapes_never_break_rest(http: httpx.Client) -> None:
    for data in WEIRD_DATA:
        for op in ("execute", "submit"):
            reply = http.post(f"/entrance/{op}", json=data)
            assert reply.status_code in (200, 400), (op, data, reply.text)
            body = reply.json()
            assert set(body) == {"method", "status", "message", "data"}
    reply = http.post("/entrance/submit", content=b"[" * 100_000)
    assert reply.status_code == 400
    for path in ("/entrance/%00/status", "/entrance/a%2Fb/log", "/jobhistory/0/get"):
        assert http.get(path).status_code in (400, 403, 404)
    assert http.get("/filesystem/openFile", params={"path": "\u0000"}).json()["status"] == 1
    assert http.get("/filesystem/getDirFileTrees").json()["status"] == 1
