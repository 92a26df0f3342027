"""One job end to end over the socket and REST: replies, push order, logs, history, results."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from gateway_testing import RawSocket, rest_wait_terminal

from linkis_magic import protocol as p

pytestmark = pytest.mark.timeout(60)


def kinds(frames: list[dict[str, Any]]) -> list[str]:
    out = []
    for frame in frames:
        op = frame["method"].rsplit("/", 1)[-1]
        out.append(frame["data"]["status"] if op == "status" else op)
    return out


async def test_execute_gets_two_replies_with_the_legacy_exec_id(
    gateway: Any, ws: RawSocket
) -> None:
    exec_id, task_id = await ws.execute("print('hi')", tag="tag-two-replies")
    await ws.wait_status(task_id)

    replies = [f for f in ws.frames if f["method"] == p.EXECUTE_METHOD]
    assert [r["message"] for r in replies] == [
        "Request execution succeeded(请求执行成功)",
        "The request was executed successfully!",
    ]
    for reply in replies:
        assert reply["data"] == {
            "execID": exec_id,
            "taskID": task_id,
            "websocketTag": "tag-two-replies",
        }
    decoded = p.decode_exec_id(exec_id)
    assert decoded.form == "legacy"
    assert (decoded.creator, decoded.engine) == ("IDE", "python")
    assert decoded.instance == f"127.0.0.1:{gateway.port}"
    assert decoded.job_id == f"IDE_alice_python_{task_id}"


async def test_pushes_arrive_in_order_with_logs_and_progress_between(ws: RawSocket) -> None:
    exec_id, task_id = await ws.execute("print('line one')\nprint('line two')")
    assert await ws.wait_status(task_id) == "Succeed"

    frames = [f for f in ws.job_frames(task_id) if f["method"] != p.EXECUTE_METHOD]
    sequence = kinds(frames)
    statuses = [k for k in sequence if k[0].isupper()]
    assert statuses == ["Inited", "Scheduled", "Running", "Succeed"]
    assert sequence.index("log") < sequence.index("Inited")
    running = sequence.index("Running")
    between = sequence[running + 1 : sequence.index("Succeed")]
    assert "log" in between and "progress" in between
    for frame in frames:
        assert frame["method"] == p.job_method(exec_id, frame["method"].rsplit("/", 1)[-1])
        assert isinstance(frame["data"][p.EMIT_STAMP_KEY], float)
        assert frame["data"]["websocketTag"] is not None
    progress = [f for f in frames if f["method"].endswith("/progress")]
    assert progress[-1]["data"]["progress"] == 1.0
    assert "progressInfo" in progress[-1]["data"]


async def test_log_pushes_use_linkis_lines_and_four_buckets(ws: RawSocket) -> None:
    code = "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n1/0"
    _exec_id, task_id = await ws.execute(code)
    assert await ws.wait_status(task_id) == "Failed"

    logs = [f["data"]["log"] for f in ws.job_frames(task_id) if f["method"].endswith("/log")]
    error = "".join(b[0] for b in logs)
    warn = "".join(b[1] for b in logs)
    info = "".join(b[2] for b in logs)
    every = "".join(b[3] for b in logs)
    assert "ZeroDivisionError: division by zero" in error
    assert "to stderr" in warn
    assert "to stdout" in info
    for bucket in logs:
        for text in bucket:
            assert text == "" or text.endswith("\n")
    first_lines = [line for line in every.split("\n") if line and p.log_level_of(line)]
    assert first_lines and all(p.log_level_of(line) for line in first_lines)
    assert p.log_level_of(every.split("\n")[0]) == "INFO"
    assert "****SCRIPT CODE****" in every and "print('to stdout')" in every


def test_rest_submit_status_log_history_and_results(gateway: Any, http: httpx.Client) -> None:
    body = p.build_submit_body(
        "import pandas as pd\nprint('rows follow')\n"
        "pd.DataFrame({'a': [1, 2, None], 'b': ['x', None, 'z'], 'c': [True, False, True]})",
        "python",
        "python",
        user="alice",
    )
    reply = http.post("/entrance/submit", json=body).json()
    assert reply["status"] == 0 and reply["method"] == "/api/entrance/submit"
    exec_id, task_id = reply["data"]["execID"], reply["data"]["taskID"]
    assert exec_id.startswith("exec_id018") and isinstance(task_id, int)
    assert p.decode_exec_id(exec_id).app == "linkis-cg-entrance"

    assert rest_wait_terminal(http, exec_id) == "Succeed"

    log = http.get(f"/entrance/{exec_id}/log", params={"fromLine": 1, "size": -1}).json()["data"]
    assert "rows follow" in log["log"][2] and "rows follow" in log["log"][3]
    assert log["fromLine"] == 1 + len(log["log"][3].split("\n"))

    task = http.get(f"/jobhistory/{task_id}/get").json()["data"]["task"]
    keys = (
        "taskID execId status umUser executeUser executionCode engineType runType progress logPath "
        "resultLocation errCode errDesc createdTime updatedTime costTime requestApplicationName "
        "executeApplicationName"
    )
    for key in keys.split(" "):
        assert key in task, key
    assert task["status"] == "Succeed" and task["umUser"] == "alice" and task["progress"] == 1.0
    assert task["engineType"] == "python" and task["requestApplicationName"] == "IDE"

    tree = http.get("/filesystem/getDirFileTrees", params={"path": task["resultLocation"]})
    children = tree.json()["data"]["dirFileTrees"]["children"]
    assert [c["name"] for c in children] == ["_0.dolphin", "_1.dolphin"]

    text = http.get("/filesystem/openFile", params={"path": children[0]["path"]}).json()["data"]
    assert text["type"] == "1" and text["fileContent"] == [["rows follow"]]
    table = http.get("/filesystem/openFile", params={"path": children[1]["path"]}).json()["data"]
    assert table["type"] == "2"
    assert [(m["columnName"], m["dataType"]) for m in table["metadata"]] == [
        ("a", "double"),
        ("b", "string"),
        ("c", "boolean"),
    ]
    assert table["fileContent"] == [
        ["1.0", "x", "true"],
        ["2.0", "NULL", "false"],
        ["NULL", "z", "true"],
    ]
    assert table["totalLine"] == 3 and table["page"] == 1
