"""SparkEngine driven directly, through a small recording JobContext, on one real SparkSession."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_for as wait_until

from linkis_magic.gateway.engines.base import Column, EngineError, EngineSettings, JobContext
from linkis_magic.gateway.engines.spark import (
    SparkEngine,
    missing_requirement,
    relay_warnings,
    render_double,
    render_float,
    render_nested,
    render_timestamp,
    split_statements,
    statement_preview,
)

# Whichever Spark test runs first starts the module's SparkSession: 15-30 s on an idle 2-core
# machine, minutes on a busy one.
pytestmark = pytest.mark.timeout(360)

_ids = itertools.count(1)


class RecordingContext(JobContext):
    """A real JobContext that keeps what the engine reports, for the test to look at."""

    def __init__(
        self,
        code: str,
        run_type: str = "sql",
        *,
        row_limit: int = 5000,
        startup: Mapping[str, str] | None = None,
    ) -> None:
        n = next(_ids)
        self.job_id = f"IDE_alice_spark_{n}"
        self.exec_id = f"exec-{n}"
        self.task_id = n
        self.user = "alice"
        self.creator = "IDE"
        self.run_type = run_type
        self.code = code
        self.startup = dict(startup or {})
        self.runtime: Mapping[str, str] = {}
        self.special: Mapping[str, str] = {}
        self.row_limit = row_limit
        self.cancelled = threading.Event()
        self.logs: list[tuple[str, str]] = []
        self.progresses: list[tuple[float, list[dict[str, Any]]]] = []
        self.results: list[tuple[str, Any]] = []
        self.offered: list[int] = []
        self._changed = threading.Condition()

    def log(self, level: str, message: str) -> None:
        with self._changed:
            self.logs.append((level, message))
            self._changed.notify_all()

    def progress(self, progress: float, info: Sequence[Mapping[str, object]] = ()) -> None:
        with self._changed:
            self.progresses.append((progress, [dict(i) for i in info]))
            self._changed.notify_all()

    def table(self, columns: Sequence[Column], rows: Iterable[Sequence[object]]) -> int:
        offered = [["NULL" if v is None else str(v) for v in row] for row in rows]
        kept = offered[: self.row_limit]
        if len(offered) > len(kept):
            self.log("INFO", f"result set truncated to {self.row_limit} rows")
        self.offered.append(len(offered))
        self.results.append(("table", (list(columns), kept)))
        return len(kept)

    def text(self, text: str) -> None:
        self.results.append(("text", text))

    def html(self, html: str) -> None:
        self.results.append(("html", html))

    def picture(self, png: bytes) -> None:
        self.results.append(("picture", png))

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> None:
        with self._changed:
            assert self._changed.wait_for(condition, timeout), "condition not met in time"

    def lines(self, level: str | None = None) -> list[str]:
        return [m for lv, m in self.logs if level is None or lv == level]

    def tables(self) -> list[tuple[list[Column], list[list[str]]]]:
        return [r for kind, r in self.results if kind == "table"]


class JobThread:
    """Runs engine.execute(ctx) in a thread, as the engine process does, keeping its outcome."""

    def __init__(self, engine: SparkEngine, ctx: RecordingContext) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(engine, ctx), daemon=True)
        self.thread.start()

    def _run(self, engine: SparkEngine, ctx: RecordingContext) -> None:
        try:
            engine.execute(ctx)
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the job did not end in time"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkEngine]:
    data_dir = tmp_path_factory.mktemp("spark-data")
    settings = EngineSettings("alice", "IDE", {"spark.sql.shuffle.partitions": "3"}, str(data_dir))
    spark_engine = SparkEngine(settings)
    yield spark_engine
    spark_engine.close()


def run(engine: SparkEngine, code: str, run_type: str = "sql", **kw: Any) -> RecordingContext:
    ctx = RecordingContext(code, run_type, **kw)
    engine.execute(ctx)
    return ctx


# --------------------------------------------------------------------------- no Spark needed


def test_split_statements_ignores_semicolons_in_quotes_and_comments() -> None:
    code = (
        "select 'a;b' as x; -- a comment; with a semicolon\n"
        'select "c;d", `e;f` from t /* block; /* nested; */ still; */ ;\n'
        "-- only a comment;\n ; \n"
        "select 'it\\'s;' as y"
    )
    assert split_statements(code) == [
        "select 'a;b' as x",
        '-- a comment; with a semicolon\nselect "c;d", `e;f` from t '
        "/* block; /* nested; */ still; */",
        "select 'it\\'s;' as y",
    ]


def test_statement_preview_is_the_first_code_line_cut_short() -> None:
    assert statement_preview("-- note\n  select 1\nfrom t") == "select 1"
    long = "select " + ", ".join(f"c{i}" for i in range(60))
    assert statement_preview(long).endswith("...") and len(statement_preview(long)) == 100


def test_values_render_as_spark_prints_them() -> None:
    assert render_float(1.100000023841858) == "1.1"
    assert render_double(float("nan")) == "NaN"
    assert render_double(float("-inf")) == "-Infinity"
    assert render_timestamp(dt.datetime(2026, 1, 2, 3, 4, 5, 120000)) == "2026-01-02 03:04:05.12"
    assert render_timestamp(dt.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02 03:04:05"
    assert render_nested([1, None, {"k": "v"}]) == '[1,null,{"k":"v"}]'


def test_warnings_reach_the_job_log_but_not_pysparks_pandas_version_notice() -> None:
    ctx = RecordingContext("select 1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn("PySpark does not yet fully support pandas >= 3.0.0.", FutureWarning, 1)
        warnings.warn("the user's own deprecation", DeprecationWarning, 1)

    relay_warnings(ctx, caught)

    assert ctx.logs == [("WARN", "DeprecationWarning: the user's own deprecation")]


def test_missing_java_fails_the_job_with_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "Java 17" in (missing_requirement() or "")
    fresh = SparkEngine(EngineSettings("bob", "IDE", {}, str(tmp_path)))
    with pytest.raises(EngineError, match="Java 17 runtime"):
        fresh.execute(RecordingContext("select 1"))


def test_without_pyspark_the_module_imports_and_a_job_says_what_to_install(
    tmp_path: Path,
) -> None:
    script = (
        "import sys\n"
        "sys.modules['pyspark'] = None\n"
        "from linkis_magic.gateway.engines import spark\n"
        "print(spark.missing_requirement())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
    )
    assert "pip install 'linkis-magic[spark]'" in done.stdout


# --------------------------------------------------------------------------- real Spark

spark = pytest.mark.spark


@spark
def test_aggregation_reports_stage_progress_and_its_result(engine: SparkEngine) -> None:
    ctx = run(engine, "select count(*) as n, sum(id) as s from range(0, 2000000, 1, 6)")

    assert ctx.tables() == [
        (
            [Column("n", "bigint"), Column("s", "bigint")],
            [["2000000", str(sum(range(2000000)))]],
        )
    ]
    assert ctx.progresses, "no progress was reported"
    assert all(0.0 <= p <= 1.0 for p, _ in ctx.progresses)
    final, stages = ctx.progresses[-1]
    assert final == 1.0
    assert any(s["totalTasks"] == 6 for s in stages)
    assert all(s["id"].startswith("stage-") for s in stages)
    info = ctx.lines("INFO")
    assert any("accepted job" in line for line in info)
    assert any(line.startswith("statement 1/1 started: select count(*)") for line in info)
    assert any(line.startswith("stage ") and "finished" in line for line in info)
    assert "result set 1: 1 rows written" in info


@spark
def test_each_statement_with_rows_is_one_result_set(engine: SparkEngine) -> None:
    ctx = run(
        engine,
        "create or replace temporary view nums as select id from range(5);\n"
        "select count(*) as c from nums; -- counted; next\n"
        "select 'a;b' as s;\n"
        "show views",
    )

    tables = ctx.tables()
    assert [t[1] for t in tables[:2]] == [[["5"]], [["a;b"]]]
    assert [c.name for c in tables[2][0]] == ["namespace", "viewName", "isTemporary"]
    assert any(row[1] == "nums" for row in tables[2][1])
    assert len(tables) == 3
    values = [p for p, _ in ctx.progresses]
    assert values and values == sorted(values) and values[-1] <= 1.0


@spark
def test_type_matrix_maps_to_linkis_types_and_strings(engine: SparkEngine) -> None:
    ctx = run(
        engine,
        """select cast(1 as int) i, cast(2 as bigint) b, cast(3 as smallint) sm,
                  cast(4 as tinyint) t, cast(1.1 as float) f, cast(2.5 as double) d,
                  'x' s, true bo, date'2026-12-01' dt,
                  timestamp'2026-12-01 10:11:12.5' ts, cast(12.30 as decimal(10,2)) dec,
                  X'48690A' bin, array(1, 2) arr, map('k', 1) m,
                  named_struct('x', 1, 'y', 'z') st, cast(null as int) n""",
    )

    columns, rows = ctx.tables()[0]
    assert [c.data_type for c in columns] == [
        "int", "bigint", "smallint", "tinyint", "float", "double", "string", "boolean",
        "date", "timestamp", "decimal(10,2)", "binary", "array", "map", "struct", "int",
    ]  # fmt: skip
    assert rows == [
        [
            "1", "2", "3", "4", "1.1", "2.5", "x", "true", "2026-12-01",
            "2026-12-01 10:11:12.5", "12.30", "Hi\n", "[1,2]", '{"k":1}',
            '{"x":1,"y":"z"}', "NULL",
        ]
    ]  # fmt: skip


@spark
def test_row_limit_collects_one_row_more_than_it_keeps(engine: SparkEngine) -> None:
    ctx = run(engine, "select id from range(1000)", row_limit=3)

    assert ctx.offered == [4]
    assert ctx.tables()[0][1] == [["0"], ["1"], ["2"]]
    assert "result set 1: 3 rows written" in ctx.lines("INFO")


@spark
def test_a_result_larger_than_one_collect_is_streamed_up_to_the_limit(
    engine: SparkEngine,
) -> None:
    engine.collect_rows = 5
    try:
        ctx = run(engine, "select id from range(0, 20, 1, 3)", row_limit=8)
    finally:
        engine.collect_rows = SparkEngine.collect_rows

    assert ctx.offered == [9]
    assert ctx.tables()[0][1] == [[str(i)] for i in range(8)]
    assert any("streaming it from Spark" in line for line in ctx.lines("INFO"))


@spark
def test_statement_error_fails_with_spark_message_and_no_java_stack(engine: SparkEngine) -> None:
    ctx = RecordingContext("select 1 as ok; select * from no_such_table")
    with pytest.raises(EngineError) as raised:
        engine.execute(ctx)

    message = str(raised.value)
    assert message.startswith("statement 2 failed: [TABLE_OR_VIEW_NOT_FOUND]")
    assert "no_such_table" in message
    assert "\tat " not in message and "org.apache.spark.sql.AnalysisException" not in message
    assert len(ctx.tables()) == 1


@spark
def test_failed_task_fails_the_job_with_spark_message_and_error_lines(engine: SparkEngine) -> None:
    ctx = RecordingContext("select assert_true(id < 3) from range(0, 5, 1, 1)")
    with pytest.raises(EngineError) as raised:
        engine.execute(ctx)

    message = str(raised.value)
    assert message.startswith("statement 1 failed: ") and "(id < 3)" in message
    assert "\tat " not in message and "Driver stacktrace" not in message
    errors = ctx.lines("ERROR")
    assert any(line.startswith(("Executor:", "TaskSetManager:")) for line in errors), errors


@spark
def test_spark_warnings_reach_the_job_log_at_warn(engine: SparkEngine) -> None:
    ctx = run(engine, "select max(r) from (select row_number() over (order by id) r from range(9))")

    assert ctx.tables()[0][1] == [["9"]]
    assert any("WindowExec: No Partition Defined" in line for line in ctx.lines("WARN"))


@spark
def test_killed_query_ends_cancelled_and_the_session_runs_the_next_job(
    engine: SparkEngine,
) -> None:
    ctx = RecordingContext("select count(*) from range(0, 1000000000000, 1, 4) where id % 7 = 3")
    job = JobThread(engine, ctx)
    ctx.wait_for(lambda: any(s["runningTasks"] > 0 for _, i in ctx.progresses for s in i), 90)

    killed = time.monotonic()
    engine.cancel(ctx)
    job.join(30)

    assert job.error is None
    assert time.monotonic() - killed < 5
    assert ctx.cancelled.is_set() and ctx.tables() == []
    after = run(engine, "select 41 + 1 as answer")
    assert after.tables()[0][1] == [["42"]]


@spark
def test_pyspark_last_expression_and_show_become_tables(engine: SparkEngine) -> None:
    ctx = run(
        engine,
        "import sys\n"
        "df = spark.range(3).selectExpr('id', 'id * 10 as tens')\n"
        "print('before')\n"
        "print('careful', file=sys.stderr)\n"
        "show(spark.sql('select 7 as seven'))\n"
        "print('after')\n"
        "df.where('id > 0')",
        "py",
    )

    kinds = [kind for kind, _ in ctx.results]
    assert kinds == ["text", "table", "text", "table"]
    assert ctx.results[0][1] == "before\n" and ctx.results[2][1] == "after\n"
    assert {"before", "after"} <= set(ctx.lines("INFO")) and "careful" in ctx.lines("WARN")
    assert ctx.tables()[0][1] == [["7"]]
    assert ctx.tables()[1] == (
        [Column("id", "bigint"), Column("tens", "bigint")],
        [["1", "10"], ["2", "20"]],
    )


@spark
def test_session_takes_startup_keys_over_quiet_local_defaults(engine: SparkEngine) -> None:
    ctx = run(
        engine,
        "conf = sc.getConf()\n"
        "keys = ['spark.sql.shuffle.partitions', 'spark.ui.enabled', 'spark.driver.host']\n"
        "print(sc.master, *[conf.get(k) for k in keys])",
        "py",
    )

    assert ctx.results == [("text", "local[2] 3 false 127.0.0.1\n")]


@spark
def test_python_functions_run_on_spark_workers(engine: SparkEngine) -> None:
    ctx = run(engine, "sc.parallelize(range(10), 2).map(lambda x: x * x).sum()", "py")

    assert ctx.results == [("text", "285\n")]


@spark
def test_pyspark_state_lives_between_jobs_and_pandas_frames_are_tables(
    engine: SparkEngine,
) -> None:
    run(engine, "import pandas as pd\ncounter = 41", "pyspark")
    ctx = run(engine, "counter += 1\npd.DataFrame({'n': [counter], 'name': ['x']})", "pyspark")

    assert ctx.tables() == [([Column("n", "bigint"), Column("name", "string")], [["42", "x"]])]


@spark
def test_pyspark_error_shows_the_user_traceback_only(engine: SparkEngine) -> None:
    run(engine, "def fetch(name):\n    return spark.sql(f'select * from {name}').collect()", "py")
    ctx = RecordingContext("x = 1\nfetch('nowhere')", "py")
    with pytest.raises(EngineError) as raised:
        engine.execute(ctx)

    message = str(raised.value)
    assert "line 2" in message and "fetch('nowhere')" in message
    assert "line 2, in fetch" in message and "spark.sql(f'select * from {name}')" in message
    assert "AnalysisException: [TABLE_OR_VIEW_NOT_FOUND]" in message
    assert "site-packages" not in message and "\tat org.apache" not in message


@spark
def test_killed_python_loop_is_interrupted_and_the_namespace_survives(
    engine: SparkEngine, tmp_path: Path
) -> None:
    marker = tmp_path / "looping"
    ctx = RecordingContext(
        f"alive = True\nopen({str(marker)!r}, 'w').close()\nwhile alive:\n    pass", "py"
    )
    job = JobThread(engine, ctx)
    wait_until(marker.exists, 60)

    engine.cancel(ctx)
    job.join(20)

    assert job.error is None
    assert run(engine, "alive", "py").results == [("text", "True\n")]


@spark
def test_close_stops_the_session_and_the_next_job_starts_a_new_one(engine: SparkEngine) -> None:
    from pyspark import SparkContext

    first = run(engine, "select 1")
    engine.close()
    assert SparkContext._active_spark_context is None

    second = run(engine, "select 2")
    assert second.tables()[0][1] == [["2"]]
    assert any("SparkSession started" in line for line in second.lines("INFO"))
    assert not any("SparkSession started" in line for line in first.lines("INFO"))
