"""Sans-I/O core of Linkis's wire protocol: frame builders, frame parsing, statuses, execIDs.

Nothing here opens a socket, starts a thread or reads a clock; the client and the embedded
gateway both build on it. Facts and quirks are those of ../shared/PROTOCOL.md (section numbers
below refer to it).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeAlias

# Paths (section 1.1, 4).
REST_PREFIX = "/api/rest_j/v1"
ENTRANCE_PREFIX = REST_PREFIX + "/entrance"
EXECUTE_METHOD = ENTRANCE_PREFIX + "/execute"
WS_PATH = "/ws/api/entrance/connect"
WS_PATH_DOCUMENTED = "/api/rest_j/entrance/connect"

# Auth (section 1.3).
TICKET_COOKIE = "linkis_user_session_ticket_id_v1"
LEGACY_TICKET_COOKIE = "bdp-user-ticket-id"
TOKEN_CODE_HEADER = "Token-Code"
TOKEN_USER_HEADER = "Token-User"

# Limits (section 1.6, 4.5).
MAX_TEXT_MESSAGE = 1_024_000
DEFAULT_PAGE_SIZE = 5000
MAX_PAGE_SIZE = 100_000

DEFAULT_CREATOR = "IDE"

# The embedded gateway adds this key to the data of each push: its time.monotonic() at emission.
# Linkis never sends it; clients use it only to measure push latency.
EMIT_STAMP_KEY = "emitMonotonic"

# Engine versions Linkis 1.x assumes when a label names none (section 4.2).
DEFAULT_ENGINE_VERSIONS: dict[str, str] = {
    "spark": "2.4.3",
    "hive": "2.3.3",
    "python": "python2",
    "jdbc": "4",
    "shell": "1",
}


# The runType a job of each engine gets when its request names none.
DEFAULT_RUN_TYPES: dict[str, str] = {
    "spark": "sql",
    "hive": "hql",
    "python": "python",
    "shell": "shell",
    "jdbc": "jdbc",
    "presto": "psql",
    "trino": "tsql",
}


def known_run_type(engine: str) -> str | None:
    """The default runType of an engine (``spark-3.4.1`` counts as spark); None if unknown."""
    return DEFAULT_RUN_TYPES.get(engine.partition("-")[0].lower())


class JobStatus(str, enum.Enum):
    """Linkis's SchedulerEventState (section 5)."""

    INITED = "Inited"
    WAIT_FOR_RETRY = "WaitForRetry"
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    SUCCEED = "Succeed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    TIMEOUT = "Timeout"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_success(self) -> bool:
        return self is JobStatus.SUCCEED

    @classmethod
    def parse(cls, value: object) -> JobStatus:
        """The status named by ``value``, case-insensitively; ValueError for anything else."""
        if isinstance(value, JobStatus):
            return value
        if isinstance(value, str):
            found = _STATUS_BY_LOWER.get(value.strip().lower())
            if found is not None:
                return found
        raise ValueError(f"unknown job status {value!r}")

    def __str__(self) -> str:
        return self.value


_TERMINAL = frozenset({JobStatus.SUCCEED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.TIMEOUT})
_STATUS_BY_LOWER = {s.value.lower(): s for s in JobStatus}


class MessageStatus(enum.IntEnum):
    """The ``status`` of Linkis's message envelope, with its HTTP code (section 2.3)."""

    NOT_LOGGED_IN = -1
    SUCCESS = 0
    ERROR = 1
    VALIDATION_FAILED = 2
    NO_PERMISSION = 3
    WARNING = 4

    @property
    def http_code(self) -> int:
        return _HTTP_BY_STATUS[self]


_HTTP_BY_STATUS = {
    MessageStatus.NOT_LOGGED_IN: 401,
    MessageStatus.SUCCESS: 200,
    MessageStatus.ERROR: 400,
    MessageStatus.VALIDATION_FAILED: 412,
    MessageStatus.NO_PERMISSION: 403,
    MessageStatus.WARNING: 206,
}


# --------------------------------------------------------------------------- building frames


def stringify(values: Mapping[str, Any] | None) -> dict[str, str]:
    """Every value as a string, as Linkis wants variables and configuration (section 2.1)."""
    if not values:
        return {}
    out: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, bool):
            out[str(key)] = "true" if value else "false"
        else:
            out[str(key)] = str(value)
    return out


def build_params(
    variables: Mapping[str, Any] | None = None,
    startup: Mapping[str, Any] | None = None,
    runtime: Mapping[str, Any] | None = None,
    special: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``params`` object of an execute or submit request."""
    return {
        "variable": stringify(variables),
        "configuration": {
            "startup": stringify(startup),
            "runtime": stringify(runtime),
            "special": stringify(special),
        },
    }


def build_execute_frame(
    code: str,
    engine: str,
    run_type: str,
    *,
    tag: str,
    creator: str = DEFAULT_CREATOR,
    variables: Mapping[str, Any] | None = None,
    startup: Mapping[str, Any] | None = None,
    runtime: Mapping[str, Any] | None = None,
    special: Mapping[str, Any] | None = None,
    script_path: str | None = None,
) -> dict[str, Any]:
    """The WebSocket execute frame of the 0.x document, with ``websocketTag`` at the top level."""
    return {
        "method": EXECUTE_METHOD,
        "websocketTag": tag,
        "data": build_execute_body(
            code,
            engine,
            run_type,
            creator=creator,
            variables=variables,
            startup=startup,
            runtime=runtime,
            special=special,
            script_path=script_path,
        ),
    }


def build_execute_body(
    code: str,
    engine: str,
    run_type: str,
    *,
    creator: str = DEFAULT_CREATOR,
    variables: Mapping[str, Any] | None = None,
    startup: Mapping[str, Any] | None = None,
    runtime: Mapping[str, Any] | None = None,
    special: Mapping[str, Any] | None = None,
    script_path: str | None = None,
) -> dict[str, Any]:
    """The 0.x-style body that both the socket frame and REST ``entrance/execute`` carry."""
    return {
        "executeApplicationName": engine,
        "requestApplicationName": creator,
        "executionCode": code,
        "runType": run_type,
        "params": build_params(variables, startup, runtime, special),
        "source": {"scriptPath": script_path or ""},
    }


def engine_type_label(engine: str, versions: Mapping[str, str] | None = None) -> str:
    """``spark`` -> ``spark-2.4.3``; an engine that already names a version is kept."""
    if "-" in engine:
        return engine
    table = {**DEFAULT_ENGINE_VERSIONS, **(versions or {})}
    version = table.get(engine)
    return f"{engine}-{version}" if version else engine


def split_engine_type(label: str) -> tuple[str, str | None]:
    """``spark-2.4.3`` -> (``spark``, ``2.4.3``); ``python`` -> (``python``, None)."""
    name, sep, version = label.partition("-")
    return name, (version if sep else None)


def build_submit_body(
    code: str,
    engine: str,
    run_type: str,
    *,
    user: str,
    creator: str = DEFAULT_CREATOR,
    variables: Mapping[str, Any] | None = None,
    startup: Mapping[str, Any] | None = None,
    runtime: Mapping[str, Any] | None = None,
    special: Mapping[str, Any] | None = None,
    script_path: str | None = None,
    engine_versions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The 1.x REST body of ``POST entrance/submit`` (section 4.2)."""
    return {
        "executionContent": {"code": code, "runType": run_type},
        "params": build_params(variables, startup, runtime, special),
        "source": {"scriptPath": script_path or ""},
        "labels": {
            "engineType": engine_type_label(engine, engine_versions),
            "userCreator": f"{user}-{creator}",
        },
    }


def job_method(exec_id: str, op: str) -> str:
    """``/api/rest_j/v1/entrance/<execID>/<op>`` for status, log, progress, kill."""
    return f"{ENTRANCE_PREFIX}/{exec_id}/{op}"


JobOp: TypeAlias = Literal["status", "log", "progress", "kill"]


def build_job_frame(exec_id: str, op: JobOp) -> dict[str, Any]:
    """A per-job request frame; sending ``status`` also subscribes the socket (section 2.4)."""
    return {"method": job_method(exec_id, op), "data": {}}


def encode_frame(frame: Mapping[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def build_message(
    method: str | None, status: int, message: str, data: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Linkis's server envelope: always the four keys ``method, status, message, data``."""
    return {"method": method, "status": int(status), "message": message, "data": dict(data or {})}


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class ProgressInfo:
    """One Spark stage (or engine sub-job) of a progress report."""

    id: str
    succeed_tasks: int = 0
    failed_tasks: int = 0
    running_tasks: int = 0
    total_tasks: int = 0

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> ProgressInfo:
        return cls(
            id=str(raw.get("id", "")),
            succeed_tasks=_count(raw.get("succeedTasks")),
            failed_tasks=_count(raw.get("failedTasks")),
            running_tasks=_count(raw.get("runningTasks")),
            total_tasks=_count(raw.get("totalTasks")),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "succeedTasks": self.succeed_tasks,
            "failedTasks": self.failed_tasks,
            "runningTasks": self.running_tasks,
            "totalTasks": self.total_tasks,
        }


@dataclass(frozen=True)
class ExecuteAccepted:
    """The server took an execute request: the job now has an execID and a taskID."""

    exec_id: str
    task_id: int | None
    tag: str | None
    message: str = ""


@dataclass(frozen=True)
class StatusChanged:
    exec_id: str
    task_id: int | None
    status: JobStatus
    tag: str | None = None
    emitted: float | None = None


@dataclass(frozen=True)
class ProgressUpdate:
    exec_id: str
    task_id: int | None
    progress: float
    progress_info: tuple[ProgressInfo, ...] = ()
    tag: str | None = None
    emitted: float | None = None


@dataclass(frozen=True)
class LogLines:
    """Log text in Linkis's four buckets; each bucket is newline-joined lines (may be empty)."""

    exec_id: str
    task_id: int | None
    error: str = ""
    warn: str = ""
    info: str = ""
    all: str = ""
    from_line: int | None = None
    tag: str | None = None
    emitted: float | None = None

    @property
    def empty(self) -> bool:
        return not (self.error or self.warn or self.info or self.all)


@dataclass(frozen=True)
class WaitingSize:
    """The job's 0-based position in the queue while it waits to be scheduled."""

    exec_id: str
    task_id: int | None
    waiting_size: int
    tag: str | None = None


@dataclass(frozen=True)
class KillReply:
    exec_id: str | None
    message: str = ""


class ErrorKind(str, enum.Enum):
    NOT_LOGGED_IN = "not logged in"
    ERROR = "error"
    VALIDATION_FAILED = "validation failed"
    NO_PERMISSION = "no permission"
    WARNING = "warning"


_ERROR_KIND_BY_STATUS = {
    MessageStatus.NOT_LOGGED_IN: ErrorKind.NOT_LOGGED_IN,
    MessageStatus.ERROR: ErrorKind.ERROR,
    MessageStatus.VALIDATION_FAILED: ErrorKind.VALIDATION_FAILED,
    MessageStatus.NO_PERMISSION: ErrorKind.NO_PERMISSION,
    MessageStatus.WARNING: ErrorKind.WARNING,
}


@dataclass(frozen=True)
class ErrorReply:
    """A frame whose status is not 0.

    ``exec_id`` is set when the method names a job; ``tag`` when the server echoed one. A frame
    with neither came from the gateway itself (section 11 item 4: reconnect after it).
    """

    kind: ErrorKind
    status: int
    method: str
    message: str
    err_code: int | None = None
    desc: str | None = None
    exec_id: str | None = None
    tag: str | None = None

    @property
    def is_gateway_error(self) -> bool:
        return self.tag is None and self.exec_id is None and self.method != EXECUTE_METHOD


@dataclass(frozen=True)
class Ignored:
    """A frame that carries nothing for a job: malformed, unknown, or a duplicate."""

    reason: str
    raw: str = field(default="", repr=False)


Event: TypeAlias = (
    ExecuteAccepted
    | StatusChanged
    | ProgressUpdate
    | LogLines
    | WaitingSize
    | KillReply
    | ErrorReply
    | Ignored
)

JobEvent: TypeAlias = ExecuteAccepted | StatusChanged | ProgressUpdate | LogLines | WaitingSize


# --------------------------------------------------------------------------- parsing frames

_JOB_METHOD = re.compile(
    r"^/api(?:/rest_[a-zA-Z]+/v\d+)?/entrance/(?P<exec_id>.+)/"
    r"(?P<op>status|log|progress|progressWithResource|kill|waitingSize|pause|runtimeTuning)$"
)
_EXECUTE_METHOD = re.compile(r"^/api(?:/rest_[a-zA-Z]+/v\d+)?/entrance/(?:execute|submit)$")


def parse_frame(raw: str | bytes | Mapping[str, Any]) -> Event:
    """One server frame (a WebSocket message or a REST reply body) as an event.

    Never raises: anything that cannot be understood becomes :class:`Ignored` with its reason.
    """
    try:
        return _parse(raw)
    except Exception as exc:  # a parser bug must not kill a connection
        return Ignored(f"unparseable frame: {type(exc).__name__}: {exc}", _preview(raw))


def _parse(raw: str | bytes | Mapping[str, Any]) -> Event:
    if isinstance(raw, Mapping):
        obj: Any = raw
    else:
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return Ignored(f"not JSON: {exc}", _preview(raw))
    if not isinstance(obj, Mapping):
        return Ignored("frame is not a JSON object", _preview(raw))

    method = obj.get("method")
    method = method if isinstance(method, str) else ""
    data = obj.get("data")
    data = data if isinstance(data, Mapping) else {}
    tag = _tag(obj, data)
    try:
        status = int(obj.get("status", 0) or 0)
    except (TypeError, ValueError):
        return Ignored(f"status is not a number: {obj.get('status')!r}", _preview(raw))
    message = str(obj.get("message") or "")

    match = _JOB_METHOD.match(method)
    if status != MessageStatus.SUCCESS:
        return _error(status, method, message, data, tag, match)
    if _EXECUTE_METHOD.match(method):
        return _accepted(data, tag, message, raw)
    if match is None:
        return Ignored(f"unknown method {method!r}", _preview(raw))

    exec_id = str(data.get("execID") or match["exec_id"])
    task_id = _as_int(data.get("taskID"), None)
    op = match["op"]
    if op in ("progress", "progressWithResource") or (op == "log" and _is_progress(data)):
        return _progress(exec_id, task_id, data, tag, raw)
    if op == "status":
        if "status" not in data:
            return Ignored("status frame without a status", _preview(raw))
        try:
            job_status = JobStatus.parse(data["status"])
        except ValueError as exc:
            return Ignored(str(exc), _preview(raw))
        return StatusChanged(exec_id, task_id, job_status, tag, _emitted(data))
    if op == "log":
        return _log(exec_id, task_id, data, tag)
    if op == "waitingSize":
        size = _as_int(data.get("waitingSize"), None)
        if size is None:
            return Ignored("waitingSize frame without a size", _preview(raw))
        return WaitingSize(exec_id, task_id, size, tag)
    if op == "kill":
        return KillReply(str(data.get("execID") or match["exec_id"]), message)
    return Ignored(f"nothing to do with {op!r} frames", _preview(raw))


def _tag(obj: Mapping[str, Any], data: Mapping[str, Any]) -> str | None:
    """The websocketTag: inside data as the source sends it, or top-level as the document shows."""
    for source in (data, obj):
        value = source.get("websocketTag")
        if isinstance(value, str) and value:
            return value
    return None


def _error(
    status: int,
    method: str,
    message: str,
    data: Mapping[str, Any],
    tag: str | None,
    match: re.Match[str] | None,
) -> ErrorReply | Ignored:
    try:
        kind = _ERROR_KIND_BY_STATUS[MessageStatus(status)]
    except ValueError:
        return Ignored(f"unknown status {status}")
    err = data.get("errorMsg")
    err_code = desc = None
    if isinstance(err, Mapping):
        err_code = _as_int(err.get("errCode"), None)
        desc = str(err["desc"]) if err.get("desc") is not None else None
    exec_id = str(data.get("execID") or (match["exec_id"] if match else "")) or None
    return ErrorReply(kind, status, method, message, err_code, desc, exec_id, tag)


def _accepted(data: Mapping[str, Any], tag: str | None, message: str, raw: object) -> Event:
    exec_id = data.get("execID")
    if not isinstance(exec_id, str) or not exec_id:
        return Ignored("execute reply without an execID", _preview(raw))
    return ExecuteAccepted(exec_id, _as_int(data.get("taskID"), None), tag, message)


def _is_progress(data: Mapping[str, Any]) -> bool:
    return "progress" in data and "log" not in data


def _progress(
    exec_id: str, task_id: int | None, data: Mapping[str, Any], tag: str | None, raw: object
) -> Event:
    try:
        progress = float(data.get("progress") or 0.0)
    except (TypeError, ValueError):
        return Ignored(f"progress is not a number: {data.get('progress')!r}", _preview(raw))
    progress = min(max(progress, 0.0), 1.0)
    infos = data.get("progressInfo") or []
    entries = tuple(ProgressInfo.from_wire(i) for i in infos if isinstance(i, Mapping))
    return ProgressUpdate(exec_id, task_id, progress, entries, tag, _emitted(data))


def _log(exec_id: str, task_id: int | None, data: Mapping[str, Any], tag: str | None) -> LogLines:
    buckets = split_log_buckets(data.get("log"))
    return LogLines(
        exec_id,
        task_id,
        *buckets,
        from_line=_as_int(data.get("fromLine"), None),
        tag=tag,
        emitted=_emitted(data),
    )


def _emitted(data: Mapping[str, Any]) -> float | None:
    """The embedded gateway's emit stamp (``time.monotonic()`` of its process), for benchmarks."""
    value = data.get(EMIT_STAMP_KEY)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def split_log_buckets(log: object) -> tuple[str, str, str, str]:
    """``[error, warn, info, all]`` (entries may be null), or one string meaning ``all``."""
    if isinstance(log, str):
        return "", "", "", log
    if isinstance(log, list | tuple):
        parts = [str(x) if x is not None else "" for x in list(log)[:4]]
        parts += [""] * (4 - len(parts))
        return parts[0], parts[1], parts[2], parts[3]
    if isinstance(log, Mapping):
        return tuple(  # type: ignore[return-value]
            str(log.get(k) or "") for k in ("error", "warn", "info", "all")
        )
    return "", "", "", ""


def _as_int(value: object, default: int | None) -> int | None:
    if value is None or isinstance(value, bool):
        return default
    try:
        return int(float(value)) if isinstance(value, str | float) else int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return default


def _count(value: object) -> int:
    return _as_int(value, 0) or 0


def _preview(raw: object, limit: int = 200) -> str:
    text = raw if isinstance(raw, str) else repr(raw)
    return text if len(text) <= limit else text[:limit] + "..."


class FrameReader:
    """Stateful parsing of one connection's frames.

    Linkis answers each execute with two replies (section 3.2); the second becomes
    :class:`Ignored`, so a client sees one :class:`ExecuteAccepted` per job.
    """

    def __init__(self) -> None:
        self._accepted: set[str] = set()

    def feed(self, raw: str | bytes | Mapping[str, Any]) -> Event:
        event = parse_frame(raw)
        if isinstance(event, ExecuteAccepted):
            if event.exec_id in self._accepted:
                return Ignored("second execute reply for " + event.exec_id)
            self._accepted.add(event.exec_id)
        return event

    def forget(self, exec_id: str) -> None:
        self._accepted.discard(exec_id)


# --------------------------------------------------------------------------- envelopes (REST)


@dataclass(frozen=True)
class Envelope:
    method: str | None
    status: int
    message: str
    data: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == MessageStatus.SUCCESS

    @property
    def err_code(self) -> int | None:
        err = self.data.get("errorMsg")
        return _as_int(err.get("errCode"), None) if isinstance(err, Mapping) else None


def parse_envelope(obj: object) -> Envelope:
    """A REST reply body as an envelope; ValueError when it is not one."""
    if not isinstance(obj, Mapping) or "status" not in obj:
        raise ValueError("reply is not a Linkis message envelope")
    data = obj.get("data")
    status = _as_int(obj.get("status"), None)
    if status is None:
        raise ValueError(f"reply status is not a number: {obj.get('status')!r}")
    method = obj.get("method")
    return Envelope(
        method if isinstance(method, str) else None,
        status,
        str(obj.get("message") or ""),
        dict(data) if isinstance(data, Mapping) else {},
    )


# --------------------------------------------------------------------------- execIDs (section 7)


@dataclass(frozen=True)
class ExecID:
    """A decoded execID.

    Legacy (socket) form: ``creator``, ``engine``, ``instance``, ``job_id``.
    1.x REST form (``exec_id...``): ``app`` (``linkis-cg-entrance``), ``instance``, ``job_id``.
    ``job_id`` is what the entrance looks the job up by.
    """

    form: Literal["legacy", "rest"]
    instance: str
    job_id: str
    creator: str | None = None
    engine: str | None = None
    app: str | None = None


def encode_legacy_exec_id(creator: str, engine: str, instance: str, job_id: str) -> str:
    return f"{_len2(creator)}{_len2(engine)}{_len2(instance)}{creator}{engine}{instance}{job_id}"


def encode_waiting_exec_id(engine: str, instance: str, job_id: str, creator: str = "") -> str:
    """The 3-argument legacy form of waitingSize pushes: the creator only for 3-part job ids."""
    if creator and len(job_id.split("_")) == 3:
        return encode_legacy_exec_id(creator, engine, instance, job_id)
    return f"{_len2(engine)}{_len2(instance)}{engine}{instance}{job_id}"


def encode_rest_exec_id(app: str, instances: str | Iterable[str], job_id: str) -> str:
    joined = instances if isinstance(instances, str) else "_".join(instances)
    return f"exec_id{len(app):03d}{len(joined):03d}{app}{joined}{job_id}"


def decode_exec_id(exec_id: str) -> ExecID:
    """Either form of execID; ValueError when the lengths do not add up."""
    try:
        if exec_id.startswith("exec_id"):
            rest = exec_id[len("exec_id") :]
            app_len, inst_len = int(rest[0:3]), int(rest[3:6])
            body = rest[6:]
            if app_len + inst_len >= len(body) + 1 or not body[app_len + inst_len :]:
                raise ValueError("too short")
            return ExecID(
                "rest",
                instance=body[app_len : app_len + inst_len],
                job_id=body[app_len + inst_len :],
                app=body[:app_len],
            )
        c_len, e_len, i_len = int(exec_id[0:2]), int(exec_id[2:4]), int(exec_id[4:6])
        body = exec_id[6:]
        end = c_len + e_len + i_len
        if not body[end:]:
            raise ValueError("too short")
        return ExecID(
            "legacy",
            creator=body[:c_len],
            engine=body[c_len : c_len + e_len],
            instance=body[c_len + e_len : end],
            job_id=body[end:],
        )
    except ValueError as exc:
        raise ValueError(f"not a Linkis execID: {exec_id!r} ({exc})") from None


def _len2(text: str) -> str:
    if len(text) > 99:
        raise ValueError(f"too long for a legacy execID: {text!r}")
    return f"{len(text):02d}"


# --------------------------------------------------------------------------- variables (section 6)

VARIABLE_PATTERN = re.compile(
    r"\$\{\s*(?P<name>[A-Za-z][A-Za-z0-9_.]*)\s*(?P<op>[+\-*/]?)\s*(?P<operand>[A-Za-z0-9_.]*)\s*\}"
)


def scan_variables(code: str) -> list[str]:
    """The names that ``${name}`` (or ``${name + 1}``) references use, in order, once each."""
    seen: dict[str, None] = {}
    for match in VARIABLE_PATTERN.finditer(code):
        seen.setdefault(match["name"], None)
    return list(seen)


# --------------------------------------------------------------------------- log lines

LOG_LEVELS = ("ERROR", "WARN", "INFO")
_LOG_LINE = re.compile(
    r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} (?:SYSTEM-)?(?P<level>ERROR|WARN|INFO) "
)


def format_log_line(level: str, message: str, when: datetime) -> str:
    """A job log line as Linkis writes it: ``yyyy-MM-dd HH:mm:ss.SSS LEVEL message``."""
    stamp = when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond // 1000:03d}"
    return f"{stamp} {level.upper()} {message}"


def log_level_of(line: str) -> str | None:
    """``ERROR``, ``WARN`` or ``INFO`` for a timestamped Linkis log line, else None."""
    match = _LOG_LINE.match(line)
    return match["level"] if match else None
