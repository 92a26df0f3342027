"""The spark engine end to end: a real gateway, a raw socket, REST result files, one SparkSession.

The tests share the session gateway's one spark engine process for alice/IDE, so this module
starts Spark once (the no-Java test uses a gateway of its own and starts none).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway_testing import RawSocket, open_socket
from waiting import wait_for

from linkis_magic import protocol as p

pytestmark = [pytest.mark.spark, pytest.mark.timeout(360)]

STARTUP_BUDGET = 300.0


async def run_spark(
    ws: RawSocket, code: str, run_type: str = "sql", timeout: float = STARTUP_BUDGET, **kw: Any
) -> tuple[str, int, str]:
    """Submit a spark job over the socket and wait for its end: (execID, taskID, status)."""
    exec_id, task_id = await ws.execute(code, "spark", run_type, **kw)
    return exec_id, task_id, await ws.wait_status(task_id, timeout)


def result_sets(http: httpx.Client, task_id: int) -> list[dict[str, Any]]:
    """Every result set of a job, read as a browser does: history, dir tree, openFile."""
    task = http.get(f"/jobhistory/{task_id}/get").json()["data"]["task"]
    tree = http.get("/filesystem/getDirFileTrees", params={"path": task["resultLocation"]})
    children = (tree.json()["data"]["dirFileTrees"] or {}).get("children") or []
    return [
        http.get("/filesystem/openFile", params={"path": c["path"]}).json()["data"]
        for c in children
    ]


def columns(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["columnName"], m["dataType"]) for m in result["metadata"]]


def log_bucket(ws: RawSocket, task_id: int, bucket: int) -> str:
    """One of the four log buckets (0 error, 1 warn, 2 info, 3 all) of a job's log pushes."""
    logs = [f["data"]["log"] for f in ws.job_frames(task_id) if f["method"].endswith("/log")]
    return "".join(entry[bucket] for entry in logs)


def application_id(ws: RawSocket, task_id: int) -> str:
    match = re.search(r"application ([^\s)]+)", log_bucket(ws, task_id, 2))
    assert match, "the job log names no Spark application"
    return match.group(1)


async def test_sql_aggregation_pushes_stage_progress_before_succeed(
    ws: RawSocket, http: httpx.Client
) -> None:
    _e, task_id, status = await run_spark(
        ws, "select count(*) as n, sum(id % 1000) as s from range(0, 20000000, 1, 6)"
    )

    assert status == "Succeed", log_bucket(ws, task_id, 0)
    frames = ws.job_frames(task_id)
    done_at = next(
        i
        for i, f in enumerate(frames)
        if f["method"].endswith("/status") and f["data"]["status"] == "Succeed"
    )
    staged = [
        f["data"]
        for f in frames[:done_at]
        if f["method"].endswith("/progress")
        and any(s["totalTasks"] > 0 for s in f["data"].get("progressInfo") or [])
    ]
    assert staged, "no progress push with Spark stages before Succeed"
    six = [s for d in staged for s in d["progressInfo"] if s["totalTasks"] == 6]
    assert six and set(six[0]) == {
        "id",
        "succeedTasks",
        "failedTasks",
        "runningTasks",
        "totalTasks",
    }
    assert all(0.0 <= d["progress"] <= 1.0 for d in staged)
    info = log_bucket(ws, task_id, 2)
    assert "spark engine accepted job" in info and "statement 1/1 started: select count(*)" in info
    assert re.search(r"stage \d+ finished: 6 tasks", info)
    assert "result set 1: 1 rows written" in info

    (table,) = result_sets(http, task_id)
    assert columns(table) == [("n", "bigint"), ("s", "bigint")]
    assert table["fileContent"] == [["20000000", str(sum(range(1000)) * 20000)]]


async def test_a_cell_of_several_statements_gives_several_result_sets(
    ws: RawSocket, http: httpx.Client
) -> None:
    code = (
        "create or replace temporary view t3 as select id, id % 3 as k from range(30);\n"
        "-- groups; counted\n"
        "select k, count(*) as c from t3 group by k order by k;\n"
        "select max(id) as top, ';' as semi from t3;"
    )
    _e, task_id, status = await run_spark(ws, code)

    assert status == "Succeed", log_bucket(ws, task_id, 0)
    grouped, top = result_sets(http, task_id)
    assert columns(grouped) == [("k", "bigint"), ("c", "bigint")]
    assert grouped["fileContent"] == [["0", "10"], ["1", "10"], ["2", "10"]]
    assert top["fileContent"] == [["29", ";"]]
    assert "statement 3/3 started" in log_bucket(ws, task_id, 2)


async def test_runtime_spark_settings_apply_to_their_job_alone(
    ws: RawSocket, http: httpx.Client
) -> None:
    show = "set spark.sql.shuffle.partitions"
    _e, task_id, status = await run_spark(
        ws,
        show,
        runtime={"spark.sql.shuffle.partitions": "7", "wds.linkis.rm.yarnqueue": "default"},
    )
    _e, after_id, after = await run_spark(ws, show)

    assert (status, after) == ("Succeed", "Succeed"), log_bucket(ws, task_id, 0)
    assert result_sets(http, task_id)[0]["fileContent"] == [["spark.sql.shuffle.partitions", "7"]]
    assert result_sets(http, after_id)[0]["fileContent"][0][1] != "7"
    info = log_bucket(ws, task_id, 2)
    assert "runtime settings for this job: spark.sql.shuffle.partitions" in info
    assert "does not use: wds.linkis.rm.yarnqueue" in info


async def test_type_matrix_round_trips_through_open_file(ws: RawSocket, http: httpx.Client) -> None:
    code = """select cast(7 as int) as i, cast(8 as bigint) as b, cast(9 as smallint) as sm,
                     cast(1 as tinyint) as ti, cast(0.25 as float) as f, cast(1.5 as double) as d,
                     'text' as s, false as bo, date'2026-12-01' as dt,
                     timestamp'2026-12-01 08:09:10' as ts, cast(-3.5 as decimal(8,3)) as dec,
                     X'4142' as bin, array('a', null) as arr, map(1, 'one') as m,
                     named_struct('n', 1, 'l', array(2)) as st, cast(null as string) as nul"""
    _e, task_id, status = await run_spark(ws, code)

    assert status == "Succeed", log_bucket(ws, task_id, 0)
    (table,) = result_sets(http, task_id)
    assert table["type"] == "2"
    assert columns(table) == [
        ("i", "int"), ("b", "bigint"), ("sm", "smallint"), ("ti", "tinyint"), ("f", "float"),
        ("d", "double"), ("s", "string"), ("bo", "boolean"), ("dt", "date"),
        ("ts", "timestamp"), ("dec", "decimal(8,3)"), ("bin", "binary"), ("arr", "array"),
        ("m", "map"), ("st", "struct"), ("nul", "string"),
    ]  # fmt: skip
    assert table["fileContent"] == [
        [
            "7", "8", "9", "1", "0.25", "1.5", "text", "false", "2026-12-01",
            "2026-12-01 08:09:10", "-3.500", "AB", '["a",null]', '{1:"one"}',
            '{"n":1,"l":[2]}', "NULL",
        ]
    ]  # fmt: skip


async def test_killed_long_query_ends_cancelled_and_the_session_runs_the_next_job(
    ws: RawSocket, http: httpx.Client
) -> None:
    _e, warm_id, status = await run_spark(ws, "select 1 as warm")
    assert status == "Succeed"

    exec_id, task_id = await ws.execute(
        "select count(*) from range(0, 1000000000000, 1, 4) where id % 7 = 3", "spark", "sql"
    )
    await ws.until(
        lambda f: (
            f["method"].endswith("/progress")
            and (f.get("data") or {}).get("taskID") == task_id
            and any(s["runningTasks"] > 0 for s in f["data"].get("progressInfo") or [])
        ),
        timeout=60,
    )
    killed = time.monotonic()
    await ws.send(p.build_job_frame(exec_id, "kill"))

    assert await ws.wait_status(task_id, timeout=30) == "Cancelled"
    assert time.monotonic() - killed < 5
    _e, next_id, status = await run_spark(ws, "select 41 + 1 as answer")
    assert status == "Succeed"
    assert result_sets(http, next_id)[0]["fileContent"] == [["42"]]
    assert application_id(ws, next_id) == application_id(ws, warm_id)


async def test_pyspark_last_expression_and_show_become_result_sets(
    ws: RawSocket, http: httpx.Client
) -> None:
    code = (
        "squares = spark.range(1, 4).selectExpr('id', 'id * id as sq')\n"
        "print('squares ready')\n"
        "show(squares.where('id = 2'))\n"
        "squares"
    )
    _e, task_id, status = await run_spark(ws, code, "py")

    assert status == "Succeed", log_bucket(ws, task_id, 0)
    text, shown, last = result_sets(http, task_id)
    assert text["type"] == "1" and text["fileContent"] == [["squares ready"]]
    assert columns(shown) == [("id", "bigint"), ("sq", "bigint")]
    assert shown["fileContent"] == [["2", "4"]]
    assert last["fileContent"] == [["1", "1"], ["2", "4"], ["3", "9"]]

    _e, task_id, status = await run_spark(ws, "squares.count() * 10", "pyspark")
    assert status == "Succeed"
    assert result_sets(http, task_id)[0]["fileContent"] == [["30"]]


async def test_statement_error_fails_the_job_with_spark_message(ws: RawSocket) -> None:
    _e, task_id, status = await run_spark(ws, "select 1;\nselect * from missing_table_x")

    assert status == "Failed"
    error = log_bucket(ws, task_id, 0)
    assert "statement 2 failed: [TABLE_OR_VIEW_NOT_FOUND]" in error
    assert "missing_table_x" in error and "\tat org.apache" not in error


async def test_spark_warn_lines_reach_the_warn_log(ws: RawSocket) -> None:
    code = "select max(r) as m from (select row_number() over (order by id) as r from range(5))"
    _e, task_id, status = await run_spark(ws, code)

    assert status == "Succeed"
    assert "WindowExec: No Partition Defined for Window operation" in log_bucket(ws, task_id, 1)


async def test_startup_keys_the_running_session_lacks_are_named_in_a_warning(
    ws: RawSocket,
) -> None:
    _e, first_id, status = await run_spark(ws, "select 1")
    assert status == "Succeed"

    _e, task_id, status = await run_spark(ws, "select 2", startup={"spark.executor.memory": "3g"})

    assert status == "Succeed"
    assert "spark.executor.memory" in log_bucket(ws, task_id, 1)
    assert application_id(ws, task_id) == application_id(ws, first_id)


async def test_killed_python_loop_ends_cancelled_and_its_names_survive(
    ws: RawSocket, http: httpx.Client, tmp_path: Path
) -> None:
    _e, task_id, status = await run_spark(ws, "import pandas as pd\nkept = 20", "py")
    assert status == "Succeed"
    first_app = application_id(ws, task_id)

    marker = tmp_path / "looping"
    exec_id, task_id = await ws.execute(
        f"kept += 1\nopen({str(marker)!r}, 'w').close()\nwhile kept:\n    pass", "spark", "py"
    )
    await asyncio.to_thread(wait_for, marker.exists, 60)
    await ws.send(p.build_job_frame(exec_id, "kill"))
    assert await ws.wait_status(task_id, timeout=30) == "Cancelled"

    _e, task_id, status = await run_spark(ws, "pd.DataFrame({'kept': [kept * 2]})", "py")
    assert status == "Succeed"
    assert application_id(ws, task_id) == first_app
    (table,) = result_sets(http, task_id)
    assert columns(table) == [("kept", "bigint")] and table["fileContent"] == [["42"]]


async def test_pyspark_error_shows_the_cells_traceback_with_spark_message(ws: RawSocket) -> None:
    code = "rows = 3\nspark.sql('select * from nowhere_t').collect()"
    _e, task_id, status = await run_spark(ws, code, "py")

    assert status == "Failed"
    error = log_bucket(ws, task_id, 0)
    assert "line 2" in error and "AnalysisException: [TABLE_OR_VIEW_NOT_FOUND]" in error
    assert "site-packages" not in error and "\tat org.apache" not in error


async def test_without_java_a_spark_job_says_what_to_install_and_python_still_runs(
    make_gateway: Callable[..., Any],
    login: Callable[[str, str, str], str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java-here"))
    other = make_gateway()
    sock = await open_socket(other.ws_url, login(other.url, other.user, other.password))
    try:
        _e, task_id, status = await run_spark(sock, "select 1", timeout=60)
        assert status == "Failed"
        assert "needs a Java 17 runtime" in log_bucket(sock, task_id, 0)

        _e, task_id = await sock.execute("print('still here')", "python", "python")
        assert await sock.wait_status(task_id, 60) == "Succeed"
    finally:
        await sock.conn.close()
