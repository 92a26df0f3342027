"""Shared fixtures: a real embedded gateway on loopback, extra gateways, a gateway subprocess.

Fixtures:
    gateway        session-scoped GatewayServer with user "alice" (see :class:`GatewayHandle`)
    second_user    another user ("bob") on the same gateway
    make_gateway   factory for more gateways (e.g. a restart on the same data dir)
    gateway_process  factory that runs ``linkis-magic gateway`` as a subprocess
    login          ``login(url, user, password) -> ticket`` (httpx, synchronous)
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from linkis_magic import protocol as p
from linkis_magic.gateway.app import GatewayServer

ALICE = ("alice", "alice-secret-pw", "alice-token-0123456789")
BOB = ("bob", "bob-secret-pw", "bob-token-0123456789")


@dataclass
class UserCreds:
    """A test user's credentials."""

    user: str
    password: str
    token: str


@dataclass
class GatewayHandle:
    """A running gateway and the user the tests log in as."""

    server: GatewayServer
    user: str
    password: str
    token: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def data_dir(self) -> Path:
        return self.server.data_dir

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{p.WS_PATH}"

    @property
    def creds(self) -> UserCreds:
        return UserCreds(self.user, self.password, self.token)

    def add_user(self, user: str, password: str, token: str) -> UserCreds:
        self.server.auth.add_user(user, password=password, token=token)
        return UserCreds(user, password, token)

    def stop(self) -> None:
        self.server.stop()


def _start(data_dir: Path, **options: Any) -> GatewayHandle:
    options.setdefault("engine_idle_timeout", 60.0)
    server = GatewayServer(host="127.0.0.1", port=0, data_dir=data_dir, **options)
    user, password, token = ALICE
    server.auth.add_user(user, password=password, token=token)
    server.start()
    return GatewayHandle(server, user, password, token)


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayHandle]:
    """One gateway for the whole session (port 0, a tmp data dir, user alice)."""
    handle = _start(tmp_path_factory.mktemp("gateway"))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def second_user(gateway: GatewayHandle) -> UserCreds:
    """Another user (bob) on the session gateway, for isolation tests."""
    return gateway.add_user(*BOB)


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[Callable[..., GatewayHandle]]:
    """``make_gateway(data_dir=None, **options)`` starts another gateway; stopped at teardown."""
    started: list[GatewayHandle] = []

    def factory(data_dir: Path | str | None = None, **options: Any) -> GatewayHandle:
        directory = Path(data_dir) if data_dir else tmp_path / f"gateway-{len(started)}"
        handle = _start(directory, **options)
        started.append(handle)
        return handle

    yield factory
    for handle in started:
        handle.stop()


def login_ticket(url: str, user: str, password: str) -> str:
    """Log in over REST and return the session ticket (the cookie's value)."""
    with httpx.Client(base_url=url, timeout=10) as client:
        reply = client.post(
            p.REST_PREFIX + "/user/login", json={"userName": user, "password": password}
        )
        reply.raise_for_status()
        return client.cookies[p.TICKET_COOKIE]


@pytest.fixture(scope="session")
def login() -> Callable[[str, str, str], str]:
    """``login(url, user, password) -> ticket``."""
    return login_ticket


# --------------------------------------------------------------------------- subprocess


@dataclass
class GatewayProcess:
    """``linkis-magic gateway`` running as a subprocess (for kill -9 and restart tests)."""

    proc: subprocess.Popen[str]
    port: int
    data_dir: Path
    user: str
    password: str
    token: str
    output: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _reap(self) -> None:
        if self.pump is not None:
            self.pump.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{p.WS_PATH}"

    def kill(self) -> None:
        """SIGKILL, as a crash would (its engine processes exit when their stdin closes)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reap()

    def stop(self) -> None:
        """SIGTERM and wait for a clean exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reap()


_LISTEN = re.compile(r"listening on http://[^:\s]+:(\d+)")


def start_gateway_process(
    data_dir: Path,
    port: int = 0,
    creds: tuple[str, str, str] = ALICE,
    timeout: float = 15.0,
    extra_args: tuple[str, ...] = (),
) -> GatewayProcess:
    """Run ``python -m linkis_magic.cli gateway --port PORT --data-dir D`` and wait for its port."""
    env = dict(os.environ)
    env.update({"LINKIS_USER": creds[0], "LINKIS_PASSWORD": creds[1], "LINKIS_TOKEN": creds[2]})
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, "-m", "linkis_magic.cli", "gateway", "--port", str(port)]
    cmd += ["--data-dir", str(data_dir), *extra_args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    found = threading.Event()
    result: dict[str, int] = {}
    output: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            match = _LISTEN.search(line)
            if match and not found.is_set():
                result["port"] = int(match.group(1))
                found.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while not found.wait(0.05):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(5)
            reader.join(5)
            proc.stdout.close()  # type: ignore[union-attr]
            raise RuntimeError("the gateway subprocess did not start:\n" + "".join(output))
    return GatewayProcess(proc, result["port"], data_dir, *creds, output=output, pump=reader)


@pytest.fixture
def gateway_process(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """``gateway_process(data_dir=None, port=0) -> GatewayProcess``; killed at teardown."""
    started: list[GatewayProcess] = []

    def factory(data_dir: Path | str | None = None, port: int = 0, **kwargs: Any) -> GatewayProcess:
        directory = Path(data_dir) if data_dir else tmp_path / "gateway-process"
        handle = start_gateway_process(directory, port, **kwargs)
        started.append(handle)
        return handle

    yield factory
    for handle in started:
        handle.kill()
