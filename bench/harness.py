"""What every benchmark shares: the gateway subprocess, sizes, statistics and the result record.

A benchmark is a function ``run(gateway, size) -> Figure``. A Figure holds the numbers (for
results.json), the one line ``python -m bench`` prints, and whether its target was met.
"""

from __future__ import annotations

import json
import math
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
COOKIE_ENV = "LINKIS_BENCH_COOKIE"  # the session cookie a child process logs in with


@dataclass(frozen=True)
class Size:
    """How big each benchmark runs: ``full`` for ``make bench``, ``tiny`` for the tests."""

    name: str
    latency_events: int  # push events the latency job runs for
    latency_gap: float  # seconds between two of its lines
    default_coalescing_lines: int  # lines of the second latency job (default log coalescing)
    poll_cadences: tuple[float, float]  # REST-polling baselines (linkis-python-sdk, web console)
    throughput_lines: int
    transfer_rows: int
    overhead_cells: int
    concurrency_jobs: int


FULL = Size(
    name="full",
    latency_events=10_000,
    latency_gap=0.001,
    default_coalescing_lines=2_000,
    poll_cadences=(1.0, 5.0),
    throughput_lines=200_000,
    transfer_rows=1_000_000,
    overhead_cells=30,
    concurrency_jobs=100,
)
TINY = Size(
    name="tiny",
    latency_events=150,
    latency_gap=0.002,
    default_coalescing_lines=50,
    poll_cadences=(0.05, 0.2),
    throughput_lines=2_000,
    transfer_rows=3_000,
    overhead_cells=2,
    concurrency_jobs=5,
)
SIZES = {s.name: s for s in (FULL, TINY)}


@dataclass
class Figure:
    """One benchmark's outcome.

    Attributes:
        name: short key (``push_latency`` ...).
        line: the one line printed for it.
        values: every number measured, for results.json.
        targets: each target's name -> whether it was met.
    """

    name: str
    line: str
    values: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, bool] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return all(self.targets.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "targets": self.targets,
            "met": self.met,
            "values": self.values,
        }


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 0.5)


def ms(seconds: float) -> str:
    """A duration for a human: ``0.62 ms``, ``503 ms``, ``2.49 s``."""
    if math.isnan(seconds):
        return "n/a"
    if seconds < 0.01:
        return f"{seconds * 1000:.2f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def verdict(met: bool, target: str) -> str:
    return f"target {target}: {'met' if met else 'MISSED'}"


# --------------------------------------------------------------------------- the gateway


class BenchGateway:
    """``python -m bench.gateway_proc`` in a subprocess, with its URL and the bench user.

    Use as a context manager; the data dir is a fresh temporary directory unless given.
    """

    def __init__(self, data_dir: Path | None = None, start_timeout: float = 30.0) -> None:
        self._own_dir = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="linkis-bench-")) if data_dir is None else data_dir
        )
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: IO[str] | None = None
        self.url = ""
        self.user = ""
        self.password = ""
        self.token = ""
        self.instance = ""

    def __enter__(self) -> BenchGateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        self._stderr = open(self.data_dir / "gateway.stderr", "w", encoding="utf-8")  # noqa: SIM115
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.gateway_proc", str(self.data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
            cwd=str(REPO),
        )
        threading.Thread(target=self._pump, daemon=True).start()
        hello = self._reply(self._start_timeout)
        self.url, self.user = hello["url"], hello["user"]
        self.password, self.token = hello["password"], hello["token"]
        self.instance = hello["instance"]

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _reply(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"the bench gateway did not answer within {timeout:g} s") from None
        if line is None:
            raise RuntimeError("the bench gateway exited:\n" + self.stderr_tail())
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the bench gateway refused a command: {reply['error']}")
        return reply

    def command(self, timeout: float = 300.0, **command: Any) -> dict[str, Any]:
        """Send one command (see bench.gateway_proc) and return its reply."""
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(command) + "\n")
        self._proc.stdin.flush()
        return self._reply(timeout)

    def set_options(self, **options: Any) -> None:
        self.command(cmd="options", **options)

    def stderr_tail(self, lines: int = 30) -> str:
        path = self.data_dir / "gateway.stderr"
        try:
            return "\n".join(path.read_text(encoding="utf-8").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # ------------------------------------------------------------------ clients

    def client(self, **options: Any) -> Any:
        """A LinkisClient logged in as the bench user (not yet connected)."""
        from linkis_magic import LinkisClient

        return LinkisClient(self.url, user=self.user, password=self.password, **options)

    def async_client(self, **options: Any) -> Any:
        from linkis_magic.client import AsyncLinkisClient

        return AsyncLinkisClient(self.url, user=self.user, password=self.password, **options)

    def login_cookie(self) -> str:
        """``name=ticket`` for a bare client's WebSocket upgrade and REST calls."""
        import httpx

        from linkis_magic import protocol as p

        body = {"userName": self.user, "password": self.password}
        reply = httpx.post(self.url + p.REST_PREFIX + "/user/login", json=body, timeout=30)
        reply.raise_for_status()
        return f"{p.TICKET_COOKIE}={reply.cookies[p.TICKET_COOKIE]}"


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.01) -> None:
    """Poll ``condition()`` until it is true; RuntimeError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------- jobs that wait


def go_snippet(go: Path) -> str:
    """Python code that waits (60 s at most) until ``go`` exists: a job starts when told to."""
    return (
        "import os as _os, time as _time\n"
        "_deadline = _time.monotonic() + 60\n"
        f"while not _os.path.exists({str(go)!r}) and _time.monotonic() < _deadline:\n"
        "    _time.sleep(0.002)\n"
    )


class Child:
    """``python -m MODULE ARGS...`` of this package: its stdout read line by line."""

    def __init__(self, gw: BenchGateway, module: str, *args: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env[COOKIE_ENV] = gw.login_cookie()  # not in argv, where any local user could read it
        self.module = module
        self._stderr_path = gw.data_dir / f"{module}-{time.monotonic_ns()}.stderr"
        with open(self._stderr_path, "w", encoding="utf-8") as stderr:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=env,
                cwd=str(REPO),
            )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def next_line(self, timeout: float) -> str:
        """The next line it prints; RuntimeError when it exits or stays silent too long."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{self.module} said nothing within {timeout:g} s") from None
        if line is None:
            tail = self._stderr_path.read_text(encoding="utf-8")[-2000:]
            raise RuntimeError(f"{self.module} exited:\n{tail}")
        return line.rstrip("\n")

    def expect(self, word: str, timeout: float = 30.0) -> None:
        """Wait for the line ``word`` (the child is ready); closes the child on failure."""
        try:
            line = self.next_line(timeout)
            if line != word:
                raise RuntimeError(f"{self.module} said {line!r}, not {word!r}")
        except BaseException:
            self.close()
            raise

    def result(self, timeout: float = 120.0) -> dict[str, Any]:
        """Its last line, a JSON object with ``seen`` (line number -> time), once it is done."""
        try:
            data: dict[str, Any] = json.loads(self.next_line(timeout))
        finally:
            self.close()
        data["seen"] = {int(k): v for k, v in data["seen"].items()}
        return data

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def bare_reader(gw: BenchGateway, exec_id: str) -> Child:
    """``bench.bare_reader`` following the job, subscribed when this returns."""
    ws_url = "ws://" + gw.url.split("://", 1)[1] + "/ws/api/entrance/connect"
    child = Child(gw, "bench.bare_reader", ws_url, exec_id)
    child.expect("subscribed")
    return child


def poller(gw: BenchGateway, exec_id: str, cadence: float) -> Child:
    """``bench.poller`` polling the job every ``cadence`` seconds, started when this returns."""
    child = Child(gw, "bench.poller", gw.url, exec_id, repr(cadence))
    child.expect("ready")
    return child
