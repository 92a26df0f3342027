"""Engine processes: the child side (``python -m linkis_magic.gateway.engines.process``) and the
gateway side (:class:`EngineProcess`) of one engine process per user, creator and engine.

The gateway writes commands as JSON lines to the child's stdin; the child writes events as JSON
lines to a pipe of its own (``--event-fd``), so nothing user code prints can corrupt them. Result
sets are written by the child straight into the job's result dir; only small events cross the pipe.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from linkis_magic.gateway.engines.base import (
    Column,
    Engine,
    EngineError,
    EngineSettings,
    JobContext,
)
from linkis_magic.gateway.resultsets import ResultDir

if TYPE_CHECKING:  # the engine process itself has no use for asyncio
    import asyncio

log = logging.getLogger(__name__)

# Engine name -> "module:Class". The gateway never imports these; engine processes do.
ENGINE_CLASSES: dict[str, str] = {
    "python": "linkis_magic.gateway.engines.python:PythonEngine",
    "shell": "linkis_magic.gateway.engines.shell:ShellEngine",
    "spark": "linkis_magic.gateway.engines.spark:SparkEngine",
}


_LOG_BATCH = 2000  # log lines per event the child writes
_DRAIN_EVENTS = 2  # events the gateway takes per loop callback


def load_engine_class(name: str, registry: Mapping[str, str] | None = None) -> type[Engine]:
    """The Engine subclass registered as ``name``; raises EngineError when it cannot be loaded."""
    table = ENGINE_CLASSES if registry is None else registry
    target = table.get(name)
    if target is None:
        raise EngineError(f"Unknown engine {name!r}; the engines there are: {engine_names(table)}")
    return load_class(name, target)


def load_class(name: str, target: str) -> type[Engine]:
    """The Engine subclass at ``module:Class``; EngineError says why it is not available."""
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EngineError(f"The {name} engine is not available here: {exc}") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise EngineError(f"The {name} engine is not available here: {target} is not an Engine")
    return cls


def engine_names(registry: Mapping[str, str] | None = None) -> str:
    return ", ".join(sorted(ENGINE_CLASSES if registry is None else registry))


# =========================================================================== child side


class EventChannel:
    """The child's side of the event pipe; a sender thread batches consecutive log lines."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._pump, name="engine-events", daemon=True)
        self._thread.start()

    def send(self, event: dict[str, Any]) -> None:
        self._queue.put(event)

    def log(self, job_id: str, level: str, message: str) -> None:
        self._queue.put(("log", job_id, level, message))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _pump(self) -> None:
        while True:
            batch = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while len(batch) < _LOG_BATCH:
                    batch.append(self._queue.get_nowait())
            done = batch[-1] is None or None in batch
            try:
                self._stream.write(b"".join(_encode_batch(batch)))
                self._stream.flush()
            except (OSError, ValueError):
                return
            if done:
                return


def _encode_batch(batch: list[Any]) -> Iterable[bytes]:
    entries: list[list[str]] = []
    job: str | None = None
    for item in batch:
        if isinstance(item, tuple):
            if job is not None and item[1] != job and entries:
                yield _line({"type": "log", "job": job, "entries": entries})
                entries = []
            job = item[1]
            entries.append([item[2], item[3]])
            continue
        if entries:
            yield _line({"type": "log", "job": job, "entries": entries})
            entries, job = [], None
        if item is None:
            return
        yield _line(item)
    if entries:
        yield _line({"type": "log", "job": job, "entries": entries})


def _line(event: Mapping[str, Any]) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode("utf-8") + b"\n"


class ProcessJobContext(JobContext):
    """A job as an engine sees it inside the engine process."""

    def __init__(self, command: Mapping[str, Any], channel: EventChannel) -> None:
        self.job_id = str(command["job_id"])
        self.exec_id = str(command.get("exec_id", ""))
        self.task_id = int(command.get("task_id", 0))
        self.user = str(command.get("user", ""))
        self.creator = str(command.get("creator", ""))
        self.run_type = str(command.get("run_type", ""))
        self.code = str(command.get("code", ""))
        self.startup = dict(command.get("startup") or {})
        self.runtime = dict(command.get("runtime") or {})
        self.special = dict(command.get("special") or {})
        self.row_limit = int(command.get("row_limit", 5_000_000))
        self.cancelled = threading.Event()
        self.results = ResultDir(Path(command["result_dir"]))
        self._channel = channel

    def log(self, level: str, message: str) -> None:
        self._channel.log(self.job_id, level.upper(), message)

    def progress(self, progress: float, info: Sequence[Mapping[str, object]] = ()) -> None:
        event = {"type": "progress", "job": self.job_id, "progress": float(progress)}
        event["info"] = [dict(i) for i in info]
        self._channel.send(event)

    def table(self, columns: Sequence[Column], rows: Iterable[Sequence[object]]) -> int:
        metadata = [
            {"columnName": c.name, "dataType": c.data_type, "comment": c.comment or "NULL"}
            for c in columns
        ]
        written, truncated = self.results.write_table(metadata, rows, self.row_limit)
        if truncated:
            self.log("WARN", f"The result set was cut at {written} rows (the row limit).")
        return written

    def text(self, text: str) -> None:
        self.results.write_text(text)

    def html(self, html: str) -> None:
        self.results.write_html(html)

    def picture(self, png: bytes) -> None:
        self.results.write_picture(png)


class Runner:
    """Runs the jobs an engine process receives, one at a time, on the main thread."""

    def __init__(self, engine: Engine, channel: EventChannel) -> None:
        self.engine = engine
        self.channel = channel
        self._lock = threading.Lock()
        self._current: ProcessJobContext | None = None

    def run(self, command: Mapping[str, Any]) -> None:
        ctx = ProcessJobContext(command, self.channel)
        status, error = "Succeed", ""
        with self._lock:
            self._current = ctx
        try:
            differs = self.engine.startup_differs(ctx.startup)
            if differs:
                ctx.log(
                    "WARN",
                    "This engine was started with other startup settings; these take effect "
                    f"in a new engine only: {', '.join(differs)}",
                )
            self.engine.execute(ctx)
            if ctx.cancelled.is_set():
                status = "Cancelled"
        except KeyboardInterrupt:
            status = "Cancelled" if ctx.cancelled.is_set() else "Failed"
            error = "" if ctx.cancelled.is_set() else "The job was interrupted."
        except EngineError as exc:
            status, error = ("Cancelled", "") if ctx.cancelled.is_set() else ("Failed", str(exc))
        except BaseException:
            status = "Cancelled" if ctx.cancelled.is_set() else "Failed"
            error = "" if ctx.cancelled.is_set() else traceback.format_exc()
        finally:
            with self._lock:
                self._current = None
        self.channel.send({"type": "done", "job": ctx.job_id, "status": status, "error": error})

    def cancel(self, job_id: str) -> None:
        with self._lock:
            ctx = self._current
            if ctx is None or ctx.job_id != job_id or ctx.cancelled.is_set():
                return
            ctx.cancelled.set()
        threading.Thread(
            target=self._cancel, args=(ctx,), name="engine-cancel", daemon=True
        ).start()

    def _cancel(self, ctx: ProcessJobContext) -> None:
        try:
            self.engine.cancel(ctx)
        except Exception:
            log.exception("cancelling job %s failed", ctx.job_id)

    def running(self, job_id: str) -> bool:
        with self._lock:
            return self._current is not None and self._current.job_id == job_id


def child_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of an engine process."""
    parser = argparse.ArgumentParser(prog="linkis_magic.gateway.engines.process")
    parser.add_argument("--engine", required=True)
    parser.add_argument("--engine-class", default=None, help="module:Class (default: registry)")
    parser.add_argument("--event-fd", type=int, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    signal.signal(signal.SIGINT, signal.default_int_handler)

    channel = EventChannel(os.fdopen(args.event_fd, "wb", buffering=0))
    stdin = _take_commands_stream()
    try:
        raw = json.loads(stdin.readline() or b"{}")
        settings = EngineSettings(
            user=str(raw.get("user", "")),
            creator=str(raw.get("creator", "")),
            startup=dict(raw.get("startup") or {}),
            data_dir=str(raw.get("data_dir", "")),
        )
        if args.engine_class:
            engine = load_class(args.engine, args.engine_class)(settings)
        else:
            engine = load_engine_class(args.engine)(settings)
    except BaseException as exc:
        text = str(exc) if isinstance(exc, EngineError) else traceback.format_exc()
        channel.send({"type": "fatal", "error": text})
        channel.close()
        return 1

    runner = Runner(engine, channel)
    commands: queue.SimpleQueue[Mapping[str, Any] | None] = queue.SimpleQueue()
    threading.Thread(
        target=_read_commands, args=(stdin, runner, commands), name="engine-commands", daemon=True
    ).start()
    channel.send({"type": "ready", "pid": os.getpid()})
    while True:
        try:
            command = commands.get()
            if command is None:
                break
            runner.run(command)
        except KeyboardInterrupt:
            continue
    with contextlib.suppress(Exception):
        engine.close()
    channel.close()
    return 0


def _take_commands_stream() -> IO[bytes]:
    """The command pipe (fd 0) moved to a private fd; user code reading stdin gets /dev/null."""
    commands = os.fdopen(os.dup(0), "rb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    return commands


def _read_commands(
    stdin: IO[bytes], runner: Runner, commands: queue.SimpleQueue[Mapping[str, Any] | None]
) -> None:
    for line in stdin:
        try:
            command = json.loads(line)
        except ValueError:
            log.debug("ignoring a malformed command line")
            continue
        op = command.get("op")
        if op == "execute":
            commands.put(command["job"])
        elif op == "cancel":
            runner.cancel(str(command.get("job")))
        elif op == "shutdown":
            commands.put(None)
            return
    # stdin closed without a shutdown: the gateway is gone, and with it whoever wanted the
    # results. End this process group (the engine and whatever its jobs started) at once.
    log.warning("the gateway went away; the engine process ends")
    if os.getpgid(0) == os.getpid():
        with contextlib.suppress(OSError):
            os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(1)


# =========================================================================== gateway side


class EngineProcess:
    """One engine process as the gateway sees it.

    Events from the child are handed to ``on_events`` in batches on ``loop``; ``on_exit`` is
    called there once, with the exit code, when the process is gone.
    """

    def __init__(
        self,
        engine: str,
        target: str,
        settings: EngineSettings,
        loop: asyncio.AbstractEventLoop,
        on_events: Callable[[EngineProcess, list[dict[str, Any]]], None],
        on_exit: Callable[[EngineProcess, int], None],
        log_path: Path,
    ) -> None:
        self.engine = engine
        self.target = target
        self.settings = settings
        self.loop = loop
        self.on_events = on_events
        self.on_exit = on_exit
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.ready: asyncio.Future[str | None] = loop.create_future()
        self._pending: list[dict[str, Any]] = []
        self._pending_lock = threading.Lock()
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.exit_code is None

    def start(self) -> None:
        """Spawn the process; ``ready`` resolves to None when it can take jobs, else an error."""
        read_fd, write_fd = os.pipe()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        workdir = self.workdir
        if workdir is not None:
            workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("LINKIS_PASSWORD", None)
        env.pop("LINKIS_TOKEN", None)
        try:
            with open(self.log_path, "ab") as engine_log:
                self.proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "linkis_magic.gateway.engines.process",
                        "--engine",
                        self.engine,
                        "--engine-class",
                        self.target,
                        "--event-fd",
                        str(write_fd),
                    ],
                    stdin=subprocess.PIPE,
                    stdout=engine_log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                    env=env,
                    cwd=workdir,
                )
        finally:
            os.close(write_fd)
        log.info("started %s engine process %s for %s", self.engine, self.proc.pid, self.key_text)
        threading.Thread(
            target=self._read_events, args=(read_fd,), name=f"engine-{self.proc.pid}", daemon=True
        ).start()
        threading.Thread(target=self._write_commands, name="engine-writer", daemon=True).start()
        self.send(
            {
                "user": self.settings.user,
                "creator": self.settings.creator,
                "startup": self.settings.startup,
                "data_dir": self.settings.data_dir,
            }
        )

    @property
    def workdir(self) -> Path | None:
        """Where the engine's jobs run: ``work/<user>`` under the data dir."""
        if not self.settings.data_dir:
            return None
        return Path(self.settings.data_dir) / "work" / self.settings.user

    @property
    def key_text(self) -> str:
        return f"{self.settings.user}/{self.settings.creator}/{self.engine}"

    def send(self, command: Mapping[str, Any]) -> None:
        """Queue one command line for the child (never blocks the loop)."""
        self._outbox.put(json.dumps(command, ensure_ascii=False).encode("utf-8") + b"\n")

    def execute(self, job: Mapping[str, Any]) -> None:
        self.send({"op": "execute", "job": dict(job)})

    def cancel(self, job_id: str) -> None:
        self.send({"op": "cancel", "job": job_id})

    def shutdown(self) -> None:
        self.send({"op": "shutdown"})
        self._outbox.put(None)

    def kill(self) -> None:
        """Kill the process and everything it started (its own process group)."""
        if self.proc is None or self.exit_code is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def _write_commands(self) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        stdin = self.proc.stdin
        try:
            while True:
                data = self._outbox.get()
                if data is None:
                    return
                stdin.write(data)
                stdin.flush()
        except (OSError, ValueError):
            log.debug("engine %s no longer reads its commands", self.pid)
        finally:
            with contextlib.suppress(OSError, ValueError):
                stdin.close()

    def _read_events(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as stream:
            for line in stream:
                try:
                    event = json.loads(line)
                except ValueError:
                    log.debug("engine %s wrote a malformed event", self.pid)
                    continue
                if isinstance(event, dict):
                    self._hand_over(event)
        assert self.proc is not None
        code = self.proc.wait()
        with contextlib.suppress(RuntimeError):  # the gateway's loop is already closed
            self.loop.call_soon_threadsafe(self._exited, code)

    def _hand_over(self, event: dict[str, Any]) -> None:
        with self._pending_lock:
            first = not self._pending
            self._pending.append(event)
        if first:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._drain)

    def _drain(self, everything: bool = False) -> None:
        """Hand pending events over, a few at a time so that one busy job cannot hold the loop."""
        with self._pending_lock:
            if everything:
                events, self._pending = self._pending, []
            else:
                events = self._pending[:_DRAIN_EVENTS]
                del self._pending[:_DRAIN_EVENTS]
            more = bool(self._pending)
        if more:
            self.loop.call_soon(self._drain)
        if not events:
            return
        for event in events:
            kind = event.get("type")
            if kind == "ready" and not self.ready.done():
                self.ready.set_result(None)
            elif kind == "fatal" and not self.ready.done():
                self.ready.set_result(str(event.get("error") or "the engine failed to start"))
        self.on_events(self, events)

    def _exited(self, code: int) -> None:
        self._drain(everything=True)
        self.exit_code = code
        log.info("%s engine process %s exited with %s", self.engine, self.pid, code)
        if not self.ready.done():
            self.ready.set_result(f"The engine process exited with code {code} before it was ready")
        self._outbox.put(None)
        self.on_exit(self, code)


if __name__ == "__main__":
    sys.exit(child_main())
