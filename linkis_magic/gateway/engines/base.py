"""The contract between the embedded gateway and its engines.

An engine runs inside an engine process (one per user, creator and engine, like a Linkis engine
connection); the gateway never imports engine code into its own process. Each job the process
receives is run by :meth:`Engine.execute` with a :class:`JobContext` through which the engine
reports logs, progress and result sets. :meth:`Engine.cancel` is called from another thread.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


class EngineError(Exception):
    """A job failed for a reason the user should read (shown in the job's error log)."""


@dataclass(frozen=True)
class Column:
    """A table result set column: its name and Linkis's dataType name (int, string, ...)."""

    name: str
    data_type: str
    comment: str = ""


class JobContext(abc.ABC):
    """What an engine sees of one job.

    ``code`` is the code after variable substitution. ``runtime`` and ``special`` are the
    job's params.configuration sections and ``startup`` the job's startup section (the one the
    process started with is ``Engine.settings.startup``). ``cancelled`` is set when the job has
    been killed.
    """

    job_id: str
    exec_id: str
    task_id: int
    user: str
    creator: str
    run_type: str
    code: str
    startup: Mapping[str, str]
    runtime: Mapping[str, str]
    special: Mapping[str, str]
    row_limit: int
    cancelled: threading.Event

    @abc.abstractmethod
    def log(self, level: str, message: str) -> None:
        """One line (or several, newline-separated) at INFO, WARN or ERROR."""

    @abc.abstractmethod
    def progress(self, progress: float, info: Sequence[Mapping[str, object]] = ()) -> None:
        """Overall progress in [0, 1] and one entry per stage, in Linkis's progressInfo shape:
        ``{"id", "succeedTasks", "failedTasks", "runningTasks", "totalTasks"}``."""

    @abc.abstractmethod
    def table(self, columns: Sequence[Column], rows: Iterable[Sequence[object]]) -> int:
        """Write a table result set; values are rendered as Linkis strings (None -> "NULL").
        Writes at most ``row_limit`` rows, logs when it truncated, returns the rows written."""

    @abc.abstractmethod
    def text(self, text: str) -> None:
        """Write a text result set."""

    @abc.abstractmethod
    def html(self, html: str) -> None:
        """Write an html result set."""

    @abc.abstractmethod
    def picture(self, png: bytes) -> None:
        """Write a picture result set (PNG bytes)."""


@dataclass
class EngineSettings:
    """What an engine process starts with: who it serves and params.configuration.startup."""

    user: str
    creator: str
    startup: dict[str, str] = field(default_factory=dict)
    data_dir: str = ""


class Engine(abc.ABC):
    """One engine kind. Subclasses set ``name`` and ``run_types`` (the first is the default)."""

    name: str = ""
    run_types: tuple[str, ...] = ()

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings

    @abc.abstractmethod
    def execute(self, ctx: JobContext) -> None:
        """Run one job to its end. Raise EngineError (or any exception) to fail it.

        Return normally after ``ctx.cancelled`` is set to end the job Cancelled.
        """

    @abc.abstractmethod
    def cancel(self, ctx: JobContext) -> None:
        """Stop ``ctx``'s job for real, from another thread; the engine must stay usable."""

    def startup_differs(self, startup: Mapping[str, str]) -> list[str]:
        """The startup keys a job asks for that this running engine did not start with."""
        return sorted(k for k, v in startup.items() if self.settings.startup.get(k) != v)

    def close(self) -> None:
        """Release what the engine holds (its interpreter, its SparkSession)."""
        return None
