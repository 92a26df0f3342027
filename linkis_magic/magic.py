"""%%linkis and %linkis: the argument grammar, variables from the namespace, waiting and results.

The cell magic parses and checks everything before it sends anything; user mistakes become
``UsageError`` with one line that says what to do. Settings come from :mod:`linkis_magic.config`,
the connection from :mod:`linkis_magic.client`, the live views from :mod:`linkis_magic.views`.
"""

from __future__ import annotations

import argparse
import contextlib
import decimal
import getpass
import keyword
import logging
import numbers
import re
import shlex
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    line_cell_magic,
    magics_class,
    needs_local_scope,
    no_var_expand,
)

from . import errors
from .config import EMBEDDED, LinkisMagic, Settings, SettingsError, is_valid_name, load_settings
from .protocol import JobStatus, scan_variables
from .views import BaseView, make_view, result_displays

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .client import LinkisClient
    from .jobs import Job
    from .results import ResultSet

logger = logging.getLogger(__name__)

CELL_USAGE = (
    "%%linkis [ENGINE [RUN_TYPE]] [-o VAR] [-v NAME=VALUE]... [--startup K=V]... "
    "[--runtime K=V]... [--special K=V]... [--creator NAME] [-n LIMIT] [--background] "
    "[--timeout SECONDS] [--quiet] [--view widget|text]"
)
LINE_USAGE = (
    "%linkis connect GATEWAY [--user U] [--token T] [--transport auto|websocket|rest] | status "
    "| jobs | logs EXEC_ID | kill EXEC_ID | attach EXEC_ID TASK_ID"
)
# Seconds to wait for the server's final status after a kill.
SETTLE_SECONDS = 2.0
_VARIABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*$")


# --------------------------------------------------------------------------- grammar


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting."""

    def error(self, message: str) -> NoReturn:
        raise _ArgumentError(message)


@dataclass(frozen=True)
class CellOptions:
    """A parsed ``%%linkis`` line."""

    engine: str | None = None
    run_type: str | None = None
    output: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    startup: dict[str, str] = field(default_factory=dict)
    runtime: dict[str, str] = field(default_factory=dict)
    special: dict[str, str] = field(default_factory=dict)
    creator: str | None = None
    limit: int | None = None
    background: bool = False
    timeout: float | None = None
    quiet: bool = False
    view: str | None = None


def _cell_parser() -> _Parser:
    parser = _Parser(prog="%%linkis", add_help=False, allow_abbrev=False)
    parser.add_argument("engine", nargs="?")
    parser.add_argument("run_type", nargs="?")
    parser.add_argument("-o", "--output", metavar="VAR")
    parser.add_argument("-v", "--var", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--startup", action="append", default=[], metavar="K=V")
    parser.add_argument("--runtime", action="append", default=[], metavar="K=V")
    parser.add_argument("--special", action="append", default=[], metavar="K=V")
    parser.add_argument("--creator", metavar="NAME")
    parser.add_argument("-n", "--limit", metavar="LIMIT")
    parser.add_argument("--background", action="store_true")
    parser.add_argument("--timeout", metavar="SECONDS")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--view", choices=["widget", "text"])
    return parser


def _split(line: str, usage: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(
            f"cannot read the line ({exc}): close the quotes; usage: {usage}"
        ) from None


def _parse(parser: _Parser, words: list[str], usage: str) -> argparse.Namespace:
    try:
        return parser.parse_args(words)
    except _ArgumentError as exc:
        raise UsageError(f"{exc}; usage: {usage}") from None


def parse_pairs(
    items: Sequence[str], option: str, *, variable_names: bool = False
) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; UsageError on a malformed pair."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{option} {item!r} is not KEY=VALUE: write it as {option} name=value")
        if variable_names and not _VARIABLE_NAME.match(key):
            raise UsageError(
                f"{option} {item!r}: a variable name starts with a letter and holds letters, "
                "digits, _ and . only"
            )
        pairs[key] = value
    return pairs


def parse_cell_line(line: str) -> CellOptions:
    """The options of a ``%%linkis`` line; UsageError for anything it cannot accept."""
    ns = _parse(_cell_parser(), _split(line, CELL_USAGE), CELL_USAGE)

    for what, name in (("engine", ns.engine), ("runType", ns.run_type), ("creator", ns.creator)):
        if name is not None and not is_valid_name(name):
            raise UsageError(
                f"{what} {name!r} is not a valid name: use letters, digits, _ . - and no spaces "
                "(e.g. spark sql, python, shell)"
            )
    if ns.output is not None and (not ns.output.isidentifier() or keyword.iskeyword(ns.output)):
        raise UsageError(f"-o {ns.output!r} is not a Python variable name: use e.g. -o df")
    if ns.output is not None and ns.background:
        raise UsageError(
            "-o cannot be used with --background: the cell returns the Job, call .result() on it"
        )

    return CellOptions(
        engine=ns.engine,
        run_type=ns.run_type,
        output=ns.output,
        variables=parse_pairs(ns.var, "-v", variable_names=True),
        startup=parse_pairs(ns.startup, "--startup"),
        runtime=parse_pairs(ns.runtime, "--runtime"),
        special=parse_pairs(ns.special, "--special"),
        creator=ns.creator,
        limit=_limit(ns.limit),
        background=ns.background,
        timeout=_timeout(ns.timeout),
        quiet=ns.quiet,
        view=ns.view,
    )


def _limit(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise UsageError(f"-n {text!r} is not a row count: use a whole number, 0 for no limit")
    return value


def _timeout(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise UsageError(f"--timeout {text!r} is not a duration: use seconds > 0, e.g. 600")
    return value


# --------------------------------------------------------------------------- variables


def render_variable(value: object) -> str | None:
    """A notebook value as Linkis expects it in params.variable; None when it is not a scalar.

    str as is; bool as ``true``/``false``; int, float and Decimal as numbers; datetime as
    ``yyyy-MM-dd HH:mm:ss``; date as ``yyyy-MM-dd``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    return None


def resolve_variables(
    code: str, given: Mapping[str, str], namespace: Mapping[str, object]
) -> dict[str, str]:
    """params.variable for ``code``: every ``-v`` pair, then referenced names from ``namespace``.

    Names found in neither are left for the server (its built-ins such as ``run_date``).
    """
    variables = dict(given)
    for name in scan_variables(code):
        if name in variables or name not in namespace:
            continue
        value = namespace[name]
        rendered = render_variable(value)
        if rendered is None:
            raise UsageError(
                f"${{{name}}} refers to a {type(value).__name__} in the notebook, not a scalar: "
                f"pass -v {name}=VALUE or bind {name} to a str, number, bool or date"
            )
        variables[name] = rendered
    return variables


# --------------------------------------------------------------------------- the magics


@magics_class
class LinkisMagics(Magics):
    """The %%linkis cell magic and the %linkis line magic (see :meth:`linkis`)."""

    def __init__(self, shell: InteractiveShell, settings: LinkisMagic | None = None) -> None:
        super().__init__(shell)
        self.settings_config = settings if settings is not None else LinkisMagic(parent=shell)
        self._client: LinkisClient | None = None
        self._client_key: tuple[object, ...] | None = None
        self.views: list[BaseView] = []
        self.last_view: BaseView | None = None

    # ----------------------------------------------------------------- settings and client

    def settings(self) -> Settings:
        """The resolved settings (``%config`` > env > file > defaults)."""
        try:
            return load_settings(self.settings_config)
        except SettingsError as exc:
            raise UsageError(f"{exc}: fix it with %config LinkisMagic or the file") from None

    @property
    def client(self) -> LinkisClient | None:
        """The current client, or None before the first cell or connect."""
        return self._client

    def get_client(self, settings: Settings | None = None) -> LinkisClient:
        """The client for the current settings, (re)built when they changed."""
        settings = settings or self.settings()
        if self._client is not None and self._client_key == settings.connection_key:
            return self._client
        if not settings.embedded and not settings.user:
            raise UsageError(
                "no Linkis user: set LINKIS_USER or %config LinkisMagic.user = 'name', "
                "or use %linkis connect GATEWAY --user NAME"
            )
        prompted = not settings.embedded and not (settings.token or settings.password)
        if prompted:
            self.settings_config.password = getpass.getpass(
                f"Linkis password for {settings.user} at {settings.gateway}: "
            )
            settings = self.settings()
        self.close_client()

        from .config import make_client

        client = make_client(settings)
        self._client, self._client_key = client, settings.connection_key
        logger.info("client for %s as %s", client.gateway, client.user)
        if prompted:
            self._check_login(client)
        if settings.embedded:
            client.connect()
            print(self._embedded_line(client))
        return client

    def _check_login(self, client: LinkisClient) -> None:
        """Log in at once with a typed password; a wrong one is forgotten so it is asked again."""
        try:
            client.connect()
        except errors.AuthError:
            self.settings_config.password = None
            self.close_client()
            raise

    @staticmethod
    def _embedded_line(client: LinkisClient) -> str:
        from .gateway import start_embedded

        path = start_embedded().auth.credentials_path
        where = f"; credentials in {path}" if path.is_file() else ""
        return (
            f"No Linkis gateway configured: using the embedded gateway at {client.gateway} "
            f"(user {client.user}{where})"
        )

    def close_client(self) -> None:
        """Close the client (and the embedded gateway it started)."""
        for view in self.views:
            view._stop()
        self.views.clear()
        client, self._client, self._client_key = self._client, None, None
        if client is not None:
            client.close()

    # ----------------------------------------------------------------- %%linkis and %linkis

    @no_var_expand
    @needs_local_scope
    @line_cell_magic
    def linkis(
        self, line: str, cell: str | None = None, local_ns: Mapping[str, Any] | None = None
    ) -> Any:
        """``%%linkis`` runs a cell on Linkis; ``%linkis`` manages the connection and jobs.

        Cell: ``%%linkis [ENGINE [RUN_TYPE]] [options]`` then the code. ENGINE defaults to
        ``LinkisMagic.default_engine`` (spark); RUN_TYPE to the engine's own (spark: sql, hive: hql,
        python: python, shell: shell, any other engine: its name).

        Options:
          -o VAR             bind the first table to VAR as a DataFrame, the next ones to VAR_1,
                             VAR_2, ...; the cell then returns nothing (not with --background).
          -v NAME=VALUE      a variable for ${NAME}; repeatable. ${name} references not given
                             with -v are filled from the notebook's variables (str, int, float,
                             bool, Decimal, date, datetime), the rest are left for the server
                             (run_date ...). Every value travels in params.variable: the code
                             is sent as written.
          --startup K=V, --runtime K=V, --special K=V
                             params.configuration entries; repeatable.
          --creator NAME     requestApplicationName (default LinkisMagic.creator, IDE).
          -n LIMIT           rows fetched per table (default LinkisMagic.row_limit; 0: all).
          --background       return the Job at once; the view keeps updating and its Cancel
                             button kills the job.
          --timeout SECONDS  kill the job when it has not ended after SECONDS, and raise.
          --quiet            no view and no results shown; errors still raise.
          --view widget|text the live view (default LinkisMagic.view: widgets in Jupyter).

        Returns the first table as a DataFrame (so the cell shows it), None when there is none or
        with -o or --quiet, the Job with --background. A failed job raises JobError; an interrupt
        kills the job and raises KeyboardInterrupt.

        Line: ``%linkis connect GATEWAY [--user U] [--token T] [--transport T]`` (the password is
        asked for when no token and no password are configured), ``status``, ``jobs``,
        ``logs EXEC_ID``, ``kill EXEC_ID``, ``attach EXEC_ID TASK_ID``.

        Settings: ``%config LinkisMagic.<name> = value`` (gateway, user, password, token,
        transport, creator, default_engine, default_run_type, row_limit, view, verify, log_lines,
        update_interval, config_file), then env vars LINKIS_GATEWAY, LINKIS_USER,
        LINKIS_PASSWORD, LINKIS_TOKEN, then the TOML file $LINKIS_MAGIC_CONFIG or
        ~/.linkis-magic/config.toml, then defaults. No gateway anywhere: the embedded one.
        """
        __tracebackhide__ = True  # IPython leaves this frame out of tracebacks
        if cell is None:
            return self._line(line)
        return self._cell(line, cell, local_ns)

    def _cell(self, line: str, cell: str, local_ns: Mapping[str, Any] | None) -> Any:
        __tracebackhide__ = True
        options = parse_cell_line(line)
        if not cell.strip():
            raise UsageError("the cell is empty: write the code to run under the %%linkis line")
        user_ns = self.shell.user_ns if self.shell is not None else {}
        namespace = ChainMap(dict(local_ns or {}), user_ns)
        variables = resolve_variables(cell, options.variables, namespace)
        settings = self.settings()
        engine = options.engine or settings.default_engine
        run_type = options.run_type or settings.run_type_for(engine)
        limit = settings.row_limit if options.limit is None else options.limit

        client = self.get_client(settings)
        job = client.submit(
            cell,
            engine=engine,
            run_type=run_type,
            variables=variables,
            startup=options.startup,
            runtime=options.runtime,
            special=options.special,
            creator=options.creator or settings.creator,
        )
        logger.info("submitted execID %s taskID %s", job.exec_id, job.task_id)
        view = self._view(job, options, settings, limit or None)
        if options.background:
            return job
        return self._wait(job, view, options, limit or None)

    def _view(
        self, job: Job, options: CellOptions, settings: Settings, limit: int | None
    ) -> BaseView | None:
        if options.quiet:
            return None
        view = make_view(
            options.view or settings.view,
            job,
            background=options.background,
            interval=settings.update_interval,
            log_lines=settings.log_lines,
            limit=limit,
        )
        view.show()
        self.views = [v for v in self.views if not v.job.done]
        self.views.append(view)
        self.last_view = view
        return view

    def _wait(
        self, job: Job, view: BaseView | None, options: CellOptions, limit: int | None
    ) -> Any:
        __tracebackhide__ = True
        try:
            job.wait(options.timeout)
        except KeyboardInterrupt:
            # The client has sent the kill; show the server's answer before stopping Run All.
            if view is not None:
                view.interrupted = True
            _settle(job)
            self._close_view(view)
            raise
        except errors.JobError:
            self._close_view(view)
            raise
        except TimeoutError:
            try:
                job.kill()
            except errors.LinkisError as exc:
                logger.warning("kill of %s after its timeout failed: %s", job.exec_id, exc)
            _settle(job)
            self._close_view(view)
            raise errors.JobTimeout(
                f"killed after --timeout {options.timeout:g} s",
                status=str(job.status),
                exec_id=job.exec_id,
                task_id=job.task_id,
            ) from None
        self._close_view(view)
        return self._results(job, options, limit)

    def _close_view(self, view: BaseView | None) -> None:
        if view is None:
            return
        view.close()
        if view in self.views:
            self.views.remove(view)

    def _results(self, job: Job, options: CellOptions, limit: int | None) -> Any:
        if options.quiet and not options.output:
            return None
        results: list[ResultSet] = list(job.results(limit))
        tables = [r for r in results if r.kind == "table"]
        if options.output:
            names = [options.output] + [f"{options.output}_{i}" for i in range(1, len(tables))]
            for name, table in zip(names, tables, strict=True):
                self.shell.user_ns[name] = table.data  # type: ignore[union-attr]
            if not tables and not options.quiet:
                print(f"-o {options.output}: the job returned no table, nothing was bound")
        if options.quiet:
            return None

        returns_table = bool(tables) and not options.output
        from IPython.display import display

        for item in result_displays(results, skip_first_table=returns_table):
            display(item)
        return tables[0].data if returns_table else None

    # ----------------------------------------------------------------- %linkis subcommands

    def _line(self, line: str) -> Any:
        words = _split(line, LINE_USAGE)
        if not words:
            raise UsageError(f"say what to do: {LINE_USAGE}")
        command, rest = words[0], words[1:]
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            raise UsageError(f"unknown subcommand {command!r}: {LINE_USAGE}")
        return handler(rest)

    @staticmethod
    def _args(rest: list[str], usage: str, *names: str) -> list[str]:
        if len(rest) != len(names):
            raise UsageError(f"usage: %linkis {usage}")
        return rest

    def _cmd_connect(self, rest: list[str]) -> None:
        usage = "connect GATEWAY [--user U] [--token T] [--transport auto|websocket|rest]"
        parser = _Parser(prog="%linkis connect", add_help=False, allow_abbrev=False)
        parser.add_argument("gateway")
        parser.add_argument("--user")
        parser.add_argument("--token")
        parser.add_argument("--transport", choices=["auto", "websocket", "rest"])
        ns = _parse(parser, rest, "%linkis " + usage)

        cfg = self.settings_config
        cfg.gateway = ns.gateway
        if ns.user is not None:
            cfg.user = ns.user
        if ns.token is not None:
            cfg.token = ns.token
        if ns.transport is not None:
            cfg.transport = ns.transport
        client = self.get_client()
        client.connect()
        print(self._status_line(client))

    def _status_line(self, client: LinkisClient) -> str:
        state = "connected" if client.connected else "not connected"
        return (
            f"gateway {client.gateway} · user {client.user} · transport "
            f"{client.transport_in_use} · {state}"
        )

    def _cmd_status(self, rest: list[str]) -> None:
        self._args(rest, "status")
        if self._client is not None:
            print(self._status_line(self._client))
            return
        settings = self.settings()
        target = "an embedded gateway" if settings.gateway == EMBEDDED else settings.gateway
        who = f" as {settings.user}" if settings.user else ""
        print(f"not connected yet: the next cell connects to {target}{who}")

    def _cmd_jobs(self, rest: list[str]) -> Any:
        self._args(rest, "jobs")
        jobs = self._jobs()
        if not jobs:
            print("no jobs in this kernel yet")
            return None
        import pandas as pd

        from .views import elapsed_seconds, format_elapsed

        rows = [
            {
                "execID": job.exec_id,
                "taskID": job.task_id,
                "engine": job.engine,
                "runType": job.run_type,
                "status": str(job.status),
                "progress": f"{job.progress:.0%}",
                "elapsed": format_elapsed(elapsed_seconds(job)),
            }
            for job in jobs
        ]
        return pd.DataFrame(rows)

    def _jobs(self) -> list[Job]:
        if self._client is None:
            return []
        jobs: Any = self._client.jobs
        return list(jobs.values() if isinstance(jobs, Mapping) else jobs)

    def _job(self, exec_id: str) -> Job:
        for job in self._jobs():
            if job.exec_id == exec_id:
                return job
        raise UsageError(
            f"no job {exec_id!r} in this kernel: see %linkis jobs, "
            "or follow it with %linkis attach EXEC_ID TASK_ID"
        )

    def _cmd_logs(self, rest: list[str]) -> None:
        (exec_id,) = self._args(rest, "logs EXEC_ID", "exec_id")
        job = self._job(exec_id)
        text = job.logs.all
        print(text if text else f"no log lines for {exec_id} yet")

    def _cmd_kill(self, rest: list[str]) -> None:
        (exec_id,) = self._args(rest, "kill EXEC_ID", "exec_id")
        job = self._job(exec_id)
        if job.done:
            print(f"{exec_id} has already ended: {job.status}")
            return
        job.kill()
        _settle(job)
        print(f"kill sent to {exec_id}: {job.status}")

    def _cmd_attach(self, rest: list[str]) -> Job:
        exec_id, task_text = self._args(rest, "attach EXEC_ID TASK_ID", "exec_id", "task_id")
        try:
            task_id = int(task_text)
        except ValueError:
            raise UsageError(
                f"TASK_ID {task_text!r} is not a number: %linkis attach EXEC_ID 12"
            ) from None
        settings = self.settings()
        job = self.get_client(settings).attach(exec_id, task_id)
        self._view(job, CellOptions(background=True), settings, settings.row_limit or None)
        return job


def _settle(job: Job, seconds: float = SETTLE_SECONDS) -> None:
    """Wait a little for a killed job's final status (the view then shows it)."""
    if job.done:
        return
    with contextlib.suppress(errors.LinkisError, TimeoutError):
        job.wait(seconds)
    if job.status is not JobStatus.CANCELLED:
        logger.info("execID %s is %s after its kill", job.exec_id, job.status)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register %%linkis and %linkis and the ``LinkisMagic`` configurable."""
    if id(ipython) in _LOADED:
        return
    settings = LinkisMagic(parent=ipython)
    magics = LinkisMagics(ipython, settings)
    ipython.register_magics(magics)
    ipython.configurables.append(settings)  # type: ignore[arg-type]
    _LOADED[id(ipython)] = magics


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """Remove the magics and the configurable; close the client (stopping an embedded gateway)."""
    magics = _LOADED.pop(id(ipython), None)
    if magics is None:
        return
    for kind in ("line", "cell"):
        ipython.magics_manager.magics[kind].pop("linkis", None)
    if magics.settings_config in ipython.configurables:
        ipython.configurables.remove(magics.settings_config)  # type: ignore[arg-type]
    magics.close_client()


def loaded_magics(ipython: InteractiveShell) -> LinkisMagics | None:
    """The LinkisMagics registered on ``ipython`` by the extension (the kernel reuses them)."""
    return _LOADED.get(id(ipython))


_LOADED: dict[int, LinkisMagics] = {}
