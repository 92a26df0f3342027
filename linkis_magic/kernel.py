"""LinkisKernel: an IPython kernel whose cells go to Linkis as ``%%linkis ENGINE RUN_TYPE`` cells.

The kernelspecs start it as ``python -m linkis_magic.kernel -f CONNECTION_FILE`` and pick the
engine and runType through ``LINKIS_KERNEL_ENGINE`` and ``LINKIS_KERNEL_RUN_TYPE``.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

from ipykernel.ipkernel import IPythonKernel
from IPython.core.error import UsageError
from traitlets import Bool, Unicode, default

from . import __version__
from .config import default_run_type, is_valid_name
from .kernelspecs import ENGINE_ENV, RUN_TYPE_ENV

log = logging.getLogger(__name__)

KILL_ON_SHUTDOWN_ENV = "LINKIS_KERNEL_KILL_ON_SHUTDOWN"
LOCAL_MAGICS = ("%%local", "%%python")
# Seconds a shutting-down kernel waits for the server to confirm its kills.
SHUTDOWN_KILL_WAIT = 3.0

_FALSE_WORDS = {"0", "false", "no", "off"}

_LANGUAGES: dict[str, dict[str, Any]] = {
    "sql": {
        "name": "sql",
        "mimetype": "text/x-sql",
        "file_extension": ".sql",
        "codemirror_mode": "sql",
        "pygments_lexer": "sql",
    },
    "python": {
        "name": "python",
        "version": sys.version.split()[0],
        "mimetype": "text/x-python",
        "file_extension": ".py",
        "codemirror_mode": {"name": "ipython", "version": 3},
        "pygments_lexer": "ipython3",
        "nbconvert_exporter": "python",
    },
    "bash": {
        "name": "bash",
        "mimetype": "text/x-sh",
        "file_extension": ".sh",
        "codemirror_mode": "shell",
        "pygments_lexer": "bash",
    },
    "scala": {
        "name": "scala",
        "mimetype": "text/x-scala",
        "file_extension": ".scala",
        "codemirror_mode": "text/x-scala",
        "pygments_lexer": "scala",
    },
}
_RUN_TYPE_LANGUAGES = {
    "sql": "sql",
    "hql": "sql",
    "jdbc": "sql",
    "py": "python",
    "python": "python",
    "pyspark": "python",
    "shell": "bash",
    "sh": "bash",
    "bash": "bash",
    "scala": "scala",
}

_SQL_WORDS = (
    "ADD ALL ALTER AND ANTI ARRAY AS ASC BETWEEN BIGINT BOOLEAN BY CACHE CASE CAST CLUSTER COLUMN "
    "COLUMNS CREATE CROSS CUBE CURRENT_DATE CURRENT_TIMESTAMP DATABASE DATABASES DATE DECIMAL "
    "DELETE DESC DESCRIBE DISTINCT DISTRIBUTE DOUBLE DROP ELSE END EXCEPT EXISTS EXPLAIN EXTERNAL "
    "FALSE FIRST FLOAT FOLLOWING FROM FULL FUNCTION FUNCTIONS GROUP HAVING IF IN INNER INSERT INT "
    "INTERSECT INTERVAL INTO IS JOIN LAST LATERAL LEFT LIKE LIMIT LOCATION MAP MERGE NOT NULL "
    "NULLS OF ON OR ORDER OUTER OVER OVERWRITE PARTITION PARTITIONED PARTITIONS PRECEDING RANGE "
    "REPLACE RIGHT RLIKE ROLLUP ROW ROWS SCHEMA SELECT SEMI SET SHOW SMALLINT SORT STRING STRUCT "
    "TABLE TABLES TABLESAMPLE TEMPORARY THEN TIMESTAMP TINYINT TRUE TRUNCATE UNBOUNDED UNION "
    "UPDATE USE USING VALUES VIEW WHEN WHERE WINDOW WITH "
    "ABS AVG COALESCE COLLECT_LIST COLLECT_SET CONCAT CONCAT_WS COUNT DATE_ADD DATE_FORMAT "
    "DATE_SUB DATEDIFF EXPLODE FROM_UNIXTIME GREATEST IFNULL LEAST LENGTH LOWER LTRIM MAX MIN NVL "
    "REGEXP_EXTRACT REGEXP_REPLACE ROUND ROW_NUMBER RTRIM SIZE SPLIT SUBSTR SUBSTRING SUM "
    "TO_DATE TRIM UNIX_TIMESTAMP UPPER"
)
SQL_KEYWORDS = tuple(_SQL_WORDS.split())
_WORD_BEFORE_CURSOR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")


def language_info_for(run_type: str) -> dict[str, Any]:
    """Return the kernel_info ``language_info`` of cells of ``run_type`` (their highlighting)."""
    language = _RUN_TYPE_LANGUAGES.get(run_type.lower())
    if language is not None:
        return dict(_LANGUAGES[language])
    return {"name": run_type, "mimetype": "text/plain", "file_extension": ".txt"}


def _first_line(code: str) -> str:
    for line in code.splitlines():
        if line.strip():
            return line.strip()
    return ""


def magic_cell_language(
    code: str, cursor_pos: int, engine: str = "spark", run_type: str | None = None
) -> str:
    """The language at the cursor in a cell that starts with a magic.

    Below a ``%%linkis [ENGINE [RUN_TYPE]]`` line it is the runType's language (``sql``,
    ``python``, ``bash`` ...), where a line that names no engine means ``engine`` and
    ``run_type``; everywhere else it is ``python``, which IPython completes.
    """
    first = _first_line(code)
    line_end = code.find("\n", code.find(first))
    if not first.startswith("%%linkis") or line_end < 0 or cursor_pos <= line_end:
        return "python"
    from .magic import parse_cell_line

    try:
        options = parse_cell_line(first[len("%%linkis") :])
    except UsageError:
        return "python"
    if options.run_type:
        cell_run_type = options.run_type
    elif options.engine is None and run_type:
        cell_run_type = run_type
    else:
        cell_run_type = default_run_type(options.engine or engine)
    return str(language_info_for(cell_run_type)["name"])


def is_linkis_cell(code: str) -> bool:
    """True when a kernel cell goes to Linkis: it is not blank and does not start with a magic."""
    first = _first_line(code)
    return bool(first) and not first.startswith("%")


def route_cell(code: str, engine: str, run_type: str) -> str:
    """Return the IPython code that runs a kernel cell.

    A cell whose first line is ``%%local`` or ``%%python`` alone runs the rest in the kernel's own
    Python (that line becomes a comment, so tracebacks count lines as the cell shows them); a
    cell starting with any other magic (``%%linkis ...``, ``%linkis status``) runs as written; a
    blank cell is left alone; every other cell becomes ``%%linkis ENGINE RUN_TYPE``.
    """
    first = _first_line(code)
    if first in LOCAL_MAGICS:
        lines = code.splitlines(keepends=True)
        index = next(i for i, line in enumerate(lines) if line.strip())
        lines[index] = f"# {first}\n"
        return "".join(lines)
    if not is_linkis_cell(code):
        return code
    return f"%%linkis {engine} {run_type}\n{code}"


def sql_is_complete(code: str) -> str:
    """Return ``complete``, ``incomplete`` or ``invalid`` for SQL typed at a console.

    Complete: nothing but comments, a statement that ends with ``;``, or text whose last line is
    blank. Incomplete: an open string, quoted name, block comment or parenthesis, or a statement
    still without its end. Invalid: a ``)`` that closes nothing.
    """
    depth = 0
    meaningful = ""
    index = 0
    length = len(code)
    while index < length:
        char = code[index]
        pair = code[index : index + 2]
        if pair == "--":
            end = code.find("\n", index)
            index = length if end < 0 else end
            continue
        if pair == "/*":
            end = code.find("*/", index + 2)
            if end < 0:
                return "incomplete"
            index = end + 2
            continue
        if char in "'\"`":
            end = _closing_quote(code, index)
            if end < 0:
                return "incomplete"
            meaningful = char
            index = end + 1
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return "invalid"
        if not char.isspace():
            meaningful = char
        index += 1

    if depth > 0:
        return "incomplete"
    if not meaningful or meaningful == ";":
        return "complete"
    last_line = code.rsplit("\n", 1)
    if len(last_line) == 2 and not last_line[1].strip():
        return "complete"
    return "incomplete"


def _closing_quote(code: str, start: int) -> int:
    """Index of the quote that closes the one at ``start`` (doubled quotes and ``\\`` escape)."""
    quote = code[start]
    index = start + 1
    while index < len(code):
        char = code[index]
        if char == "\\" and quote != "`":
            index += 2
            continue
        if char == quote:
            if code[index + 1 : index + 2] == quote:
                index += 2
                continue
            return index
        index += 1
    return -1


def shell_is_complete(code: str) -> str:
    """Return ``complete`` or ``incomplete`` for shell code: open quotes or a trailing ``\\``."""
    if code.rstrip("\n").endswith("\\"):
        return "incomplete"
    quote = ""
    index = 0
    while index < len(code):
        char = code[index]
        if char == "\\" and quote != "'":
            index += 2
            continue
        if quote and char == quote:
            quote = ""
        elif not quote and char in "'\"":
            quote = char
        index += 1
    return "incomplete" if quote else "complete"


def sql_completions(code: str, cursor_pos: int) -> tuple[list[str], int]:
    """Return the SQL keywords that complete the word before the cursor, and where it starts.

    The matches follow the case of what was typed (``sel`` gives ``select``).
    """
    match = _WORD_BEFORE_CURSOR.search(code[:cursor_pos])
    if match is None:
        return [], cursor_pos
    word = match.group()
    upper = word.upper()
    matches = [keyword for keyword in SQL_KEYWORDS if keyword.startswith(upper)]
    if word[0].islower():
        matches = [keyword.lower() for keyword in matches]
    return matches, match.start()


def _env_flag(name: str, fallback: bool) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return fallback
    return value.strip().lower() not in _FALSE_WORDS


class LinkisKernel(IPythonKernel):
    """An IPython kernel whose cells run on Linkis with one engine and runType.

    Cells that start with a magic keep IPython's meaning; ``%%local`` (or ``%%python``) runs a
    cell in the kernel's own Python, where ``-o`` DataFrames live. Gateway and auth settings are
    the magic's (``LinkisMagic``, env vars, config file).
    """

    implementation = "linkis_magic"
    implementation_version = __version__

    engine = Unicode(help=f"Engine of the kernel's cells (env {ENGINE_ENV}).").tag(config=True)
    run_type = Unicode(help=f"runType of the kernel's cells (env {RUN_TYPE_ENV}).").tag(config=True)
    kill_on_shutdown = Bool(
        help=f"Kill this kernel's running Linkis jobs when it shuts down "
        f"(env {KILL_ON_SHUTDOWN_ENV}=0 keeps them)."
    ).tag(config=True)

    @default("help_links")
    def _help_links_default(self) -> list[dict[str, str]]:
        linkis = {
            "text": "Apache Linkis",
            "url": "https://linkis.apache.org/docs/latest/introduction",
        }
        inherited = IPythonKernel.class_traits()["help_links"].default()
        return [linkis, *(inherited or [])]

    @default("engine")
    def _engine_default(self) -> str:
        return os.environ.get(ENGINE_ENV, "").strip() or "spark"

    @default("run_type")
    def _run_type_default(self) -> str:
        value = os.environ.get(RUN_TYPE_ENV, "").strip()
        return value or default_run_type(self.engine)

    @default("kill_on_shutdown")
    def _kill_on_shutdown_default(self) -> bool:
        return _env_flag(KILL_ON_SHUTDOWN_ENV, True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for setting in ("engine", "run_type"):
            if not is_valid_name(getattr(self, setting)):
                log.error(
                    "LinkisKernel.%s %r is not a Linkis name", setting, getattr(self, setting)
                )
        self.language_info = language_info_for(self.run_type)
        self._language = self.language_info["name"]
        assert self.shell is not None
        self.shell.configurables.append(self)
        self.shell.register_magic_function(_local_with_arguments, "cell", "local")
        try:
            self.shell.extension_manager.load_extension("linkis_magic")
        except Exception:
            log.exception("cannot load the linkis_magic extension")
        self._default_magic_engine()
        log.info("Linkis kernel started: cells run as %s %s", self.engine, self.run_type)

    def _default_magic_engine(self) -> None:
        """Make the kernel's engine and runType those of ``%%linkis`` lines that name none."""
        from .magic import loaded_magics

        assert self.shell is not None
        magics = loaded_magics(self.shell)
        if magics is None or magics.settings_config.default_engine is not None:
            return
        magics.settings_config.default_engine = self.engine
        magics.settings_config.default_run_type = self.run_type

    @property
    def banner(self) -> str:  # type: ignore[override]
        """The text a console shows when it connects."""
        return (
            f"Linkis kernel {__version__}: cells run on Linkis as {self.engine} {self.run_type}.\n"
            "%%local runs a cell in this kernel's Python; %linkis status shows the connection.\n"
        )

    async def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
        *,
        cell_meta: dict[str, Any] | None = None,
        cell_id: str | None = None,
    ) -> dict[str, Any]:
        """Run a cell: on Linkis unless it starts with a magic (see :func:`route_cell`)."""
        routed = route_cell(code, self.engine, self.run_type)
        with self._history_as_typed(routed, code):
            return await super().do_execute(
                routed,
                silent,
                store_history=store_history,
                user_expressions=user_expressions,
                allow_stdin=allow_stdin,
                cell_meta=cell_meta,
                cell_id=cell_id,
            )

    @contextlib.contextmanager
    def _history_as_typed(self, routed: str, typed: str) -> Iterator[None]:
        """Record the cell as the user typed it, not as rewritten, in the raw history and ``_i``."""
        assert self.shell is not None
        history = self.shell.history_manager
        if routed == typed or history is None:
            yield
            return
        store_inputs = history.store_inputs

        def store_typed(line_num: int, source: str, source_raw: str | None = None) -> None:
            store_inputs(line_num, source, typed if source_raw == routed else source_raw)

        history.store_inputs = store_typed
        try:
            yield
        finally:
            del history.store_inputs

    async def do_history(
        self,
        hist_access_type: str,
        output: bool,
        raw: bool,
        session: int = 0,
        start: int = 0,
        stop: int | None = None,
        n: int | None = None,
        pattern: str | None = None,
        unique: bool = False,
    ) -> dict[str, Any]:
        """IPython's history, with the current session's real number where IPython says 0."""
        reply = dict(
            await _resolved(
                super().do_history(
                    hist_access_type, output, raw, session, start, stop, n, pattern, unique
                )
            )
        )
        assert self.shell is not None
        current = self.shell.history_manager.session_number if self.shell.history_manager else 0
        reply["history"] = [
            (current if entry[0] == 0 else entry[0], *entry[1:]) for entry in reply["history"]
        ]
        return reply

    async def do_complete(self, code: str, cursor_pos: int | None) -> dict[str, Any]:
        """Complete: SQL keywords in SQL, IPython's completer in Python and magics, else none."""
        cursor = len(code) if cursor_pos is None else cursor_pos
        if is_linkis_cell(code):
            language = self._language
        else:
            language = magic_cell_language(code, cursor, self.engine, self.run_type)
        try:
            if language == "python":
                return dict(await _resolved(super().do_complete(code, cursor)))
            if language == "sql":
                matches, start = sql_completions(code, cursor)
                return _completion_reply(matches, start, cursor)
        except Exception:
            log.debug("completion failed", exc_info=True)
        return _completion_reply([], cursor, cursor)

    async def do_inspect(
        self, code: str, cursor_pos: int, detail_level: int = 0, omit_sections: Any = ()
    ) -> dict[str, Any]:
        """Inspect the kernel's own objects in magic cells; a Linkis cell finds nothing here."""
        if is_linkis_cell(code):
            return {"status": "ok", "found": False, "data": {}, "metadata": {}}
        try:
            reply = super().do_inspect(code, cursor_pos, detail_level, omit_sections)
            return dict(await _resolved(reply))
        except Exception:
            log.debug("inspection failed", exc_info=True)
            return {"status": "ok", "found": False, "data": {}, "metadata": {}}

    async def do_is_complete(self, code: str) -> dict[str, Any]:
        """Say whether a console should run ``code`` now, by the rules of the cell's language."""
        if is_linkis_cell(code) and self._language == "sql":
            status = sql_is_complete(code)
        elif is_linkis_cell(code) and self._language == "bash":
            status = shell_is_complete(code)
        elif is_linkis_cell(code) and self._language != "python":
            status = "complete"
        else:
            return dict(await _resolved(super().do_is_complete(code)))
        return {"status": status, "indent": ""} if status == "incomplete" else {"status": status}

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        """Kill the kernel's running Linkis jobs (unless told to keep them), then stop."""
        try:
            self._close_linkis()
        except Exception:
            log.exception("closing the Linkis connection failed")
        return dict(await _resolved(super().do_shutdown(restart)))

    def _close_linkis(self) -> None:
        """Kill this kernel's unfinished jobs, then close the client.

        Killing is skipped when ``kill_on_shutdown`` is off; closing the client stops an embedded
        gateway it started.
        """
        from .magic import loaded_magics

        assert self.shell is not None
        magics = loaded_magics(self.shell)
        if magics is None:
            return
        if self.kill_on_shutdown and magics.client is not None:
            _kill_unfinished(_client_jobs(magics.client))
        magics.close_client()


def _client_jobs(client: Any) -> list[Any]:
    jobs = client.jobs
    return list(jobs.values() if isinstance(jobs, Mapping) else jobs)


def _kill_unfinished(jobs: list[Any], settle: float = SHUTDOWN_KILL_WAIT) -> None:
    """Send a kill for every unfinished job, then give the server ``settle`` s to end them."""
    unfinished = [job for job in jobs if not job.done]
    for job in unfinished:
        log.info("shutdown: killing execID %s (taskID %s)", job.exec_id, job.task_id)
        try:
            job.kill()
        except Exception as exc:
            log.warning("shutdown: cannot kill execID %s: %s", job.exec_id, exc)
    deadline = time.monotonic() + settle
    for job in unfinished:
        with contextlib.suppress(Exception):
            job.wait(max(0.0, deadline - time.monotonic()))


def _local_with_arguments(line: str, cell: str) -> None:
    """%%local: run the cell in this kernel's own Python instead of on Linkis.

    Put ``%%local`` (or ``%%python``) alone on the cell's first line; the kernel runs the rest
    here, where ``%%linkis -o`` DataFrames live. IPython calls this function only when the line
    has arguments, which ``%%local`` does not take.
    """
    raise UsageError(
        f"%%local takes no arguments (got {line.strip()!r}): put it alone on the first line"
    )


async def _resolved(value: Any) -> Any:
    """IPythonKernel's handlers are plain methods in ipykernel 7 and may become coroutines."""
    if inspect.isawaitable(value):
        return await value
    return value


def _completion_reply(matches: list[str], start: int, end: int) -> dict[str, Any]:
    return {
        "status": "ok",
        "matches": matches,
        "cursor_start": start,
        "cursor_end": end,
        "metadata": {},
    }


def main() -> None:
    """Start the kernel: ``python -m linkis_magic.kernel -f CONNECTION_FILE``."""
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=LinkisKernel)


if __name__ == "__main__":
    from linkis_magic.kernel import main as _main

    _main()
