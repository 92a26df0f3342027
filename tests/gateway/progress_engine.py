"""A test engine for the gateway tests: reports progress in steps, on command."""

from __future__ import annotations

import threading

from linkis_magic.gateway.engines.base import Column, Engine, JobContext


class ProgressEngine(Engine):
    """``steps N`` reports N progress steps 50 ms apart, then writes a one-cell table."""

    name = "progress"
    run_types = ("steps",)

    def __init__(self, settings: object) -> None:
        super().__init__(settings)  # type: ignore[arg-type]
        self._stop = threading.Event()

    def execute(self, ctx: JobContext) -> None:
        words = ctx.code.split()
        steps = int(words[1]) if len(words) > 1 else 3
        for step in range(1, steps + 1):
            info = [
                {
                    "id": "stage-1",
                    "succeedTasks": step,
                    "failedTasks": 0,
                    "runningTasks": 1 if step < steps else 0,
                    "totalTasks": steps,
                }
            ]
            ctx.progress(step / steps, info)
            ctx.log("INFO", f"step {step} of {steps}")
            if self._stop.wait(0.05) or ctx.cancelled.is_set():
                return
        ctx.table([Column("steps", "int")], [[steps]])

    def cancel(self, ctx: JobContext) -> None:
        self._stop.set()
