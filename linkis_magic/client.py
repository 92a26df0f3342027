"""The Linkis client: login, one WebSocket per client, REST gap-filling and fallback, results.

``AsyncLinkisClient`` is the implementation (websockets + httpx, frames built and parsed by
``protocol``). ``LinkisClient`` is the same API, synchronous, run on one background event-loop
thread, so it works from a notebook cell whose own loop is already running.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import os
import random
import re
import ssl
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Literal, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from linkis_magic import protocol, results
from linkis_magic.errors import (
    AuthError,
    ConnectionError,
    LinkisError,
    ProtocolError,
    ServerError,
)
from linkis_magic.jobs import AsyncJob, Job, split_lines, wait_future
from linkis_magic.protocol import (
    ErrorReply,
    ExecuteAccepted,
    JobStatus,
    LogLines,
    ProgressInfo,
    ProgressUpdate,
    StatusChanged,
    WaitingSize,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

Transport = Literal["auto", "websocket", "rest"]

EMBEDDED = "embedded"

#: Every option a client takes, with its default (seconds unless said otherwise).
DEFAULT_OPTIONS: dict[str, Any] = {
    "page_size": protocol.DEFAULT_PAGE_SIZE,  # rows per openFile page
    "ping_interval": 20.0,  # WebSocket pings, and how long a pong may take
    "log_gap": 1.0,  # no new log line for this long while running: read /log over REST
    "progress_gap": 1.0,  # no progress push for this long while running: read /progress
    "status_gap": 5.0,  # no status news for this long: read /status over REST
    "max_gap": 5.0,  # gap reads that find nothing back off up to this interval
    "poll_interval": 0.5,  # REST-only following: status, progress, log at this cadence
    "connect_timeout": 10.0,  # opening the socket
    "request_timeout": 30.0,  # one REST request (login included)
    "execute_timeout": 30.0,  # the execute reply (the execID) must come within this
    "reconnect_delay": 0.2,  # first reconnect delay; doubles up to reconnect_max_delay
    "reconnect_max_delay": 5.0,
    "give_up_after": 300.0,  # the gateway unreachable this long: stop following a job
    "max_frame_size": 655_350,  # larger execute frames are submitted over REST
    "max_message_size": 16 * 1024 * 1024,  # larger incoming frames drop the socket
    "kill_wait": 5.0,  # after an interrupt, wait this long for a killed job to end
    "first_reply_wait": 5.0,  # on a new socket, hold later frames until the first reply
    "engine_versions": None,  # {"spark": "3.4.4"} for the engineType labels of REST submit
    "ws_path": protocol.WS_PATH,
}

_REFUSED_UPGRADE = {400, 403, 404, 405, 426, 501}
_TICK = 0.2
_LOG_READ_MAX = 10_000
_LOG_DUE_INTERVAL = 0.25
_QUEUED = (JobStatus.INITED, JobStatus.SCHEDULED, JobStatus.WAIT_FOR_RETRY)

_SECRET_HEADERS = {"cookie", "set-cookie", "authorization", "token-code"}


class _MaskingLogger(logging.LoggerAdapter[logging.Logger]):
    """websockets logs handshake headers at DEBUG; hide cookies and tokens."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if len(args) == 2 and str(args[0]).lower() in _SECRET_HEADERS:
            args = (args[0], "***")
        super().log(level, msg, *args, **kwargs)


_WS_LOGGER = _MaskingLogger(logging.getLogger(__name__ + ".ws"), {})

_HEADER_VALUE = re.compile(
    r"""(b?['"](?:set-cookie|cookie|token-code)['"],\s*b?['"])[^'"]*""", re.IGNORECASE
)


class _RedactHeaders(logging.Filter):
    """httpcore's DEBUG traces print response headers, Set-Cookie included; mask the values."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        masked = _HEADER_VALUE.sub(r"\1***", text)
        if masked != text:
            record.msg, record.args = masked, ()
        return True


for _name in ("httpcore.http11", "httpcore.http2"):
    logging.getLogger(_name).addFilter(_RedactHeaders())


class _UpgradeRefused(LinkisError):
    """The gateway answered the WebSocket upgrade with an HTTP error: no socket mode."""


class _HTTPError(ProtocolError):
    """A REST reply that is not a Linkis envelope, with its HTTP status."""

    def __init__(self, message: str, http_status: int) -> None:
        super().__init__(message)
        self.http_status = http_status


def default_run_type(engine: str) -> str:
    """The runType a job gets when none is given (Linkis's default is sql)."""
    return protocol.known_run_type(engine) or "sql"


class AsyncLinkisClient:
    """A client of one Linkis gateway; every method is a coroutine on the caller's loop.

    Args:
        gateway: ``http(s)://host:port`` of the gateway, or ``"embedded"`` to start the
            local embedded gateway and log in to it.
        user, password: log in with a password (the session cookie goes on the socket).
        token: log in with a token (``Token-Code``/``Token-User``; ``user`` names the user).
        transport: ``"auto"`` (WebSocket first, REST fills gaps and takes over when the socket
            cannot be opened), ``"websocket"`` or ``"rest"`` to force one path.
        creator: Linkis's creator (requestApplicationName), ``IDE`` by default.
        verify: verify TLS certificates (True), not (False), with a CA bundle (its path)
            or with an ``ssl.SSLContext``.
        **options: see ``DEFAULT_OPTIONS``.
    """

    def __init__(
        self,
        gateway: str = "http://127.0.0.1:9001",
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        transport: Transport = "auto",
        creator: str = protocol.DEFAULT_CREATOR,
        verify: bool | str | ssl.SSLContext = True,
        **options: Any,
    ) -> None:
        if transport not in ("auto", "websocket", "rest"):
            raise ValueError(f"transport must be auto, websocket or rest, not {transport!r}")
        unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
        if unknown:
            raise TypeError(f"unknown client options: {', '.join(unknown)}")
        if not isinstance(gateway, str) or not gateway.strip():
            raise ValueError("gateway must be a URL such as http://127.0.0.1:9001 or 'embedded'")
        gateway = gateway.strip()
        if gateway != EMBEDDED and not gateway.startswith(("http://", "https://")):
            raise ValueError(f"gateway must start with http:// or https://, not {gateway!r}")
        self._gateway = gateway.rstrip("/")
        self._user = user
        self._password = password
        self._token = token
        self.transport: Transport = transport
        self.creator = creator
        # A CA bundle path becomes one SSL context shared by REST and the socket.
        self._verify: bool | ssl.SSLContext = (
            ssl.create_default_context(cafile=str(verify))
            if isinstance(verify, str | os.PathLike)
            else verify
        )
        self.options = {**DEFAULT_OPTIONS, **options}
        self._embedded: Any = None

        self._http: httpx.AsyncClient | None = None
        self._logged_in = False
        self._login_epoch = 0
        self._ws: ClientConnection | None = None
        self._ws_task: asyncio.Task[None] | None = None
        self._first_attempt: asyncio.Future[str] | None = None
        self._mode: Literal["websocket", "rest"] | None = None
        self._reachable = False
        self._closed = False
        self._connect_lock: asyncio.Lock | None = None
        self._login_lock: asyncio.Lock | None = None
        self._gate: asyncio.Event | None = None
        self._gate_taken = False
        self._ws_auth_retried = False
        self._reconnect_now = False
        self._auth_failure: str | None = None
        self._auth_handled_ws: ClientConnection | None = None

        self._jobs: list[AsyncJob] = []
        self._pending: collections.OrderedDict[str, AsyncJob] = collections.OrderedDict()
        self._by_tag: dict[str, AsyncJob] = {}
        self._by_task: dict[int, AsyncJob] = {}
        self._by_exec: dict[str, AsyncJob] = {}
        self._by_job_id: dict[str, AsyncJob] = {}
        self._resend: list[tuple[AsyncJob, str]] = []
        self._reader = protocol.FrameReader()
        self._tasks: set[asyncio.Task[Any]] = set()

    # ----------------------------------------------------------------- public surface

    @property
    def gateway(self) -> str:
        """The gateway's URL (``"embedded"`` until the embedded gateway has started)."""
        return self._gateway

    @property
    def user(self) -> str | None:
        """The logged-in user (as the server spells it), or the configured one."""
        return self._user

    @property
    def transport_in_use(self) -> Literal["websocket", "rest"] | None:
        """``"websocket"`` while the socket is open, ``"rest"`` while following over REST."""
        if self._closed:
            return None
        if self._ws is not None:
            return "websocket"
        return self._mode

    @property
    def connected(self) -> bool:
        """Logged in, and the socket is open (or REST answered last time in REST mode)."""
        if self._closed or not self._logged_in:
            return False
        return self._ws is not None or (self._mode == "rest" and self._reachable)

    @property
    def jobs(self) -> list[AsyncJob]:
        """This client's jobs, oldest first."""
        return list(self._jobs)

    def __repr__(self) -> str:
        auth = "token" if self._token else "password" if self._password is not None else "none"
        return (
            f"{type(self).__name__}(gateway={self._gateway!r}, user={self._user!r}, "
            f"auth={auth}, transport={self.transport!r}, in_use={self.transport_in_use!r})"
        )

    async def __aenter__(self) -> AsyncLinkisClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Log in and open the socket (done by submit and attach when needed)."""
        if self._closed:
            raise LinkisError("the client is closed")
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
            self._login_lock = asyncio.Lock()
        async with self._connect_lock:
            if self._http is None:
                await self._start_http()
            if not self._logged_in:
                await self._login()
            if self.transport == "rest":
                self._mode = "rest"
                return
            if self._ws_task is None:
                self._first_attempt = asyncio.get_running_loop().create_future()
                self._ws_task = self._spawn(self._socket_loop())
            assert self._first_attempt is not None
            if not self._first_attempt.done():
                await asyncio.shield(self._first_attempt)
            elif self._first_attempt.exception() is not None:
                raise self._first_attempt.exception()  # type: ignore[misc]

    async def submit(
        self,
        code: str,
        engine: str = "spark",
        run_type: str | None = None,
        variables: Mapping[str, Any] | None = None,
        startup: Mapping[str, Any] | None = None,
        runtime: Mapping[str, Any] | None = None,
        special: Mapping[str, Any] | None = None,
        script_path: str | None = None,
        creator: str | None = None,
    ) -> AsyncJob:
        """Submit ``code`` to ``engine`` and return its job at once (status Inited).

        The job's execID and taskID arrive with the server's answer; ``job.wait()`` follows
        it to the end. Variables and configuration values are sent as strings.
        """
        if not isinstance(code, str):
            raise TypeError("code must be a string")
        if not engine or not isinstance(engine, str):
            raise ValueError("engine must name a Linkis engine such as spark, python or shell")
        await self.connect()
        run_type = run_type or default_run_type(engine)
        creator = creator or self.creator
        job = AsyncJob(self, code, engine, run_type, creator=creator)
        job.tag = uuid.uuid4().hex
        job.request = {
            "variables": variables,
            "startup": startup,
            "runtime": runtime,
            "special": special,
            "script_path": script_path,
        }
        self._jobs.append(job)
        self._by_tag[job.tag] = job
        frame = protocol.build_execute_frame(
            code,
            engine,
            run_type,
            tag=job.tag,
            creator=creator,
            variables=variables,
            startup=startup,
            runtime=runtime,
            special=special,
            script_path=script_path,
        )
        text = protocol.encode_frame(frame)
        job.frame = text
        # Once the frame may be on its way, the job must be followed even if the caller is
        # interrupted: the send and the follower's start are shielded from cancellation.
        await asyncio.shield(self._start(job, text))
        return job

    async def _start(self, job: AsyncJob, text: str) -> None:
        try:
            sent = await self._submit_over_socket(job, text)
        except BaseException:
            self._jobs.remove(job)
            self._by_tag.pop(job.tag or "", None)
            self._pending.pop(job.tag or "", None)
            raise
        if sent:
            logger.info("job submitted over the socket (engine %s, tag %s)", job.engine, job.tag)
        self._spawn(self._follow(job))

    async def attach(self, exec_id: str, task_id: int | None = None) -> AsyncJob:
        """Follow a job submitted elsewhere, with its earlier log lines."""
        if not exec_id or not isinstance(exec_id, str):
            raise ValueError("attach needs the job's execID")
        await self.connect()
        known = self._by_exec.get(exec_id) or (
            self._by_task.get(task_id) if task_id is not None else None
        )
        if known is not None:
            return known
        job = AsyncJob(self, "", "", "", exec_id=exec_id, task_id=task_id)
        job.submitted_at = None
        if task_id is not None:
            with contextlib.suppress(LinkisError):
                self._describe(job, await self._task_record(task_id))
        try:
            await self._read_status(job)
        except ServerError as exc:
            raise ServerError(
                f"cannot attach to job {exec_id}: {exc.message}",
                status=exc.status,
                err_code=exc.err_code,
                method=exc.method,
            ) from None
        self._jobs.append(job)
        self._register(job)
        job.log_due = True
        if self._ws is not None:
            await self._subscribe(job)
        logger.info("attached to job %s (taskID %s)", exec_id, task_id)
        self._spawn(self._follow(job))
        return job

    async def close(self) -> None:
        """Stop following jobs (they go on on the server), close the socket and HTTP client."""
        if self._closed:
            return
        self._closed = True
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        for task in list(self._tasks):
            if task is not current:
                with contextlib.suppress(BaseException):
                    await task
        for job in self._jobs:
            if not job.done:
                job.finish("the client was closed while following the job")
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
            self._ws = None
        if self._http is not None:
            await self._http.aclose()
        self._mode = None
        logger.info("client for %s closed", self._gateway)

    # ----------------------------------------------------------------- HTTP and login

    async def _start_http(self) -> None:
        if self._gateway == EMBEDDED:
            from linkis_magic import gateway as embedded

            server = await asyncio.to_thread(embedded.start_embedded)
            self._embedded = server
            self._gateway = str(server.url).rstrip("/")
            user, password, token = server.credentials
            if self._user is None and self._password is None and self._token is None:
                self._user, self._password, self._token = user, password, None
                if password is None:
                    self._token = token
        timeout = httpx.Timeout(self.options["request_timeout"])
        self._http = httpx.AsyncClient(
            base_url=self._gateway + protocol.REST_PREFIX,
            timeout=timeout,
            verify=self._verify,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    def _auth_headers(self) -> dict[str, str]:
        if self._token and self._user:
            return {protocol.TOKEN_CODE_HEADER: self._token, protocol.TOKEN_USER_HEADER: self._user}
        return {}

    async def _login(self) -> None:
        assert self._http is not None
        self._http.cookies.clear()
        if self._token:
            if not self._user:
                raise AuthError("token login needs the user the token belongs to (user=...)")
            try:
                env = await self._request("POST", "/user/token-login", auth_retry=False)
            except _HTTPError:
                logger.info(
                    "no token-login on %s; sending the token on every request", self._gateway
                )
                env = None
            except (ServerError, AuthError) as exc:
                raise AuthError(
                    f"token login failed for user {self._user!r}: {_message(exc)}"
                ) from None
        elif self._password is not None:
            if not self._user:
                raise AuthError("password login needs a user name (user=...)")
            body = {"userName": self._user, "password": self._password}
            try:
                env = await self._request("POST", "/user/login", json=body, auth_retry=False)
            except (ServerError, AuthError) as exc:
                raise AuthError(f"login failed for user {self._user!r}: {_message(exc)}") from None
        else:
            env = None
        if env is not None and isinstance(env.data.get("userName"), str):
            self._user = env.data["userName"]
        self._logged_in = True
        self._login_epoch += 1
        logger.info("logged in to %s as %s", self._gateway, self._user)

    async def _relogin(self, epoch: int) -> None:
        """Log in again once, unless someone else already did since ``epoch``."""
        assert self._login_lock is not None
        async with self._login_lock:
            if self._login_epoch != epoch:
                return
            if self._auth_failure is not None:
                # The stored credentials were refused once: do not hammer the login.
                raise AuthError(self._auth_failure)
            if not (self._token or self._password is not None):
                raise AuthError("the gateway wants a login and the client has no credentials")
            logger.info("session expired; logging in to %s again", self._gateway)
            try:
                await self._login()
            except AuthError as exc:
                self._auth_failure = str(exc)
                raise

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        auth_retry: bool = True,
    ) -> protocol.Envelope:
        """One REST call; the reply's envelope. Re-logs in once on 401 or status -1."""
        assert self._http is not None
        epoch = self._login_epoch
        try:
            reply = await self._http.request(
                method, path.lstrip("/"), params=params, json=json, headers=self._auth_headers()
            )
        except httpx.TimeoutException:
            self._reachable = False
            raise ConnectionError(
                f"{method} {path}: no answer from {self._gateway} within "
                f"{self.options['request_timeout']:g} s"
            ) from None
        except httpx.HTTPError as exc:
            self._reachable = False
            raise ConnectionError(
                f"{method} {path}: cannot reach {self._gateway} ({type(exc).__name__})"
            ) from None
        self._reachable = True
        try:
            env = protocol.parse_envelope(reply.json())
        except ValueError:
            if reply.status_code == 401:
                env = protocol.Envelope(None, protocol.MessageStatus.NOT_LOGGED_IN, "", {})
            else:
                raise _HTTPError(
                    f"{method} {path}: HTTP {reply.status_code}, not a Linkis reply",
                    reply.status_code,
                ) from None
        if env.status == protocol.MessageStatus.NOT_LOGGED_IN or reply.status_code == 401:
            if auth_retry:
                await self._relogin(epoch)
                return await self._request(method, path, params=params, json=json, auth_retry=False)
            raise AuthError(f"not logged in: {env.message or 'HTTP 401'}")
        if not env.ok:
            raise ServerError(env.message, status=env.status, err_code=env.err_code, method=path)
        return env

    # ----------------------------------------------------------------- the socket

    def _ws_url(self) -> str:
        base = self._gateway
        scheme = "wss://" if base.startswith("https://") else "ws://"
        return scheme + base.split("://", 1)[1] + self.options["ws_path"]

    def _ws_tls(self) -> dict[str, Any]:
        """The socket's TLS settings: the same verification as REST."""
        if not self._gateway.startswith("https://") or self._verify is True:
            return {}
        if self._verify is False:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return {"ssl": context}
        return {"ssl": self._verify}

    def _ws_headers(self) -> dict[str, str]:
        assert self._http is not None
        headers = self._auth_headers()
        cookies = "; ".join(f"{c.name}={c.value}" for c in self._http.cookies.jar)
        if cookies:
            headers["Cookie"] = cookies
        return headers

    async def _open_socket(self) -> ClientConnection:
        retried = False
        while True:
            epoch = self._login_epoch
            try:
                return await connect(
                    self._ws_url(),
                    additional_headers=self._ws_headers(),
                    open_timeout=self.options["connect_timeout"],
                    ping_interval=self.options["ping_interval"],
                    ping_timeout=self.options["ping_interval"],
                    max_size=self.options["max_message_size"],
                    compression=None,
                    logger=_WS_LOGGER,
                    **self._ws_tls(),
                )
            except InvalidStatus as exc:
                code = exc.response.status_code
                if code == 401 and not retried:
                    retried = True
                    await self._relogin(epoch)
                    continue
                if code == 401:
                    raise AuthError("the gateway refused the socket: not logged in") from None
                if code in _REFUSED_UPGRADE:
                    raise _UpgradeRefused(f"HTTP {code}") from None
                raise ConnectionError(f"WebSocket upgrade failed with HTTP {code}") from None
            except (OSError, asyncio.TimeoutError, InvalidHandshake, InvalidURI) as exc:
                raise ConnectionError(
                    f"cannot open a WebSocket to {self._gateway} ({type(exc).__name__}: {exc})"
                ) from None

    def _settle_first(self, outcome: str | BaseException) -> None:
        first = self._first_attempt
        if first is None or first.done():
            return
        if isinstance(outcome, BaseException):
            first.set_exception(outcome)
        else:
            first.set_result(outcome)

    async def _socket_loop(self) -> None:
        """Keep one socket open: connect, read, and reconnect with backoff when it drops."""
        delay = self.options["reconnect_delay"]
        while not self._closed:
            try:
                ws = await self._open_socket()
            except _UpgradeRefused as exc:
                if self.transport == "websocket":
                    self._settle_first(
                        ConnectionError(f"the gateway refused the WebSocket ({exc})")
                    )
                    return
                logger.info("the gateway refused the WebSocket (%s): REST only", exc)
                self._mode = "rest"
                self._settle_first("rest")
                self._wake_all()
                return
            except AuthError as exc:
                self._settle_first(exc)
                self._fail_all(f"authentication failed: {exc}")
                return
            except Exception as caught:
                error = caught if isinstance(caught, ConnectionError) else _unexpected(caught)
                first = self._first_attempt is not None and not self._first_attempt.done()
                if first and self.transport == "websocket":
                    self._settle_first(error)
                    return
                if self.transport == "auto":
                    self._mode = "rest"
                self._settle_first("rest")
                logger.info("%s; retrying in %.1f s", error, delay)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self.options["reconnect_max_delay"])
                continue
            self._ws = ws
            self._mode = "websocket"
            self._new_gate()
            logger.info("WebSocket open to %s", self._gateway)
            self._spawn(self._on_socket_open())
            self._settle_first("websocket")
            opened = time.monotonic()
            await self._read_frames(ws)
            self._ws = None
            self._on_socket_lost()
            if self._closed:
                return
            if self._reconnect_now or time.monotonic() - opened > 10:
                delay = self.options["reconnect_delay"]
                self._reconnect_now = False
                continue
            logger.info("reconnecting in %.1f s", delay)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self.options["reconnect_max_delay"])

    async def _read_frames(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                try:
                    self._on_frame(message)
                except Exception:
                    logger.exception("a frame could not be handled")
        except ConnectionClosed as exc:
            logger.info("WebSocket to %s closed: %s", self._gateway, exc)
        else:
            logger.info("WebSocket to %s closed", self._gateway)

    def _new_gate(self) -> None:
        """Hold all frames but the first of a new socket until the socket answers it."""
        self._gate = asyncio.Event()
        self._gate_taken = False
        asyncio.get_running_loop().call_later(self.options["first_reply_wait"], self._gate.set)

    async def _on_socket_open(self) -> None:
        """A new socket: re-subscribe unfinished jobs, send frames refused for a login."""
        for job in self._jobs:
            if job.done or job.exec_id is None:
                continue
            job.push_next = None
            job.log_due = True
            job.wake.set()
            with contextlib.suppress(ConnectionError):
                await self._subscribe(job)
        resend, self._resend = self._resend, []
        for job, text in resend:
            if not job.done and await self._submit_over_socket(job, text):
                logger.info("execute frame sent again after logging in (tag %s)", job.tag)
            elif not job.done:
                self._spawn(self._submit_rest(job))

    def _on_socket_lost(self) -> None:
        if self.transport == "auto" and not self._closed:
            self._mode = "rest"
        for job in self._jobs:
            # Lines written while no socket listens are never pushed: from now on the log
            # is read over REST, which numbers its lines.
            job.push_next = None
        for tag, job in list(self._pending.items()):
            self._pending.pop(tag, None)
            job.finish(
                "the connection to the gateway dropped before it answered the execute request: "
                "the job's execID never arrived, so it cannot be followed; it was not "
                "resubmitted (it may still run on the server)"
            )
        self._wake_all()

    async def _send(self, text: str) -> None:
        """Send a frame on the current socket; ConnectionError if there is none."""
        ws = self._ws
        if ws is None:
            raise ConnectionError("the WebSocket is not open")
        gate = self._gate
        if gate is not None and not gate.is_set():
            if self._gate_taken:
                await gate.wait()
            self._gate_taken = True
        if self._ws is not ws:
            raise ConnectionError("the WebSocket was reopened")
        try:
            await ws.send(text)
        except ConnectionClosed as exc:
            raise ConnectionError(f"the WebSocket closed: {exc}") from None

    async def _subscribe(self, job: AsyncJob) -> None:
        assert job.exec_id is not None
        await self._send(protocol.encode_frame(protocol.build_job_frame(job.exec_id, "status")))

    async def _submit_over_socket(self, job: AsyncJob, text: str) -> bool:
        """Send the execute frame if the socket is the way; False to submit over REST."""
        if self.transport == "rest" or self._ws is None:
            if self.transport == "websocket":
                raise ConnectionError("transport is websocket and the WebSocket is not open")
            return False
        if len(text.encode("utf-8")) > self.options["max_frame_size"]:
            if self.transport == "websocket":
                raise ProtocolError(
                    f"the execute frame is larger than {self.options['max_frame_size']} bytes; "
                    "use transport='auto' or 'rest' to submit it over REST"
                )
            logger.info("execute frame too large for the socket; submitting over REST")
            return False
        assert job.tag is not None
        self._pending[job.tag] = job
        job.push_next = 1
        job.accept_deadline = time.monotonic() + self.options["execute_timeout"]
        try:
            await self._send(text)
        except ConnectionError:
            # ws.send raises before writing anything: the server never saw this frame.
            self._pending.pop(job.tag, None)
            job.push_next = None
            if self.transport != "websocket":
                return False
            if self._closed or self._ws_task is None or self._ws_task.done():
                raise
            # The socket is being replaced (a re-login, a drop): send it on the next one.
            logger.info("socket closing; the execute frame waits for the next (tag %s)", job.tag)
            self._resend.append((job, text))
        return True

    # ----------------------------------------------------------------- incoming frames

    def _on_frame(self, message: str | bytes) -> None:
        event = self._reader.feed(message)
        if self._gate is not None and not self._gate.is_set():
            self._gate.set()
        if isinstance(event, protocol.Ignored):
            logger.debug("frame ignored: %s %s", event.reason, event.raw[:200])
            return
        if isinstance(event, ErrorReply):
            self._on_error_reply(event)
            return
        self._ws_auth_retried = False
        if isinstance(event, protocol.KillReply):
            logger.debug("kill reply for %s: %s", event.exec_id, event.message)
            return
        job = self._route(event)
        if job is None:
            logger.debug("frame for a job this client does not follow: %s", type(event).__name__)
            return
        pending = job.exec_id is None or (job.tag is not None and job.tag in self._pending)
        if pending and not isinstance(event, WaitingSize):
            self._accept(job, event.exec_id, event.task_id)
        if isinstance(event, ExecuteAccepted):
            return
        self._apply(job, event)

    def _route(
        self, event: ExecuteAccepted | StatusChanged | ProgressUpdate | LogLines | WaitingSize
    ) -> AsyncJob | None:
        tag = event.tag
        if tag is not None and tag in self._by_tag:
            job = self._by_tag[tag]
            if event.task_id is None or job.task_id in (None, event.task_id):
                return job
        if isinstance(event, ExecuteAccepted):
            # The 0.x document's execute reply carries no tag: replies come in request order.
            if tag is None and self._pending:
                return next(iter(self._pending.values()))
            return None
        if event.task_id is not None:
            return self._by_task.get(event.task_id)
        found = self._by_exec.get(event.exec_id)
        if found is not None:
            return found
        job_id = _job_id(event.exec_id)
        found = self._by_job_id.get(job_id) if job_id else None
        return found if found is not None and not found.done else None

    def _accept(self, job: AsyncJob, exec_id: str, task_id: int | None) -> None:
        if job.tag is not None:
            self._pending.pop(job.tag, None)
        if job.exec_id is None:
            job.accepted(exec_id, task_id)
            logger.info("job %s accepted (taskID %s)", exec_id, task_id)
        elif task_id is not None and job.task_id is None:
            job.task_id = task_id
        self._register(job)
        job.wake.set()
        job.emit(ExecuteAccepted(job.exec_id or exec_id, job.task_id, job.tag))

    def _register(self, job: AsyncJob) -> None:
        if job.exec_id is not None:
            self._by_exec[job.exec_id] = job
            job_id = _job_id(job.exec_id)
            if job_id:
                self._by_job_id[job_id] = job
        if job.task_id is not None:
            self._by_task[job.task_id] = job

    def _apply(
        self, job: AsyncJob, event: StatusChanged | ProgressUpdate | LogLines | WaitingSize
    ) -> None:
        if job.exec_id is not None and event.exec_id != job.exec_id:
            # One job, several spellings (legacy and REST execIDs, waitingSize's own form):
            # subscribers see the job's.
            event = dataclasses.replace(event, exec_id=job.exec_id)
        if isinstance(event, StatusChanged):
            if job.set_status(event.status):
                job.emit(event)
        elif isinstance(event, ProgressUpdate):
            job.set_progress(event.progress, event.progress_info)
            job.emit(event)
        elif isinstance(event, LogLines):
            self._on_log_push(job, event)
        elif isinstance(event, WaitingSize) and job.status in _QUEUED:
            job.waiting_size = event.waiting_size
            job.emit(event)

    def _on_log_push(self, job: AsyncJob, event: LogLines) -> None:
        lines = split_lines(event.all)
        if not lines:
            return
        if job.push_next is None:
            # Where this chunk sits in the log is unknown (socket re-opened, job attached):
            # REST, which numbers lines, reads it instead.
            job.log_due = True
            job.wake.set()
            return
        first = job.push_next
        job.push_next += len(lines)
        job.log_pushed = True
        self._add_lines(job, first, lines, event.tag, event.emitted)

    def _add_lines(
        self,
        job: AsyncJob,
        first: int,
        lines: list[str],
        tag: str | None,
        emitted: float | None = None,
    ) -> int:
        fresh = job.add_log_lines(first, lines)
        if fresh < 0:
            job.log_due = True
            job.wake.set()
            return 0
        if fresh:
            new = lines[len(lines) - fresh :]
            job.emit(_log_event(job, new, job.logs.lines - fresh + 1, tag, emitted))
        return fresh

    def _on_error_reply(self, event: ErrorReply) -> None:
        if event.kind is protocol.ErrorKind.NOT_LOGGED_IN:
            refused = self._pending.pop(event.tag, None) if event.tag else None
            if refused is not None and refused.frame is not None:
                # Refused before it ran: sending it again after the login is no duplicate.
                self._resend.append((refused, refused.frame))
            self._spawn(self._socket_auth_failed(event))
            return
        if event.method == protocol.EXECUTE_METHOD or (
            event.tag is not None and event.tag in self._pending
        ):
            job = self._pending.get(event.tag) if event.tag else None
            if job is None and self._pending:
                job = next(iter(self._pending.values()))
            if job is not None:
                assert job.tag is not None
                self._pending.pop(job.tag, None)
                job.finish(f"the gateway rejected the job: {event.message}")
            return
        if event.is_gateway_error:
            logger.info("gateway error frame (%s); reconnecting", event.message)
            self._reconnect_now = True
            if self._ws is not None:
                self._spawn(self._ws.close())
            return
        logger.debug("error reply to %s: %s", event.method, event.message)

    async def _socket_auth_failed(self, event: ErrorReply) -> None:
        ws = self._ws
        if ws is not None and ws is self._auth_handled_ws:
            return  # another refusal on the socket already being replaced
        self._auth_handled_ws = ws
        if self._ws_auth_retried:
            self._fail_all(f"authentication failed: the gateway says {event.message!r}")
            if self._ws is not None:
                await self._ws.close()
            return
        self._ws_auth_retried = True
        try:
            await self._relogin(self._login_epoch)
        except LinkisError as exc:
            self._fail_all(f"authentication failed: {exc}")
            return
        self._reconnect_now = True
        await self._settle_pending(self.options["first_reply_wait"])
        if self._ws is not None:
            await self._ws.close()

    async def _settle_pending(self, timeout: float) -> None:
        """Let execute frames already sent on this socket be answered before it is closed.

        A frame the server refused for the login is sent again on the next socket; one whose
        answer the close would cut off could only be failed, never safely sent again.
        """
        deadline = time.monotonic() + timeout
        while self._pending and self._ws is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    # ----------------------------------------------------------------- following a job

    def _spawn(self, coro: Coroutine[Any, Any, T] | Awaitable[T]) -> asyncio.Task[T]:
        task: asyncio.Task[T] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a client task failed", exc_info=task.exception())

    def _wake_all(self) -> None:
        for job in self._jobs:
            job.wake.set()

    def _fail_all(self, reason: str) -> None:
        for job in self._jobs:
            if not job.done:
                job.finish(reason)

    async def _follow(self, job: AsyncJob) -> None:
        try:
            if job.exec_id is None:
                if job.tag in self._pending:
                    await self._await_accept(job)
                else:
                    await self._submit_rest(job)
            if job.done:
                return
            if job.kill_requested:
                with contextlib.suppress(LinkisError):
                    await self._kill(job)
            await self._track(job)
        except asyncio.CancelledError:
            raise
        except AuthError as exc:
            job.finish(f"authentication failed: {exc}")
        except Exception as exc:
            logger.exception("following job %s failed", job.exec_id)
            job.finish(f"the client stopped following the job: {type(exc).__name__}: {exc}")
        finally:
            if job.exec_id is not None and job.done:
                self._reader.forget(job.exec_id)

    async def _await_accept(self, job: AsyncJob) -> None:
        while job.exec_id is None and not job.done:
            remaining = job.accept_deadline - time.monotonic()
            if remaining <= 0:
                assert job.tag is not None
                self._pending.pop(job.tag, None)
                job.finish(
                    f"the gateway did not answer the execute request within "
                    f"{self.options['execute_timeout']:g} s: the job's execID never arrived, "
                    "so it cannot be followed; it was not resubmitted (it may still run on "
                    "the server)"
                )
                return
            job.wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(job.wake.wait(), min(remaining, 1.0))

    async def _submit_rest(self, job: AsyncJob) -> None:
        request = job.request
        assert self._user is not None or not (self._password or self._token)
        body = protocol.build_submit_body(
            job.code,
            job.engine,
            job.run_type,
            user=self._user or "",
            creator=job.creator,
            variables=request.get("variables"),
            startup=request.get("startup"),
            runtime=request.get("runtime"),
            special=request.get("special"),
            script_path=request.get("script_path"),
            engine_versions=self.options["engine_versions"],
        )
        try:
            try:
                env = await self._request("POST", "/entrance/submit", json=body)
            except _HTTPError as exc:
                if exc.http_status != 404:
                    raise
                old = protocol.build_execute_body(
                    job.code,
                    job.engine,
                    job.run_type,
                    creator=job.creator,
                    variables=request.get("variables"),
                    startup=request.get("startup"),
                    runtime=request.get("runtime"),
                    special=request.get("special"),
                    script_path=request.get("script_path"),
                )
                env = await self._request("POST", "/entrance/execute", json=old)
        except ServerError as exc:
            job.finish(f"the gateway rejected the job: {exc.message}")
            return
        except ConnectionError as exc:
            job.finish(
                f"submitting over REST failed ({exc}): the job's execID never arrived, so it "
                "cannot be followed; it was not resubmitted"
            )
            return
        exec_id = env.data.get("execID")
        if not isinstance(exec_id, str) or not exec_id:
            job.finish("the gateway's submit reply has no execID")
            return
        task_id = protocol._as_int(env.data.get("taskID"), None)
        job.push_next = None
        self._accept(job, exec_id, task_id)
        logger.info("job %s submitted over REST (taskID %s)", exec_id, task_id)
        if self._ws is not None:
            with contextlib.suppress(ConnectionError):
                await self._subscribe(job)

    async def _track(self, job: AsyncJob) -> None:
        """Follow a job to its end: pushes update it; REST fills what they leave out."""
        opts = self.options
        unreachable_since: float | None = None
        next_poll = 0.0
        log_interval, next_log = opts["log_gap"], 0.0
        progress_interval, next_progress = opts["progress_gap"], 0.0
        status_interval, next_status = opts["status_gap"] / 2, 0.0
        poll_interval = opts["poll_interval"]
        last_read = 0.0
        while not job.done:
            if job.status.is_terminal:
                await self._finalize(job)
                return
            now = time.monotonic()
            try:
                if self._ws is None and self.transport == "websocket":
                    raise ConnectionError("the WebSocket is closed; waiting to reconnect")
                if self._ws is None:
                    if now >= next_poll or job.log_due:
                        job.log_due = False
                        changed = await self._poll(job)
                        # Queued jobs change rarely: poll them less as they wait.
                        queued = job.status in _QUEUED and not changed
                        poll_interval = (
                            min(poll_interval * 2, opts["max_gap"])
                            if queued
                            else opts["poll_interval"]
                        )
                        next_poll = time.monotonic() + poll_interval
                else:
                    # A push whose lines cannot be placed asks for a read, at most a few a second.
                    due = job.log_due and now - last_read >= _LOG_DUE_INTERVAL
                    if due or (
                        self.transport == "auto"
                        and job.status is JobStatus.RUNNING
                        and now - job.last_log_change >= opts["log_gap"]
                        and now >= next_log
                    ):
                        job.log_due = False
                        last_read = now
                        got = await self._read_log(job)
                        log_interval = (
                            opts["log_gap"] if got else min(log_interval * 2, opts["max_gap"])
                        )
                        next_log = time.monotonic() + log_interval
                    if (
                        self.transport == "auto"
                        and job.status is JobStatus.RUNNING
                        and now - job.last_progress_at >= opts["progress_gap"]
                        and now >= next_progress
                    ):
                        moved = await self._read_progress(job)
                        progress_interval = (
                            opts["progress_gap"]
                            if moved
                            else min(progress_interval * 2, opts["max_gap"])
                        )
                        next_progress = time.monotonic() + progress_interval
                    if (
                        self.transport == "auto"
                        and now - job.last_status_at >= opts["status_gap"]
                        and now >= next_status
                    ):
                        status_interval = min(status_interval * 2, 8 * opts["status_gap"])
                        next_status = now + status_interval
                        if await self._read_status(job):
                            status_interval = opts["status_gap"]
                unreachable_since = None
            except ConnectionError as exc:
                unreachable_since = unreachable_since or now
                if now - unreachable_since > opts["give_up_after"]:
                    job.finish(
                        f"the gateway has been unreachable for {opts['give_up_after']:g} s: {exc}"
                    )
                    return
                logger.debug("job %s: %s", job.exec_id, exc)
                next_poll = time.monotonic() + min(opts["reconnect_max_delay"], 1.0)
            except (ServerError, ProtocolError) as exc:
                logger.debug("job %s: %s", job.exec_id, exc)
                next_poll = time.monotonic() + opts["poll_interval"]
            if job.done or job.status.is_terminal:
                continue
            job.wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(job.wake.wait(), _TICK)

    async def _poll(self, job: AsyncJob) -> bool:
        """REST-only following: status, and while running the log and progress."""
        changed = await self._read_status(job)
        if job.status is JobStatus.RUNNING:
            changed = await self._read_log(job) > 0 or changed
            changed = await self._read_progress(job) or changed
        elif not job.logs.lines:
            changed = await self._read_log(job) > 0 or changed
        return changed

    def _job_params(self, job: AsyncJob) -> dict[str, Any]:
        return {"taskID": job.task_id} if job.task_id is not None else {}

    async def _read_status(self, job: AsyncJob) -> bool:
        """Read the job's status over REST; True if it changed."""
        assert job.exec_id is not None
        try:
            env = await self._request(
                "GET", f"/entrance/{job.exec_id}/status", params=self._job_params(job)
            )
            raw = env.data.get("status")
        except ServerError:
            if job.task_id is None:
                raise
            raw = (await self._task_record(job.task_id)).get("status")
        try:
            status = JobStatus.parse(raw)
        except ValueError:
            logger.debug("job %s: unknown status %r", job.exec_id, raw)
            job.last_status_at = time.monotonic()
            return False
        if not job.set_status(status):
            return False
        job.emit(StatusChanged(job.exec_id, job.task_id, status, job.tag))
        return True

    async def _read_progress(self, job: AsyncJob) -> bool:
        assert job.exec_id is not None
        try:
            env = await self._request("GET", f"/entrance/{job.exec_id}/progress")
        except ServerError:
            job.last_progress_at = time.monotonic()
            return False  # "not generated yet" (section 4.3): progress stays where it is
        try:
            value = float(env.data.get("progress") or 0.0)
        except (TypeError, ValueError):
            return False
        raw = env.data.get("progressInfo") or []
        info = tuple(ProgressInfo.from_wire(i) for i in raw if isinstance(i, Mapping))
        before = (job.progress, job.progress_info)
        job.set_progress(value, info)
        if (job.progress, job.progress_info) == before:
            return False
        job.emit(ProgressUpdate(job.exec_id, job.task_id, job.progress, info, job.tag))
        return True

    async def _read_log(self, job: AsyncJob) -> int:
        """Read the log from the first line not held yet; returns how many lines were new."""
        assert job.exec_id is not None
        first = job.logs.lines + 1
        params = {"fromLine": first, "size": -1, **self._job_params(job)}
        env = await self._request("GET", f"/entrance/{job.exec_id}/log", params=params)
        _error, _warn, _info, text = protocol.split_log_buckets(env.data.get("log"))
        lines = split_lines(text)
        after = protocol._as_int(env.data.get("fromLine"), None)
        if after is not None and after >= first and after - first != len(lines):
            # The server counted lines our split does not see (trailing blank lines).
            count = after - first
            lines = lines[:count] + [""] * (count - len(lines))
        return self._add_lines(job, first, lines, job.tag)

    async def _finalize(self, job: AsyncJob) -> None:
        """The job ended: read the rest of its log, why it failed, then mark it done."""
        deadline = time.monotonic() + self.options["give_up_after"]
        # A server that pushed this job's log from its first line (and flushes it before the
        # final status, as 0.x and the embedded gateway do) has nothing left to read.
        complete = job.push_next is not None and job.log_pushed and not job.log_due
        while not complete:
            try:
                # size=-1 reads up to 10000 lines (section 4.3): a full read may have more.
                while await self._read_log(job) >= _LOG_READ_MAX:
                    pass
                break
            except ServerError:
                await self._read_log_file(job)
                break
            except (ConnectionError, ProtocolError) as exc:
                if time.monotonic() > deadline:
                    logger.warning(
                        "job %s ended; its last log lines could not be read: %s", job.exec_id, exc
                    )
                    break
                await asyncio.sleep(min(1.0, self.options["reconnect_max_delay"]))
        if not job.status.is_success and job.task_id is not None:
            with contextlib.suppress(LinkisError):
                task = await self._task_record(job.task_id)
                desc = task.get("errDesc")
                if desc:
                    job.server_error = str(desc)
        if job.status.is_success:
            self._locate_results(job)
        job.finish()

    async def _read_log_file(self, job: AsyncJob) -> None:
        """The whole log of a job the entrance no longer holds (filesystem/openLog)."""
        if job.task_id is None:
            return
        with contextlib.suppress(LinkisError):
            task = await self._task_record(job.task_id)
            path = task.get("logPath")
            if not path:
                return
            env = await self._request("GET", "/filesystem/openLog", params={"path": path})
            _e, _w, _i, text = protocol.split_log_buckets(env.data.get("log"))
            self._add_lines(job, 1, split_lines(text), job.tag)

    async def _task_record(self, task_id: int) -> dict[str, Any]:
        env = await self._request("GET", f"/jobhistory/{task_id}/get")
        task = env.data.get("task")
        if not isinstance(task, Mapping):
            raise ProtocolError(f"jobhistory has no task {task_id}")
        return dict(task)

    def _describe(self, job: AsyncJob, task: Mapping[str, Any]) -> None:
        """Fill an attached job's description from its jobhistory record."""
        job.engine = str(task.get("executeApplicationName") or task.get("engineType") or "")
        job.run_type = str(task.get("runType") or "")
        job.code = str(task.get("executionCode") or "")
        created = task.get("createdTime")
        if isinstance(created, int | float) and created > 0:
            job.submitted_at = created / 1000.0
        with contextlib.suppress(ValueError):
            status = JobStatus.parse(task.get("status"))
            if status.is_terminal:
                job.set_status(status)

    # ----------------------------------------------------------------- kill and results

    async def _kill(self, job: AsyncJob) -> None:
        job.kill_requested = True
        if job.exec_id is None:
            job.wake.set()
            return
        logger.info("killing job %s (taskID %s)", job.exec_id, job.task_id)
        if self.transport == "websocket" and self._ws is not None:
            frame = protocol.build_job_frame(job.exec_id, "kill")
            await self._send(protocol.encode_frame(frame))
        else:
            try:
                await self._request(
                    "GET", f"/entrance/{job.exec_id}/kill", params=self._job_params(job)
                )
            except ConnectionError:
                if self._ws is None:
                    raise
                frame = protocol.build_job_frame(job.exec_id, "kill")
                await self._send(protocol.encode_frame(frame))
            except ServerError as exc:
                logger.info("kill of job %s: %s", job.exec_id, exc.message)
        job.last_status_at = 0.0
        job.wake.set()

    async def _results(self, job: AsyncJob, limit: int | None) -> list[results.ResultSet]:
        if job.task_id is None:
            raise LinkisError("the job has no taskID, so its results cannot be found")
        located = job.result_paths
        paths = await located if located is not None and not located.cancelled() else None
        if paths is None:
            paths = await self._result_paths(job.task_id)

        async def fetch(path: str, page: int, size: int) -> Mapping[str, Any]:
            params = {"path": path, "page": page, "pageSize": size}
            return (await self._request("GET", "/filesystem/openFile", params=params)).data

        out = []
        for position, path in enumerate(paths):
            index = results.result_index(path)
            out.append(
                await results.read_result_set(
                    fetch,
                    index if index < (1 << 30) else position,
                    path,
                    limit=limit,
                    page_size=self.options["page_size"],
                )
            )
        return out

    async def _result_paths(self, task_id: int) -> list[str]:
        """The result files of a task: jobhistory's resultLocation, then its file tree."""
        task = await self._task_record(task_id)
        location = task.get("resultLocation")
        if not location:
            return []
        env = await self._request(
            "GET", "/filesystem/getDirFileTrees", params={"path": str(location)}
        )
        return results.result_paths(env.data.get("dirFileTrees"))

    def _locate_results(self, job: AsyncJob) -> None:
        """Find a succeeded job's result files now, while its caller is still busy elsewhere."""
        if job.task_id is None or job.result_paths is not None:
            return
        job.result_paths = self._spawn(self._result_paths_or_none(job.task_id))

    async def _result_paths_or_none(self, task_id: int) -> list[str] | None:
        try:
            return await self._result_paths(task_id)
        except LinkisError as exc:
            logger.debug("result files of taskID %s not located yet: %s", task_id, exc)
            return None


def _unexpected(exc: BaseException) -> ConnectionError:
    logger.error("opening the WebSocket failed unexpectedly", exc_info=exc)
    return ConnectionError(f"cannot open a WebSocket ({type(exc).__name__}: {exc})")


def _job_id(exec_id: str) -> str | None:
    try:
        return protocol.decode_exec_id(exec_id).job_id
    except ValueError:
        return None


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, ServerError) else str(exc)


def _log_event(
    job: AsyncJob, lines: list[str], first: int, tag: str | None, emitted: float | None = None
) -> LogLines:
    buckets: dict[str, list[str]] = {"ERROR": [], "WARN": [], "INFO": []}
    for line in lines:
        level = protocol.log_level_of(line)
        if level is not None:
            buckets[level].append(line + "\n")
    return LogLines(
        job.exec_id or "",
        job.task_id,
        error="".join(buckets["ERROR"]),
        warn="".join(buckets["WARN"]),
        info="".join(buckets["INFO"]),
        all="".join(line + "\n" for line in lines),
        from_line=first,
        tag=tag,
        emitted=emitted,
    )


# --------------------------------------------------------------------------- synchronous


class LoopThread:
    """One asyncio loop on a daemon thread, shared by every LinkisClient of the process."""

    _shared: LoopThread | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(
            target=self._main, args=(ready,), name="linkis-magic-loop", daemon=True
        )
        self.thread.start()
        ready.wait()

    @classmethod
    def shared(cls) -> LoopThread:
        with cls._lock:
            if cls._shared is None or not cls._shared.thread.is_alive():
                cls._shared = cls()
            return cls._shared

    def _main(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(ready.set)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop; the calling thread waits in short slices."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise RuntimeError("a LinkisClient call from its own loop thread would deadlock")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return wait_future(future, timeout)
        except BaseException:
            future.cancel()
            raise

    def call_soon(self, fn: Callable[[], object]) -> None:
        self.loop.call_soon_threadsafe(fn)

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self.thread


class LinkisClient:
    """The synchronous client: ``AsyncLinkisClient``'s API on a background event loop.

    Takes the same arguments as :class:`AsyncLinkisClient`. Calls block the calling thread
    in short slices (a KeyboardInterrupt arrives at once) and work inside a running event loop.
    """

    def __init__(
        self,
        gateway: str = "http://127.0.0.1:9001",
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        transport: Transport = "auto",
        creator: str = protocol.DEFAULT_CREATOR,
        verify: bool | str | ssl.SSLContext = True,
        **options: Any,
    ) -> None:
        self._client = AsyncLinkisClient(
            gateway, user, password, token, transport, creator, verify, **options
        )
        self._runner = LoopThread.shared()
        self._wrapped: dict[int, Job] = {}

    @property
    def async_client(self) -> AsyncLinkisClient:
        return self._client

    gateway = property(lambda self: self._client.gateway)
    user = property(lambda self: self._client.user)
    transport = property(lambda self: self._client.transport)
    transport_in_use = property(lambda self: self._client.transport_in_use)
    connected = property(lambda self: self._client.connected)
    options = property(lambda self: self._client.options)

    def __repr__(self) -> str:
        return repr(self._client).replace("AsyncLinkisClient(", "LinkisClient(", 1)

    def __enter__(self) -> LinkisClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wrap(self, job: AsyncJob) -> Job:
        wrapped = self._wrapped.get(id(job))
        if wrapped is None or wrapped.async_job is not job:
            wrapped = Job(job, self._runner, self._client.options["kill_wait"])
            self._wrapped[id(job)] = wrapped
        return wrapped

    @property
    def jobs(self) -> list[Job]:
        """This client's jobs, oldest first."""
        return [self._wrap(j) for j in self._client.jobs]

    def connect(self) -> None:
        """Log in and open the socket (submit and attach do it when needed)."""
        self._runner.run(self._client.connect())

    def submit(
        self,
        code: str,
        engine: str = "spark",
        run_type: str | None = None,
        variables: Mapping[str, Any] | None = None,
        startup: Mapping[str, Any] | None = None,
        runtime: Mapping[str, Any] | None = None,
        special: Mapping[str, Any] | None = None,
        script_path: str | None = None,
        creator: str | None = None,
    ) -> Job:
        """Submit ``code`` to ``engine``; returns the job at once (see AsyncLinkisClient)."""
        job = self._runner.run(
            self._client.submit(
                code, engine, run_type, variables, startup, runtime, special, script_path, creator
            )
        )
        return self._wrap(job)

    def attach(self, exec_id: str, task_id: int | None = None) -> Job:
        """Follow a job submitted elsewhere, with its earlier log lines."""
        return self._wrap(self._runner.run(self._client.attach(exec_id, task_id)))

    def close(self) -> None:
        """Stop following jobs and close the connection."""
        self._runner.run(self._client.close(), timeout=30)


__all__ = [
    "DEFAULT_OPTIONS",
    "AsyncLinkisClient",
    "LinkisClient",
    "LoopThread",
    "default_run_type",
]
