"""The python and shell engines, engine processes (reuse, crash, idle stop), variables."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import httpx
import pytest
from gateway_testing import RawSocket, open_socket
from waiting import wait_for

from linkis_magic import protocol as p
from linkis_magic.gateway.engines.base import EngineError
from linkis_magic.gateway.engines.process import load_engine_class

pytestmark = pytest.mark.timeout(60)


def results(http: httpx.Client, task_id: int) -> list[dict[str, Any]]:
    task = http.get(f"/jobhistory/{task_id}/get").json()["data"]["task"]
    tree = http.get("/filesystem/getDirFileTrees", params={"path": task["resultLocation"]})
    children = (tree.json()["data"]["dirFileTrees"] or {}).get("children") or []
    return [
        http.get("/filesystem/openFile", params={"path": c["path"]}).json()["data"]
        for c in children
    ]


def error_log(ws: RawSocket, task_id: int) -> str:
    return "".join(
        f["data"]["log"][0] for f in ws.job_frames(task_id) if f["method"].endswith("/log")
    )


async def run(ws: RawSocket, code: str, **kwargs: Any) -> tuple[int, str]:
    _e, task_id = await ws.execute(code, **kwargs)
    return task_id, await ws.wait_status(task_id)


async def test_python_names_survive_and_the_last_value_is_shown(
    ws: RawSocket, http: httpx.Client
) -> None:
    task_id, status = await run(ws, "def double(x):\n    return 2 * x\ncounter = 20")
    assert status == "Succeed" and results(http, task_id) == []
    task_id, status = await run(ws, "counter += 1\ndouble(counter)")
    assert status == "Succeed"
    assert [r["fileContent"] for r in results(http, task_id)] == [[["42"]]]


async def test_python_exception_fails_with_the_traceback_in_the_error_log(
    ws: RawSocket, http: httpx.Client
) -> None:
    task_id, status = await run(ws, "def boom():\n    raise ValueError('bad value')\nboom()")
    assert status == "Failed"
    error = error_log(ws, task_id)
    assert "Traceback" in error and "in boom" in error and "ValueError: bad value" in error
    assert "engines/process.py" not in error
    task = http.get(f"/jobhistory/{task_id}/get").json()["data"]["task"]
    assert task["errDesc"] == "ValueError: bad value" and task["errCode"] == 40001

    task_id, status = await run(ws, "print('unclosed'")
    assert status == "Failed" and "SyntaxError" in error_log(ws, task_id)


async def test_dataframe_column_types(ws: RawSocket, http: httpx.Client) -> None:
    code = (
        "import pandas as pd, datetime as dt, decimal\n"
        "pd.DataFrame({\n"
        "  'i32': pd.Series([1, 2], dtype='int32'),\n"
        "  'i64': pd.Series([1, 2], dtype='int64'),\n"
        "  'f': [1.5, None],\n"
        "  's': ['a', None],\n"
        "  'b': [True, False],\n"
        "  'd': [dt.date(2026, 1, 2), None],\n"
        "  'ts': pd.to_datetime(['2026-01-02 03:04:05', None]),\n"
        "  'dec': [decimal.Decimal('12.34'), None],\n"
        "})"
    )
    task_id, status = await run(ws, code)
    assert status == "Succeed"
    [table] = results(http, task_id)
    assert table["type"] == "2"
    types = {m["columnName"]: m["dataType"] for m in table["metadata"]}
    assert types == {
        "i32": "int",
        "i64": "bigint",
        "f": "double",
        "s": "string",
        "b": "boolean",
        "d": "date",
        "ts": "timestamp",
        "dec": "decimal(10,2)",
    }
    assert table["fileContent"] == [
        ["1", "1", "1.5", "a", "true", "2026-01-02", "2026-01-02 03:04:05", "12.34"],
        ["2", "2", "NULL", "NULL", "false", "NULL", "NULL", "NULL"],
    ]
    assert all(m["comment"] == "NULL" for m in table["metadata"])


async def test_shell_stdout_is_a_text_result(ws: RawSocket, http: httpx.Client) -> None:
    task_id, status = await run(ws, "echo one\necho two\necho err >&2", engine="shell")
    assert status == "Succeed"
    assert [r["fileContent"] for r in results(http, task_id)] == [[["one"], ["two"]]]
    assert "err" in error_log(ws, task_id)


async def test_shell_nonzero_exit_fails_with_stderr_in_the_error_log(ws: RawSocket) -> None:
    task_id, status = await run(ws, "echo partial\necho 'it broke' >&2\nexit 3", engine="shell")
    assert status == "Failed"
    error = error_log(ws, task_id)
    assert "it broke" in error and "exited with code 3" in error


async def test_engine_crash_fails_the_job_and_the_next_job_gets_a_new_process(
    gateway: Any, ws: RawSocket
) -> None:
    task_id, status = await run(ws, "import os\nprint(os.getpid())", creator="crash")
    pid = re.search(r"INFO (\d+)\n", ws.job_log(task_id)).group(1)  # type: ignore[union-attr]

    task_id, status = await run(ws, "import os\nos._exit(7)", creator="crash")
    assert status == "Failed"
    assert "The engine process died (exit code 7)" in error_log(ws, task_id)

    task_id, status = await run(ws, "import os\nprint(os.getpid())", creator="crash")
    assert status == "Succeed"
    new_pid = re.search(r"INFO (\d+)\n", ws.job_log(task_id)).group(1)  # type: ignore[union-attr]
    assert new_pid != pid


async def test_idle_engines_stop_and_restart_on_demand(make_gateway: Any, login: Any) -> None:
    gw = make_gateway(engine_idle_timeout=0.3)
    sock = await open_socket(gw.ws_url, login(gw.url, gw.user, gw.password))
    try:
        task_id, status = await run(sock, "x = 1")
        assert status == "Succeed"
        slots = gw.server.jobs.slots
        wait_for(lambda: all(s.process is None for s in slots.values()), timeout=10)
        task_id, status = await run(sock, "print('x' in globals())")
        assert status == "Succeed"
        assert "INFO False" in sock.job_log(task_id)
    finally:
        await sock.conn.close()


async def test_variables_are_substituted_like_linkis(ws: RawSocket) -> None:
    code = "print('${name}', '${undefined}', ${n + 2}, '${run_date}', '${run_date_std}')"
    task_id, status = await run(ws, code, variables={"name": "world", "n": "40"})
    assert status == "Succeed"
    log = ws.job_log(task_id)
    yesterday = dt.date.today() - dt.timedelta(days=1)
    expected = f"world ${{undefined}} 42 {yesterday:%Y%m%d} {yesterday.isoformat()}"
    assert f"INFO {expected}\n" in log
    script = log.split("SCRIPT CODE")[1]
    assert "'world'" in script and "${name}" not in script

    task_id, status = await run(ws, "print('${run_date + 1}')", variables={"run_date": "20261231"})
    assert status == "Succeed" and "INFO 20270101\n" in ws.job_log(task_id)


async def test_a_reused_engine_warns_about_startup_settings_it_cannot_apply(
    ws: RawSocket,
) -> None:
    task_id, status = await run(ws, "x = 1", creator="startup", startup={"mem": "1g"})
    assert status == "Succeed"
    task_id, status = await run(ws, "x = 2", creator="startup", startup={"mem": "2g"})
    assert status == "Succeed"
    warn = "".join(f["data"]["log"][1] for f in ws.job_frames(task_id) if "/log" in f["method"])
    assert "in a new engine only: mem" in warn


def test_load_engine_class_names_the_engines() -> None:
    with pytest.raises(EngineError, match="python, shell, spark"):
        load_engine_class("hive")
    assert load_engine_class("python").name == "python"
    assert p.JobStatus.CANCELLED.is_terminal


async def test_user_code_reading_stdin_cannot_steal_engine_commands(ws: RawSocket) -> None:
    code = "import sys, os\nprint(repr(sys.stdin.read()), repr(os.read(0, 100)))"
    task_id, status = await run(ws, code, creator="stdin")
    assert status == "Succeed" and "INFO '' b''" in ws.job_log(task_id)
    task_id, status = await run(ws, "print('next job runs')", creator="stdin")
    assert status == "Succeed" and "next job runs" in ws.job_log(task_id)


async def test_jobs_run_in_the_users_work_dir(gateway: Any, ws: RawSocket) -> None:
    task_id, status = await run(ws, "import os\nprint(os.getcwd())", creator="cwd")
    assert status == "Succeed"
    assert f"INFO {gateway.data_dir / 'work' / 'alice'}\n" in ws.job_log(task_id)
