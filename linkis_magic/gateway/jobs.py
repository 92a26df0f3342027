"""Job lifecycle of the embedded gateway: requests, queues, engine processes, logs, pushes, kill.

Everything here runs on the gateway's event-loop thread. Transport (tornado handlers) lives in
app.py; history rows in store.py; result files in resultsets.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from linkis_magic import protocol as p
from linkis_magic.gateway import variables
from linkis_magic.gateway.engines.base import EngineSettings
from linkis_magic.gateway.engines.process import (
    ENGINE_CLASSES,
    EngineProcess,
    engine_names,
)
from linkis_magic.gateway.store import JobStore, now_ms
from linkis_magic.protocol import JobStatus

log = logging.getLogger(__name__)

ENTRANCE_APP = "linkis-cg-entrance"

# Error codes of jobs that fail in the embedded gateway (request errors use Linkis's codes).
ERR_ENGINE_FAILED = 40001
ERR_ENGINE_DIED = 40002
ERR_ENGINE_UNAVAILABLE = 40003
ERR_UNKNOWN_ENGINE = 40004
ERR_GATEWAY_STOPPED = 40005

# Creators and engine names become parts of file paths and execIDs.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,98}$")

SCRIPT_MARK = "*" * 36 + "SCRIPT CODE" + "*" * 36

# One log entry keeps at most this many characters; a log push carries at most about twice
# LOG_FRAME_CHARS (each line is in its bucket and in "all"), far below clients' frame limits.
LOG_ENTRY_CHARS = 256 * 1024
LOG_FRAME_CHARS = 512 * 1024

STATUS_MESSAGE = "Get the status of the task successfully(获取任务状态成功)"
PROGRESS_MESSAGE = "return the schedule information (返回进度信息!)"
LOG_MESSAGE = "Return log information(返回日志信息)"
WAITING_MESSAGE = "Get waiting size succeed."
WAITING_PUSH_INTERVAL = 0.25  # seconds between two rounds of queue-position pushes of an engine


class RequestError(Exception):
    """A request Linkis refuses with an error code (the ``errorMsg`` of its envelope)."""

    def __init__(self, err_code: int, desc: str, status: int = p.MessageStatus.ERROR) -> None:
        super().__init__(desc)
        self.err_code = err_code
        self.desc = desc
        self.status = status


class Subscriber(Protocol):
    """A WebSocket connection that receives pushes."""

    user: str

    def push(self, text: str) -> None: ...


@dataclass
class GatewayOptions:
    """Tunables of the embedded gateway."""

    engine_idle_timeout: float = 600.0
    engine_start_timeout: float = 300.0
    result_row_limit: int = 5_000_000
    log_push_interval: float = 0.025
    kill_grace: float = 1.5
    # Engines whose work takes longer to stop: Spark cancels a job group task by task, and
    # killing its process would lose the session (temporary views, PySpark state).
    engine_kill_grace: dict[str, float] = field(default_factory=lambda: {"spark": 15.0})
    stop_grace: float = 3.0
    # More engines, or other classes for the built-in names: name -> "module:Class".
    engines: dict[str, str] = field(default_factory=dict)


@dataclass
class JobRequest:
    """An execute or submit request, validated."""

    engine: str
    engine_label: str
    creator: str
    run_type: str
    code: str
    variable: dict[str, Any]
    startup: dict[str, str]
    runtime: dict[str, str]
    special: dict[str, str]
    source: dict[str, Any]
    labels: dict[str, Any]
    params: dict[str, Any]
    queuing_timeout: float | None = None
    running_timeout: float | None = None


@dataclass(eq=False)
class Job:
    """A job the gateway is running (terminal jobs live on in the store only)."""

    task_id: int
    job_id: str
    exec_id: str
    rest_exec_id: str
    user: str
    request: JobRequest
    code: str
    log_path: Path
    result_dir: Path
    tag: str | None = None
    status: JobStatus = JobStatus.INITED
    progress: float | None = None
    progress_info: list[dict[str, Any]] = field(default_factory=list)
    subscribers: set[Subscriber] = field(default_factory=set)
    lines: list[str] = field(default_factory=list)
    levels: list[str] = field(default_factory=list)
    pending: list[tuple[str, str]] = field(default_factory=list)
    push_handle: asyncio.Handle | None = None
    last_push: float = 0.0
    kill_requested: bool = False
    stop_status: JobStatus = JobStatus.CANCELLED
    stop_reason: str | None = None
    kill_timer: asyncio.TimerHandle | None = None
    timeout_timer: asyncio.TimerHandle | None = None
    done: asyncio.Future[None] | None = None
    log_file: IO[str] | None = None
    unwritten: list[str] = field(default_factory=list)

    @property
    def engine(self) -> str:
        return self.request.engine

    @property
    def creator(self) -> str:
        return self.request.creator


@dataclass(eq=False)
class EngineSlot:
    """The engine process of one (user, creator, engine) and the jobs waiting for it."""

    key: tuple[str, str, str]
    queue: deque[Job] = field(default_factory=deque)
    current: Job | None = None
    process: EngineProcess | None = None
    runner: asyncio.Task[None] | None = None
    idle_timer: asyncio.TimerHandle | None = None
    # Queue positions last pushed (taskID -> position), and the throttle of those pushes.
    waiting_sent: dict[int, int] = field(default_factory=dict)
    waiting_timer: asyncio.TimerHandle | None = None
    waiting_at: float = float("-inf")


def split_log(lines: Sequence[str], levels: Sequence[str]) -> list[list[str]]:
    """Log lines in Linkis's four buckets: [error, warn, info, all]."""
    buckets: dict[str, list[str]] = {"ERROR": [], "WARN": [], "INFO": []}
    for line, level in zip(lines, levels, strict=False):
        buckets.setdefault(level, []).append(line)
    return [buckets["ERROR"], buckets["WARN"], buckets["INFO"], list(lines)]


def joined_log(lines: Sequence[str], levels: Sequence[str]) -> list[str]:
    """The buckets as REST ``/log`` gives them: each bucket's lines joined by newlines."""
    return ["\n".join(bucket) for bucket in split_log(lines, levels)]


def pushed_log(lines: Sequence[str], levels: Sequence[str]) -> list[str]:
    """The buckets as a log push carries them: every line ends with a newline."""
    return ["".join(line + "\n" for line in bucket) for bucket in split_log(lines, levels)]


class JobManager:
    """Creates, runs, follows and kills jobs; turns engine events into log lines and pushes."""

    def __init__(
        self,
        data_dir: Path,
        store: JobStore,
        instance: str,
        loop: asyncio.AbstractEventLoop,
        options: GatewayOptions,
    ) -> None:
        self.data_dir = data_dir
        self.store = store
        self.instance = instance
        self.loop = loop
        self.options = options
        self.engine_classes = {**ENGINE_CLASSES, **options.engines}
        self.jobs: dict[str, Job] = {}
        self.slots: dict[tuple[str, str, str], EngineSlot] = {}
        self.sockets: dict[str, set[Subscriber]] = {}
        self._slot_of_process: dict[int, EngineSlot] = {}
        self._stopping = False
        self._stamp_ms = 0
        self._stamps: dict[str, str] = {}

    # ------------------------------------------------------------------ paths

    def user_results_root(self, user: str) -> Path:
        return self.data_dir / "results" / user

    def _paths(self, user: str, creator: str, task_id: int) -> tuple[Path, Path]:
        day = dt.date.today().strftime("%Y%m%d")
        log_path = self.data_dir / "logs" / user / day / creator / f"{task_id}.log"
        result_dir = self.user_results_root(user) / day / creator / str(task_id)
        return log_path, result_dir

    # ------------------------------------------------------------------ sockets

    def add_socket(self, sub: Subscriber) -> None:
        self.sockets.setdefault(sub.user, set()).add(sub)

    def remove_socket(self, sub: Subscriber) -> None:
        self.sockets.get(sub.user, set()).discard(sub)
        for job in self.jobs.values():
            job.subscribers.discard(sub)

    def subscribe(self, job: Job, sub: Subscriber) -> None:
        if not job.status.is_terminal:
            job.subscribers.add(sub)

    # ------------------------------------------------------------------ lookups

    def find_live(self, exec_id: str) -> Job | None:
        job_id = job_id_of(exec_id)
        return self.jobs.get(job_id) if job_id else None

    def find_row(self, exec_id: str) -> dict[str, Any] | None:
        job_id = job_id_of(exec_id)
        return self.store.get_by_job_id(job_id) if job_id else None

    # ------------------------------------------------------------------ submission

    def parse_request(self, user: str, body: Mapping[str, Any]) -> JobRequest:
        """Validate an execute/submit body (either shape) as Linkis's entrance parser does."""
        if not isinstance(body, Mapping):
            raise RequestError(20008, "params cannot be empty ,  the request body is not an object")
        params = _mapping(body.get("params"))
        config = _mapping(params.get("configuration"))
        variable = _mapping(params.get("variable"))
        source = _mapping(body.get("source"))
        labels = _mapping(body.get("labels"))

        if "executionContent" in body:
            content = body.get("executionContent")
            if not isinstance(content, Mapping):
                raise RequestError(
                    20010, "The param executionCode cannot be empty (参数 executionCode 不能为空)"
                )
            if not labels:
                raise RequestError(20008, "params cannot be empty ,  labels is null")
            engine_label = str(labels.get("engineType") or "").strip()
            if not engine_label:
                raise RequestError(
                    20009,
                    "Label params invalid You need to specify engineTypeLabel in labels,"
                    "such as spark-2.4.3",
                )
            user_creator = str(labels.get("userCreator") or f"{user}-{p.DEFAULT_CREATOR}")
            label_user, _, creator = user_creator.partition("-")
            if label_user.strip().lower() != user:
                raise RequestError(
                    50080,
                    f"SubmitUser : {user} must be the same as ExecuteUser : {user} , and user : "
                    f"{label_user} in userCreatorLabel.",
                )
            creator = creator or p.DEFAULT_CREATOR
            run_type = str(content.get("runType") or labels.get("codeType") or "").strip()
            if "code" not in content:
                raise RequestError(
                    20010, "The param executionCode cannot be empty (参数 executionCode 不能为空)"
                )
            code = content.get("code")
        else:
            engine_label = str(body.get("executeApplicationName") or "").strip()
            if not engine_label:
                raise RequestError(
                    20009,
                    "Label params invalid You need to specify engineTypeLabel in labels,"
                    "such as spark-2.4.3 (the request needs executeApplicationName)",
                )
            creator = str(body.get("requestApplicationName") or p.DEFAULT_CREATOR).strip()
            run_type = str(body.get("runType") or "").strip()
            code = body.get("executionCode")
        if not isinstance(code, str) or not code.strip():
            if isinstance(code, str) or code is None:
                raise RequestError(
                    20007, "The param executionCode cannot be empty (参数 executionCode 不能为空)"
                )
            raise RequestError(20007, "The param executionCode must be a string")
        engine, _version = p.split_engine_type(engine_label)
        engine = engine.lower()
        if not run_type:
            run_type = p.known_run_type(engine) or "sql"
        if not _NAME.match(creator):
            raise RequestError(
                20009,
                f"Label params invalid: the creator {creator[:100]!r} must be letters, digits, "
                "'_', '.' or '-' (at most 99)",
            )
        if not _NAME.match(engine):
            raise RequestError(
                20009, f"Label params invalid: the engine type {engine[:100]!r} is not a name"
            )
        return JobRequest(
            queuing_timeout=_seconds(labels, "jobQueuingTimeout"),
            running_timeout=_seconds(labels, "jobRunningTimeout"),
            engine=engine,
            engine_label=engine_label,
            creator=creator,
            run_type=run_type,
            code=code,
            variable=dict(variable),
            startup=p.stringify(_mapping(config.get("startup"))),
            runtime=p.stringify(_mapping(config.get("runtime"))),
            special=p.stringify(_mapping(config.get("special"))),
            source=dict(source),
            labels=dict(labels),
            params=dict(params),
        )

    def create(
        self,
        user: str,
        request: JobRequest,
        *,
        tag: str | None = None,
        subscriber: Subscriber | None = None,
    ) -> Job:
        """Substitute variables, persist the job and bind it to its socket (not yet queued)."""
        try:
            code, _scope = variables.substitute(
                request.code, request.run_type, request.variable, user
            )
        except variables.VariableError as exc:
            raise RequestError(
                20039, f"Failed to analysis task,because:{exc.desc}(分析任务失败)!"
            ) from None
        if not code.strip():
            raise RequestError(
                30010,
                "Submitting the execution code, after code preprocessing, the real execution code "
                "is empty, please check the executing code",
            )
        created = now_ms()
        task_id = self.store.insert(
            {
                "um_user": user,
                "execute_user": user,
                "creator": request.creator,
                "engine": request.engine,
                "engine_label": request.engine_label,
                "run_type": request.run_type,
                "code": request.code,
                "params_json": request.params,
                "source_json": request.source,
                "labels_json": request.labels,
                "status": JobStatus.INITED,
                "instance": self.instance,
                "created_ms": created,
                "updated_ms": created,
            }
        )
        job_id = f"{request.creator}_{user}_{request.engine}_{task_id}"
        exec_id = p.encode_legacy_exec_id(request.creator, request.engine, self.instance, job_id)
        rest_exec_id = p.encode_rest_exec_id(ENTRANCE_APP, self.instance, job_id)
        log_path, result_dir = self._paths(user, request.creator, task_id)
        self.store.update(
            task_id,
            job_id=job_id,
            exec_id=exec_id,
            rest_exec_id=rest_exec_id,
            log_path=log_path.as_uri(),
            result_location=result_dir.as_uri(),
        )
        log_path.parent.mkdir(parents=True, exist_ok=True)
        job = Job(
            task_id=task_id,
            job_id=job_id,
            exec_id=exec_id,
            rest_exec_id=rest_exec_id,
            user=user,
            request=request,
            code=code,
            log_path=log_path,
            result_dir=result_dir,
            tag=tag,
            done=self.loop.create_future(),
        )
        if subscriber is not None:
            job.subscribers.add(subscriber)
        self.jobs[job_id] = job
        log.info("job %s (taskID %d) created for %s", job_id, task_id, user)

        now = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        self.write_log(job, "INFO", f"You have submitted a new job at {now}")
        self.write_log(
            job,
            "INFO",
            "Your job's execution code is (after variable substitution and code check) ",
        )
        script = code.rstrip("\n")
        self.write_log(job, "INFO", f"{SCRIPT_MARK}\n{script}\n{SCRIPT_MARK}")
        self.write_log(
            job,
            "INFO",
            f"Your job is accepted,  jobID is {job_id} and taskID is {task_id}. "
            "Please wait it to be scheduled",
        )
        return job

    def enqueue(self, job: Job) -> None:
        """Announce the job (Inited) and queue it for its engine."""
        self.push_status(job)
        if job.engine not in self.engine_classes:
            self.finish(
                job,
                JobStatus.FAILED,
                f"Unknown engine {job.engine!r}; the engines there are: "
                f"{engine_names(self.engine_classes)}",
                ERR_UNKNOWN_ENGINE,
            )
            return
        key = (job.user, job.creator, job.engine)
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = EngineSlot(key)
        if slot.idle_timer is not None:
            slot.idle_timer.cancel()
            slot.idle_timer = None
        slot.queue.append(job)
        self._arm_timeout(job, "jobQueuingTimeout", job.request.queuing_timeout)
        if slot.runner is None or slot.runner.done():
            slot.runner = self.loop.create_task(self._serve(slot))
        elif slot.current is not None or len(slot.queue) > 1:
            self._push_waiting(slot)

    # ------------------------------------------------------------------ running

    async def _serve(self, slot: EngineSlot) -> None:
        while slot.queue and not self._stopping:
            job = slot.queue.popleft()
            self._push_waiting(slot)
            if job.status.is_terminal:
                continue
            slot.current = job
            try:
                await self._run(slot, job)
            except Exception:
                log.exception("running job %s failed in the gateway", job.job_id)
                if not job.status.is_terminal:
                    self.finish(
                        job,
                        JobStatus.FAILED,
                        "The gateway failed to run the job",
                        ERR_ENGINE_FAILED,
                    )
            finally:
                slot.current = None
        if not self._stopping and slot.process is not None:
            slot.idle_timer = self.loop.call_later(
                self.options.engine_idle_timeout, self._stop_idle, slot
            )

    async def _run(self, slot: EngineSlot, job: Job) -> None:
        self.set_status(job, JobStatus.SCHEDULED)
        self.write_log(
            job, "INFO", f"Job {job.job_id} is scheduled, asking for a {job.engine} engine"
        )
        proc = slot.process
        if proc is None or not proc.alive:
            proc = self._spawn(slot, job)
            self.write_log(job, "INFO", f"Starting a new {job.engine} engine (process {proc.pid})")
            try:
                error = await asyncio.wait_for(
                    asyncio.shield(proc.ready), self.options.engine_start_timeout
                )
            except asyncio.TimeoutError:
                error = f"The engine did not start within {self.options.engine_start_timeout:g} s"
                proc.kill()
            if error is not None:
                if slot.process is proc:
                    slot.process = None
                proc.kill()
                if not job.status.is_terminal:
                    self.finish(job, JobStatus.FAILED, error, ERR_ENGINE_UNAVAILABLE)
                return
        else:
            self.write_log(job, "INFO", f"Reusing the {job.engine} engine (process {proc.pid})")
        if job.status.is_terminal:
            return

        self.set_status(job, JobStatus.RUNNING)
        self._arm_timeout(job, "jobRunningTimeout", job.request.running_timeout)
        self.store.update(job.task_id, started_ms=now_ms())
        job.result_dir.mkdir(parents=True, exist_ok=True)
        proc.execute(
            {
                "job_id": job.job_id,
                "exec_id": job.exec_id,
                "task_id": job.task_id,
                "user": job.user,
                "creator": job.creator,
                "run_type": job.request.run_type,
                "code": job.code,
                "startup": job.request.startup,
                "runtime": job.request.runtime,
                "special": job.request.special,
                "row_limit": self.options.result_row_limit,
                "result_dir": str(job.result_dir),
            }
        )
        assert job.done is not None
        await asyncio.shield(job.done)

    def _spawn(self, slot: EngineSlot, job: Job) -> EngineProcess:
        user, creator, engine = slot.key
        settings = EngineSettings(
            user=user,
            creator=creator,
            startup=dict(job.request.startup),
            data_dir=str(self.data_dir),
        )
        log_path = self.data_dir / "engines" / user / f"{creator}_{engine}.log"
        target = self.engine_classes[engine]
        proc = EngineProcess(
            engine, target, settings, self.loop, self._on_events, self._on_exit, log_path
        )
        proc.start()
        slot.process = proc
        self._slot_of_process[id(proc)] = slot
        return proc

    def _stop_idle(self, slot: EngineSlot) -> None:
        slot.idle_timer = None
        if slot.queue or slot.current is not None or slot.process is None:
            return
        proc, slot.process = slot.process, None
        log.info("stopping idle %s engine %s", proc.engine, proc.pid)
        proc.shutdown()
        self.loop.call_later(self.options.stop_grace, proc.kill)

    def _on_events(self, proc: EngineProcess, events: list[dict[str, Any]]) -> None:
        for event in events:
            kind = event.get("type")
            job = self.jobs.get(str(event.get("job")))
            if job is None or job.status.is_terminal:
                continue
            if kind == "log":
                for level, message in event.get("entries") or []:
                    self.write_log(job, str(level), str(message))
            elif kind == "progress":
                self.set_progress(job, event.get("progress"), event.get("info") or [])
            elif kind == "done":
                status = JobStatus.parse(event.get("status", "Failed"))
                if job.kill_requested and status is not JobStatus.SUCCEED:
                    status = job.stop_status
                error = str(event.get("error") or "")
                self.finish(job, status, error or None, ERR_ENGINE_FAILED if error else None)

    def _on_exit(self, proc: EngineProcess, code: int) -> None:
        slot = self._slot_of_process.pop(id(proc), None)
        if slot is None:
            return
        if slot.process is proc:
            slot.process = None
        job = slot.current
        if job is None or job.status.is_terminal or job.status is not JobStatus.RUNNING:
            return
        if job.kill_requested:
            self.finish(job, job.stop_status)
        else:
            self.finish(
                job,
                JobStatus.FAILED,
                f"The engine process died (exit code {code}) while it ran the job",
                ERR_ENGINE_DIED,
            )

    # ------------------------------------------------------------------ kill

    def kill(self, job: Job, by: str) -> None:
        """Stop the job for real; it ends Cancelled."""
        if job.status.is_terminal or job.kill_requested:
            return
        self.write_log(job, "WARN", f"The job was killed by {by}")
        self._stop(job, JobStatus.CANCELLED)

    def _arm_timeout(self, job: Job, label: str, seconds: float | None) -> None:
        if job.timeout_timer is not None:
            job.timeout_timer.cancel()
            job.timeout_timer = None
        if seconds:
            job.timeout_timer = self.loop.call_later(seconds, self._time_out, job, label, seconds)

    def _time_out(self, job: Job, label: str, seconds: float) -> None:
        job.timeout_timer = None
        if job.status.is_terminal or job.kill_requested:
            return
        job.stop_reason = f"The job reached its {label} of {seconds:g} s"
        self.write_log(job, "ERROR", job.stop_reason)
        self._stop(job, JobStatus.TIMEOUT)

    def _stop(self, job: Job, final: JobStatus) -> None:
        """Take a job off its queue or make its engine cancel it; it ends ``final``."""
        job.kill_requested = True
        job.stop_status = final
        if job.status is not JobStatus.RUNNING:
            slot = self.slots.get((job.user, job.creator, job.engine))
            if slot is not None and job in slot.queue:
                slot.queue.remove(job)
                self._push_waiting(slot)
            self.finish(job, final)
            return
        slot = self.slots.get((job.user, job.creator, job.engine))
        proc = slot.process if slot is not None else None
        if proc is None or not proc.alive:
            self.finish(job, final)
            return
        proc.cancel(job.job_id)
        grace = self.options.engine_kill_grace.get(job.engine, self.options.kill_grace)
        job.kill_timer = self.loop.call_later(grace, self._force_kill, job, proc)

    def _force_kill(self, job: Job, proc: EngineProcess) -> None:
        if job.status.is_terminal:
            return
        self.write_log(
            job, "WARN", "The engine did not stop the job in time; its process is killed"
        )
        proc.kill()

    # ------------------------------------------------------------------ state

    def set_status(self, job: Job, status: JobStatus) -> None:
        job.status = status
        self.store.update(job.task_id, status=status)
        log.info("job %s is %s", job.job_id, status.value)
        self.push_status(job)

    def set_progress(self, job: Job, progress: object, info: Iterable[Any]) -> None:
        if not isinstance(progress, int | float) or isinstance(progress, bool):
            return
        if not math.isfinite(progress):
            return
        value = min(max(float(progress), 0.0), 1.0)
        job.progress = value
        job.progress_info = [dict(i) for i in info if isinstance(i, Mapping)]
        self.push_progress(job)

    def finish(
        self,
        job: Job,
        status: JobStatus,
        error: str | None = None,
        err_code: int | None = None,
    ) -> None:
        """End the job: error log, final progress, terminal status, history row."""
        if job.status.is_terminal:
            return
        for timer in (job.kill_timer, job.timeout_timer):
            if timer is not None:
                timer.cancel()
        if error:
            self.write_log(job, "ERROR", error)
        self.write_log(
            job,
            "INFO",
            f"Job with jobId : {job.job_id} and execID : {job.exec_id} finished with state "
            f"{status.value}",
        )
        job.status = status
        job.progress = 1.0
        ended = now_ms()
        row = self.store.get(job.task_id) or {}
        started = row.get("started_ms") or row.get("created_ms") or ended
        self.store.update(
            job.task_id,
            status=status,
            progress=1.0,
            progress_info_json=job.progress_info,
            err_code=err_code if status is JobStatus.FAILED else None,
            err_desc=_err_desc(error or job.stop_reason) if status.is_terminal else None,
            ended_ms=ended,
            updated_ms=ended,
        )
        log.info(
            "job %s (taskID %d) ended %s in %d ms",
            job.job_id,
            job.task_id,
            status.value,
            ended - started,
        )
        self.push_progress(job)
        self.push_status(job)
        self._write_log_file(job)
        if job.log_file is not None:
            job.log_file.close()
            job.log_file = None
        self.jobs.pop(job.job_id, None)
        if job.done is not None and not job.done.done():
            job.done.set_result(None)

    # ------------------------------------------------------------------ logs

    def write_log(self, job: Job, level: str, message: str) -> None:
        """Append one entry (one line, or several) to the job's log and queue it for pushing."""
        level = level if level in p.LOG_LEVELS else level.upper()
        if level not in p.LOG_LEVELS:
            level = "INFO"
        if len(message) > LOG_ENTRY_CHARS:
            cut = len(message) - LOG_ENTRY_CHARS
            message = message[:LOG_ENTRY_CHARS] + f" ... ({cut} more characters not logged)"
        text = self._stamp(level) + message
        physical = text.split("\n")
        job.lines.extend(physical)
        job.levels.extend([level] * len(physical))
        job.unwritten.append(text + "\n")
        job.pending.append((level, text))
        if job.push_handle is None:
            delay = job.last_push + self.options.log_push_interval - time.monotonic()
            if delay <= 0:
                job.push_handle = self.loop.call_soon(self.flush_logs, job)
            else:
                job.push_handle = self.loop.call_later(delay, self.flush_logs, job)

    def _stamp(self, level: str) -> str:
        """``format_log_line``'s prefix for now, cached for the current millisecond."""
        now = time.time()
        millis = int(now * 1000)
        if millis != self._stamp_ms:
            self._stamp_ms = millis
            self._stamps.clear()
        prefix = self._stamps.get(level)
        if prefix is None:
            when = dt.datetime.fromtimestamp(millis / 1000)
            prefix = self._stamps[level] = p.format_log_line(level, "", when)
        return prefix

    def flush_logs(self, job: Job) -> None:
        """Push the job's pending log entries, in frames of at most ``LOG_FRAME_CHARS``."""
        if job.push_handle is not None:
            job.push_handle.cancel()
            job.push_handle = None
        if not job.pending:
            return
        entries, job.pending = job.pending, []
        self._write_log_file(job)
        job.last_push = time.monotonic()
        chunk: list[tuple[str, str]] = []
        size = 0
        for entry in entries:
            if chunk and size + len(entry[1]) > LOG_FRAME_CHARS:
                self._push_log_frame(job, chunk)
                chunk, size = [], 0
            chunk.append(entry)
            size += len(entry[1]) + 1
        self._push_log_frame(job, chunk)

    def _write_log_file(self, job: Job) -> None:
        """Write the job's new log text to its file, kept open only while the job runs."""
        if not job.unwritten:
            return
        text, job.unwritten = "".join(job.unwritten), []
        try:
            if job.status is JobStatus.RUNNING:
                if job.log_file is None:
                    job.log_file = open(job.log_path, "a", encoding="utf-8")  # noqa: SIM115
                job.log_file.write(text)
                job.log_file.flush()
            else:
                with open(job.log_path, "a", encoding="utf-8") as out:
                    out.write(text)
        except OSError as exc:
            log.warning("cannot write the log of job %s: %s", job.job_id, exc)

    def _push_log_frame(self, job: Job, entries: list[tuple[str, str]]) -> None:
        lines = [text for _level, text in entries]
        levels = [level for level, _text in entries]
        self._push(job, "log", LOG_MESSAGE, {"log": pushed_log(lines, levels)})

    # ------------------------------------------------------------------ pushes

    def push_status(self, job: Job) -> None:
        self.flush_logs(job)
        self._push(job, "status", STATUS_MESSAGE, {"status": job.status.value})

    def push_progress(self, job: Job) -> None:
        self.flush_logs(job)
        data = {"progress": job.progress or 0.0, "progressInfo": job.progress_info}
        self._push(job, "progress", PROGRESS_MESSAGE, data)

    def _push_waiting(self, slot: EngineSlot) -> None:
        """Push queue positions: at once, then at most every WAITING_PUSH_INTERVAL per engine.

        Every job that leaves a queue moves all the jobs behind it, so pushing each change to
        each job would cost a quadratic number of frames for a burst of submissions.
        """
        if slot.waiting_timer is not None:
            return
        delay = slot.waiting_at + WAITING_PUSH_INTERVAL - self.loop.time()
        if delay > 0:
            slot.waiting_timer = self.loop.call_later(delay, self._flush_waiting, slot)
        else:
            self._flush_waiting(slot)

    def _flush_waiting(self, slot: EngineSlot) -> None:
        slot.waiting_timer = None
        slot.waiting_at = self.loop.time()
        busy = 1 if slot.current is not None else 0
        sent: dict[int, int] = {}
        for index, job in enumerate(slot.queue):
            position = sent[job.task_id] = index + busy
            if slot.waiting_sent.get(job.task_id) != position:
                self._push(job, "waitingSize", WAITING_MESSAGE, {"waitingSize": position})
        slot.waiting_sent = sent

    def _push(self, job: Job, op: str, message: str, data: dict[str, Any]) -> None:
        targets = job.subscribers or self.sockets.get(job.user, set())
        if not targets:
            return
        body = dict(data)
        body["execID"] = job.exec_id
        body["taskID"] = job.task_id
        body["websocketTag"] = job.tag
        body[p.EMIT_STAMP_KEY] = time.monotonic()
        frame = p.build_message(p.job_method(job.exec_id, op), 0, message, body)
        text = json.dumps(frame, ensure_ascii=False)
        for sub in list(targets):
            sub.push(text)

    # ------------------------------------------------------------------ reading logs

    def log_lines(self, job_id: str, log_uri: str | None) -> tuple[list[str], list[str]]:
        """A job's log lines and their levels (live from memory, finished from its file)."""
        job = self.jobs.get(job_id)
        if job is not None:
            return job.lines, job.levels
        if not log_uri:
            return [], []
        return read_log_file(_path_of_uri(log_uri))

    # ------------------------------------------------------------------ restart, stop

    def recover(self) -> int:
        """Fail the jobs a previous run left unfinished; returns how many."""
        rows = self.store.active()
        for row in rows:
            desc = f"The gateway stopped while the job was {row['status']}; the job did not finish"
            self.store.update(
                row["task_id"],
                status=JobStatus.FAILED,
                err_code=ERR_GATEWAY_STOPPED,
                err_desc=desc,
                ended_ms=now_ms(),
            )
            if row.get("log_path"):
                with contextlib.suppress(OSError):
                    path = _path_of_uri(row["log_path"])
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with open(path, "a", encoding="utf-8") as out:
                        out.write(p.format_log_line("ERROR", desc, dt.datetime.now()) + "\n")
        if rows:
            log.info("%d unfinished jobs of the previous run marked Failed", len(rows))
        return len(rows)

    async def shutdown(self) -> None:
        """Fail what still runs and stop every engine process."""
        self._stopping = True
        for job in list(self.jobs.values()):
            self.finish(
                job,
                JobStatus.FAILED,
                f"The gateway stopped while the job was {job.status.value}",
                ERR_GATEWAY_STOPPED,
            )
        procs = [s.process for s in self.slots.values() if s.process is not None]
        for slot in self.slots.values():
            if slot.idle_timer is not None:
                slot.idle_timer.cancel()
            if slot.process is not None and slot.current is not None:
                slot.process.kill()
            slot.process = None
        for proc in procs:
            proc.shutdown()
        deadline = time.monotonic() + self.options.stop_grace
        while any(proc.alive for proc in procs) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for proc in procs:
            proc.kill()
        for slot in self.slots.values():
            if slot.runner is not None:
                slot.runner.cancel()


def job_id_of(exec_id: str) -> str | None:
    """The job id inside either form of execID, or a bare job id."""
    exec_id = exec_id.strip()
    if not exec_id:
        return None
    try:
        return p.decode_exec_id(exec_id).job_id
    except ValueError:
        return exec_id if ":" not in exec_id and "_" in exec_id else None


def read_log_file(path: Path) -> tuple[list[str], list[str]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return [], []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    levels: list[str] = []
    current = "INFO"
    for line in lines:
        current = p.log_level_of(line) or current
        levels.append(current)
    return lines, levels


def _path_of_uri(uri: str) -> Path:
    return Path(uri[len("file://") :]) if uri.startswith("file://") else Path(uri)


def _seconds(labels: Mapping[str, Any], key: str) -> float | None:
    """A timeout label in seconds (None when absent); RequestError when it is not a number."""
    value = labels.get(key)
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise RequestError(20009, f"Label params invalid: {key} must be seconds") from None
    if not (0 < seconds < 10**9):
        raise RequestError(20009, f"Label params invalid: {key} must be positive seconds")
    return seconds


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _err_desc(error: str | None) -> str | None:
    if not error:
        return None
    lines = [line for line in error.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else error)[:1000]


def task_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """A history row as jobhistory's ``data.task`` (Linkis's QueryTaskVO names)."""
    created = row.get("created_ms")
    ended = row.get("ended_ms")
    status = row.get("status")
    running = status not in ("Succeed", "Failed", "Cancelled", "Timeout")
    cost = ((ended or now_ms()) - created) if created else None
    return {
        "taskID": row.get("task_id"),
        "instance": row.get("instance"),
        "execId": row.get("job_id"),
        "strongerExecId": row.get("rest_exec_id"),
        "umUser": row.get("um_user"),
        "executeUser": row.get("execute_user"),
        "submitUser": row.get("um_user"),
        "engineInstance": row.get("instance"),
        "executionCode": row.get("code"),
        "progress": row.get("progress") or 0.0,
        "logPath": row.get("log_path"),
        "resultLocation": row.get("result_location"),
        "status": status,
        "createdTime": created,
        "updatedTime": row.get("updated_ms"),
        "engineStartTime": row.get("started_ms"),
        "engineType": row.get("engine"),
        "errCode": None if running else row.get("err_code"),
        "errDesc": None if running else row.get("err_desc"),
        "executeApplicationName": row.get("engine"),
        "requestApplicationName": row.get("creator"),
        "runType": row.get("run_type"),
        "paramsJson": json.dumps(row.get("params_json") or {}, ensure_ascii=False),
        "sourceJson": json.dumps(row.get("source_json") or {}, ensure_ascii=False),
        "labels": row.get("labels_json") or {},
        "costTime": cost,
        "requestStartTime": created,
        "requestEndTime": ended,
        "requestSpendTime": cost,
        "isReuse": None,
        "canRetry": False,
        "subJobs": None,
    }
