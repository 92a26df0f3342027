"""The Spark engine of the embedded gateway: Spark SQL and PySpark on one SparkSession.

pyspark is imported lazily, so this module imports without it; a job then fails with an error that
says what to install. Decisions an operator should know:

- One SparkSession per engine process, that is per user and creator. It starts with the first job,
  from the ``spark.*`` keys of the startup configuration the process was started with, over these
  defaults: ``spark.master=local[2]``, no UI, ``spark.sql.shuffle.partitions=4``; when the master
  is local, also the driver bound to 127.0.0.1, the warehouse under the data dir and this Python
  for UDF workers. Other startup keys are named in an INFO line and not used.
- A job whose startup configuration differs from the running session's runs on that session; the
  engine process logs a WARN line naming the keys not applied. Restarting would lose the session's
  temporary views and Python state; the keys apply when the engine next starts (after its idle
  timeout, which stops the session through ``close()``).
- Jobs of one engine run one at a time, each in a thread of its own under a Spark job group named
  by its job id. A kill cancels the group (and any job the group starts later) and ends the job
  Cancelled within half a second, while Spark tears the job down in the background (the next job
  waits for that, saying so). A PySpark job still running Python code half a second after the kill
  gets an exception raised in its thread, again every half second; code blocked in one long C call
  (``time.sleep(600)``) does not see it, and the gateway stops the engine process after its kill
  grace.
- Progress comes from Spark's status tracker, polled a few times a second: the share of a cell's
  statements done plus the share of the current statement's tasks done, never going back, with
  one progressInfo entry per stage. Spark's WARN and ERROR lines come from a log4j appender on a
  file that each job tails while it runs, so a line goes to whichever job is running when Spark
  writes it.
- Results: each SQL statement that yields columns is one table result set; in PySpark, the value
  of the last expression and ``show(df)`` (Spark or pandas). Types get Hive's names (int, bigint,
  decimal(p,s)...; array, map and struct with their values in Hive's text form), binary values are
  read as UTF-8. At most the row limit plus one row is fetched: one collect up to
  ``collect_rows``, beyond that a stream, partition by partition.
"""

from __future__ import annotations

import ast
import contextlib
import ctypes
import datetime as dt
import decimal
import io
import json
import linecache
import logging
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from linkis_magic.gateway.engines.base import (
    Column,
    Engine,
    EngineError,
    EngineSettings,
    JobContext,
)

if TYPE_CHECKING:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'linkis-magic[spark]'"
JAVA_HINT = (
    "a Java 17 runtime (for example `apt-get install openjdk-17-jre-headless`), "
    "with java on PATH or JAVA_HOME set"
)

DEFAULTS: dict[str, str] = {
    "spark.master": "local[2]",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
}
LOCAL_DEFAULTS: dict[str, str] = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}

SQL_RUN_TYPES = ("sql",)
PYTHON_RUN_TYPES = ("py", "pyspark")

STATEMENT_PREVIEW = 100
# progressInfo lists the latest stages only: a long PySpark job may run hundreds of them.
MAX_STAGES_SHOWN = 100
CELL_PREFIX = "<cell-"
_LOG_FIELD_SEPARATOR = "|"


class _JobCancelled(BaseException):
    """Raised in a PySpark job's thread when it keeps running Python code after a kill."""


# --------------------------------------------------------------------------- SQL statements


def split_statements(code: str) -> list[str]:
    """The statements of a SQL cell: split on ``;`` outside quotes and comments.

    Statements that hold only comments and blanks are dropped; the others keep their comments.
    """
    statements: list[str] = []
    start = 0
    has_code = False
    i = 0
    n = len(code)
    while i < n:
        c = code[i]
        if c in "'\"`":
            i = _end_of_quoted(code, i)
            has_code = True
            continue
        if code.startswith("--", i):
            end = code.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if code.startswith("/*", i):
            i = _end_of_block_comment(code, i)
            continue
        if c == ";":
            if has_code:
                statements.append(code[start:i].strip())
            start = i + 1
            has_code = False
        elif not c.isspace():
            has_code = True
        i += 1
    if has_code:
        statements.append(code[start:].strip())
    return statements


def _end_of_quoted(code: str, i: int) -> int:
    quote = code[i]
    i += 1
    while i < len(code):
        if code[i] == "\\" and quote != "`":
            i += 2
            continue
        if code[i] == quote:
            return i + 1
        i += 1
    return len(code)


def _end_of_block_comment(code: str, i: int) -> int:
    depth = 0
    while i < len(code):
        if code.startswith("/*", i):
            depth += 1
            i += 2
        elif code.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(code)


def statement_preview(statement: str) -> str:
    """The first line of a statement that is not a comment, cut to a readable length."""
    for line in statement.splitlines():
        text = line.strip()
        if text and not text.startswith("--"):
            return text if len(text) <= STATEMENT_PREVIEW else text[: STATEMENT_PREVIEW - 3] + "..."
    return ""


# --------------------------------------------------------------------------- values and types

Renderer = Callable[[Any], "str | None"]


def linkis_type(spark_type: Any) -> str:
    """Linkis's dataType name for a Spark DataType (``int``, ``bigint``, ``decimal(10,2)``...)."""
    name = type(spark_type).__name__
    simple = {
        "BooleanType": "boolean",
        "ByteType": "tinyint",
        "ShortType": "smallint",
        "IntegerType": "int",
        "LongType": "bigint",
        "FloatType": "float",
        "DoubleType": "double",
        "DateType": "date",
        "TimestampType": "timestamp",
        "TimestampNTZType": "timestamp",
        "BinaryType": "binary",
        "ArrayType": "array",
        "MapType": "map",
        "StructType": "struct",
    }
    if name in simple:
        return simple[name]
    if name == "DecimalType":
        return f"decimal({spark_type.precision},{spark_type.scale})"
    return "string"


def render_float(value: float) -> str:
    """A 4-byte float as Java prints it: the shortest digits that read back to the same float."""
    special = _special_float(value)
    if special is not None:
        return special
    packed = struct.pack("<f", value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if struct.pack("<f", float(text)) == packed:
            return repr(float(text))
    return repr(value)


def render_double(value: float) -> str:
    """A double, with NaN and the infinities spelled as Spark spells them."""
    special = _special_float(value)
    return special if special is not None else repr(value)


def _special_float(value: float) -> str | None:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return None


def render_timestamp(value: dt.datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS[.fff]``, the fraction without trailing zeros."""
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += "." + f"{value.microsecond:06d}".rstrip("0")
    return text


def render_nested(value: Any) -> str:
    """Arrays, maps and structs in Hive's text form: ``[1,2]``, ``{"k":1}``, ``{"x":1,"y":"a"}``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes | bytearray):
        return json.dumps(bytes(value).decode("utf-8", "replace"), ensure_ascii=False)
    if isinstance(value, dt.datetime):
        return json.dumps(render_timestamp(value))
    if isinstance(value, dt.date | dt.time):
        return json.dumps(value.isoformat())
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return render_double(value)
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{render_nested(k)}:{render_nested(v)}" for k, v in value.items()) + "}"
        )
    fields = getattr(value, "__fields__", None)
    if isinstance(value, tuple) and fields is not None:
        pairs = zip(fields, value, strict=False)
        return "{" + ",".join(f"{json.dumps(k)}:{render_nested(v)}" for k, v in pairs) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(render_nested(v) for v in value) + "]"
    return str(value)


def _renderer(spark_type: Any) -> Renderer:
    name = type(spark_type).__name__
    plain: dict[str, Renderer] = {
        "BooleanType": lambda v: "true" if v else "false",
        "FloatType": render_float,
        "DoubleType": render_double,
        "DecimalType": lambda v: format(v, "f"),
        "DateType": lambda v: v.isoformat(),
        "TimestampType": render_timestamp,
        "TimestampNTZType": render_timestamp,
        "BinaryType": lambda v: bytes(v).decode("utf-8", "replace"),
        "ArrayType": render_nested,
        "MapType": render_nested,
        "StructType": render_nested,
    }
    return plain.get(name, str)


def spark_rows(fields: Sequence[Any], rows: Iterable[Sequence[Any]]) -> Iterator[list[str | None]]:
    """Rows of a Spark DataFrame rendered column by column; None stays None (Linkis's NULL)."""
    renderers = [_renderer(f.dataType) for f in fields]
    for row in rows:
        yield [None if v is None else r(v) for r, v in zip(renderers, row, strict=False)]


def spark_columns(fields: Sequence[Any]) -> list[Column]:
    """Result set columns for the fields of a Spark schema."""
    return [Column(f.name, linkis_type(f.dataType), _comment(f)) for f in fields]


def _comment(spark_field: Any) -> str:
    metadata = getattr(spark_field, "metadata", None) or {}
    comment = metadata.get("comment", "")
    return comment if isinstance(comment, str) else ""


@contextlib.contextmanager
def job_settings(ctx: JobContext, spark: SparkSession) -> Iterator[None]:
    """The job's runtime configuration, for the job alone.

    ``spark.*`` keys Spark can change in a running session (``spark.sql.shuffle.partitions``,
    ``spark.sql.ansi.enabled`` ...) are set before the job and put back after it; the others are
    named in an INFO line and not applied.
    """
    applied: dict[str, str | None] = {}
    skipped = []
    for key, value in ctx.runtime.items():
        if key.startswith("spark.") and spark.conf.isModifiable(key):
            applied[key] = spark.conf.get(key, None)
            spark.conf.set(key, value)
        else:
            skipped.append(key)
    if applied:
        ctx.log("INFO", "runtime settings for this job: " + ", ".join(sorted(applied)))
    if skipped:
        ctx.log("INFO", "runtime settings the spark engine does not use: " + ", ".join(skipped))
    try:
        yield
    finally:
        for key, previous in applied.items():
            if previous is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, previous)


# Warnings about this installation, not about the user's job: kept out of job logs.
_NOISE_WARNINGS = ("PySpark does not yet fully support pandas",)


def relay_warnings(ctx: JobContext, caught: Iterable[warnings.WarningMessage]) -> None:
    """Python warnings raised while a job ran, as WARN lines of its log."""
    for w in caught:
        text = str(w.message)
        if not text.startswith(_NOISE_WARNINGS):
            ctx.log("WARN", f"{w.category.__name__}: {text}")


def pandas_table(frame: Any) -> tuple[list[Column], Iterator[list[str | None]]]:
    """Columns and rendered rows of a pandas DataFrame (its index is left out)."""
    import pandas as pd

    columns = [Column(str(name), _pandas_type(frame[name].dtype)) for name in frame.columns]

    def rows() -> Iterator[list[str | None]]:
        for row in frame.itertuples(index=False, name=None):
            yield [_render_pandas(v, pd) for v in row]

    return columns, rows()


def _pandas_type(dtype: Any) -> str:
    kind = getattr(dtype, "kind", "O")
    if kind == "b":
        return "boolean"
    if kind in "iu":
        size = getattr(dtype, "itemsize", 8)
        return {1: "tinyint", 2: "smallint", 4: "int"}.get(size, "bigint")
    if kind == "f":
        return "float" if getattr(dtype, "itemsize", 8) == 4 else "double"
    if kind == "M":
        return "timestamp"
    return "string"


def _render_pandas(value: Any, pd: Any) -> str | None:
    if value is None or (not isinstance(value, list | tuple | dict) and pd.isna(value)):
        return None
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "true" if value else "false"
    if isinstance(value, pd.Timestamp):
        return render_timestamp(value.to_pydatetime())
    if isinstance(value, dt.datetime):
        return render_timestamp(value)
    if isinstance(value, float):
        return render_double(value)
    if isinstance(value, list | tuple | dict):
        return render_nested(value)
    if hasattr(value, "item") and not isinstance(value, str):
        return str(value.item())
    return str(value)


# --------------------------------------------------------------------------- errors


def spark_message(exc: BaseException) -> str:
    """The message of a Spark error without its Java stack trace."""
    java = getattr(exc, "java_exception", None)
    text = str(java.toString()) if java is not None else str(exc)
    kept: list[str] = []
    for line in text.splitlines():
        if line.startswith("Driver stacktrace:") or line.startswith("JVM stacktrace:"):
            break
        stripped = line.strip()
        if stripped.startswith("at ") and "(" in stripped:
            continue
        if re.fullmatch(r"\.\.\. \d+ more", stripped):
            continue
        kept.append(line)
    return "\n".join(kept).strip() or type(exc).__name__


def user_traceback(exc: BaseException, prefix: str = CELL_PREFIX) -> str:
    """A traceback of the user's code only: frames of cells (files named ``<cell-N>``) and the
    exception's message."""
    if isinstance(exc, SyntaxError):
        return "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(prefix)]
    lines = []
    if frames:
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_list(frames))
    if _is_spark_error(exc):
        lines.append(f"{type(exc).__name__}: {spark_message(exc)}")
    else:
        lines.extend(traceback.format_exception_only(type(exc), exc))
    return "".join(lines).rstrip()


def _is_spark_error(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.startswith("pyspark") or module.startswith("py4j")


# --------------------------------------------------------------------------- the environment


def missing_requirement() -> str | None:
    """What the engine needs and this machine lacks, as a sentence; None if all is there."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return f"The spark engine needs pyspark: {INSTALL_HINT}, and {JAVA_HINT}."
    java = _java_executable()
    if java is None:
        return f"The spark engine needs {JAVA_HINT}; no java was found."
    version = _java_major_version(java)
    needed = _java_needed()
    if version is not None and version < needed:
        return f"The spark engine needs {JAVA_HINT}; {java} is Java {version}."
    return None


def _java_executable() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home:
        candidate = Path(home) / "bin" / "java"
        return str(candidate) if candidate.is_file() else None
    return shutil.which("java")


def _java_major_version(java: str) -> int | None:
    try:
        done = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _java_needed() -> int:
    try:
        from importlib.metadata import version

        major = int(version("pyspark").split(".")[0])
    except Exception:
        return 17
    return 17 if major >= 4 else 8


# --------------------------------------------------------------------------- one job


@dataclass
class _Run:
    """What the engine keeps about the job it is running."""

    ctx: JobContext
    thread_id: int
    python: bool
    in_user_code: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    results: int = 0
    statement: int = 0
    statements: int = 1
    out: io.StringIO = field(default_factory=io.StringIO)
    partial: dict[str, str] = field(default_factory=dict)

    def write_out(self, text: str) -> int:
        """stdout of the job's code: kept for a text result set, and logged at INFO by line."""
        self.out.write(text)
        self._log_lines("INFO", text)
        return len(text)

    def write_err(self, text: str) -> int:
        """stderr of the job's code: logged at WARN by line."""
        self._log_lines("WARN", text)
        return len(text)

    def end_lines(self) -> None:
        """Log what was written after the last newline."""
        for level, rest in self.partial.items():
            if rest:
                self.ctx.log(level, rest)
        self.partial.clear()

    def _log_lines(self, level: str, text: str) -> None:
        *lines, rest = (self.partial.get(level, "") + text).split("\n")
        self.partial[level] = rest
        for line in lines:
            self.ctx.log(level, line)

    def interrupt(self) -> bool:
        """Raise _JobCancelled in the job's thread if it is running user code."""
        with self.lock:
            if not self.in_user_code:
                return False
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self.thread_id), ctypes.py_object(_JobCancelled)
            )
            return True

    def leave_user_code(self) -> None:
        """Stop accepting interrupts and drop one that was raised but not yet delivered."""
        while True:
            try:
                with self.lock:
                    self.in_user_code = False
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread_id), None)
                return
            except _JobCancelled:
                continue


class _ThreadRouter(io.TextIOBase):
    """A stand-in for sys.stdout or sys.stderr that sends a job thread's writes to the job."""

    def __init__(self, original: TextIO, write: Callable[[_Run, str], int]) -> None:
        self.original = original
        self._write = write
        self.runs: dict[int, _Run] = {}

    def write(self, text: str) -> int:
        run = self.runs.get(threading.get_ident())
        if run is None:
            return self.original.write(text)
        return self._write(run, text)

    def flush(self) -> None:
        if threading.get_ident() not in self.runs:
            self.original.flush()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return getattr(self.original, "errors", None) or "strict"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False


class _LogTail:
    """Reads the lines Spark's log4j appender adds to its file while a job runs."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.offset = path.stat().st_size if path is not None and path.exists() else 0

    def lines(self) -> list[tuple[str, str]]:
        """New (level, message) pairs since the last call."""
        if self.path is None or not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        found = []
        for raw in data[: end + 1].decode("utf-8", "replace").splitlines():
            level, _, rest = raw.partition(_LOG_FIELD_SEPARATOR)
            source, _, message = rest.partition(_LOG_FIELD_SEPARATOR)
            message = message.replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\r", "\n")
            found.append(
                ("ERROR" if level in ("ERROR", "FATAL") else "WARN", f"{source}: {message}")
            )
        return found


def active_group_jobs(sc: SparkContext, group: str) -> list[int]:
    """The ids of the jobs of a job group that are running now."""
    tracker = sc.statusTracker()
    active = set(tracker.getActiveJobsIds())
    return [j for j in tracker.getJobIdsForGroup(group) if j in active]


class _Monitor:
    """Polls the status tracker for a job group; pushes progress, stage ends and Spark's log lines.

    It also keeps a killed job's group cancelled, and interrupts a PySpark job that goes on running
    Python code after the kill.
    """

    def __init__(
        self,
        sc: SparkContext,
        run: _Run,
        tail: _LogTail,
        interval: float,
        grace: float,
    ) -> None:
        self.sc = sc
        self.run = run
        self.tail = tail
        self.interval = interval
        self.grace = grace
        self._stop = threading.Event()
        self._last_look = True
        self._stages: dict[int, tuple[int, int, int, int]] = {}
        self._finished_stages: set[int] = set()
        self._stage_statement: dict[int, int] = {}
        self._progress = 0.0
        self._finished_jobs: set[int] = set()
        self._last: tuple[float, tuple[tuple[Any, ...], ...]] | None = None
        self._cancel_seen: float | None = None
        self._last_interrupt = 0.0
        self._thread = threading.Thread(
            target=self._loop, name=f"spark-monitor-{run.ctx.job_id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, last_look: bool) -> None:
        """Stop polling. With ``last_look``, after one more look, so that the job's final
        numbers and lines are out before it ends; without, at once (a killed job ends sooner:
        the gateway kills an engine process that takes too long)."""
        self._last_look = last_look
        self._stop.set()
        if last_look:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        self._tick()
        while not self._stop.wait(self.interval):
            self._tick()
        if self._last_look:
            self._tick()

    def _tick(self) -> None:
        try:
            self._enforce_cancel()
            self._poll_progress()
        except Exception as exc:
            logger.debug("status poll of job %s failed: %s", self.run.ctx.job_id, exc)
        try:
            for level, line in self.tail.lines():
                self.run.ctx.log(level, line)
        except OSError as exc:
            logger.debug("reading Spark's log failed: %s", exc)

    def _enforce_cancel(self) -> None:
        ctx = self.run.ctx
        if not ctx.cancelled.is_set():
            return
        now = time.monotonic()
        if self._cancel_seen is None:
            self._cancel_seen = now
        if active_group_jobs(self.sc, ctx.job_id):
            self.sc.cancelJobGroup(ctx.job_id)
        waited = now - self._cancel_seen
        if self.run.python and waited >= self.grace and now - self._last_interrupt >= self.grace:
            self._last_interrupt = now
            if self.run.interrupt():
                logger.info("job %s: interrupting its Python code after the kill", ctx.job_id)

    def _poll_progress(self) -> None:
        tracker = self.sc.statusTracker()
        skipped: set[int] = set()
        for job_id in sorted(tracker.getJobIdsForGroup(self.run.ctx.job_id)):
            if job_id in self._finished_jobs:
                continue
            job = tracker.getJobInfo(job_id)
            if job is None:
                continue
            stage_ids = [int(s) for s in job.stageIds]
            for stage_id in stage_ids:
                self._poll_stage(tracker, stage_id)
            if job.status != "RUNNING":
                self._finished_jobs.add(job_id)
                skipped.update(s for s in stage_ids if self._never_ran(s))
        for stage_id in skipped:
            self._stages.pop(stage_id, None)
        self._push()

    def _poll_stage(self, tracker: Any, stage_id: int) -> None:
        if stage_id in self._finished_stages:
            return
        info = tracker.getStageInfo(stage_id)
        if info is None:
            return
        numbers = (info.numTasks, info.numCompletedTasks, info.numActiveTasks, info.numFailedTasks)
        self._stages[stage_id] = numbers
        self._stage_statement.setdefault(stage_id, self.run.statement)
        total, done, _, failed = numbers
        if total > 0 and done >= total:
            self._finished_stages.add(stage_id)
            failures = f", {failed} failed attempts" if failed else ""
            self.run.ctx.log("INFO", f"stage {stage_id} finished: {done} tasks{failures}")

    def _never_ran(self, stage_id: int) -> bool:
        numbers = self._stages.get(stage_id)
        return numbers is not None and numbers[1] == 0 and numbers[2] == 0

    def _push(self) -> None:
        info = []
        total = done = 0
        statement = self.run.statement
        for stage_id in sorted(self._stages):
            tasks, completed, running, failed = self._stages[stage_id]
            if tasks <= 0:
                continue
            if self._stage_statement.get(stage_id) == statement:
                total += tasks
                done += min(completed, tasks)
            info.append(
                {
                    "id": f"stage-{stage_id}",
                    "succeedTasks": completed,
                    "failedTasks": failed,
                    "runningTasks": running,
                    "totalTasks": tasks,
                }
            )
        if not info:
            return
        info = info[-MAX_STAGES_SHOWN:]
        current = done / total if total else 0.0
        progress = max(self._progress, (statement + current) / self.run.statements)
        key = (progress, tuple(tuple(sorted(i.items())) for i in info))
        if key == self._last:
            return
        self._last, self._progress = key, progress
        self.run.ctx.progress(progress, info)


# --------------------------------------------------------------------------- the engine


class SparkEngine(Engine):
    """Spark SQL (runType sql) and PySpark (py, pyspark) on one SparkSession per engine process."""

    name = "spark"
    run_types = ("sql", "py", "pyspark")

    poll_interval = 0.25
    """Seconds between two looks at the status tracker (at most four progress pushes a second)."""
    collect_rows = 100_000
    """Results up to this many rows are collected at once; larger ones are streamed."""
    interrupt_grace = 0.5
    """Seconds a killed PySpark job may take to end before its Python code is interrupted."""
    cancel_wait = 0.5
    """Seconds execute() waits for a killed job's thread before it returns anyway."""

    def __init__(self, settings: EngineSettings) -> None:
        super().__init__(settings)
        self._start_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._spark: SparkSession | None = None
        self._sc: SparkContext | None = None
        self._runs: dict[str, _Run] = {}
        self._local = threading.local()
        self._namespace: dict[str, Any] = {}
        self._cells = 0
        self._log_path: Path | None = None
        self._appender: Any = None
        self._tmp_dir: str | None = None
        self._stdout: _ThreadRouter | None = None
        self._stderr: _ThreadRouter | None = None

    # ----------------------------------------------------------------- the contract

    def execute(self, ctx: JobContext) -> None:
        """Run a SQL or PySpark job on the engine's SparkSession, starting it on first use."""
        run_type = ctx.run_type.lower()
        if run_type not in SQL_RUN_TYPES + PYTHON_RUN_TYPES:
            raise EngineError(
                f"runType {ctx.run_type!r} is not supported by the spark engine; "
                f"use one of {', '.join(self.run_types)}."
            )
        if not self._acquire_run_lock(ctx):
            return
        outcome: list[BaseException] = []
        done = threading.Event()
        worker = threading.Thread(
            target=self._work,
            args=(ctx, run_type in PYTHON_RUN_TYPES, outcome, done),
            name=f"spark-job-{ctx.job_id}",
            daemon=True,
        )
        try:
            worker.start()
        except BaseException:
            self._run_lock.release()
            raise
        if self._wait_for_work(ctx, done) and outcome:
            raise outcome[0]

    def _work(
        self, ctx: JobContext, python: bool, outcome: list[BaseException], done: threading.Event
    ) -> None:
        """The job's own thread: it holds the run lock until Spark is done with the job."""
        try:
            self._execute(ctx, python)
        except BaseException as exc:
            outcome.append(exc)
        finally:
            self._run_lock.release()
            done.set()

    def _wait_for_work(self, ctx: JobContext, done: threading.Event) -> bool:
        """Wait for the job's thread; after a kill, at most ``cancel_wait`` seconds more, unless
        the job's own Python code still runs. Returns whether the thread ended.

        A killed job ends Cancelled at once while Spark tears its Spark jobs down in the
        background (the next job waits for the run lock). PySpark code that goes on running is
        waited for: if the interrupts do not stop it, the gateway stops the engine process.
        """
        while not done.wait(0.05):
            if ctx.cancelled.is_set():
                break
        else:
            return True
        if done.wait(self.cancel_wait):
            return True
        while self._in_user_code(ctx):
            if done.wait(0.05):
                return True
        return done.is_set()

    def _in_user_code(self, ctx: JobContext) -> bool:
        run = self._runs.get(ctx.job_id)
        return run is not None and run.python and run.in_user_code

    def cancel(self, ctx: JobContext) -> None:
        """Cancel the job's Spark job group; the monitor keeps it cancelled until the job ends."""
        ctx.cancelled.set()
        sc = self._sc
        if sc is None or ctx.job_id not in self._runs:
            return
        try:
            sc.cancelJobGroup(ctx.job_id)
        except Exception as exc:
            logger.warning("cancelling Spark job group %s failed: %s", ctx.job_id, exc)

    def close(self) -> None:
        """Stop the SparkSession and give back sys.stdout and sys.stderr."""
        with self._start_lock:
            spark, self._spark, self._sc = self._spark, None, None
            self._namespace.clear()
            if self._stdout is not None and sys.stdout is self._stdout:
                sys.stdout = self._stdout.original
            if self._stderr is not None and sys.stderr is self._stderr:
                sys.stderr = self._stderr.original
            self._stdout = self._stderr = None
            if spark is not None:
                self._detach_log_appender(spark)
                spark.stop()
                logger.info(
                    "SparkSession of %s/%s stopped", self.settings.user, self.settings.creator
                )
            if self._tmp_dir is not None:
                shutil.rmtree(self._tmp_dir, ignore_errors=True)
                self._tmp_dir = None

    # ----------------------------------------------------------------- running a job

    def _acquire_run_lock(self, ctx: JobContext) -> bool:
        if self._run_lock.acquire(blocking=False):
            return True
        ctx.log(
            "INFO",
            "waiting for the previous job of this spark engine to end "
            "(Spark may still be tearing down a killed job)",
        )
        while not self._run_lock.acquire(timeout=0.2):
            if ctx.cancelled.is_set():
                return False
        if ctx.cancelled.is_set():
            self._run_lock.release()
            return False
        return True

    def _execute(self, ctx: JobContext, python: bool) -> None:
        spark = self._session(ctx)
        if ctx.cancelled.is_set():
            return
        sc = spark.sparkContext
        self._log_accepted(ctx, sc)
        run = _Run(ctx, threading.get_ident(), python)
        self._runs[ctx.job_id] = run
        self._local.run = run
        monitor = _Monitor(
            sc,
            run,
            _LogTail(self._log_path),
            self.poll_interval,
            self.interrupt_grace,
        )
        sc.setJobGroup(ctx.job_id, f"linkis job {ctx.exec_id}", interruptOnCancel=True)
        monitor.start()
        try:
            with job_settings(ctx, spark), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("default")
                try:
                    if python:
                        self._run_python(ctx, run, spark)
                    else:
                        self._run_sql(ctx, run, spark)
                finally:
                    relay_warnings(ctx, caught)
        finally:
            monitor.stop(last_look=not ctx.cancelled.is_set())
            self._runs.pop(ctx.job_id, None)
            self._local.run = None

    def _log_accepted(self, ctx: JobContext, sc: SparkContext) -> None:
        ctx.log(
            "INFO",
            f"spark engine accepted job {ctx.exec_id} (runType {ctx.run_type}) on the SparkSession "
            f"of {self.settings.user}/{self.settings.creator}, application {sc.applicationId}",
        )

    def _run_sql(self, ctx: JobContext, run: _Run, spark: SparkSession) -> None:
        statements = split_statements(ctx.code)
        if not statements:
            ctx.log("INFO", "no SQL statement to run")
            return
        run.statements = len(statements)
        for number, statement in enumerate(statements, 1):
            if ctx.cancelled.is_set():
                return
            run.statement = number - 1
            ctx.log(
                "INFO",
                f"statement {number}/{len(statements)} started: {statement_preview(statement)}",
            )
            try:
                frame = spark.sql(statement)
                if frame.columns:
                    self._write_spark_frame(ctx, run, frame)
            except Exception as exc:
                if ctx.cancelled.is_set():
                    ctx.log("INFO", f"statement {number} cancelled")
                    return
                raise EngineError(f"statement {number} failed: {spark_message(exc)}") from None

    def _write_spark_frame(self, ctx: JobContext, run: _Run, frame: Any) -> None:
        fields = frame.schema.fields
        rows = self._result_rows(ctx, frame)
        written = ctx.table(spark_columns(fields), spark_rows(fields, rows))
        self._result_written(ctx, run, written)

    def _result_rows(self, ctx: JobContext, frame: Any) -> Iterable[Any]:
        """At most one row more than the row limit (so the context sees the truncation).

        Up to ``collect_rows`` rows come in one collect; a larger result is streamed partition by
        partition, which runs the query once more but keeps the driver's memory bounded.
        """
        limit = ctx.row_limit if ctx.row_limit > 0 else None
        first = self.collect_rows if limit is None else min(limit, self.collect_rows)
        rows = frame.limit(first + 1).collect()
        if len(rows) <= first or first == limit:
            return rows
        ctx.log(
            "INFO",
            f"the result has more than {first} rows: streaming it from Spark "
            "(the statement runs once more)",
        )
        bounded = frame if limit is None else frame.limit(limit + 1)
        return bounded.toLocalIterator(prefetchPartitions=False)

    def _result_written(self, ctx: JobContext, run: _Run, rows: int) -> None:
        run.results += 1
        ctx.log("INFO", f"result set {run.results}: {rows} rows written")

    # ----------------------------------------------------------------- PySpark

    def _run_python(self, ctx: JobContext, run: _Run, spark: SparkSession) -> None:
        if ctx.cancelled.is_set():
            return
        self._cells += 1
        filename = f"{CELL_PREFIX}{self._cells}>"
        namespace = self._python_namespace(spark)
        try:
            body, last = _compile_cell(ctx.code, filename)
        except SyntaxError as exc:
            raise EngineError(user_traceback(exc)) from None
        linecache.cache[filename] = (len(ctx.code), None, ctx.code.splitlines(True), filename)
        self._route_output(run)
        try:
            with run.lock:
                run.in_user_code = True
            try:
                exec(body, namespace)
                value = eval(last, namespace) if last is not None else None
            finally:
                run.leave_user_code()
            self._show_value(ctx, run, value)
        except _JobCancelled:
            ctx.log("INFO", "Python code interrupted after the kill")
            return
        except Exception as exc:
            if ctx.cancelled.is_set():
                ctx.log("INFO", "job cancelled")
                return
            raise EngineError(user_traceback(exc)) from None
        finally:
            self._unroute_output(run)
            self._flush_output(ctx, run)

    def _python_namespace(self, spark: SparkSession) -> dict[str, Any]:
        if not self._namespace:
            self._namespace.update(
                {
                    "__name__": "__main__",
                    "spark": spark,
                    "sc": spark.sparkContext,
                    "show": self.show,
                }
            )
        return self._namespace

    def show(self, obj: Any, limit: int | None = None) -> None:
        """``show(df)`` in PySpark code: a Spark or pandas DataFrame becomes a table result set.

        A matplotlib figure becomes a picture; anything else is printed.
        """
        run: _Run | None = getattr(self._local, "run", None)
        if run is None:
            raise RuntimeError("show() works only in the thread that runs a job")
        ctx = run.ctx
        self._flush_output(ctx, run)
        if _is_spark_frame(obj):
            self._write_spark_frame(ctx, run, obj if limit is None else obj.limit(limit))
        elif _is_pandas_frame(obj):
            columns, rows = pandas_table(obj if limit is None else obj.head(limit))
            self._result_written(ctx, run, ctx.table(columns, rows))
        elif hasattr(obj, "savefig"):
            png = io.BytesIO()
            obj.savefig(png, format="png")
            ctx.picture(png.getvalue())
        else:
            print(obj)

    def _show_value(self, ctx: JobContext, run: _Run, value: Any) -> None:
        if value is None:
            return
        if _is_spark_frame(value) or _is_pandas_frame(value):
            self.show(value)
        elif type(value).__name__ == "Series" and hasattr(value, "to_frame"):
            self.show(value.to_frame())
        else:
            run.write_out(repr(value) + "\n")

    def _route_output(self, run: _Run) -> None:
        if self._stdout is None or sys.stdout is not self._stdout:
            self._stdout = _ThreadRouter(sys.stdout, _Run.write_out)
            sys.stdout = self._stdout
        if self._stderr is None or sys.stderr is not self._stderr:
            self._stderr = _ThreadRouter(sys.stderr, _Run.write_err)
            sys.stderr = self._stderr
        self._stdout.runs[run.thread_id] = run
        self._stderr.runs[run.thread_id] = run

    def _unroute_output(self, run: _Run) -> None:
        for router in (self._stdout, self._stderr):
            if router is not None:
                router.runs.pop(run.thread_id, None)

    def _flush_output(self, ctx: JobContext, run: _Run) -> None:
        run.end_lines()
        out = run.out.getvalue()
        if out:
            run.out.seek(0)
            run.out.truncate()
            ctx.text(out)

    # ----------------------------------------------------------------- the session

    def _session(self, ctx: JobContext) -> SparkSession:
        with self._start_lock:
            if self._spark is not None:
                return self._spark
            problem = missing_requirement()
            if problem is not None:
                raise EngineError(problem)
            conf = self._spark_conf(ctx)
            started = time.monotonic()
            ctx.log("INFO", f"starting a SparkSession (spark.master={conf['spark.master']})")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("default")
                spark = self._start_session(conf)
            relay_warnings(ctx, caught)
            self._spark, self._sc = spark, spark.sparkContext
            ctx.log(
                "INFO",
                f"SparkSession started in {time.monotonic() - started:.1f} s "
                f"(Spark {spark.version}, application {spark.sparkContext.applicationId})",
            )
            return spark

    def _spark_conf(self, ctx: JobContext) -> dict[str, str]:
        startup = self.settings.startup
        unused = sorted(k for k in startup if not k.startswith("spark."))
        if unused:
            ctx.log("INFO", f"startup keys the spark engine does not use: {', '.join(unused)}")
        conf = dict(DEFAULTS)
        conf["spark.app.name"] = f"linkis-magic {self.settings.user}/{self.settings.creator}"
        conf.update({k: v for k, v in startup.items() if k.startswith("spark.")})
        if _is_local(conf):
            conf.setdefault("spark.sql.warehouse.dir", str(self._work_dir() / "warehouse"))
            for key, value in LOCAL_DEFAULTS.items():
                conf.setdefault(key, value)
        return conf

    def _work_dir(self) -> Path:
        if self.settings.data_dir:
            path = Path(self.settings.data_dir) / "spark" / self.settings.user
        else:
            if self._tmp_dir is None:
                self._tmp_dir = tempfile.mkdtemp(prefix="linkis-spark-")
            path = Path(self._tmp_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _start_session(self, conf: Mapping[str, str]) -> SparkSession:
        if _is_local(conf):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        from pyspark.sql import SparkSession

        builder = SparkSession.builder
        for key, value in conf.items():
            builder = builder.config(key, value)
        try:
            spark = builder.getOrCreate()
        except Exception as exc:
            raise EngineError(
                f"Spark could not start: {spark_message(exc)} (the spark engine needs {JAVA_HINT})"
            ) from None
        spark.sparkContext.setLogLevel("WARN")
        _quiet_python_loggers()
        self._attach_log_appender(spark)
        return spark

    def _attach_log_appender(self, spark: SparkSession) -> None:
        path = self._work_dir() / f"spark-{os.getpid()}.log"
        try:
            jvm = spark.sparkContext._jvm
            assert jvm is not None
            log4j = jvm.org.apache.logging.log4j
            context = log4j.LogManager.getContext(False)
            config = context.getConfiguration()
            pattern = (
                f"%level{_LOG_FIELD_SEPARATOR}%c{{1}}{_LOG_FIELD_SEPARATOR}%enc{{%m}}{{CRLF}}%n"
            )
            layout = (
                log4j.core.layout.PatternLayout.newBuilder()
                .withPattern(pattern)
                .withAlwaysWriteExceptions(False)
                .build()
            )
            appender = (
                log4j.core.appender.FileAppender.newBuilder()
                .withFileName(str(path))
                .setName("linkis-magic-jobs")
                .setLayout(layout)
                .build()
            )
            appender.start()
            config.addAppender(appender)
            config.getRootLogger().addAppender(appender, log4j.Level.WARN, None)
            context.updateLoggers()
        except Exception as exc:
            logger.warning("Spark's log lines will not reach job logs: %s", spark_message(exc))
            return
        self._log_path, self._appender = path, appender

    def _detach_log_appender(self, spark: SparkSession) -> None:
        if self._appender is None:
            return
        try:
            jvm = spark.sparkContext._jvm
            assert jvm is not None
            context = jvm.org.apache.logging.log4j.LogManager.getContext(False)
            context.getConfiguration().getRootLogger().removeAppender("linkis-magic-jobs")
            context.updateLoggers()
            self._appender.stop()
        except Exception as exc:
            logger.debug("removing the log appender failed: %s", exc)
        self._appender = None


def _is_local(conf: Mapping[str, str]) -> bool:
    return conf["spark.master"].startswith("local")


def _compile_cell(code: str, filename: str) -> tuple[Any, Any]:
    """The cell compiled for exec, and its last expression compiled for eval (or None)."""
    tree = ast.parse(code, filename=filename)
    last = None
    final = tree.body[-1] if tree.body else None
    if isinstance(final, ast.Expr):
        tree.body.pop()
        last = ast.Expression(final.value)
    body = compile(tree, filename, "exec")
    return body, (compile(last, filename, "eval") if last is not None else None)


def _is_spark_frame(obj: Any) -> bool:
    module = type(obj).__module__
    return module.startswith("pyspark.sql") and type(obj).__name__ == "DataFrame"


def _is_pandas_frame(obj: Any) -> bool:
    return type(obj).__module__.startswith("pandas") and type(obj).__name__ == "DataFrame"


def _quiet_python_loggers() -> None:
    """pyspark logs every SQL error it raises as JSON on stderr; the job's error log has it.

    py4j logs each thread's connection closing at INFO.
    """
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        from pyspark.logger import PySparkLogger
    except ImportError:
        return
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL + 1)
