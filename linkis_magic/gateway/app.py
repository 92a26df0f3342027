"""HTTP and WebSocket routes of the embedded gateway (tornado) and :class:`GatewayServer`.

Routes, envelopes, status codes and messages follow PROTOCOL.md; the job logic is in jobs.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import threading
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

from linkis_magic import protocol as p
from linkis_magic.gateway import resultsets
from linkis_magic.gateway.auth import Auth, Credentials
from linkis_magic.gateway.jobs import (
    ENTRANCE_APP,
    GatewayOptions,
    JobManager,
    RequestError,
    joined_log,
    pushed_log,
    task_view,
)
from linkis_magic.gateway.store import JobStore

log = logging.getLogger(__name__)

NOT_LOGGED_IN = "You are not logged in, please login first(您尚未登录，请先登录)!"
ALREADY_LOGGED_IN = (
    "already logged in, please log out before signing in(已经登录，请先退出再进行登录)！"
)
NO_PROGRESS = (
    "Can not get the corresponding progress information, it may be that the corresponding "
    "progress information has not been generated"
    "(不能获取相应的进度信息,可能是相应的进度信息还未生成)"
)
UNRESOLVABLE = "Unresolvable webSocket request, URI is(无法解析的webSocket请求，URI为："
WS_NOT_LOGGED_IN = "You are not logged in, please login first!(您尚未登录，请先登录!)"
LOG_SIZE_DEFAULT = 100
LOG_SIZE_ALL = 10000
WS_LOG_LINES = 100
MAX_BODY = 64 * 1024 * 1024
WS_HARD_LIMIT = 16 * 1024 * 1024

_WS_JOB_METHOD = re.compile(r"^/api/rest_j/v1/entrance/(?P<id>.+)/(?P<op>[A-Za-z]+)$")


def default_data_dir() -> Path:
    """LINKIS_MAGIC_DATA_DIR, else ~/.local/share/linkis-magic/gateway."""
    env = os.environ.get("LINKIS_MAGIC_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "share" / "linkis-magic" / "gateway"


def linkis_error(
    method: str | None, err_code: int, desc: str, port: int, status: int = 1
) -> dict[str, Any]:
    """Linkis's envelope for an ErrorException (section 2.3)."""
    return p.build_message(
        method,
        status,
        f"error code(错误码): {err_code}, error message(错误信息): {desc}.",
        {
            "errorMsg": {
                "level": 2,
                "errCode": err_code,
                "desc": desc,
                "ip": "127.0.0.1",
                "port": port,
                "serviceKind": ENTRANCE_APP,
            }
        },
    )


class Gateway:
    """What every handler shares: auth, jobs, the port."""

    def __init__(self, auth: Auth, jobs: JobManager, port: int) -> None:
        self.auth = auth
        self.jobs = jobs
        self.port = port
        self.sockets: set[EntranceSocket] = set()


# =========================================================================== REST


class LinkisHandler(tornado.web.RequestHandler):
    """Base of the REST handlers: the envelope, the login check."""

    gw: Gateway

    def initialize(self, gw: Gateway) -> None:
        self.gw = gw

    def check_xsrf_cookie(self) -> None:
        return None

    def prepare(self) -> None:
        """Browsers may send requests only from a page of this host (others send no Origin)."""
        origin = self.request.headers.get("Origin")
        if origin and not same_host(origin, self.request.host):
            log.info("refused a %s request from origin %s", self.request.method, origin[:100])
            message = f"Requests from {origin[:100]} are not allowed"
            self.reply(p.MessageStatus.NO_PERMISSION, message, {})

    def reply(
        self,
        status: int,
        message: str,
        data: Mapping[str, Any] | None = None,
        method: str | None = None,
    ) -> None:
        self.reply_message(p.build_message(method, status, message, data))

    def reply_message(self, message: Mapping[str, Any]) -> None:
        self.set_status(p.MessageStatus(message["status"]).http_code)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(message, ensure_ascii=False))

    def reply_error(self, method: str | None, exc: RequestError) -> None:
        self.reply_message(linkis_error(method, exc.err_code, exc.desc, self.gw.port, exc.status))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        status = p.MessageStatus.ERROR
        self.set_header("Content-Type", "application/json; charset=utf-8")
        reason = self._reason or "error"
        body = p.build_message(None, status, f"{status_code} {reason}", {})
        self.finish(json.dumps(body, ensure_ascii=False))

    def login_user(self) -> str | None:
        """The user of the ticket cookie, else of the Token-Code/Token-User headers."""
        return request_user(self.gw.auth, self.request)

    def require_user(self) -> str | None:
        user = self.login_user()
        if user is None:
            self.reply(p.MessageStatus.NOT_LOGGED_IN, NOT_LOGGED_IN, {}, self.request.path)
        return user

    def body_json(self) -> dict[str, Any] | None:
        """The JSON object body, or None after replying an error."""
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except (ValueError, RecursionError) as exc:
            self.reply(p.MessageStatus.ERROR, f"The request body is not valid JSON: {exc}", {})
            return None
        if not isinstance(body, dict):
            self.reply(p.MessageStatus.ERROR, "The request body must be a JSON object", {})
            return None
        return body

    def int_arg(self, name: str, default: int) -> int | None:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            self.reply(p.MessageStatus.ERROR, f"The parameter {name} must be a number: {raw!r}", {})
            return None


def same_host(origin: str, request_host: str | None) -> bool:
    """Whether a browser's Origin is this gateway itself (same host and port).

    Pages of other sites, and of other local servers, could otherwise make a logged-in browser
    submit jobs (cross-site request forgery).
    """
    return bool(request_host) and urllib.parse.urlparse(origin).netloc == request_host


def request_user(auth: Auth, request: tornado.httputil.HTTPServerRequest) -> str | None:
    ticket = _cookie(request, p.TICKET_COOKIE) or _cookie(request, p.LEGACY_TICKET_COOKIE)
    user = auth.user_of_ticket(ticket) if ticket else None
    if user:
        return user
    code = request.headers.get(p.TOKEN_CODE_HEADER) or _cookie(request, p.TOKEN_CODE_HEADER)
    name = request.headers.get(p.TOKEN_USER_HEADER) or _cookie(request, p.TOKEN_USER_HEADER)
    if code and name:
        return auth.check_token(name, code)
    return None


def _cookie(request: tornado.httputil.HTTPServerRequest, name: str) -> str | None:
    morsel = request.cookies.get(name)
    return morsel.value if morsel is not None else None


class LoginHandler(LinkisHandler):
    def post(self) -> None:
        method = "/api/rest_j/v1/user/login"
        current = self.login_user() if _cookie(self.request, p.TICKET_COOKIE) else None
        if current:
            message = f"{current} {ALREADY_LOGGED_IN}"
            self.reply(0, message, {"userName": current, "isAdmin": False}, method)
            return
        body = self.body_json()
        if body is None:
            return
        name = body.get("userName") or self.get_argument("userName", "")
        password = body.get("password") or self.get_argument("password", "")
        if not isinstance(name, str) or not name.strip():
            self.reply(1, "Username can not be empty(用户名不能为空)！", {}, method)
            return
        if not isinstance(password, str) or not password:
            self.reply(1, "Password can not be blank(密码不能为空)！", {}, method)
            return
        user = self.gw.auth.check_password(name, password)
        if user is None:
            log.info("failed login for %s", name.strip().lower()[:64])
            self.reply(1, "wrong user name or password(用户名或密码错误)！", {}, method)
            return
        self._login(user, method)

    def _login(self, user: str, method: str) -> None:
        ticket = self.gw.auth.issue_ticket(user)
        self.set_cookie(p.TICKET_COOKIE, ticket, path="/", httponly=True, samesite="Strict")
        log.info("%s logged in", user)
        data = {
            "userName": user,
            "isAdmin": False,
            "sessionTimeOut": int(self.gw.auth.session_timeout * 1000),
            "enableWatermark": False,
        }
        self.reply(0, "login successful(登录成功)！", data, method)


class TokenLoginHandler(LoginHandler):
    def post(self) -> None:
        method = "/api/rest_j/v1/user/token-login"
        code = self.request.headers.get(p.TOKEN_CODE_HEADER)
        name = self.request.headers.get(p.TOKEN_USER_HEADER)
        if not code or not name:
            self.reply(1, "Token-Code and Token-User headers are required", {}, method)
            return
        user = self.gw.auth.check_token(name, code)
        if user is None:
            self.reply(1, "Token authentication failed: wrong Token-User or Token-Code", {}, method)
            return
        self._login(user, method)


class LogoutHandler(LinkisHandler):
    def post(self) -> None:
        self.gw.auth.revoke(_cookie(self.request, p.TICKET_COOKIE))
        self.clear_cookie(p.TICKET_COOKIE, path="/")
        self.reply(0, "Logout successful(退出登录成功)！", {}, "/api/rest_j/v1/user/logout")

    get = post


class HeartbeatHandler(LinkisHandler):
    def post(self) -> None:
        if self.require_user():
            self.reply(0, "Maintain heartbeat success(维系心跳成功)", {})

    get = post


class UserInfoHandler(LinkisHandler):
    def get(self) -> None:
        user = self.require_user()
        if user:
            self.reply(0, "get user information succeed!", {"userName": user}, "/api/user/userInfo")


class GatewayHeartbeatHandler(LinkisHandler):
    def get(self) -> None:
        data = {"gatewayList": [f"127.0.0.1:{self.gw.port}"], "isHealthy": True}
        self.reply(0, "Gateway heartbeat ok!", data)


class SubmitHandler(LinkisHandler):
    """POST entrance/execute (0.x body) and entrance/submit (1.x body)."""

    def post(self, op: str) -> None:
        method = f"/api/entrance/{op}"
        user = self.require_user()
        if user is None:
            return
        body = self.body_json()
        if body is None:
            return
        jobs = self.gw.jobs
        try:
            request = jobs.parse_request(user, body)
            job = jobs.create(user, request)
        except RequestError as exc:
            self.reply_error(method, exc)
            return
        jobs.enqueue(job)
        self.reply(0, "OK", {"execID": job.rest_exec_id, "taskID": job.task_id}, method)


class JobHandler(LinkisHandler):
    """GET entrance/{execID}/status|progress|progressWithResource|log|kill|pause."""

    def get(self, exec_id: str, op: str) -> None:
        exec_id = urllib.parse.unquote(exec_id)
        method = f"/api/entrance/{exec_id}/{op}"
        user = self.require_user()
        if user is None:
            return
        jobs = self.gw.jobs
        row = jobs.find_row(exec_id)
        task_arg = self.get_query_argument("taskID", "")
        if row is None and task_arg.isdigit() and len(task_arg) < 19:
            row = jobs.store.get(int(task_arg))
        if row is None:
            self.reply(1, _not_found(op, exec_id), {"execID": exec_id}, method)
            return
        if row["um_user"] != user:
            message = f"You have no permission to {op} this job, excecute by user:{row['um_user']}"
            self.reply(p.MessageStatus.NO_PERMISSION, message, {"execID": exec_id}, method)
            return
        live = jobs.jobs.get(row["job_id"])
        if op == "status":
            status = live.status.value if live else row["status"]
            self.reply(
                0, "OK", {"status": status, "execID": exec_id, "taskID": row["task_id"]}, method
            )
        elif op in ("progress", "progressWithResource"):
            self._progress(row, live, exec_id, method, op)
        elif op == "log":
            self._read_log(row, exec_id, method)
        elif op == "kill":
            if live is None:
                self.reply(0, "Forced Kill task (强制杀死任务)", {"execID": exec_id}, method)
                return
            jobs.kill(live, user)
            self.reply(0, "Successfully killed the job(成功kill了job)", {"execID": exec_id}, method)
        elif op == "pause":
            self.reply(0, "success to pause job (成功pause了job)", {"execID": exec_id}, method)
        else:
            self.reply(1, f"Unknown operation {op!r}", {}, method)

    post = get

    def _progress(
        self, row: Mapping[str, Any], live: Any, exec_id: str, method: str, op: str
    ) -> None:
        if live is not None:
            progress, info = live.progress, live.progress_info
        elif row["status"] in ("Succeed", "Failed", "Cancelled", "Timeout"):
            progress, info = row.get("progress") or 1.0, row.get("progress_info_json") or []
        else:
            progress, info = None, []
        if progress is None:
            self.reply(1, NO_PROGRESS, {"execID": exec_id}, method)
            return
        data: dict[str, Any] = {"progress": progress, "execID": exec_id, "progressInfo": info}
        if op == "progressWithResource":
            data["yarnResource"] = None
        self.reply(0, "OK", data, method)

    def _read_log(self, row: Mapping[str, Any], exec_id: str, method: str) -> None:
        from_line = self.int_arg("fromLine", 0)
        size = self.int_arg("size", LOG_SIZE_DEFAULT)
        if from_line is None or size is None:
            return
        distinct = self.get_query_argument("distinctLevel", "true").lower() != "false"
        start = max(from_line, 1)
        if size < 0:
            size = LOG_SIZE_ALL
        lines, levels = self.gw.jobs.log_lines(row["job_id"], row.get("log_path"))
        chunk = lines[start - 1 : start - 1 + size]
        chunk_levels = levels[start - 1 : start - 1 + size]
        next_line = start + len(chunk)
        if not distinct:
            log_value: Any = "\n".join(chunk)
        else:
            log_value = joined_log(chunk, chunk_levels)
        self.reply(0, "OK", {"log": log_value, "execID": exec_id, "fromLine": next_line}, method)


def _not_found(op: str, exec_id: str) -> str:
    if op == "status":
        return (
            "ID The corresponding job is empty and cannot obtain the corresponding task status."
            "(ID 对应的job为空，不能获取相应的任务状态)"
        )
    if op == "log":
        return f"Can't find execID(不能找到execID): {exec_id}"
    if op == "kill":
        return f"Can't find execID(不能找到execID): {exec_id}"
    return NO_PROGRESS


class KillJobsHandler(LinkisHandler):
    """POST entrance/{id}/killJobs with ``idList`` (and ``taskIDList``)."""

    def post(self, _exec_id: str) -> None:
        method = "/api/entrance/killJobs"
        user = self.require_user()
        if user is None:
            return
        body = self.body_json()
        if body is None:
            return
        raw_ids = body.get("idList")
        ids: list[Any] = raw_ids if isinstance(raw_ids, list) else []
        messages = []
        for exec_id in ids:
            row = self.gw.jobs.find_row(str(exec_id))
            if row is None or row["um_user"] != user:
                messages.append(p.build_message(method, 1, f"Can't find execID: {exec_id}", {}))
                continue
            live = self.gw.jobs.jobs.get(row["job_id"])
            if live is not None:
                self.gw.jobs.kill(live, user)
            messages.append(
                p.build_message(
                    method, 0, "Successfully killed the job(成功kill了job)", {"execID": exec_id}
                )
            )
        self.reply(0, "success", {"messages": messages}, method)


class JobHistoryHandler(LinkisHandler):
    def get(self, task_id: str) -> None:
        method = f"/api/jobhistory/{task_id}/get"
        user = self.require_user()
        if user is None:
            return
        row = self.gw.jobs.store.get(int(task_id)) if len(task_id) < 19 else None
        if row is None or row["um_user"] != user:
            self.reply(
                1,
                f"The task {task_id} does not exist or you have no permission to see it",
                {},
                method,
            )
            return
        live = self.gw.jobs.jobs.get(row["job_id"])
        view = task_view(row)
        if live is not None:
            view["status"] = live.status.value
            view["progress"] = live.progress or 0.0
        self.reply(0, "OK", {"task": view}, method)


class JobListHandler(LinkisHandler):
    """GET jobhistory/list?pageNow=&pageSize=&status= (the user's own jobs, newest first)."""

    def get(self) -> None:
        method = "/api/jobhistory/list"
        user = self.require_user()
        if user is None:
            return
        page = self.int_arg("pageNow", 1)
        size = self.int_arg("pageSize", 20)
        if page is None or size is None:
            return
        page, size = max(page, 1), min(max(size, 1), 1000)
        status = self.get_query_argument("status", None) or None
        store = self.gw.jobs.store
        rows = store.list_for_user(user, size, (page - 1) * size, status)
        total = store.count_for_user(user, status)
        tasks = []
        for row in rows:
            view = task_view(row)
            live = self.gw.jobs.jobs.get(row["job_id"])
            if live is not None:
                view["status"] = live.status.value
            tasks.append(view)
        self.reply(0, "OK", {"tasks": tasks, "totalPage": total}, method)


class FileSystemHandler(LinkisHandler):
    """getDirFileTrees, openFile and openLog, confined to the user's own files."""

    def get(self, op: str) -> None:
        method = f"/api/filesystem/{op}"
        user = self.require_user()
        if user is None:
            return
        raw = self.get_query_argument("path", "")
        if not raw:
            self.reply_error(method, RequestError(80004, "path: is null(路径为空)"))
            return
        roots = {
            "getDirFileTrees": self.gw.jobs.user_results_root(user),
            "openFile": self.gw.jobs.user_results_root(user),
            "openLog": self.gw.jobs.data_dir / "logs" / user,
        }
        root = roots.get(op)
        if root is None:
            self.reply(1, f"Unknown filesystem operation {op}", {}, method)
            return
        path = confine(raw, root)
        if path is None:
            desc = f"User {user} has no permission to read the path {raw}"
            self.reply_error(method, RequestError(80010, desc))
            return
        if op == "getDirFileTrees":
            self._tree(path, raw, method)
        elif op == "openFile":
            self._open_file(path, method)
        else:
            self._open_log(path, method)

    def _tree(self, path: Path, raw: str, method: str) -> None:
        if not path.is_dir():
            self.reply(0, "OK", {"dirFileTrees": None}, method)
            return
        children = []
        for file in resultsets.result_files(path):
            stat = file.stat()
            children.append(
                {
                    "name": file.name,
                    "path": file.as_uri(),
                    "properties": {
                        "size": str(stat.st_size),
                        "modifytime": str(int(stat.st_mtime * 1000)),
                    },
                    "children": None,
                    "isLeaf": True,
                    "parentPath": path.as_uri(),
                }
            )
        tree = {
            "name": path.name,
            "path": path.as_uri(),
            "properties": None,
            "children": children,
            "isLeaf": False,
            "parentPath": None,
        }
        self.reply(0, "OK", {"dirFileTrees": tree}, method)

    def _open_file(self, path: Path, method: str) -> None:
        page = self.int_arg("page", 1)
        page_size = self.int_arg("pageSize", p.DEFAULT_PAGE_SIZE)
        if page is None or page_size is None:
            return
        if page_size > p.MAX_PAGE_SIZE:
            desc = (
                f"The pageSize {page_size} is over the limit of {p.MAX_PAGE_SIZE} rows "
                "(linkis.filesystem.resultset.row.limit)"
            )
            self.reply_error(method, RequestError(80034, desc))
            return
        if page < 1 or page_size < 1:
            self.reply_error(method, RequestError(80034, "page and pageSize must be positive"))
            return
        if not path.is_file() or not path.name.endswith(resultsets.SUFFIX):
            self.reply_error(method, RequestError(80011, f"The file {path.name} does not exist"))
            return
        null_value = self.get_query_argument("nullValue", None)
        try:
            raw = resultsets.read_raw_page(path, page, page_size)
            rows: Any = None
            if null_value is not None and raw.kind == resultsets.TABLE:
                rows = [
                    [null_value if c == resultsets.NULL else c for c in row] for row in raw.rows()
                ]
        except (OSError, ValueError) as exc:
            self.reply_error(method, RequestError(80012, f"The result set cannot be read: {exc}"))
            return
        data = {
            "metadata": raw.metadata,
            "fileContent": _RAW_ROWS if rows is None else rows,
            "type": raw.kind,
            "page": page,
            "totalPage": 0,
            "totalLine": raw.count,
            "totalColumn": len(raw.metadata) if isinstance(raw.metadata, list) else 1,
        }
        body = json.dumps(p.build_message(method, 0, "OK", data), ensure_ascii=False).encode()
        if rows is None:
            # The stored rows are already a JSON array: splice them in rather than parse a page
            # of up to 100,000 rows only to encode it again.
            body = body.replace(_RAW_ROWS_JSON, raw.rows_json, 1)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(body)

    def compute_etag(self) -> str | None:
        return None  # hashing every page of a large result set costs; nothing caches them

    def _open_log(self, path: Path, method: str) -> None:
        from linkis_magic.gateway.jobs import read_log_file

        if not path.is_file():
            self.reply_error(method, RequestError(80011, f"The file {path.name} does not exist"))
            return
        lines, levels = read_log_file(path)
        self.reply(0, "OK", {"log": joined_log(lines, levels)}, method)


def confine(raw: str, root: Path) -> Path | None:
    """``raw`` (a path or file:// URI) resolved, when it lies inside ``root``; else None."""
    text = raw.strip()
    if text.startswith("file://"):
        text = urllib.parse.unquote(text[len("file://") :])
    elif "://" in text:
        return None
    if "\x00" in text:
        return None
    try:
        path = Path(text).resolve()
        base = root.resolve()
    except (OSError, RuntimeError):
        return None
    if path == base or base in path.parents:
        return path
    return None


class NotFoundHandler(LinkisHandler):
    def prepare(self) -> None:
        message = f"Cannot find a service to deal {self.request.path}, ignore it."
        self.reply(1, message, {}, self.request.path)


# =========================================================================== WebSocket


class EntranceSocket(tornado.websocket.WebSocketHandler):
    """The entrance WebSocket: execute, status, log, progress, kill frames; pushes."""

    def initialize(self, gw: Gateway) -> None:
        self.gw = gw
        self.user = ""
        self._token_user: str | None = None
        self._log_cursor: dict[str, int] = {}
        self._is_open = False

    def check_origin(self, origin: str) -> bool:
        """Browsers may connect only from a page of this host (non-browser clients send none)."""
        return same_host(origin, self.request.host)

    def open(self, *args: str) -> None:
        self._is_open = True
        # Pushes are small and latency is the point: no Nagle delay behind an unacknowledged frame.
        self.set_nodelay(True)
        ticket = _cookie(self.request, p.TICKET_COOKIE)
        if not (ticket and self.gw.auth.user_of_ticket(ticket)):
            self._token_user = request_user(self.gw.auth, self.request)
        user = self._current_user()
        if user:
            self.user = user
            self.gw.jobs.add_socket(self)
        self.gw.sockets.add(self)
        log.debug("socket opened for %s", user or "(not logged in)")

    def _current_user(self) -> str | None:
        ticket = _cookie(self.request, p.TICKET_COOKIE) or _cookie(
            self.request, p.LEGACY_TICKET_COOKIE
        )
        if ticket:
            user = self.gw.auth.user_of_ticket(ticket)
            if user:
                return user
        return self._token_user

    def on_close(self) -> None:
        self._is_open = False
        self.gw.sockets.discard(self)
        if self.user:
            self.gw.jobs.remove_socket(self)

    def push(self, text: str) -> None:
        if not self._is_open:
            return
        try:
            self.write_message(text)
        except tornado.websocket.WebSocketClosedError:
            self._is_open = False

    def send(self, message: Mapping[str, Any]) -> None:
        self.push(json.dumps(message, ensure_ascii=False))

    def on_message(self, message: str | bytes) -> None:
        try:
            self._on_frame(message)
        except Exception:
            log.exception("a socket frame could not be handled")
            self.send(p.build_message(None, 1, "The gateway could not handle the frame", {}))

    def _on_frame(self, message: str | bytes) -> None:
        size = len(message.encode("utf-8")) if isinstance(message, str) else len(message)
        if size > p.MAX_TEXT_MESSAGE:
            log.debug("refusing a frame of %d bytes", size)
            text = (
                f"The message is too large: {size} bytes, over the limit of "
                f"{p.MAX_TEXT_MESSAGE} bytes (wds.linkis.server.socket.text.message.size.max)"
            )
            self.send(p.build_message(None, 1, text, {}))
            return
        try:
            frame = json.loads(message)
        except (ValueError, RecursionError) as exc:
            log.debug("ignoring a frame that is not JSON: %s", exc)
            self.send(p.build_message(None, 1, f"The message is not valid JSON: {exc}", {}))
            return
        if not isinstance(frame, dict):
            self.send(p.build_message(None, 1, "The message must be a JSON object", {}))
            return
        method = frame.get("method")
        tag = frame.get("websocketTag")
        tag = tag if isinstance(tag, str) else None
        data = frame.get("data")
        if not isinstance(method, str) or not method:
            self.send(p.build_message(None, 1, "Empty message! The frame has no method.", {}))
            return
        user = self._current_user()
        if user is None:
            self.send(p.build_message(method, -1, WS_NOT_LOGGED_IN, {"websocketTag": tag}))
            return
        if user != self.user:
            if self.user:
                self.gw.jobs.remove_socket(self)
            self.user = user
            self.gw.jobs.add_socket(self)
        if method == p.EXECUTE_METHOD:
            self._submit_frame(method, tag, data)
            return
        match = _WS_JOB_METHOD.match(method)
        if match is None or match["op"] not in ("status", "log", "progress", "kill", "pause"):
            self.send(
                p.build_message(
                    method,
                    1,
                    UNRESOLVABLE + method,
                    {},
                )
            )
            return
        self._job_frame(method, match["id"], match["op"])

    def _submit_frame(self, method: str, tag: str | None, data: object) -> None:
        jobs = self.gw.jobs
        if not isinstance(data, Mapping):
            data = {}
        try:
            request = jobs.parse_request(self.user, data)
            job = jobs.create(self.user, request, tag=tag, subscriber=self)
        except RequestError as exc:
            self.send(linkis_error(method, exc.err_code, exc.desc, self.gw.port, exc.status))
            return
        body = {"execID": job.exec_id, "taskID": job.task_id, "websocketTag": tag}
        self.send(p.build_message(method, 0, "Request execution succeeded(请求执行成功)", body))
        self.send(p.build_message(method, 0, "The request was executed successfully!", body))
        jobs.enqueue(job)

    def _job_frame(self, method: str, exec_id: str, op: str) -> None:
        jobs = self.gw.jobs
        if op == "pause":
            self.send(
                p.build_message(
                    method, 1, "Temporarily does not support the task pause(暂时不支持任务暂停)", {}
                )
            )
            return
        row = jobs.find_row(exec_id)
        if row is None:
            failures = {
                "status": "Get task status failed(获取任务状态失败)",
                "log": f"Failed to get the log, {exec_id} failed to find the corresponding job"
                f"(获取日志失败，{exec_id} 未能找到对应的job)",
                "progress": "Get task progress failed(获取任务进度失败)",
                "kill": "Get task failed(获取任务失败)",
            }
            self.send(p.build_message(method, 1, failures[op], {"execID": exec_id}))
            return
        if row["um_user"] != self.user:
            message = f"You have no permission to {op} this job, excecute by user:{row['um_user']}"
            self.send(p.build_message(method, 3, message, {"execID": exec_id}))
            return
        live = jobs.jobs.get(row["job_id"])
        tag = live.tag if live else None
        base = {"execID": exec_id, "taskID": row["task_id"], "websocketTag": tag}
        if op == "status":
            if live is not None:
                jobs.subscribe(live, self)
            status = live.status.value if live else row["status"]
            self.send(
                p.build_message(
                    method,
                    0,
                    "Get the status of the task successfully(获取任务状态成功)",
                    {**base, "status": status},
                )
            )
        elif op == "progress":
            progress = live.progress if live else row.get("progress")
            data = {**base, "progress": progress or 0.0}
            self.send(
                p.build_message(
                    method, 0, "Get the task progress successfully(获取任务进度成功)", data
                )
            )
        elif op == "log":
            lines, levels = jobs.log_lines(row["job_id"], row.get("log_path"))
            start = self._log_cursor.get(row["job_id"], 0)
            chunk, chunk_levels = (
                lines[start : start + WS_LOG_LINES],
                levels[start : start + WS_LOG_LINES],
            )
            self._log_cursor[row["job_id"]] = start + len(chunk)
            log_value = pushed_log(chunk, chunk_levels)
            self.send(
                p.build_message(
                    method,
                    0,
                    "Successfully obtained log information(成功获取到日志信息)",
                    {**base, "log": log_value},
                )
            )
        elif op == "kill":
            if live is not None:
                jobs.kill(live, self.user)
            self.send(p.build_message(method, 0, "Kill task succeeded(kill任务成功)", {}))


# =========================================================================== application


def make_app(gw: Gateway) -> tornado.web.Application:
    args = {"gw": gw}
    v1 = p.REST_PREFIX
    routes: list[Any] = [
        (p.WS_PATH, EntranceSocket, args),
        (p.WS_PATH_DOCUMENTED, EntranceSocket, args),
        (r"/ws/.*", EntranceSocket, args),
        (v1 + "/user/login", LoginHandler, args),
        (v1 + "/user/token-login", TokenLoginHandler, args),
        (v1 + "/user/logout", LogoutHandler, args),
        (v1 + "/user/heartbeat", HeartbeatHandler, args),
        (v1 + "/user/userInfo", UserInfoHandler, args),
        (v1 + "/gateway/heartbeat", GatewayHeartbeatHandler, args),
        (v1 + r"/entrance/(execute|submit)", SubmitHandler, args),
        (v1 + r"/entrance/(.+)/killJobs", KillJobsHandler, args),
        (v1 + r"/entrance/(.+)/([A-Za-z]+)", JobHandler, args),
        (v1 + r"/jobhistory/(\d+)/get", JobHistoryHandler, args),
        (v1 + r"/jobhistory/list", JobListHandler, args),
        (v1 + r"/filesystem/(getDirFileTrees|openFile|openLog)", FileSystemHandler, args),
    ]
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=args,
        websocket_max_message_size=WS_HARD_LIMIT,
        websocket_ping_interval=None,
        log_function=log_request,
    )


_access_log = logging.getLogger(__name__ + ".access")

# A placeholder for the rows of an openFile reply, replaced by the stored rows once encoded.
_RAW_ROWS = "\x00rows\x00"
_RAW_ROWS_JSON = json.dumps(_RAW_ROWS).encode()


def log_request(handler: tornado.web.RequestHandler) -> None:
    """One DEBUG line per request; ERROR for server faults.

    Linkis answers many ordinary situations with 4xx (no progress yet, not logged in), and
    tornado's own access log would print each as a WARNING into the notebook of an embedded
    gateway.
    """
    status = handler.get_status()
    level = logging.ERROR if status >= 500 else logging.DEBUG
    if _access_log.isEnabledFor(level):
        request = handler.request
        _access_log.log(
            level,
            "%d %s %s %.1f ms",
            status,
            request.method,
            request.path,
            1000.0 * request.request_time(),
        )


class GatewayServer:
    """The embedded Linkis-compatible gateway.

    Args:
        host: address to listen on (loopback by default).
        port: TCP port; 0 picks a free one.
        data_dir: users, job history, logs and result sets; ``default_data_dir()`` if None.
        **options: :class:`GatewayOptions` fields (engine_idle_timeout, result_row_limit, ...).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: str | Path | None = None,
        **options: Any,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.options = GatewayOptions(**options)
        self.auth = Auth(self.data_dir)
        self._credentials = self.auth.bootstrap()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self._gw: Gateway | None = None
        self._store: JobStore | None = None
        self._started = threading.Event()
        self._startup_error: BaseException | None = None
        self._stopped = False

    @property
    def credentials(self) -> Credentials:
        """The bootstrap user's (user, password, token); the secrets may be None if unknown."""
        return self._credentials

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :] + p.WS_PATH

    @property
    def instance(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopped

    @property
    def jobs(self) -> JobManager:
        assert self._gw is not None, "the gateway is not started"
        return self._gw.jobs

    def start(self) -> GatewayServer:
        """Listen and serve in a background thread; returns once it is listening."""
        if self._thread is not None:
            return self
        sockets = tornado.netutil.bind_sockets(self.requested_port, self.host)
        self.port = sockets[0].getsockname()[1]
        self._thread = threading.Thread(
            target=self._thread_main, args=(sockets,), name="linkis-gateway", daemon=True
        )
        self._thread.start()
        self._started.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise RuntimeError(f"the gateway failed to start: {self._startup_error}")
        log.info("gateway listening on %s (data in %s)", self.url, self.data_dir)
        return self

    def _thread_main(self, sockets: list[Any]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._setup(sockets))
        except BaseException as exc:
            self._startup_error = exc
            for sock in sockets:
                sock.close()
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _setup(self, sockets: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        self._store = JobStore(self.data_dir / "jobs.db")
        jobs = JobManager(self.data_dir, self._store, self.instance, loop, self.options)
        jobs.recover()
        self._gw = Gateway(self.auth, jobs, self.port)
        self._server = tornado.httpserver.HTTPServer(
            make_app(self._gw), max_body_size=MAX_BODY, xheaders=False
        )
        self._server.add_sockets(sockets)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop serving, fail unfinished jobs and stop every engine process."""
        if self._thread is None or self._stopped or self._loop is None:
            return
        self._stopped = True
        loop = self._loop
        if loop.is_running():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                future.result(timeout)
            except Exception:
                log.exception("the gateway did not shut down cleanly")
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout)
        log.info("gateway on port %s stopped", self.port)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._gw is not None:
            await self._gw.jobs.shutdown()
            await self._close_sockets(self._gw.sockets)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.close_all_connections(), 2.0)
        if self._store is not None:
            self._store.close()

    @staticmethod
    async def _close_sockets(sockets: set[EntranceSocket], grace: float = 0.5) -> None:
        """Close every WebSocket, waiting a moment for the close handshakes, then drop them."""
        connections = {sock: sock.ws_connection for sock in sockets}
        for sock in connections:
            sock.close(1001, "the gateway is stopping")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while sockets and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for sock in list(sockets):
            abort = getattr(connections.get(sock), "_abort", None)
            if callable(abort):
                abort()
            sockets.discard(sock)

    def serve_forever(self) -> None:
        """Serve in the foreground until SIGINT or SIGTERM."""
        stop = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            stop.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not stop.wait(0.5):
                if not self.running:
                    break
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"GatewayServer(url={self.url!r}, data_dir={str(self.data_dir)!r})"
