"""Loopback servers for the client tests: fakes of Linkis 1.x and a fault-injecting proxy.

``FakeLinkis(socket_mode=True)`` behaves like a Linkis 1.x entrance with socket mode on: two
execute replies, status pushes on every transition, no log pushes, progress pushed once at the
end, waitingSize pushes; logs and progress only over REST. ``FakeLinkis(socket_mode=False)``
refuses the WebSocket upgrade, as a default 1.x install does. Both are real tornado servers on
127.0.0.1, each in its own thread.

``FaultProxy`` sits in front of a real gateway and relays REST and WebSocket traffic; tests use
it to close sockets mid-job, inject garbage, oversized or gateway-error frames, and slow logins.

Fake job code is a small script, one command a line::

    log INFO some text      append a log line (INFO, WARN or ERROR)
    sleep 0.2               wait (the job stays Running)
    progress 0.5            set progress
    rows 3                  write a table result set of 3 rows (columns n:int, s:string)
    text hello              write a text result set
    fail why                end Failed with ``why`` as the error
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import secrets
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

from linkis_magic import protocol as p

INSTANCE = "127.0.0.1:9104"
FINAL = {"Succeed", "Failed", "Cancelled", "Timeout"}


class LoopbackServer:
    """A tornado application served on 127.0.0.1:<free port> from its own thread and loop."""

    def __init__(self) -> None:
        self.port = 0
        self.ssl_options: Any = None  # an ssl.SSLContext to serve https/wss
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: tornado.httpserver.HTTPServer | None = None
        self._ready = threading.Event()

    def make_app(self) -> tornado.web.Application:
        raise NotImplementedError

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_options is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self._thread = threading.Thread(target=self._main, args=(sockets,), daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def _main(self, sockets: list[Any]) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self._server = tornado.httpserver.HTTPServer(self.make_app(), ssl_options=self.ssl_options)
        self._server.add_sockets(sockets)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's loop and return its result."""
        assert self.loop is not None
        done = threading.Event()
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # handed back to the caller
                box["error"] = exc
            done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait(10)
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def stop(self) -> None:
        if self.loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.stop()
            await self._server.close_all_connections()
            self.on_stop()

        future = asyncio.run_coroutine_threadsafe(shutdown(), self.loop)
        future.result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def on_stop(self) -> None:
        return None


def envelope(method: str | None, status: int, message: str, data: dict[str, Any]) -> str:
    return json.dumps(p.build_message(method, status, message, data), ensure_ascii=False)


# =========================================================================== fake Linkis 1.x


@dataclass
class FakeJob:
    task_id: int
    job_id: str
    exec_id: str
    rest_exec_id: str
    user: str
    code: str
    tag: str | None
    status: str = "Inited"
    progress: float | None = None
    lines: list[str] = field(default_factory=list)
    results: list[tuple[str, Any]] = field(default_factory=list)
    error: str | None = None
    bound: Any = None
    task: asyncio.Task[None] | None = None


class FakeLinkis(LoopbackServer):
    """A Linkis 1.x gateway+entrance on loopback (see the module docstring).

    Args:
        socket_mode: serve the WebSocket (True) or refuse the upgrade with HTTP 404 (False).
        login_delay: seconds the login takes.
        users: name -> (password, token).
    """

    def __init__(
        self,
        socket_mode: bool = True,
        login_delay: float = 0.0,
        users: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        super().__init__()
        self.socket_mode = socket_mode
        self.login_delay = login_delay
        self.users = users or {"hadoop": ("hadoop-pw", "hadoop-token")}
        self.tickets: dict[str, str] = {}
        self.jobs: dict[int, FakeJob] = {}
        self.sockets: set[FakeSocket] = set()
        self.requests: list[tuple[str, str]] = []
        self.frames: list[dict[str, Any]] = []
        self.logins = 0
        self.pings = 0
        self.submit_route = True  # False: only the 0.x /entrance/execute exists
        self._next_task = 100
        self._next_index = 0

    def make_app(self) -> tornado.web.Application:
        args = {"fake": self}
        v1 = p.REST_PREFIX
        return tornado.web.Application(
            [
                (r"/ws/.*", FakeSocket, args),
                (v1 + "/user/login", FakeLogin, args),
                (v1 + "/user/token-login", FakeTokenLogin, args),
                (v1 + r"/entrance/(submit|execute)", FakeSubmit, args),
                (v1 + r"/entrance/(.+)/(status|log|progress|kill)", FakeJobOp, args),
                (v1 + r"/jobhistory/(\d+)/get", FakeHistory, args),
                (v1 + r"/filesystem/(getDirFileTrees|openFile)", FakeFiles, args),
            ]
        )

    # ----------------------------------------------------------------- auth

    def user_of(self, handler: tornado.web.RequestHandler) -> str | None:
        ticket = handler.get_cookie(p.TICKET_COOKIE)
        if ticket and ticket in self.tickets:
            return self.tickets[ticket]
        code = handler.request.headers.get(p.TOKEN_CODE_HEADER)
        name = handler.request.headers.get(p.TOKEN_USER_HEADER)
        if name in self.users and code and code == self.users[name][1]:
            return name
        return None

    def expire_tickets(self) -> None:
        """Every session ends, as after the 2 h timeout."""
        self.call(self.tickets.clear)

    # ----------------------------------------------------------------- jobs

    def create(self, user: str, code: str, engine: str, creator: str, tag: str | None) -> FakeJob:
        self._next_task += 1
        job_id = f"{creator}_{user}_{engine}_{self._next_index}"
        self._next_index += 1
        job = FakeJob(
            task_id=self._next_task,
            job_id=job_id,
            exec_id=p.encode_legacy_exec_id(creator, engine, INSTANCE, job_id),
            rest_exec_id=p.encode_rest_exec_id("linkis-cg-entrance", INSTANCE, job_id),
            user=user,
            code=code,
            tag=tag,
        )
        self.jobs[job.task_id] = job
        now = dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        self.log(job, "INFO", f"You have submitted a new job at {now}")
        self.log(
            job, "INFO", f"Your job is accepted, jobID is {job_id} and taskID is {job.task_id}."
        )
        return job

    def start_job(self, job: FakeJob) -> None:
        job.task = asyncio.ensure_future(self._run(job))

    def find(self, exec_id: str) -> FakeJob | None:
        try:
            job_id = p.decode_exec_id(exec_id).job_id
        except ValueError:
            return None
        return next((j for j in self.jobs.values() if j.job_id == job_id), None)

    def log(self, job: FakeJob, level: str, message: str) -> None:
        job.lines.append(p.format_log_line(level, message, dt.datetime.now()))

    async def _run(self, job: FakeJob) -> None:
        try:
            self.set_status(job, "Scheduled")
            self.push_waiting(job)
            await asyncio.sleep(0.05)
            self.set_status(job, "Running")
            job.progress = 0.0
            for raw in job.code.splitlines():
                cmd, _, arg = raw.strip().partition(" ")
                if cmd == "log":
                    level, _, text = arg.partition(" ")
                    self.log(job, level, text)
                elif cmd == "sleep":
                    await asyncio.sleep(float(arg))
                elif cmd == "progress":
                    job.progress = float(arg)
                elif cmd == "rows":
                    rows = [[str(i), f"row {i}"] for i in range(int(arg))]
                    job.results.append(("table", rows))
                elif cmd == "text":
                    job.results.append(("text", arg))
                elif cmd == "fail":
                    job.error = arg
                    self.log(job, "ERROR", arg)
                    self.finish(job, "Failed")
                    return
            self.finish(job, "Succeed")
        except asyncio.CancelledError:
            self.log(job, "WARN", "the job was killed")
            self.finish(job, "Cancelled")

    def set_status(self, job: FakeJob, status: str) -> None:
        job.status = status
        data = {"execID": job.exec_id, "status": status, "taskID": job.task_id}
        self.push(job, "status", "Get the status of the task successfully", data)

    def finish(self, job: FakeJob, status: str) -> None:
        self.log(job, "INFO", f"Job {job.job_id} finished with state {status}")
        job.progress = 1.0
        data = {"execID": job.exec_id, "progress": 1.0, "progressInfo": [], "taskID": job.task_id}
        self.push(job, "progress", "return the schedule information", data)
        self.set_status(job, status)

    def push_waiting(self, job: FakeJob) -> None:
        # 1.x builds this execID with the 3-argument form: not the one the execute reply had.
        waiting_id = p.encode_waiting_exec_id("spark", INSTANCE, job.job_id)
        data = {"execID": waiting_id, "taskID": job.task_id, "waitingSize": 0}
        self.push(job, "waitingSize", "Get waiting size succeed.", data, method_id=waiting_id)

    def push(
        self,
        job: FakeJob,
        op: str,
        message: str,
        data: dict[str, Any],
        method_id: str | None = None,
    ) -> None:
        data = {**data, "websocketTag": job.tag}
        text = envelope(p.job_method(method_id or job.exec_id, op), 0, message, data)
        targets = (
            [job.bound]
            if job.bound is not None
            else [s for s in self.sockets if s.user == job.user]
        )
        for sock in targets:
            sock.push(text)

    def on_stop(self) -> None:
        for job in self.jobs.values():
            if job.task is not None:
                job.task.cancel()
        for sock in list(self.sockets):
            sock.close()


class FakeHandler(tornado.web.RequestHandler):
    fake: FakeLinkis

    def initialize(self, fake: FakeLinkis) -> None:
        self.fake = fake

    def check_xsrf_cookie(self) -> None:
        return None

    def reply(
        self, status: int, message: str, data: dict[str, Any], method: str | None = None
    ) -> None:
        self.set_status(p.MessageStatus(status).http_code)
        self.set_header("Content-Type", "application/json")
        self.finish(envelope(method, status, message, data))

    def prepare(self) -> None:
        self.fake.requests.append((self.request.method or "", self.request.path))

    def need_user(self) -> str | None:
        user = self.fake.user_of(self)
        if user is None:
            self.reply(-1, "You are not logged in, please login first!", {})
        return user


class FakeLogin(FakeHandler):
    async def post(self) -> None:
        self.fake.logins += 1
        if self.fake.login_delay:
            await asyncio.sleep(self.fake.login_delay)
        body = json.loads(self.request.body or b"{}")
        user, password = body.get("userName"), body.get("password")
        if user not in self.fake.users or self.fake.users[user][0] != password:
            self.reply(1, "wrong user name or password(用户名或密码错误)！", {})
            return
        self._login(user)

    def _login(self, user: str) -> None:
        ticket = secrets.token_hex(16)
        self.fake.tickets[ticket] = user
        self.set_cookie(p.TICKET_COOKIE, ticket, path="/")
        self.reply(0, "login successful(登录成功)！", {"userName": user, "isAdmin": False})


class FakeTokenLogin(FakeLogin):
    async def post(self) -> None:
        self.fake.logins += 1
        user = self.fake.user_of(self)
        if user is None:
            self.reply(1, "Token authentication failed", {})
            return
        self._login(user)


class FakeSubmit(FakeHandler):
    def post(self, op: str) -> None:
        if op == "submit" and not self.fake.submit_route:
            self.set_status(404)
            self.finish("Not Found")
            return
        user = self.need_user()
        if user is None:
            return
        body = json.loads(self.request.body or b"{}")
        if op == "submit":
            code = body["executionContent"]["code"]
            engine = body["labels"]["engineType"].split("-")[0]
            creator = body["labels"]["userCreator"].split("-")[-1]
        else:
            code, engine = body["executionCode"], body["executeApplicationName"]
            creator = body.get("requestApplicationName") or "IDE"
        job = self.fake.create(user, code, engine, creator, None)
        self.fake.start_job(job)
        self.reply(
            0, "OK", {"execID": job.rest_exec_id, "taskID": job.task_id}, f"/api/entrance/{op}"
        )


class FakeJobOp(FakeHandler):
    def get(self, exec_id: str, op: str) -> None:
        user = self.need_user()
        if user is None:
            return
        job = self.fake.find(urllib.parse.unquote(exec_id))
        if job is None or job.user != user:
            self.reply(1, f"Can't find execID(不能找到execID): {exec_id}", {})
            return
        method = f"/api/entrance/{exec_id}/{op}"
        if op == "status":
            self.reply(0, "OK", {"status": job.status, "execID": exec_id}, method)
        elif op == "progress":
            if job.progress is None:
                self.reply(1, "Can not get the corresponding progress information", {})
                return
            info = [
                {
                    "id": "stage-1",
                    "succeedTasks": int(job.progress * 10),
                    "failedTasks": 0,
                    "runningTasks": 1,
                    "totalTasks": 10,
                }
            ]
            self.reply(
                0, "OK", {"progress": job.progress, "execID": exec_id, "progressInfo": info}, method
            )
        elif op == "log":
            start = max(int(self.get_query_argument("fromLine", "0")), 1)
            size = int(self.get_query_argument("size", "100"))
            size = 10000 if size < 0 else size
            chunk = job.lines[start - 1 : start - 1 + size]
            buckets = {lvl: [] for lvl in ("ERROR", "WARN", "INFO")}  # type: dict[str, list[str]]
            for line in chunk:
                buckets[p.log_level_of(line) or "INFO"].append(line)
            log = [
                "\n".join(buckets["ERROR"]),
                "\n".join(buckets["WARN"]),
                "\n".join(buckets["INFO"]),
                "\n".join(chunk),
            ]
            self.reply(
                0, "OK", {"log": log, "execID": exec_id, "fromLine": start + len(chunk)}, method
            )
        elif op == "kill":
            if job.task is not None and job.status not in FINAL:
                job.task.cancel()
            self.reply(0, "Successfully killed the job(成功kill了job)", {"execID": exec_id}, method)


class FakeHistory(FakeHandler):
    def get(self, task_id: str) -> None:
        user = self.need_user()
        if user is None:
            return
        job = self.fake.jobs.get(int(task_id))
        if job is None or job.user != user:
            self.reply(1, "no such task", {})
            return
        task = {
            "taskID": job.task_id,
            "status": job.status,
            "resultLocation": f"/fake/{job.task_id}" if job.results else None,
            "errDesc": job.error,
            "executionCode": job.code,
            "executeApplicationName": "spark",
            "runType": "sql",
        }
        self.reply(0, "OK", {"task": task})


class FakeFiles(FakeHandler):
    def get(self, op: str) -> None:
        if self.need_user() is None:
            return
        path = self.get_query_argument("path")
        task_id = int(path.split("/")[2])
        job = self.fake.jobs[task_id]
        if op == "getDirFileTrees":
            children = [
                {
                    "name": f"_{i}.dolphin",
                    "path": f"{path}/_{i}.dolphin",
                    "isLeaf": True,
                    "children": None,
                    "parentPath": path,
                }
                for i in range(len(job.results))
            ]
            self.reply(
                0,
                "OK",
                {
                    "dirFileTrees": {
                        "name": str(task_id),
                        "path": path,
                        "isLeaf": False,
                        "children": children,
                    }
                },
            )
            return
        index = int(path.rsplit("_", 1)[1].split(".")[0])
        kind, content = job.results[index]
        page = int(self.get_query_argument("page", "1"))
        size = int(self.get_query_argument("pageSize", "5000"))
        if kind == "table":
            meta: Any = [
                {"columnName": "n", "comment": "NULL", "dataType": "int"},
                {"columnName": "s", "comment": "NULL", "dataType": "string"},
            ]
            rows = content[(page - 1) * size : page * size]
            self.reply(0, "OK", {"metadata": meta, "fileContent": rows, "type": "2", "page": page})
        else:
            rows = [[content]] if page == 1 else []
            self.reply(0, "OK", {"metadata": None, "fileContent": rows, "type": "1", "page": page})


class FakeSocket(tornado.websocket.WebSocketHandler):
    def initialize(self, fake: FakeLinkis) -> None:
        self.fake = fake
        self.user: str | None = None

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if not self.fake.socket_mode:
            self.set_status(404)
            self.finish("Not Found")
            return
        await super().get(*args, **kwargs)

    def open(self, *args: str) -> None:
        self.user = self.fake.user_of(self)
        self.fake.sockets.add(self)

    def on_ping(self, data: bytes) -> None:
        self.fake.pings += 1

    def on_close(self) -> None:
        self.fake.sockets.discard(self)
        for job in self.fake.jobs.values():
            if job.bound is self:
                job.bound = None

    def push(self, text: str) -> None:
        with contextlib.suppress(tornado.websocket.WebSocketClosedError):
            self.write_message(text)

    def on_message(self, message: str | bytes) -> None:
        frame = json.loads(message)
        self.fake.frames.append(frame)
        method, tag = frame.get("method", ""), frame.get("websocketTag")
        if self.user is None or self.fake.user_of(self) is None:
            self.push(
                envelope(
                    method, -1, "You are not logged in, please login first!", {"websocketTag": tag}
                )
            )
            return
        if method == p.EXECUTE_METHOD:
            data = frame["data"]
            job = self.fake.create(
                self.user,
                data["executionCode"],
                data["executeApplicationName"],
                data.get("requestApplicationName") or "IDE",
                tag,
            )
            job.bound = self
            body = {"execID": job.exec_id, "taskID": job.task_id, "websocketTag": tag}
            self.push(envelope(method, 0, "Request execution succeeded(请求执行成功)", body))
            self.push(envelope(method, 0, "The request was executed successfully!", body))
            self.fake.start_job(job)
            return
        match = p._JOB_METHOD.match(method)
        job = self.fake.find(match["exec_id"]) if match else None
        if job is None or match is None:
            self.push(envelope(method, 1, "Get task status failed(获取任务状态失败)", {}))
            return
        if match["op"] == "status":
            if job.bound is None:
                job.bound = self
            data = {
                "execID": job.exec_id,
                "status": job.status,
                "taskID": job.task_id,
                "websocketTag": job.tag,
            }
            self.push(envelope(method, 0, "Get the status of the task successfully", data))
        elif match["op"] == "kill":
            if job.task is not None and job.status not in FINAL:
                job.task.cancel()
            self.push(envelope(method, 0, "Kill task succeeded(kill任务成功)", {}))


# =========================================================================== fault proxy


class FaultProxy(LoopbackServer):
    """Relays REST and WebSocket traffic to ``upstream`` (a gateway URL), with faults on demand.

    Attributes a test may set: ``login_delay`` (seconds), ``refuse_upgrade`` (answer the
    upgrade with 404), ``poisoned`` (answer every client frame with the last gateway error
    instead of forwarding it, as Linkis's gateway does after its first error).
    """

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.login_delay = 0.0
        self.refuse_upgrade = False
        self.clients: set[ProxySocket] = set()
        self.upgrades = 0
        self.logins = 0
        self.client_frames: list[str] = []
        self.drop_methods: set[str] = set()
        self.largest_frame = 0

    def make_app(self) -> tornado.web.Application:
        args = {"proxy": self}
        return tornado.web.Application([(r"/ws/.*", ProxySocket, args), (r"/.*", ProxyHTTP, args)])

    @property
    def open_sockets(self) -> int:
        return self.call(lambda: len(self.clients))

    def inject(self, text: str | bytes) -> None:
        """Send ``text`` to every client socket, as if the gateway had sent it."""

        def send() -> None:
            for sock in list(self.clients):
                sock.write_message(text, binary=isinstance(text, bytes))

        self.call(send)

    def close_clients(self, code: int = 1011) -> None:
        """Close every client socket from the server side."""

        def close() -> None:
            for sock in list(self.clients):
                sock.close(code, "closed by the test")

        self.call(close)

    def poison(self, message: str) -> None:
        """Send a gateway error frame and then answer every frame with it, as Linkis does."""

        def run() -> None:
            for sock in list(self.clients):
                sock.poisoned = message
                sock.write_message(envelope(p.WS_PATH, 1, message, {}))

        self.call(run)

    def on_stop(self) -> None:
        for sock in list(self.clients):
            sock.close()


_HOP = {"host", "content-length", "transfer-encoding", "connection", "upgrade", "accept-encoding"}


class ProxyHTTP(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "POST")

    def initialize(self, proxy: FaultProxy) -> None:
        self.proxy = proxy

    def check_xsrf_cookie(self) -> None:
        return None

    async def get(self) -> None:
        if self.request.path.endswith("/user/login"):
            self.proxy.logins += 1
            if self.proxy.login_delay:
                await asyncio.sleep(self.proxy.login_delay)
        headers = {k: v for k, v in self.request.headers.get_all() if k.lower() not in _HOP}
        request = tornado.httpclient.HTTPRequest(
            self.proxy.upstream + self.request.uri,
            method=self.request.method or "GET",
            headers=headers,
            body=self.request.body if self.request.method == "POST" else None,
            request_timeout=60,
        )
        client = tornado.httpclient.AsyncHTTPClient()
        try:
            reply = await client.fetch(request, raise_error=False)
        except OSError:
            self.set_status(502)
            self.finish("upstream unreachable")
            return
        self.set_status(reply.code)
        for key, value in reply.headers.get_all():
            if key.lower() not in _HOP and key.lower() not in ("date", "server"):
                self.add_header(key, value)
        self.finish(reply.body or b"")

    post = get


class ProxySocket(tornado.websocket.WebSocketHandler):
    def initialize(self, proxy: FaultProxy) -> None:
        self.proxy = proxy
        self.upstream: tornado.websocket.WebSocketClientConnection | None = None
        self.poisoned: str | None = None

    async def get(self, *args: Any, **kwargs: Any) -> None:
        if self.proxy.refuse_upgrade:
            self.set_status(404)
            self.finish("Not Found")
            return
        await super().get(*args, **kwargs)

    async def open(self, *args: str) -> None:
        self.proxy.upgrades += 1
        headers = {
            k: v
            for k, v in self.request.headers.get_all()
            if k.lower() in ("cookie", "token-code", "token-user")
        }
        url = "ws" + self.proxy.upstream[len("http") :] + self.request.uri
        request = tornado.httpclient.HTTPRequest(url, headers=headers)
        try:
            self.upstream = await tornado.websocket.websocket_connect(
                request, on_message_callback=self._from_upstream
            )
        except Exception:
            self.close(1011, "upstream unreachable")
            return
        self.proxy.clients.add(self)

    def _from_upstream(self, message: str | bytes | None) -> None:
        if message is None:
            self.close(1011, "upstream closed")
            return
        self.proxy.largest_frame = max(self.proxy.largest_frame, len(message))
        with contextlib.suppress(tornado.websocket.WebSocketClosedError):
            self.write_message(message, binary=isinstance(message, bytes))

    def on_message(self, message: str | bytes) -> None:
        self.proxy.client_frames.append(message if isinstance(message, str) else message.decode())
        if self.poisoned is not None:
            self.write_message(envelope(p.WS_PATH, 1, self.poisoned, {}))
            return
        if self.proxy.drop_methods:
            with contextlib.suppress(ValueError, AttributeError):
                if json.loads(message).get("method") in self.proxy.drop_methods:
                    return
        if self.upstream is not None:
            self.upstream.write_message(message, binary=isinstance(message, bytes))

    def on_close(self) -> None:
        self.proxy.clients.discard(self)
        if self.upstream is not None:
            self.upstream.close()
