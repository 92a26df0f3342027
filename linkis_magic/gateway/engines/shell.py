"""The shell engine: each job's code runs in a new bash process group.

stdout goes to the log and to a text result set; stderr goes to the error log; a non-zero exit
fails the job. A kill ends the whole process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from typing import IO, Any

from linkis_magic.gateway.engines.base import Engine, EngineError, JobContext

_KILL_GRACE_S = 1.0


class ShellEngine(Engine):
    """Runs bash scripts; one at a time per engine process."""

    name = "shell"
    run_types = ("shell", "sh", "bash")

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None

    def execute(self, ctx: JobContext) -> None:
        if ctx.run_type.lower() not in self.run_types:
            raise EngineError(
                f"The shell engine runs {', '.join(self.run_types)}, not {ctx.run_type!r}"
            )
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as script:
            script.write(ctx.code)
        try:
            self._run(ctx, script.name)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(script.name)

    def _run(self, ctx: JobContext, script: str) -> None:
        proc = subprocess.Popen(
            ["bash", script],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        with self._lock:
            self._proc = proc
        if ctx.cancelled.is_set():
            self._kill(proc)
        out: list[str] = []
        err: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        readers = [
            threading.Thread(target=_pump, args=(proc.stdout, out, lambda s: ctx.log("INFO", s))),
            threading.Thread(target=_pump, args=(proc.stderr, err, lambda s: ctx.log("ERROR", s))),
        ]
        for reader in readers:
            reader.start()
        code = proc.wait()
        for reader in readers:
            reader.join()
        with self._lock:
            self._proc = None
        if ctx.cancelled.is_set():
            return
        if out:
            ctx.text("".join(out))
        if code != 0:
            raise EngineError(f"The shell script exited with code {code}")

    def cancel(self, ctx: JobContext) -> None:
        with self._lock:
            proc = self._proc
        if proc is not None:
            self._kill(proc)

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=_KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)


def _pump(stream: IO[bytes], keep: list[str], emit: Callable[[str], None]) -> None:
    for raw in stream:
        text = raw.decode("utf-8", "replace")
        keep.append(text)
        emit(text.rstrip("\n"))
