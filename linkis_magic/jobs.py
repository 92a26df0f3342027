"""Jobs as the client sees them: state fed by protocol events, logs by level, wait, kill, results.

``AsyncJob`` lives on the client's event loop and is updated only there; ``Job`` is its
synchronous face for ``LinkisClient``. Neither does I/O itself: the client does it for them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pandas as pd

from linkis_magic import protocol
from linkis_magic.errors import JobCancelled, JobError, JobTimeout
from linkis_magic.protocol import JobStatus, ProgressInfo

if TYPE_CHECKING:
    from linkis_magic.results import ResultSet

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: ``callback(job, event)``: event is the protocol event, or None for a client-side change.
Callback = Callable[[Any, "protocol.Event | None"], None]

ERROR_TAIL_LINES = 20


class JobLogs:
    """A job's log text so far, whole and by level; every line ends with ``"\\n"``.

    Lines are classified by their ``yyyy-MM-dd HH:mm:ss.SSS LEVEL`` prefix, as Linkis does;
    a line without one (a stack trace, a continuation) belongs to the level of the line above.
    Appended on the client loop, readable from any thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._text = {"all": "", "error": "", "warn": "", "info": ""}
        self._parts: dict[str, list[str]] = {k: [] for k in self._text}
        self._level: str | None = None
        self.lines = 0

    def append(self, lines: Sequence[str]) -> None:
        """Append whole lines (without their newline)."""
        if not lines:
            return
        with self._lock:
            for line in lines:
                level = protocol.log_level_of(line)
                if level is not None:
                    self._level = level
                self._parts["all"].append(line + "\n")
                if self._level is not None:
                    self._parts[self._level.lower()].append(line + "\n")
            self.lines += len(lines)

    def _get(self, key: str) -> str:
        with self._lock:
            parts = self._parts[key]
            if parts:
                self._text[key] += "".join(parts)
                parts.clear()
            return self._text[key]

    @property
    def all(self) -> str:
        return self._get("all")

    @property
    def error(self) -> str:
        return self._get("error")

    @property
    def warn(self) -> str:
        return self._get("warn")

    @property
    def info(self) -> str:
        return self._get("info")

    def tail(self, count: int = ERROR_TAIL_LINES) -> str:
        """The last ``count`` error lines, or the last lines of the whole log if none."""
        text = self.error or self.all
        return "\n".join(text.splitlines()[-count:])

    def __repr__(self) -> str:
        return f"JobLogs(lines={self.lines})"


def split_lines(text: str) -> list[str]:
    """Log text as lines: ``"a\\nb\\n"`` and ``"a\\nb"`` are both two lines, ``""`` none."""
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


class JobClient(Protocol):
    """What a job needs from its client (AsyncLinkisClient)."""

    async def _kill(self, job: AsyncJob) -> None: ...

    async def _results(self, job: AsyncJob, limit: int | None) -> list[ResultSet]: ...


class AsyncJob:
    """One Linkis job followed by an ``AsyncLinkisClient``; coroutines run on its loop.

    Attributes are plain values readable from any thread. ``status`` is the server's word
    (Inited until it answers); ``done`` turns True once the job ended and its whole log has
    been read, or when the client gave up following it (then ``error`` says why).
    """

    def __init__(
        self,
        client: JobClient,
        code: str,
        engine: str,
        run_type: str,
        *,
        exec_id: str | None = None,
        task_id: int | None = None,
        creator: str = protocol.DEFAULT_CREATOR,
    ) -> None:
        self._client = client
        self.code = code
        self.engine = engine
        self.run_type = run_type
        self.creator = creator
        self.exec_id = exec_id
        self.task_id = task_id
        self.status = JobStatus.INITED
        self.progress = 0.0
        self.progress_info: tuple[ProgressInfo, ...] = ()
        self.logs = JobLogs()
        self.waiting_size: int | None = None
        self.submitted_at: float | None = time.time()
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.error: str | None = None
        self.server_error: str | None = None
        self._done = False
        self._done_event = asyncio.Event()
        self._done_flag = threading.Event()
        self._callbacks: list[Callback] = []
        self._results: list[ResultSet] | None = None
        # Client bookkeeping: where the next pushed log chunk starts (None: unknown), when
        # things last changed (time.monotonic()), and a wake-up for the job's follower.
        self.tag: str | None = None
        self.request: dict[str, Any] = {}
        self.frame: str | None = None
        self.accept_deadline = 0.0
        self.log_due = False
        self.push_next: int | None = None
        self.log_pushed = False
        self.result_paths: asyncio.Future[list[str] | None] | None = None
        self.last_log_change = time.monotonic()
        self.last_progress_at = time.monotonic()
        self.last_status_at = time.monotonic()
        self.kill_requested = False
        self.wake = asyncio.Event()

    # ----------------------------------------------------------------- read side

    @property
    def done(self) -> bool:
        return self._done

    @property
    def elapsed(self) -> float | None:
        """Seconds from submission to the end (or to now while running)."""
        if self.submitted_at is None:
            return None
        return (self.ended_at or time.time()) - self.submitted_at

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(exec_id={self.exec_id!r}, task_id={self.task_id}, "
            f"engine={self.engine!r}, status={self.status.value}, progress={self.progress:.2f})"
        )

    # ----------------------------------------------------------------- subscribers

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(job, event)`` on the client loop after every change.

        Returns a function that unsubscribes. Exceptions from callbacks are logged.
        """
        self._callbacks.append(callback)

        def unsubscribe() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return unsubscribe

    def emit(self, event: protocol.Event | None) -> None:
        for callback in list(self._callbacks):
            try:
                callback(self, event)
            except Exception:
                logger.exception("a job subscriber failed on %s", type(event).__name__)

    # ----------------------------------------------------------------- updates (client loop)

    def accepted(self, exec_id: str, task_id: int | None) -> None:
        self.exec_id = exec_id
        if task_id is not None:
            self.task_id = task_id

    def set_status(self, status: JobStatus) -> bool:
        """Apply a status; a finished job never goes back to running. True if it changed."""
        self.last_status_at = time.monotonic()
        if status == self.status or self.status.is_terminal:
            return False
        logger.info("job %s (taskID %s): %s -> %s", self.exec_id, self.task_id, self.status, status)
        self.status = status
        now = time.time()
        if status is JobStatus.RUNNING:
            self.waiting_size = None
            if self.started_at is None:
                self.started_at = now
        if status.is_terminal:
            self.ended_at = now
            self.waiting_size = None
            if status.is_success:
                self.progress = 1.0
        self.wake.set()
        return True

    def set_progress(self, progress: float, info: tuple[ProgressInfo, ...]) -> None:
        self.last_progress_at = time.monotonic()
        if self.status.is_terminal and self.status.is_success:
            progress = 1.0
        self.progress = max(0.0, min(1.0, progress))
        if info or progress >= 1.0:
            self.progress_info = info

    def add_log_lines(self, first: int, lines: Sequence[str]) -> int:
        """Lines numbered from ``first`` (1-based); those already held are skipped.

        Returns how many were appended. A chunk that starts beyond the next line is not
        appended (that would leave a hole): the caller reads the missing lines over REST.
        """
        held = self.logs.lines
        if first > held + 1:
            return -1
        fresh = lines[held + 1 - first :]
        if fresh:
            self.logs.append(fresh)
            self.last_log_change = time.monotonic()
        return len(fresh)

    def finish(self, error: str | None = None) -> None:
        """The end of following: the job ended (or ``error`` says why we stopped)."""
        if self._done:
            return
        if error is not None:
            self.error = error
            logger.info("job %s (taskID %s): %s", self.exec_id, self.task_id, error)
        if self.ended_at is None:
            self.ended_at = time.time()
        self._done = True
        # Subscribers first: a view draws the final state before any waiter wakes up.
        self.emit(None)
        self._done_event.set()
        self._done_flag.set()
        self.wake.set()

    # ----------------------------------------------------------------- outcome

    def raise_for_status(self) -> None:
        """Raise the JobError that matches how the job ended; nothing if it succeeded."""
        if self.error is not None:
            raise JobError(
                self.error,
                status=self.status.value,
                exec_id=self.exec_id,
                task_id=self.task_id,
                error_tail=self.logs.tail(),
            )
        if self.status.is_success:
            return
        kind = {JobStatus.CANCELLED: JobCancelled, JobStatus.TIMEOUT: JobTimeout}.get(
            self.status, JobError
        )
        message = f"Linkis job ended {self.status.value}"
        if self.server_error:
            message += f": {self.server_error}"
        raise kind(
            message,
            status=self.status.value,
            exec_id=self.exec_id,
            task_id=self.task_id,
            error_tail=self.logs.tail(),
        )

    # ----------------------------------------------------------------- coroutines

    async def wait(self, timeout: float | None = None) -> AsyncJob:
        """Wait until the job is done; JobError if it did not succeed.

        Raises builtins TimeoutError when ``timeout`` seconds pass first (the job goes on).
        """
        try:
            await asyncio.wait_for(self._done_event.wait(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"job {self.exec_id} still {self.status.value} after {timeout} s"
            ) from None
        self.raise_for_status()
        return self

    async def kill(self) -> None:
        """Ask the server to kill the job (a no-op once it is done)."""
        if self._done:
            return
        await self._client._kill(self)

    async def results(self, limit: int | None = None) -> list[ResultSet]:
        """Every result set of the finished job (waits for it); ``limit`` rows per table."""
        await self.wait()
        if limit is None and self._results is not None:
            return list(self._results)
        results = await self._client._results(self, limit)
        if limit is None:
            self._results = results
        self.emit(None)
        return list(results)

    async def result(self, limit: int | None = None) -> pd.DataFrame | None:
        """The first table result set as a DataFrame (None when the job made no table)."""
        return first_table(await self.results(limit))


def first_table(results: Sequence[ResultSet]) -> pd.DataFrame | None:
    for rs in results:
        if rs.kind == "table" and isinstance(rs.data, pd.DataFrame):
            return rs.data
    return None


class Runner(Protocol):
    """Runs coroutines on the client's loop thread (see client.LoopThread)."""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T: ...

    def call_soon(self, fn: Callable[[], object]) -> None: ...

    def in_loop_thread(self) -> bool: ...


SLICE = 0.1


class Job:
    """A job of a ``LinkisClient``: the synchronous face of an :class:`AsyncJob`.

    Attributes read the live state; ``wait``, ``kill``, ``result`` and ``results`` block the
    calling thread in short slices, so a KeyboardInterrupt arrives at once. An interrupt
    during ``wait`` kills the remote job (for at most ``kill_wait`` seconds) and re-raises.
    """

    def __init__(self, job: AsyncJob, runner: Runner, kill_wait: float = 5.0) -> None:
        self._job = job
        self._runner = runner
        self._kill_wait = kill_wait

    @property
    def async_job(self) -> AsyncJob:
        return self._job

    exec_id = property(lambda self: self._job.exec_id)
    task_id = property(lambda self: self._job.task_id)
    engine = property(lambda self: self._job.engine)
    run_type = property(lambda self: self._job.run_type)
    code = property(lambda self: self._job.code)
    creator = property(lambda self: self._job.creator)
    status = property(lambda self: self._job.status)
    progress = property(lambda self: self._job.progress)
    progress_info = property(lambda self: self._job.progress_info)
    done = property(lambda self: self._job.done)
    logs = property(lambda self: self._job.logs)
    waiting_size = property(lambda self: self._job.waiting_size)
    submitted_at = property(lambda self: self._job.submitted_at)
    started_at = property(lambda self: self._job.started_at)
    ended_at = property(lambda self: self._job.ended_at)
    elapsed = property(lambda self: self._job.elapsed)
    error = property(lambda self: self._job.error)
    server_error = property(lambda self: self._job.server_error)

    def __repr__(self) -> str:
        return repr(self._job).replace("AsyncJob(", "Job(", 1)

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(job, event)`` on the client's loop thread after every change."""
        return self._job.subscribe(lambda _job, event: callback(self, event))

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job is done; raise JobError unless it succeeded.

        Raises builtins TimeoutError when ``timeout`` seconds pass first (the job goes on).
        """
        if self._runner.in_loop_thread():
            raise RuntimeError("Job.wait() on the client's loop thread would block it forever")
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._job._done_flag.wait(SLICE):
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"job {self.exec_id} still {self.status.value} after {timeout} s"
                    )
        except KeyboardInterrupt:
            self._kill_on_interrupt()
            raise
        self._job.raise_for_status()
        return self

    def _kill_on_interrupt(self) -> None:
        logger.info("interrupted: killing job %s (taskID %s)", self.exec_id, self.task_id)
        deadline = time.monotonic() + self._kill_wait
        try:
            self._runner.run(self._job.kill(), timeout=self._kill_wait)
            while not self._job._done_flag.wait(SLICE) and time.monotonic() < deadline:
                pass
        except KeyboardInterrupt:
            logger.info("second interrupt: not waiting for job %s to stop", self.exec_id)
        except Exception as exc:
            logger.warning("could not kill job %s: %s", self.exec_id, exc)

    def kill(self) -> None:
        """Ask the server to kill the job."""
        self._runner.run(self._job.kill())

    def results(self, limit: int | None = None) -> list[ResultSet]:
        """Every result set (waits for the job); tables hold at most ``limit`` rows."""
        self.wait()
        return self._runner.run(self._job.results(limit))

    def result(self, limit: int | None = None) -> pd.DataFrame | None:
        """The first table result set as a DataFrame (None when the job made no table)."""
        return first_table(self.results(limit))


def wait_future(future: concurrent.futures.Future[T], timeout: float | None) -> T:
    """A future's result, waiting in short slices so KeyboardInterrupt gets through."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = SLICE if deadline is None else min(SLICE, deadline - time.monotonic())
        if remaining <= 0:
            future.cancel()
            raise TimeoutError(f"no answer within {timeout} s")
        done, _ = concurrent.futures.wait([future], timeout=remaining)
        if done:
            return future.result()
