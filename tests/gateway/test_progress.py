"""Progress pushes while a job runs (progressInfo per stage), with an engine that reports it.

The engine is a test engine registered through the gateway's ``engines`` option, which also
shows that engine classes come from the gateway's registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gateway_testing import open_socket

from linkis_magic import protocol as p

pytestmark = pytest.mark.timeout(60)

HERE = Path(__file__).parent


async def test_progress_is_pushed_while_running_with_progress_info(
    make_gateway: Any, login: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    gw = make_gateway(engines={"progress": "progress_engine:ProgressEngine"})
    sock = await open_socket(gw.ws_url, login(gw.url, gw.user, gw.password))
    try:
        exec_id, task_id = await sock.execute("steps 4", engine="progress", run_type="steps")
        assert await sock.wait_status(task_id) == "Succeed"
    finally:
        await sock.conn.close()

    frames = [f for f in sock.job_frames(task_id) if f["method"] != p.EXECUTE_METHOD]
    kinds = [
        f["data"]["status"] if f["method"].endswith("/status") else f["method"].rsplit("/")[-1]
        for f in frames
    ]
    running, done = kinds.index("Running"), kinds.index("Succeed")
    progress = [f["data"] for f in frames if f["method"] == p.job_method(exec_id, "progress")]
    assert [x["progress"] for x in progress] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert all(running < i < done for i, k in enumerate(kinds) if k == "progress")
    assert progress[1]["progressInfo"] == [
        {"id": "stage-1", "succeedTasks": 2, "failedTasks": 0, "runningTasks": 1, "totalTasks": 4}
    ]
    assert progress[-1]["progressInfo"][0]["succeedTasks"] == 4
    event = p.parse_frame(next(f for f in frames if f["method"].endswith("/progress")))
    assert isinstance(event, p.ProgressUpdate) and event.progress_info[0].total_tasks == 4


async def test_an_engine_that_cannot_be_loaded_fails_the_job_and_the_gateway_goes_on(
    make_gateway: Any, login: Any
) -> None:
    gw = make_gateway(engines={"broken": "no_such_module_here:Engine"})
    sock = await open_socket(gw.ws_url, login(gw.url, gw.user, gw.password))
    try:
        _e, task_id = await sock.execute("anything", engine="broken", run_type="x")
        assert await sock.wait_status(task_id) == "Failed"
        error = "".join(
            f["data"]["log"][0] for f in sock.job_frames(task_id) if f["method"].endswith("/log")
        )
        assert "The broken engine is not available here" in error
        _e, task_id = await sock.execute("print('fine')")
        assert await sock.wait_status(task_id) == "Succeed"
    finally:
        await sock.conn.close()
